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
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" --addr "127.0.0.1:$port" --data-dir "$work/data" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q '^listening on' "$work/server.log" && break; sleep 0.1; done
grep -q '^listening on' "$work/server.log" || { cat "$work/server.log"; echo "server did not start"; exit 1; }
mkdir -p target
(cd tests/browser && BASE="http://127.0.0.1:$port" SCREENSHOT_DIR="$PWD/../../target" timeout 120 node login.test.mjs) \
  || { echo "--- server log"; tail -20 "$work/server.log"; exit 1; }
