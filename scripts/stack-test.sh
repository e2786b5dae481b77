#!/usr/bin/env bash
# The test suites against the local stack (scripts/stack.sh): the README walk-throughs (as
# docs/DEPLOY.md tells a deployed user to run them), the headless-browser login (with the
# federated sign-in through a real OpenID provider, its client secret in the local Secrets
# Manager), the MCP
# client SDKs (dynamic registration), and
# tests/stack (flows over HTTP, the example protected API behind the Lambda authorizer, key
# rotation driven by Secrets Manager, IAM enforcement). Fails on any IAM denial a function
# met. Uses the functions already in target/lambda (build them with `build_lambdas`).
# Usage: scripts/stack-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_venv
work=$(mktemp -d)
stack_pid="" idp_pid=""
stop_stack() {
  local pid
  for pid in $stack_pid $idp_pid; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
}
trap 'stop_stack; rm -rf "$work"' EXIT
# Federation through the stack: a real OpenID provider (tests/browser/idp.mjs) on 127.0.0.1
# as the upstream "testidp", configured by the FederationProviders parameter; its client
# secret goes into the stack's FederationSecret (the local Secrets Manager) once the stack is
# up, and the authorize function reads it from there, under its template IAM policy.
port=$(free_port)
idp_secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
start_idp "$port" "$work/idp.log" "$idp_secret" || { idp_pid=$IDP_PID; exit 1; }
idp_pid=$IDP_PID idp=$IDP
providers='[{"id":"testidp","name":"Test IdP","kind":"oidc","issuer":"'"$idp"'","client_id":"oauth-test-rp","client_secret_key":"testidp"}]'
# DPoP nonces are required, so the independent client's proofs go through the nonce
# challenge and its retry (tests/stack). The harness raises only what it must for itself: API Gateway's per-route throttles (all
# callers together), and shortens the key cache and the publication delay (kept longer than
# the cache, as in production) so a rotation shows within seconds. Per-address
# limits stay at their defaults (each test talks from its own loopback address).
.venv/bin/python infra/stack --dir "$work" --port "$port" --example-port 0 --param "FederationProviders=$providers" \
  --param CorsAllowedOrigins=http://127.0.0.1:9999 --param DpopNonceRequired=true --param KeysCacheSeconds=10 --param KeyPublishDelaySeconds=15 \
  --param SensitiveRouteBurstLimit=1000 --param SensitiveRouteRateLimit=1000 >"$work/stack.out" 2>&1 &
stack_pid=$!
for _ in $(seq 600); do
  grep -q '^stack ready' "$work/stack.out" 2>/dev/null && break
  kill -0 "$stack_pid" 2>/dev/null || { cat "$work/stack.out"; echo "the local stack did not start"; exit 1; }
  sleep 0.2
done
grep -q '^stack ready' "$work/stack.out" || { cat "$work/stack.out"; echo "the local stack did not start in 120 s"; exit 1; }
cat "$work/stack.out"
state=$work/stack.json
base=$(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["base"])' "$state")
token=$(IDP_SECRET=$idp_secret .venv/bin/python - "$state" <<'PY'
import json, os, sys, boto3
st = json.load(open(sys.argv[1]))
sm = boto3.client("secretsmanager", endpoint_url=st["emulator"], region_name=st["region"],
                  aws_access_key_id=st["admin"]["AccessKeyId"], aws_secret_access_key=st["admin"]["SecretAccessKey"])
outputs = st["stacks"]["oauth"]["outputs"]
# The operator's step after the deploy (docs/DEPLOY.md): the providers' client secrets.
sm.put_secret_value(SecretId=outputs["FederationSecretArn"], SecretString=json.dumps({"testidp": os.environ["IDP_SECRET"]}))
print(sm.get_secret_value(SecretId=outputs["RegistrationTokenSecretArn"])["SecretString"])
PY
)
# An operator's second resource server, registered with oauth-admin as docs/DEPLOY.md shows,
# before any function reads the catalog: tests/stack checks that the example API's
# authorizer (guarding the built-in <issuer>/api) refuses the tokens issued for it.
[ -x target/debug/oauth-admin ] || cargo build --locked -q -p oauth-admin
eval "$(.venv/bin/python - "$state" <<'PY'
import json, shlex, sys
st = json.load(open(sys.argv[1]))
env = {"AWS_ENDPOINT_URL": st["emulator"], "AWS_REGION": st["region"],
       "AWS_ACCESS_KEY_ID": st["admin"]["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": st["admin"]["SecretAccessKey"],
       "ADMIN_TABLE": st["stacks"]["oauth"]["outputs"]["TableName"]}
print("; ".join(f"export {k}={shlex.quote(v)}" for k, v in env.items()))
PY
)"
target/debug/oauth-admin put-resource --table "$ADMIN_TABLE" --issuer "$base" \
  --id https://other-api.example.test --name "Another API" --scope "other:read=Read the other API" >/dev/null
unset AWS_ENDPOINT_URL AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY ADMIN_TABLE
status=0
echo "== README walk-throughs against the local stack"
scripts/readme-walkthrough.sh --base "$base" --registration-token "$token" --logs "$work/logs" || status=1
echo "== headless browser against the local stack"
FEDERATION_IDP=$idp scripts/browser-test.sh --base "$base" --registration-token "$token" --logs "$work/logs" || status=1
echo "== the MCP client SDKs against the local stack"
scripts/mcp-test.sh --base "$base" --registration-token "$token" --logs "$work/logs" || status=1
echo "== tests/stack (pytest) against the local stack"
STACK_STATE=$state .venv/bin/python -m pytest -q -p no:cacheprovider tests/stack || status=1
if [ "$status" -ne 0 ]; then
  echo "--- IAM denials (emulator log)"; grep 'IAM DENIED' "$work/logs/emulator.log" | head -20 || true
  for f in "$work"/logs/*.log; do echo "--- $f (last lines)"; tail -15 "$f"; done
fi
exit "$status"
