# Shared by the test and bench scripts (source it; not run on its own).

# free_port: print a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# need COMMAND PACKAGE: install the Debian PACKAGE when COMMAND is missing (with sudo when
# not root).
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "== installing $2 (needed for $1)"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq "$2" >/dev/null
}

# start_server BIN WORKDIR [--port PORT] [ARGS...]: start oauth-local on PORT (default: a free
# port) with its data in WORKDIR/data and its output in WORKDIR/server.log, wait for its
# readiness line, and set SERVER_PID and BASE. The caller stops it (stop_server) in its EXIT
# trap.
start_server() {
  local bin=$1 work=$2; shift 2
  local port
  if [ "${1:-}" = --port ]; then port=${2:?--port needs a port}; shift 2; else port=$(free_port); fi
  "$bin" --addr "127.0.0.1:$port" --data-dir "$work/data" "$@" >"$work/server.log" 2>&1 &
  SERVER_PID=$!
  BASE="http://127.0.0.1:$port"
  for _ in $(seq 100); do grep -q '^listening on' "$work/server.log" && return 0; sleep 0.1; done
  cat "$work/server.log"; echo "oauth-local did not start"; return 1
}

# server_args "$@": the arguments of the scripts that test a server: `<oauth-local binary>`
# (they start one), or `--base URL [--registration-token TOKEN] [--logs DIR]` (a running one,
# e.g. the local stack). Sets bin, base, reg and logs.
server_args() {
  bin=$1 base="" reg="" logs=""
  if [ "$bin" = --base ]; then
    base=${2:?--base needs a URL}; shift 2
    while [ $# -gt 0 ]; do
      case $1 in --registration-token) reg=$2; shift 2 ;; --logs) logs=$2; shift 2 ;; *) echo "unknown option $1"; exit 2 ;; esac
    done
  fi
}

# start_idp CALLBACK_PORT LOG SECRET: start the test OpenID provider (tests/browser/idp.mjs,
# node-oidc-provider) on a free port with one client, oauth-test-rp / SECRET, whose redirect
# URI is the provider "testidp"'s callback on 127.0.0.1:CALLBACK_PORT; wait for it and set
# IDP_PID and IDP (its issuer). Its output goes to LOG. The caller stops it.
start_idp() {
  local callback_port=$1 log=$2 secret=$3
  [ -d tests/browser/node_modules/oidc-provider ] || (cd tests/browser && npm ci --no-audit --no-fund >/dev/null)
  : >"$log"
  IDP_CLIENT_ID=oauth-test-rp IDP_CLIENT_SECRET=$secret \
    IDP_REDIRECT_URI="http://127.0.0.1:$callback_port/federation/testidp/callback" \
    node tests/browser/idp.mjs >"$log" 2>&1 &
  IDP_PID=$!
  IDP=""
  for _ in $(seq 100); do
    IDP=$(sed -n 's/^idp listening on //p' "$log"); [ -n "$IDP" ] && return 0
    kill -0 "$IDP_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$log"; echo "the test IdP did not start"; return 1
}

# stop_server: stop the server started by start_server, if any.
stop_server() {
  if [ -n "${SERVER_PID:-}" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
}

# The Lambda functions, as `sam build` builds them: one package at a time would each unify
# only their own features; two invocations give the same result faster (the authorizer alone
# enables oauth-core's `jwks-url`). PROFILE_ARGS may carry e.g. thin-LTO overrides.
LAMBDA_FUNCTIONS="register authorize token protected discovery rotate-keys authorizer"
build_lambdas() { # build_lambdas [cargo lambda build flags...]
  # Two builds, so Cargo's feature unification keeps the HTTPS client (reqwest: the
  # authorizer's JWKS URL, the authorize and token functions' client metadata documents)
  # out of the functions that do not use it.
  cargo lambda build --release --locked "$@" -p register -p protected -p discovery -p rotate-keys
  cargo lambda build --release --locked "$@" -p authorize -p token -p authorizer
}

# The Python tools (moto, the SAM CLI and translator, cargo-lambda with its zig, cfn-lint,
# pytest), pinned in scripts/requirements.txt, in the ignored .venv.
ensure_venv() {
  local stamp=.venv/.requirements.sha256 want
  want=$(sha256sum scripts/requirements.txt | cut -d' ' -f1)
  if [ -x .venv/bin/python ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return 0; fi
  echo "== installing the Python tools (scripts/requirements.txt) into .venv (PyPI)"
  [ -x .venv/bin/python ] || python3 -m venv .venv || { echo "cannot create .venv (python3 -m venv)"; return 1; }
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt \
    || { echo "cannot install scripts/requirements.txt from PyPI"; return 1; }
  echo "$want" >"$stamp"
}
