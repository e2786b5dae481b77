#!/usr/bin/env bash
# Headless-browser test of the login page: installs Debian's chromium and playwright-core
# (npm) when missing, starts oauth-local on a free port, runs tests/browser/login.test.mjs.
# Usage: scripts/browser-test.sh <oauth-local binary>
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: $0 <oauth-local binary>}
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium (Debian package)"
  $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "== installing playwright-core (npm ci)"
  (cd tests/browser && npm ci --no-audit --no-fund >/dev/null)
fi
work=$(mktemp -d)
source scripts/lib.sh
trap 'stop_server; rm -rf "$work"' EXIT
start_server "$bin" "$work"
mkdir -p target
(cd tests/browser && BASE="$BASE" SCREENSHOT_DIR="$PWD/../../target" timeout 120 node login.test.mjs) \
  || { echo "--- server log"; tail -20 "$work/server.log"; exit 1; }
