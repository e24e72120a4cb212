# The two commands of the README: `make dev` (everything, embedded, with demo data) and `make test`.
.PHONY: dev test lint bootstrap demo

bootstrap:
	@scripts/bootstrap.sh

dev: bootstrap
	.venv/bin/loanops dev

demo: bootstrap
	.venv/bin/loanops demo

test: bootstrap
	.venv/bin/python -m pytest

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .
