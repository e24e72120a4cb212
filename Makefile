# The two commands of the README: `make dev` (everything, embedded, with demo data) and `make test`.
.PHONY: dev test lint bootstrap demo

bootstrap:
	@scripts/bootstrap.sh

dev: bootstrap
	.venv/bin/loanops dev

demo: bootstrap
	.venv/bin/loanops demo

# One pytest worker per core (pytest-xdist); `.venv/bin/python -m pytest path` runs serially.
test: bootstrap
	.venv/bin/python -m pytest -n auto

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .
