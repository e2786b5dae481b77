#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, the templates (cfn-lint, sam
# validate, and every IAM grant and route of the translated template), every unit,
# integration and end-to-end test (the DynamoDB and Secrets Manager ones against a local moto
# server it starts), the flow suite a second time on DynamoDB + Secrets Manager, the README
# walk-throughs, schemathesis against openapi.yaml, the headless-browser test, the two official
# MCP client SDKs (scripts/mcp-test.sh), one request
# through `cargo lambda watch` as the README shows it, the release
# Lambda binaries (checked to link only what they use), the same suites against the local
# stack (template.yaml as it ships, IAM enforced: scripts/stack-test.sh), and an arm64
# `sam build` of one function (in the background while the suites run). Installs what it
# needs when missing.
# Exits non-zero on the first failure; the emulator is stopped on every exit.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/moto.sh

need curl curl
need jq jq
need file file
need strings binutils

# Each step's title with the minutes:seconds since the start, so a slow step shows in CI's log.
step() { printf '== [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check
step "unused dependencies (scripts/unused_deps.py)"
python3 scripts/unused_deps.py
step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# moto, the SAM CLI and translator, cargo-lambda (with its zig), cfn-lint, schemathesis,
# pytest: pinned in scripts/requirements.txt, in the ignored .venv.
ensure_venv
export PATH="$PWD/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0

templates="template.yaml infra/examples/protected-api/template.yaml infra/examples/protected-rest-api/template.yaml"
step "template checks (offline): cfn-lint, sam validate --lint, grants and routes of the translated template"
cfn-lint $templates
for t in $templates; do sam validate --lint -t "$t"; done
.venv/bin/python -m pytest -q -p no:cacheprovider infra/stack/tests

work=$(mktemp -d)
arm64_pid=""
stop_arm64() { if [ -n "$arm64_pid" ]; then kill -- "-$arm64_pid" 2>/dev/null || true; fi; }
trap 'stop_arm64; stop_moto; rm -rf "$work"' EXIT
start_moto "$work"

step "cargo test (SQLite; DynamoDB and Secrets Manager on moto)"
cargo test --workspace --locked
# The arm64 `sam build` (the documented default architecture, cross-compiled with
# cargo-lambda's zig) runs in the background from here: the next steps mostly wait on one
# process (moto, schemathesis, Chromium), so the idle core builds it (at low priority, so
# the suites keep theirs). Its own process group, so the exit trap stops it; its target dirs
# differ from the debug build's, and it is waited for before the x86 Lambda build writes
# target/lambda again.
step "sam build for arm64 of one function: started in the background"
rm -rf .aws-sam/ci-arm64
set -m
nice -n 10 sam build RotateKeysFunction --build-dir .aws-sam/ci-arm64 >"$work/sam-build.log" 2>&1 &
arm64_pid=$!
set +m

step "the flow suite again, on DynamoDB + Secrets Manager"
OAUTH_TEST_BACKEND=aws cargo test --locked -p oauth-tests --test flows --test audit --test login_work
step "README walk-throughs"
scripts/readme-walkthrough.sh target/debug/oauth-local
step "schemathesis: the local server against openapi.yaml (bounded budget)"
scripts/schemathesis.sh target/debug/oauth-local
step "headless browser (Chromium + playwright-core)"
scripts/browser-test.sh target/debug/oauth-local
step "the official MCP client SDKs (TypeScript and Python, pinned): discovery, registration, code flow, refresh"
scripts/mcp-test.sh target/debug/oauth-local
step "cargo lambda watch: one request through the runtime emulator (README)"
scripts/lambda-watch.sh
step "sam build for arm64: waiting for it, checking the binary"
arm64_rc=0
wait "$arm64_pid" || arm64_rc=$?
arm64_pid=""
[ "$arm64_rc" = 0 ] || { tail -30 "$work/sam-build.log"; echo "sam build failed"; exit 1; }
arch=$(file -b .aws-sam/ci-arm64/RotateKeysFunction/bootstrap)
echo "RotateKeysFunction: $arch"
case $arch in *"ARM aarch64"*) ;; *) echo "sam build did not produce an arm64 binary"; exit 1 ;; esac
scripts/check-lambda-binaries.sh .aws-sam/ci-arm64

step "cargo lambda build --release (every function, this machine's architecture)"
# The shipped profile (fat LTO, one codegen unit, opt-level "z"): CI builds, checks and runs
# exactly the binaries a user's `cargo lambda build --release` or `sam build` produces
# (about 8.5 min for the seven on two cores; the arm64 build above about 5 min, in the
# background).
build_lambdas
scripts/check-lambda-binaries.sh target/lambda
step "the local stack: template.yaml as it ships, each function under its IAM policy"
scripts/stack-test.sh
step "all checks passed"
