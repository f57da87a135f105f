#!/usr/bin/env bash
# The test command: set up (see bootstrap.sh), then lint, type-check and run every test,
# the real-model end-to-end tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
