#!/usr/bin/env bash
# The web console (web/): build it when it is missing or stale, make sure a browser is there for
# its tests, and run them.
#   scripts/web.sh build     npm ci (when node_modules is missing or older than the lock file), then
#                            npm run build (when gateway/console_dist is missing or older than the
#                            sources)
#   scripts/web.sh browser   Debian's chromium for Playwright (apt-get, as root), never a download
#   scripts/web.sh test      Vitest with coverage (its floors in vite.config.ts; the report in
#                            coverage/web/), then Playwright against a real `sre-copilot up`
set -euo pipefail
cd "$(dirname "$0")/../web"

need_npm() {
  if ! command -v npm >/dev/null 2>&1; then
    echo "web console: npm (Node.js 20.19+) is needed to $1; see the README, Web console" >&2
    return 1
  fi
}

install_deps() {
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "web console: npm ci" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2
  fi
}

build() {
  local stale=""
  local built=../gateway/console_dist/index.html
  if [ ! -f "$built" ]; then
    stale=yes
  elif [ -n "$(find src index.html package.json package-lock.json vite.config.ts tsconfig.json \
    -newer "$built" -print -quit 2>/dev/null)" ]; then
    stale=yes
  fi
  [ -z "$stale" ] && return 0
  if ! need_npm "build it"; then
    # The platform still runs; the gateway's / says how to build the console.
    return 0
  fi
  install_deps
  echo "web console: npm run build" >&2
  local out
  if ! out=$(npm run --silent build 2>&1); then
    echo "$out" >&2
    return 1
  fi
}

browser() {
  [ -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ] && return 0
  if [ -z "${CHROMIUM_PATH:-}" ]; then
    # A Chrome or Chromium already on the machine will do (GitHub's runners have google-chrome).
    local found
    for found in chromium chromium-browser google-chrome-stable google-chrome; do
      if command -v "$found" >/dev/null 2>&1 && [ "$(command -v "$found")" != /snap/bin/chromium ]; then
        CHROMIUM_PATH="$(command -v "$found")"
        export CHROMIUM_PATH
        return 0
      fi
    done
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "web console: installing Debian's chromium for the browser tests" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "web console: the browser tests need Debian's chromium: sudo apt-get install chromium" >&2
    return 1
  fi
}

run_tests() {
  need_npm "test it"
  install_deps
  build
  browser
  npx vitest run --coverage
  npx playwright test
}

case "${1:-}" in
  build) build ;;
  browser) browser ;;
  test) run_tests ;;
  *) echo "usage: scripts/web.sh build|browser|test" >&2; exit 2 ;;
esac
