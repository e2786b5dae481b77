#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, every unit, integration and
# end-to-end test (the DynamoDB and Secrets Manager ones against a local moto server it
# starts), the flow suite a second time on DynamoDB + Secrets Manager, the README
# walk-throughs, schemathesis against openapi.yaml, and the headless-browser test. Installs what it needs when missing.
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
# Deployment tooling, in the same ignored venv: cargo-lambda (with its zig), cfn-lint, SAM CLI.
if [ ! -x .venv/bin/cargo-lambda ] || [ ! -x .venv/bin/cfn-lint ] || [ ! -x .venv/bin/sam ]; then
  echo "== installing cargo-lambda, cfn-lint and aws-sam-cli into .venv (PyPI)"
  .venv/bin/pip install -q --disable-pip-version-check cargo-lambda cfn-lint aws-sam-cli
fi
export PATH="$PWD/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0

echo "== template checks (offline): cfn-lint, sam validate --lint"
cfn-lint template.yaml infra/examples/protected-api/template.yaml
sam validate --lint -t template.yaml
sam validate --lint -t infra/examples/protected-api/template.yaml

work=$(mktemp -d)
trap 'stop_moto; rm -rf "$work"' EXIT
start_moto "$work"

echo "== cargo test (SQLite; DynamoDB and Secrets Manager on moto)"
cargo test --workspace --locked
echo "== the flow suite again, on DynamoDB + Secrets Manager"
OAUTH_TEST_BACKEND=aws cargo test --locked -p oauth-tests --test flows --test audit
echo "== README walk-throughs"
scripts/readme-walkthrough.sh target/debug/oauth-local
echo "== schemathesis: the local server against openapi.yaml (bounded budget)"
scripts/schemathesis.sh target/debug/oauth-local
echo "== headless browser (Chromium + playwright-core)"
scripts/browser-test.sh target/debug/oauth-local
echo "== cargo lambda build --release (every function, this machine's architecture)"
# Fat LTO with one codegen unit (the shipped profile) takes >12 min for seven SDK binaries on
# two cores; CI proves the release build with thin LTO to stay in budget. bench/coldstart.sh
# and `sam build` use the full profile.
CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 cargo lambda build --release --locked \
  --bin register --bin authorize --bin token --bin protected --bin discovery --bin authorizer --bin rotate-keys
ls -l target/lambda/*/bootstrap
