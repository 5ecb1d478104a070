#!/usr/bin/env bash
# Set up (idempotent), fetch the sample data (idempotent), lint, and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/freehead data fetch-samples
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/python -m pytest "$@"
