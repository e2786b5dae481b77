#!/usr/bin/env bash
# Load test on loopback: starts oauth-local built with its `server` profile (default settings,
# request log on) and the naive baselines (bench/naive: a bare axum handler that signs one ES256 JWT per
# request, and one that verifies one), runs wrk (32 connections, 2 threads, 10 s each by
# default) against each, and prints requests/s, p50/p99 latency, errors, and each endpoint's
# ratio to its baseline measured in the same run (this machine's speed varies between runs),
# and GET /api/data with a DPoP-bound token and a fresh proof per request against the Bearer run.
# Usage: bench/load.sh            (DURATION=10s CONNECTIONS=32 THREADS=2; RUST_LOG as the server
#                                  reads it; NO_BUILD=1 measures the binaries already built)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}

# The baselines are built with the same profile as the server they are compared with.
[ -n "${NO_BUILD:-}" ] || cargo build --profile server --locked -p oauth-local -p naive >/dev/null
bin=target/server/oauth-local

source scripts/lib.sh
need wrk wrk
work=$(mktemp -d)
trap 'stop_server; [ -n "${NAIVE_PID:-}" ] && kill "$NAIVE_PID" 2>/dev/null; rm -rf "$work"' EXIT
# A second resource server, so the token path validates a `resource` against a registered one.
cat >"$work/resources.json" <<'JSON'
[{"id": "https://orders.bench.example", "name": "Orders", "scopes": [{"scope": "orders:read", "description": "Read orders"}], "access_token_ttl": 900}]
JSON
# METRICS_NAMESPACE: the server writes the embedded-metric lines the Lambda functions write
# (one per request, one per token), so their cost is in every figure below.
METRICS_NAMESPACE=bench OAUTH_RESOURCES_FILE="$work/resources.json" start_server "$bin" "$work"
target/server/naive "127.0.0.1:$(free_port)" >"$work/naive.out" 2>&1 &
NAIVE_PID=$!
for _ in $(seq 100); do [ "$(cat "$work/naive.out" 2>/dev/null | wc -l)" -ge 2 ] && break; sleep 0.1; done
naive=$(sed -n 's/^listening on //p' "$work/naive.out")
naive_token=$(sed -n 2p "$work/naive.out")
[ -n "$naive" ] && [ -n "$naive_token" ] || { cat "$work/naive.out"; echo "naive baseline did not start"; exit 1; }

client=$(curl -sf -X POST "$BASE/register_client" -H 'Content-Type: application/json' \
  -d '{"grant_types":["client_credentials"],"scope":"data:read data:write orders:read"}')
id=$(echo "$client" | jq -r .client_id)
secret=$(echo "$client" | jq -r .client_secret)
basic=$(printf '%s:%s' "$id" "$secret" | base64 -w0)
token=$(curl -sf -u "$id:$secret" -d grant_type=client_credentials "$BASE/oauth/token" | jq -r .access_token)
curl -sf -X POST "$BASE/api/data" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{"value":{"n":1}}' >/dev/null

# DPoP (RFC 9449): the same client's token bound to a key (bench/naive's dpop_proofs makes the
# proofs: wrk cannot sign one per request).
proofs=target/server/dpop_proofs
dpop_token=$(curl -sf -u "$id:$secret" -H "DPoP: $($proofs "$work/dpop.key" POST "$BASE/oauth/token" 1)" \
  -d grant_type=client_credentials "$BASE/oauth/token" | jq -r 'select(.token_type == "DPoP") | .access_token')
[ -n "$dpop_token" ] || { echo "the DPoP token request failed"; exit 1; }

# A wrk script posting a client_credentials token request with form body $2 to file $1.
token_lua() {
  printf 'wrk.method = "POST"\nwrk.body = "%s"\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\nwrk.headers["Authorization"] = "Basic %s"\n' \
    "$2" "$basic" >"$1"
}
token_lua "$work/token.lua" "grant_type=client_credentials"
token_lua "$work/token-resource.lua" "grant_type=client_credentials&resource=https%3A%2F%2Forders.bench.example"
curl -sf -u "$id:$secret" -d grant_type=client_credentials -d resource=https://orders.bench.example "$BASE/oauth/token" \
  | jq -e '.scope == "orders:read"' >/dev/null || { echo "the resource token request failed"; exit 1; }

