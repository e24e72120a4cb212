#!/usr/bin/env bash
# Installs what LoanOps needs on a fresh machine: system packages (as root, Debian/Ubuntu), then a
# virtualenv in .venv with the project and its dev extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# postgresql-client: pg_dump / pg_restore / psql for `loanops backup` and `restore` on PostgreSQL
# (Debian 12's is 15, the server's major version; pg_dump refuses a server newer than itself).
SYSTEM_PACKAGES=(fonts-wqy-microhei libharfbuzz-subset0 libpango-1.0-0 libpangoft2-1.0-0 poppler-utils postgresql-client)

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing system packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "warning: missing system packages (${missing[*]}); install them with:" >&2
    echo "  sudo apt-get install ${missing[*]}" >&2
    echo "(without a CJK font, contract PDFs render Chinese as empty boxes)" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.loanops-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi
