#!/usr/bin/env bash
# Set up (first time) and run the whole platform: http://127.0.0.1:8000 (docs at /docs).
# Arguments go to `sre-copilot up`, e.g. ./run.sh --port 8080 --state-dir /var/lib/sre-copilot
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec .venv/bin/sre-copilot up "$@"
