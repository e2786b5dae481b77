#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, every unit, integration and
# end-to-end test (the DynamoDB and Secrets Manager ones against a local moto server it
# starts), the flow suite a second time on DynamoDB + Secrets Manager, the README
# walk-throughs, and the headless-browser test. Installs what it needs when missing.
# Exits non-zero on the first failure; the emulator is stopped on every exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/moto.sh

need() { # need <command> <debian package>
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "== installing $2 (needed for $1)"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq "$2" >/dev/null
}
need curl curl
need jq jq

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

ensure_moto
work=$(mktemp -d)
trap 'stop_moto; rm -rf "$work"' EXIT
start_moto "$work"

echo "== cargo test (SQLite; DynamoDB and Secrets Manager on moto)"
cargo test --workspace --locked
echo "== the flow suite again, on DynamoDB + Secrets Manager"
OAUTH_TEST_BACKEND=aws cargo test --locked -p oauth-tests --test flows
echo "== README walk-throughs"
scripts/readme-walkthrough.sh target/debug/oauth-local
echo "== headless browser (Chromium + playwright-core)"
scripts/browser-test.sh target/debug/oauth-local
