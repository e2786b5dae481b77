#!/usr/bin/env bash
# Load test on loopback: starts the release oauth-local, then runs wrk (32 connections,
# 2 threads, 10 s each by default) against POST /oauth/token (client_credentials) and
# GET /api/data, and prints requests/s, p50/p99 latency and errors.
# Usage: bench/load.sh            (DURATION=10s CONNECTIONS=32 THREADS=2 RUST_LOG=warn)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
export RUST_LOG=${RUST_LOG:-warn}

cargo build --release --locked -p oauth-local >/dev/null
bin=target/release/oauth-local

source scripts/lib.sh
need wrk wrk
work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT
start_server "$bin" "$work"

client=$(curl -sf -X POST "$BASE/register_client" -H 'Content-Type: application/json' \
  -d '{"grant_types":["client_credentials"],"scope":"data:read data:write"}')
id=$(echo "$client" | jq -r .client_id)
secret=$(echo "$client" | jq -r .client_secret)
basic=$(printf '%s:%s' "$id" "$secret" | base64 -w0)
token=$(curl -sf -u "$id:$secret" -d grant_type=client_credentials "$BASE/oauth/token" | jq -r .access_token)
curl -sf -X POST "$BASE/api/data" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{"value":{"n":1}}' >/dev/null

cat >"$work/token.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $basic"
LUA

echo "machine: $(nproc) cores, $(uname -m); wrk -t$THREADS -c$CONNECTIONS -d$DURATION on 127.0.0.1; server RUST_LOG=$RUST_LOG; ES256"
run() { # name, wrk args...
  local name=$1; shift
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@")
  local rps p50 p99 non2xx errors
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  errors=$(echo "$out" | awk '/Socket errors/ {print $0}')
  printf '%-32s %10s req/s   p50 %-8s p99 %-8s non-2xx %s %s\n' "$name" "$rps" "$p50" "$p99" "${non2xx:-0}" "${errors:-socket errors 0}"
}
run "POST /oauth/token (cc)" -s "$work/token.lua" "$BASE/oauth/token"
run "GET /api/data" -H "Authorization: Bearer $token" "$BASE/api/data"
