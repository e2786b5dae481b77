#!/usr/bin/env bash
# Headless-browser test of the login page: installs Debian's chromium and playwright-core
# (npm) when missing, starts oauth-local on a free port (or uses a running server), runs
# tests/browser/login.test.mjs (the login and consent page) and tests/browser/session.test.mjs
# (sign-in session, remembered consent, account page, logout).
# Usage: scripts/browser-test.sh <oauth-local binary>
#        scripts/browser-test.sh --base URL [--registration-token TOKEN] [--logs DIR]   (the local stack)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: $0 <oauth-local binary> | --base URL [--registration-token TOKEN] [--logs DIR]}
source scripts/lib.sh
server_args "$@"
need chromium chromium
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "== installing playwright-core (npm ci)"
  (cd tests/browser && npm ci --no-audit --no-fund >/dev/null)
fi
work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT
if [ -n "$base" ]; then
  BASE=$base
else
  start_server "$bin" "$work"; logs=$work
fi
mkdir -p target
for t in login.test.mjs session.test.mjs; do
  echo "== $t"
  (cd tests/browser && BASE="$BASE" REGISTRATION_TOKEN="$reg" SCREENSHOT_DIR="$PWD/../../target" timeout 120 node "$t") \
    || { echo "--- server log"; tail -20 "$logs"/*.log; exit 1; }
done
