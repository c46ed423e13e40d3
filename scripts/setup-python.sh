#!/usr/bin/env bash
# Create .venv with vosim, its test dependencies and Dask (the cluster tests).
# torch 2.13.0 goes in first: on these machines it is a local CPU build, and
# installing it first keeps pip from pulling a multi-GB CUDA build for "torch>=".
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-test,cluster}"
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install -q -e ".[$EXTRAS]" 2>&1 | grep -v "is ignored" || true
.venv/bin/python -c "import torch, vo_service.cli" # fail here, not in the middle of the tests
