#!/usr/bin/env bash
# The whole test suite from a fresh machine: system packages, PostgreSQL,
# Python environment, lint and the import contracts, then pytest (arguments go
# to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-system.sh
scripts/setup-python.sh test,cluster
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports  # the floors and stages of pyproject.toml [tool.importlinter]
VOSIM_REQUIRE_PG=1 .venv/bin/python -m pytest "$@"