echo "machine: $(nproc) cores, $(uname -m); wrk -t$THREADS -c$CONNECTIONS -d$DURATION on 127.0.0.1; server defaults (RUST_LOG ${RUST_LOG:-unset}); ES256"
run() { # name, wrk args...; sets rps
  local name=$1; shift
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@")
  local p50 p99 non2xx errors
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  errors=$(echo "$out" | awk '/Socket errors/ {print $0}')
  printf '%-32s %10s req/s   p50 %-8s p99 %-8s non-2xx %s %s\n' "$name" "$rps" "$p50" "$p99" "${non2xx:-0}" "${errors:-socket errors 0}"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# Each pair runs back to back, the baseline first, so both see the same machine.
printf 'wrk.method = "POST"\n' >"$work/post.lua"
run "naive signer (POST /token)" -s "$work/post.lua" "$naive/token"; naive_sign=$rps
run "POST /oauth/token (cc)" -s "$work/token.lua" "$BASE/oauth/token"; cc=$rps
run "POST /oauth/token (cc, resource)" -s "$work/token-resource.lua" "$BASE/oauth/token"; cc_resource=$rps
run "naive verifier (GET /verify)" -H "Authorization: Bearer $naive_token" "$naive/verify"; naive_verify=$rps
run "GET /api/data" -H "Authorization: Bearer $token" "$BASE/api/data"; data=$rps
echo "ratio client_credentials / naive signer:   $(ratio "$cc" "$naive_sign")x  (target >= 1.0)"
# GET /api/data with the DPoP-bound token: a fresh proof per request (its signature and the
# token's verified, its jti recorded once in the store), right after the Bearer run above.
# Proofs are made before the run for 1.5x the Bearer run's requests; each wrk thread takes
# its own share, so none is sent twice (a shortfall would show as non-2xx).
seconds=${DURATION%s}
count=$(awk -v r="$data" -v s="$seconds" 'BEGIN { printf "%d", r * s * 1.5 + 1000 }')
$proofs "$work/dpop.key" GET "$BASE/api/data" "$count" "$dpop_token" >"$work/proofs.txt"
cat >"$work/dpop.lua" <<LUA
local next_id = 0
function setup(thread) thread:set("id", next_id); next_id = next_id + 1 end
function init(args)
  proofs, i = {}, 0
  local n = 0
  for line in io.lines("$work/proofs.txt") do
    if n % $THREADS == id then proofs[#proofs + 1] = line end
    n = n + 1
  end
end
function request()
  i = i + 1
  return wrk.format("GET", nil, { ["Authorization"] = "DPoP $dpop_token", ["DPoP"] = proofs[i] or proofs[#proofs] })
end
LUA
run "GET /api/data (DPoP, fresh proofs)" -s "$work/dpop.lua" "$BASE/api/data"; dpop=$rps
echo "ratio GET /api/data / naive verifier:      $(ratio "$data" "$naive_verify")x  (target >= 1.0)"
echo "ratio GET /api/data DPoP / Bearer:         $(ratio "$dpop" "$data")x  (per request a proof's signature verified and its jti written; the token's verification is cached either way)"
echo "ratio GET /api/data DPoP / naive verifier:  $(ratio "$dpop" "$naive_verify")x  (the naive verifier checks one signature and writes nothing)"
echo "ratio cc with resource / cc without:       $(ratio "$cc_resource" "$cc")x  (target >= 0.95)"
lines=$(grep -c '"_aws"' "$work/server.log" || true)
[ "${lines:-0}" -gt 0 ] || { echo "the server wrote no metric line"; exit 1; }
echo "metric lines written by the server: $lines"
