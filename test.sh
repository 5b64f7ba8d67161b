#!/usr/bin/env bash
# Set up (first time), then lint, type-check and run every test against real NATS and PostgreSQL
# (started by the test fixtures). Arguments go to pytest, e.g. ./test.sh tests/unit -k cursor
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
exec .venv/bin/pytest -p no:cacheprovider "$@"
