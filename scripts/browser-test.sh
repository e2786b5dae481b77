#!/usr/bin/env bash
# Headless-browser test of the login page: installs Debian's chromium and the npm packages
# (playwright-core, oidc-provider) when missing, starts oauth-local on a free port (or uses a
# running server), runs tests/browser/login.test.mjs (the login and consent page),
# tests/browser/session.test.mjs (sign-in session, remembered consent, account page, logout),
# tests/browser/device.test.mjs (the device authorization grant: the /device code entry page,
# the login and consent page with the device warning, Allow and Deny, the device's polls),
# then tests/browser/federation.test.mjs (sign-in through an upstream OpenID provider, account
# linking): a real OpenID provider (tests/browser/idp.mjs, node-oidc-provider) and a second
# oauth-local configured with it as the provider "testidp".
# Usage: scripts/browser-test.sh <oauth-local binary>
#        scripts/browser-test.sh --base URL [--registration-token TOKEN] [--logs DIR]   (the local stack)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: $0 <oauth-local binary> | --base URL [--registration-token TOKEN] [--logs DIR]}
source scripts/lib.sh
server_args "$@"
need chromium chromium
if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/oidc-provider ]; then
  echo "== installing playwright-core and oidc-provider (npm ci)"
  (cd tests/browser && npm ci --no-audit --no-fund >/dev/null)
fi
work=$(mktemp -d)
# The federation test's IdP and second server (started below, when there is a binary).
IDP_PID="" FED_SERVER_PID=""
stop_federation() {
  local pid
  for pid in $FED_SERVER_PID $IDP_PID; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
}
trap 'stop_server; stop_federation; rm -rf "$work"' EXIT
if [ -n "$base" ]; then
  BASE=$base
else
  start_server "$bin" "$work"; logs=$work
fi
mkdir -p target
shots="$PWD/target"
for t in login.test.mjs session.test.mjs device.test.mjs; do
  echo "== $t"
  (cd tests/browser && BASE="$BASE" REGISTRATION_TOKEN="$reg" SCREENSHOT_DIR="$shots" timeout 120 node "$t") \
    || { echo "--- server log"; tail -20 "$logs"/*.log; exit 1; }
done

# Federation. The IdP must know our callback before it starts and the server must know the
# IdP's issuer before it starts: pick the server's port first, start the IdP with the callback
# on that port, then the server on it.
if [ -z "$base" ]; then
  fed=$work/federation; mkdir -p "$fed"
  fed_port=$(free_port)
  secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
  start_idp "$fed_port" "$fed/idp.log" "$secret"
  idp=$IDP
  providers='[{"id":"testidp","name":"Test IdP","kind":"oidc","issuer":"'"$idp"'","client_id":"oauth-test-rp","client_secret_env":"TESTIDP_CLIENT_SECRET","scopes":"openid email profile"}]'
  # start_server sets SERVER_PID and BASE: keep the first server's, record the second's.
  first_pid=$SERVER_PID first_base=$BASE
  FEDERATION_PROVIDERS=$providers TESTIDP_CLIENT_SECRET=$secret start_server "$bin" "$fed" --port "$fed_port" \
    || { FED_SERVER_PID=$SERVER_PID; SERVER_PID=$first_pid; exit 1; }
  FED_SERVER_PID=$SERVER_PID fed_base=$BASE
  SERVER_PID=$first_pid BASE=$first_base
  echo "== federation.test.mjs (IdP $idp)"
  (cd tests/browser && BASE="$fed_base" IDP="$idp" REGISTRATION_TOKEN="" SCREENSHOT_DIR="$shots" timeout 120 node federation.test.mjs) \
    || { echo "--- server log"; tail -30 "$fed/server.log"; echo "--- IdP log"; tail -30 "$fed/idp.log"; exit 1; }
elif [ -n "${FEDERATION_IDP:-}" ]; then
  # With --base (the local stack) the federation test runs only when that server already has
  # an upstream provider "testidp" ("Test IdP") at the issuer FEDERATION_IDP, e.g. idp.mjs
  # started with IDP_REDIRECT_URI=<base>/federation/testidp/callback; stack.sh sets none up.
  echo "== federation.test.mjs (IdP $FEDERATION_IDP)"
  (cd tests/browser && BASE="$BASE" IDP="$FEDERATION_IDP" REGISTRATION_TOKEN="$reg" SCREENSHOT_DIR="$shots" timeout 120 node federation.test.mjs) \
    || { echo "--- server log"; [ -n "$logs" ] && tail -20 "$logs"/*.log; exit 1; }
else
  echo "== federation.test.mjs skipped (--base without FEDERATION_IDP)"
fi
