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
.venv/bin/lint-imports  # the layers in pyproject.toml [tool.importlinter]
# Did the arguments pick some tests (a path, -k, -m)? Then the web tests are skipped and so is the
# coverage floor, which only a full run can reach.
picked=
for arg in "$@"; do
  case "$arg" in -k | -m | -k* | -m* | [!-]*) picked=yes ;; esac
done
# Coverage of the test process and of every service it starts (pyproject.toml, [tool.coverage.*]):
# the table in the terminal, coverage/python/index.html and coverage/python/coverage.xml.
# The floor is [tool.coverage.report] fail_under.
cov=(--cov --cov-report=term --cov-report=html --cov-report=xml)
if [ -n "$picked" ]; then
  cov+=(--cov-fail-under=0)
fi
# The slowest tests are listed at the end, to keep the suite inside its time budget.
.venv/bin/pytest -p no:cacheprovider --durations=25 "${cov[@]}" "$@"
# Then the web console's tests (Vitest with coverage, and Playwright driving Debian's chromium against
# a real `sre-copilot up`), unless the arguments picked some tests or SKIP_WEB_TESTS=1.
if [ -z "$picked" ] && [ -z "${SKIP_WEB_TESTS:-}" ]; then
  scripts/web.sh test
fi
