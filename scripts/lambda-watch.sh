#!/usr/bin/env bash
# One request through `cargo lambda watch`, as the README shows a user running a function
# locally: the runtime emulator builds and starts the discovery function on its first
# request, against the AWS emulator, with events/local.env (the issuer and endpoint moved
# to this run's ports). Checks the answer is the function's own metadata.
# Usage: scripts/lambda-watch.sh   (needs AWS_ENDPOINT_URL of a running moto: scripts/moto.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
: "${AWS_ENDPOINT_URL:?start the AWS emulator first (scripts/moto.sh)}"
command -v cargo-lambda >/dev/null || { echo "cargo-lambda is missing (scripts/requirements.txt)"; exit 1; }

port=$(free_port)
work=$(mktemp -d)
table="watch-$RANDOM$RANDOM" secret="watch-keys-$RANDOM$RANDOM"
watch_pid=""
cleanup() {
  if [ -n "$watch_pid" ]; then kill -- "-$watch_pid" 2>/dev/null || kill "$watch_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# events/local.env, with this run's issuer, emulator, table and secret.
sed -e "s|^ISSUER=.*|ISSUER=http://127.0.0.1:$port|" \
    -e "s|^AWS_ENDPOINT_URL=.*|AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL|" \
    -e "s|^TABLE_NAME=.*|TABLE_NAME=$table|" \
    -e "s|^SIGNING_KEYS_SECRET_ID=.*|SIGNING_KEYS_SECRET_ID=$secret|" events/local.env >"$work/local.env"
TABLE_NAME=$table SIGNING_KEYS_SECRET_ID=$secret cargo run -q --locked -p oauth-admin -- bootstrap >/dev/null

# Its own process group, so the cleanup stops the function processes it started too.
set -m
cargo lambda watch -A 127.0.0.1 -P "$port" --env-file "$work/local.env" >"$work/watch.log" 2>&1 &
watch_pid=$!
set +m

url="http://127.0.0.1:$port/lambda-url/discovery/.well-known/openid-configuration"
body=""
# The first request compiles the function (debug): allow a few minutes.
for _ in $(seq 300); do
  if body=$(curl -sf --max-time 120 "$url"); then break; fi
  kill -0 "$watch_pid" 2>/dev/null || { cat "$work/watch.log"; echo "cargo lambda watch exited"; exit 1; }
  sleep 1
done
issuer=$(echo "$body" | jq -r .issuer 2>/dev/null || true)
if [ "$issuer" != "http://127.0.0.1:$port" ]; then
  tail -40 "$work/watch.log"; echo "unexpected answer from $url: ${body:-nothing}"; exit 1
fi
echo "cargo lambda watch: GET /.well-known/openid-configuration through the discovery function -> issuer $issuer"
