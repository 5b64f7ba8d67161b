#!/usr/bin/env bash
# Creates .venv in the checkout and installs the project (with its test tools) into it.
# Re-running is cheap: it reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "SRE Copilot needs Python 3.11 or newer")'

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi

stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ] || [ ! -x .venv/bin/sre-copilot ]; then
  # compat mode: the checkout itself is on sys.path, so new modules need no reinstall
  .venv/bin/python -m pip install --quiet -e '.[dev]' --config-settings editable_mode=compat
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# Debian's caddy (compose.cluster.yaml's reverse proxy): the tests validate the Caddyfile with it and
# drive the platform through it. Installed once, as root; without it those tests are skipped.
if ! command -v caddy >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's caddy for the reverse-proxy tests" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends caddy; } \
    >/dev/null || echo "caddy could not be installed: the reverse-proxy tests are skipped" >&2
  # The package starts a system-wide caddy on :80 where systemd runs; the tests start their own.
  systemctl disable --now caddy >/dev/null 2>&1 || true
fi

# The web console, served by the gateway at /: built when missing or older than its sources.
scripts/web.sh build
