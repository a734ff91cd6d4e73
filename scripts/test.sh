#!/usr/bin/env bash
# The whole test suite: lint, types, migrations check, then pytest (unit, integration, browser).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export DJANGO_DEBUG=1
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy"
.venv/bin/mypy .
echo "==> migrations are up to date"
.venv/bin/python manage.py makemigrations --check --dry-run
echo "==> pytest"
# loadgroup: the browser tests (xdist_group "e2e") share one running stack, so they stay in one worker.
.venv/bin/pytest -n "${PYTEST_WORKERS:-2}" --dist loadgroup "$@"
