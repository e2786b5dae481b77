#!/usr/bin/env bash
# Runs the README's curl walk-through, as written, against a fresh oauth-local on a free
# port (or a running server: the local stack), and checks what it prints.
# Usage: scripts/readme-walkthrough.sh <oauth-local binary>
#        scripts/readme-walkthrough.sh --base URL --registration-token TOKEN --logs DIR
#   The second form is the deployed case (docs/DEPLOY.md): client registration carries
#   `Authorization: Bearer <registration token>`, the only difference from the local server;
#   every *.log in DIR is checked for leaked secrets.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: $0 <oauth-local binary> | --base URL --registration-token TOKEN --logs DIR}
source scripts/lib.sh
server_args "$@"
work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT
if [ -n "$base" ]; then
  BASE=$base
else
  start_server "$bin" "$work"; logs=$work
fi
# With a registration token, client registration sends it (as docs/DEPLOY.md says).
auth() { if [ -n "$reg" ]; then sed "s|\"\$BASE/register_client\"|\"\$BASE/register_client\" -H \"Authorization: Bearer $reg\"|"; else cat; fi; }

# The block between the walkthrough markers, with BASE pointed at this server.
sed -n '/<!-- walkthrough:start -->/,/<!-- walkthrough:end -->/p' README.md \
  | sed '1,2d;$d' | sed '$d' \
  | sed "s|^BASE=.*|BASE=$BASE|" | auth >"$work/walkthrough.sh"
# The browser flow, with the paste step replaced by a scripted login (what the browser does).
sed -n '/<!-- codeflow:start -->/,/<!-- codeflow:end -->/p' README.md | sed '1,2d;$d' | sed '$d' | auth >"$work/codeflow.raw"
grep -q '^CODE=paste-the-code-here$' "$work/codeflow.raw" || { echo "README code flow lost its paste step"; exit 1; }
{
  cat "$work/walkthrough.sh"
  sed '/^CODE=paste-the-code-here$/,$d' "$work/codeflow.raw"
  cat <<'LOGIN'
PAGE=$(curl -s -c "$JAR" "$AUTHORIZE_URL")
REQ=$(echo "$PAGE" | grep -o 'name="request" value="[^"]*"' | head -1 | cut -d'"' -f4)
LOCATION=$(curl -s -o /dev/null -w '%{redirect_url}' -b "$JAR" --data-urlencode "request=$REQ" \
  -d username=alice --data-urlencode 'password=correct horse battery staple' -d decision=allow "$BASE/oauth/authorize")
echo "redirected to: ${LOCATION%%\?*}"
CODE=$(echo "$LOCATION" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
LOGIN
  sed -n '/^CODE=paste-the-code-here$/,$p' "$work/codeflow.raw" | sed '1d'
  # The device flow, with the browser step replaced by a scripted entry of the code and login.
  sed -n '/<!-- deviceflow:start -->/,/<!-- deviceflow:end -->/p' README.md | sed '1,2d;$d' | sed '$d' | auth >"$work/deviceflow.raw"
  grep -q '^# Open verification_uri_complete in a browser' "$work/deviceflow.raw" || { echo "README device flow lost its browser step" >&2; exit 1; }
  sed '/^# Open verification_uri_complete in a browser/,$d' "$work/deviceflow.raw"
  cat <<'APPROVE'
USER_CODE=$(echo "$START" | jq -r .user_code)
PAGE=$(curl -s -b "$JAR" -c "$JAR" --data-urlencode "user_code=$USER_CODE" "$BASE/device")
REQ=$(echo "$PAGE" | grep -o 'name="request" value="[^"]*"' | head -1 | cut -d'"' -f4)
LOCATION=$(curl -s -o /dev/null -w '%{redirect_url}' -b "$JAR" -c "$JAR" --data-urlencode "request=$REQ" \
  -d username=alice --data-urlencode 'password=correct horse battery staple' -d decision=allow "$BASE/oauth/authorize")
echo "device approved: ${LOCATION#*\?}"
APPROVE
  sed -n '/^# Open verification_uri_complete in a browser/,$p' "$work/deviceflow.raw"
} | sed "1i JAR=$work/cookies" >"$work/all.sh"
bash -euo pipefail "$work/all.sh" >"$work/out.txt" 2>&1 || { cat "$work/out.txt"; echo "walk-through failed"; exit 1; }

fail=0; passed=0
expect() {
  if grep -q -- "$1" "$work/out.txt"; then passed=$((passed + 1)); else echo "walk-through output lacks: $1"; fail=$((fail + 1)); fi
}
expect '"message": "User registered successfully!"'
expect '"token_endpoint_auth_method": "client_secret_basic"'
expect '"data": "This is protected data!"'
expect '"hello": "world"'
expect '"active": true'
expect 'revoke: 200'
expect 'HTTP/1.1 401'
expect 'Bearer error="invalid_token"'
expect 'redirected to: http://127.0.0.1:8080/callback'
expect '"has_id_token": true'
expect '"preferred_username": "alice"'
expect '"scope": "openid profile offline_access data:read"'
expect '"user_code": "[BCDFGHJKLMNPQRSTVWXZ]\{4\}-[BCDFGHJKLMNPQRSTVWXZ]\{4\}"'
expect 'device approved: done=approved'
expect '"device_has_refresh_token": true'
if [ "$fail" -ne 0 ]; then cat "$work/out.txt"; echo "README walk-throughs: $passed passed, $fail failed"; exit 1; fi
# Secrets never reach the log.
secret=$(grep -o '"client_secret": "[^"]*"' "$work/out.txt" | head -1 | cut -d'"' -f4)
if [ -n "$secret" ] && grep -qF "$secret" "$logs"/*.log; then echo "client secret found in a server log"; exit 1; fi
grep -qF 'correct horse' "$logs"/*.log && { echo "password found in a server log"; exit 1; }
if [ -n "$reg" ] && grep -qF "$reg" "$logs"/*.log; then echo "registration token found in a server log"; exit 1; fi
echo "README walk-throughs: $passed passed, 0 failed"
