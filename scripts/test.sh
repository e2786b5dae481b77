#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, every unit, integration and
# end-to-end test, and the README walk-through against a real server. Installs what it needs
# when missing. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

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
echo "== cargo test"
cargo test --workspace --locked
echo "== README walk-through"
scripts/readme-walkthrough.sh target/debug/oauth-local
echo "== headless browser (Chromium + playwright-core)"
scripts/browser-test.sh target/debug/oauth-local
