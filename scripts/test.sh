#!/usr/bin/env bash
# The whole test suite from a fresh machine: system packages, PostgreSQL,
# Python environment, lint, then pytest (arguments are passed to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-system.sh
scripts/setup-python.sh test
.venv/bin/ruff check .
.venv/bin/ruff format --check .
VOSIM_REQUIRE_PG=1 .venv/bin/python -m pytest "$@"
