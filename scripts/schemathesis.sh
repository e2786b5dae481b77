#!/usr/bin/env bash
# Property-based API test of the local server against openapi.yaml with Schemathesis
# (pinned, installed into the ignored .venv when missing). Every response is checked
# against the spec: no 5xx, documented status codes, content types, headers and bodies
# (tests/schemathesis.toml lists the two checks that do not apply and why). Bounded budget:
# a fixed number of examples per operation and a fixed seed, so a run is repeatable.
# Usage: scripts/schemathesis.sh <oauth-local binary>   (EXAMPLES=n to change the budget)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: $0 <oauth-local binary>}
version=4.32.5
if [ "$(.venv/bin/schemathesis --version 2>/dev/null)" != "schemathesis, version $version" ]; then
  echo "== installing schemathesis $version into .venv (PyPI)"
  .venv/bin/pip install -q --disable-pip-version-check "schemathesis==$version"
fi
work=$(mktemp -d)
source scripts/lib.sh
trap 'stop_server; rm -rf "$work"' EXIT
# The abuse limits are raised so the generated traffic keeps reaching the endpoints (their
# 429 answers are covered by tests/flows/abuse.rs and still documented in the spec).
REGISTER_LIMIT_PER_IP=1000000 REGISTER_CLIENT_LIMIT_PER_IP=1000000 CLIENT_AUTH_FAILURES_PER_IP=1000000 \
  start_server "$bin" "$work"
mkdir -p target/schemathesis
status=0
timeout 900 .venv/bin/schemathesis --config-file tests/schemathesis.toml run openapi.yaml --url "$BASE" \
  --max-examples "${EXAMPLES:-25}" --seed 20261127 --workers 1 --no-color \
  --generation-database none --report junit --report-dir target/schemathesis \
  >"$work/st.log" 2>&1 || status=$?
grep -E '^(Test cases:|  [0-9]+ generated|=+ .* in [0-9.]+s)' "$work/st.log" || true
if [ "$status" -ne 0 ]; then
  cat "$work/st.log"
  echo "--- server log"; tail -20 "$work/server.log"
  exit "$status"
fi
