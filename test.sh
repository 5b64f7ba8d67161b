#!/usr/bin/env bash
# Set up (first time), then lint, type-check and run every test against real NATS and PostgreSQL
# (started by the test fixtures), then the web console's tests. Arguments go to pytest (picking tests
# skips the web ones), e.g. ./test.sh tests/unit -k cursor
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
.venv/bin/pytest -p no:cacheprovider "$@"
# Then the web console's tests (Vitest, and Playwright driving Debian's chromium against a real
# `sre-copilot up`), unless the arguments picked some tests (a path, -k, -m) or SKIP_WEB_TESTS=1.
web_tests=yes
for arg in "$@"; do
  case "$arg" in -k | -m | -k* | -m* | [!-]*) web_tests= ;; esac
done
if [ -n "$web_tests" ] && [ -z "${SKIP_WEB_TESTS:-}" ]; then
  scripts/web.sh test
fi
