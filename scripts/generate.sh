#!/usr/bin/env bash
# Writes the files generated from the code's own contracts (committed; tests/unit/test_generated_contracts.py
# fails when one is stale):
#   docs/openapi.json       the gateway's OpenAPI document (python -m gateway.openapi, no server started)
#   docs/events.md          the event catalogue (python -m contracts.catalogue)
#   web/src/api/openapi.ts  the console's API types, by openapi-typescript from docs/openapi.json
# Run it after changing a route, a request or response model, or an event.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"

# (Not `cmd >tmp && mv`: a failure inside an && list does not stop a `set -e` script.)
"$PYTHON" -m gateway.openapi >docs/openapi.json.tmp
mv docs/openapi.json.tmp docs/openapi.json
"$PYTHON" -m contracts.catalogue >docs/events.md.tmp
mv docs/events.md.tmp docs/events.md
echo "wrote docs/openapi.json and docs/events.md" >&2

if ! command -v npm >/dev/null 2>&1; then
  echo "npm (Node.js 20.19+) is needed to write web/src/api/openapi.ts; see the README, Web console" >&2
  exit 1
fi
cd web
if [ ! -x node_modules/.bin/openapi-typescript ]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
# The same command as the staleness test: change both together.
node_modules/.bin/openapi-typescript ../docs/openapi.json --enum-values --output src/api/openapi.ts >&2
