#!/usr/bin/env bash
# Cold-start benchmark (not a test): builds every function with `cargo lambda build --release`,
# starts moto, bootstraps a table and a key secret, and runs bench/coldstart.py: each
# function 20 times (STARTS) under a local Lambda Runtime API, interleaved with the reference
# function (bench/reference: SDK config, two clients, one GetSecretValue).
# Prints medians of init and first invocation, the ratio to the reference, and binary sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
STARTS=${STARTS:-20}
source scripts/lib.sh
source scripts/moto.sh
ensure_moto
export PATH="$PWD/.venv/bin:$PATH"
# NO_BUILD=1 measures the binaries already in target/lambda (e.g. after a profile experiment).
# Built per package, as `sam build` builds them (a root build would link the local server's
# SQLite into every function: scripts/check-lambda-binaries.sh).
if [ "${NO_BUILD:-}" != 1 ]; then
  build_lambdas >/dev/null
  cargo lambda build --release --locked -p reference >/dev/null
fi
cargo build --locked -p oauth-local -p oauth-admin >/dev/null

work=$(mktemp -d)
trap 'stop_server; stop_moto; rm -rf "$work"' EXIT
start_moto "$work"
export TABLE_NAME=bench SIGNING_KEYS_SECRET_ID=bench-keys
PUBLIC_KEYS_SECRET_ID=bench-public-keys FORM_KEY_SECRET_ID=bench-form-key target/debug/oauth-admin bootstrap >/dev/null
# A client and a token, from oauth-local on the same table and keys.
OAUTH_STORE=dynamodb OAUTH_KEYS=secretsmanager start_server target/debug/oauth-local "$work" --issuer https://bench.example
client=$(curl -sf -X POST "$BASE/register_client" -H 'Content-Type: application/json' \
  -d '{"grant_types":["client_credentials"],"scope":"data:read data:write"}')
id=$(echo "$client" | jq -r .client_id); secret=$(echo "$client" | jq -r .client_secret)
token=$(curl -sf -u "$id:$secret" -d grant_type=client_credentials "$BASE/oauth/token" | jq -r .access_token)
basic=$(printf '%s:%s' "$id" "$secret" | base64 -w0)
stop_server

fill() { sed -e "s|REPLACE_ACCESS_TOKEN|$token|g" -e "s|REPLACE_BASIC_CREDENTIALS|$basic|g" \
  -e "s|REPLACE_SECRET_ID|$SIGNING_KEYS_SECRET_ID|g" -e "s|REPLACE_VERSION_ID|00000000-0000-4000-8000-00000000beef|g" "events/$1.json"; }
for e in register-user authorize-get-unknown-client token-client-credentials protected-get-data discovery-jwks authorizer-v2-valid rotate-keys-create-secret discovery-root; do
  fill "$e" >"$work/$e.json"
done
python3 -c '
import json, sys
work = sys.argv[1]
names = {"register": "register-user", "authorize": "authorize-get-unknown-client", "token": "token-client-credentials",
         "protected": "protected-get-data", "discovery": "discovery-jwks", "authorizer": "authorizer-v2-valid",
         "rotate-keys": "rotate-keys-create-secret", "reference": "discovery-root"}
json.dump({f: open(f"{work}/{e}.json").read() for f, e in names.items()}, open(f"{work}/events.json", "w"))
# Each function with the key material template.yaml gives it.
common = {"ISSUER": "https://bench.example", "OAUTH_STORE": "dynamodb", "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"}
private = {"OAUTH_KEYS": "secretsmanager", "SIGNING_KEYS_SECRET_ID": "bench-keys"}
public = {"OAUTH_KEYS": "public", "PUBLIC_KEYS_SECRET_ID": "bench-public-keys"}
json.dump({"common": common, "register": {"OAUTH_KEYS": "none", "OAUTH_OPEN_REGISTRATION": "true"},
           "authorize": {**public, "FORM_KEY_SECRET_ID": "bench-form-key"},
           "token": private, "protected": public, "discovery": public, "reference": private,
           "authorizer": {**public, "AUTHORIZER_REQUIRED_SCOPES": "GET /api/data=data:read"},
           "rotate-keys": {"PUBLIC_KEYS_SECRET_ID": "bench-public-keys"}}, open(f"{work}/env.json", "w"))
' "$work"
echo "cold starts: $STARTS per function, interleaved; AWS calls against moto on loopback; $(nproc) cores"
python3 bench/coldstart.py --bin-dir target/lambda --starts "$STARTS" --env-file "$work/env.json" --events "$work/events.json"
echo "single store calls against the same emulator (the first invocations above include these):"
.venv/bin/python bench/store_calls.py "$TABLE_NAME" "$SIGNING_KEYS_SECRET_ID"
