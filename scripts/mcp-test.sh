#!/usr/bin/env bash
# Interop test with the two official MCP client SDKs, unmodified: the TypeScript SDK
# (@modelcontextprotocol/sdk, pinned by tests/mcp/package-lock.json; `npm ci` when it is missing)
# and the Python SDK (`mcp`, pinned by tests/mcp/requirements.txt; installed into the ignored
# .venv-mcp/ when missing or when the pins change). Starts oauth-local on a free port (or uses a
# running server) and runs tests/mcp/ts_client.mjs and tests/mcp/py_client.py against it: from a
# 401 on /api/data each SDK discovers the protected-resource and authorization-server metadata,
# gets a client, gets a code through the login and consent form (scripted over HTTP, no
# browser), exchanges it with PKCE and RFC 8707 `resource`, reads /api/data with a token whose
# `aud` is BASE/api, and refreshes. See the two files' headers. Each SDK runs in two modes:
#   dynamic registration  the SDK registers a public client (RFC 7591);
#   client id metadata document (CIMD)  no registration: the client_id is an https URL the
#       server fetches. tests/mcp/docserver.py serves one document per SDK over HTTPS on a free
#       loopback port (https://localhost:PORT/ts/client.json, /py/client.json; the test
#       certificate of tests/fixtures/cimd) and oauth-local is started with
#       CIMD_TEST_LOOPBACK_CA_FILE=tests/fixtures/cimd/ca.pem so it trusts it. The documents list
#       port-less loopback redirect URIs (ts http://127.0.0.1/callback, py
#       http://localhost/callback; any port matches) and the clients use one on a free port;
#       the ts document has no `scope` (any known scope), the py one `data:read data:write
#       offline_access` (the Python SDK asks offline_access when the server advertises it).
#       The server must fetch each document (docserver's log) and the client_id on the
#       authorize, token and refresh requests and in the tokens must be the URL.
# With --base (a running server: the local stack, which cannot reach the document server and has
# no test CA) the CIMD mode is skipped, unless CIMD_URL names a document that server can fetch.
# Each client run is bounded (MCP_TIMEOUT seconds, 120); a summary line per SDK and mode ends
# the output; the exit status is non-zero when any run fails.
# Usage: scripts/mcp-test.sh <oauth-local binary>
#        scripts/mcp-test.sh --base URL [--registration-token TOKEN] [--logs DIR]   (the local stack)
# Environment: MCP_CLIENTS="ts py" picks the clients, MCP_MODES="dcr cimd" the modes;
# CIMD_URL=https://host/path runs the CIMD mode of both clients with that document instead of
# the local document server's (also with --base), with REDIRECT_URI=... when the document
# cannot be fetched from here and CIMD_CLIENT_NAME=... to check the consent page's name;
# VERBOSE=1 prints every request the SDKs send.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: $0 <oauth-local binary> | --base URL [--registration-token TOKEN] [--logs DIR]}
source scripts/lib.sh
server_args "$@"
clients=${MCP_CLIENTS:-ts py}

for c in $clients; do
  case $c in
    ts)
      want=$(node -p 'require("./tests/mcp/package.json").dependencies["@modelcontextprotocol/sdk"]')
      have=$(node -p 'try { require("./tests/mcp/node_modules/@modelcontextprotocol/sdk/package.json").version } catch { "" }')
      if [ "$have" != "$want" ]; then
        echo "== installing @modelcontextprotocol/sdk $want (npm ci)"
        (cd tests/mcp && npm ci --no-audit --no-fund >/dev/null)
      fi
      ;;
    py)
      stamp=.venv-mcp/.requirements.sha256
      want=$(sha256sum tests/mcp/requirements.txt | cut -d' ' -f1)
      if ! [ -x .venv-mcp/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "== installing the MCP Python SDK (tests/mcp/requirements.txt) into .venv-mcp (PyPI)"
        [ -x .venv-mcp/bin/python ] || python3 -m venv .venv-mcp || { echo "cannot create .venv-mcp (python3 -m venv; mcp needs Python >= 3.11)"; exit 1; }
        .venv-mcp/bin/pip install -q --disable-pip-version-check -r tests/mcp/requirements.txt \
          || { echo "cannot install tests/mcp/requirements.txt from PyPI"; exit 1; }
        echo "$want" >"$stamp"
      fi
      ;;
    *) echo "unknown client $c in MCP_CLIENTS (ts, py)"; exit 2 ;;
  esac
done

cimd_url=${CIMD_URL:-} cimd_redirect=${REDIRECT_URI:-} cimd_name=${CIMD_CLIENT_NAME:-}
modes=${MCP_MODES:-dcr cimd}
for m in $modes; do
  case $m in dcr|cimd) ;; *) echo "unknown mode $m in MCP_MODES (dcr, cimd)"; exit 2 ;; esac
done
limit=${MCP_TIMEOUT:-120}

work=$(mktemp -d)
DOC_PID=""
stop_docserver() {
  if [ -n "$DOC_PID" ]; then kill "$DOC_PID" 2>/dev/null || true; wait "$DOC_PID" 2>/dev/null || true; fi
}
trap 'stop_docserver; stop_server; rm -rf "$work"' EXIT

# The client metadata documents, one per client (docserver.py adds client_id, the URL).
declare -A doc_name=([ts]="MCP TypeScript SDK interop test" [py]="MCP Python SDK interop test")
declare -A doc_redirect=([ts]=http://127.0.0.1/callback [py]=http://localhost/callback)
declare -A doc_scope=([ts]="" [py]="data:read data:write offline_access")
document() { # document CLIENT: the JSON of its document, without client_id
  python3 -c 'import json, sys
name, redirect, scope = sys.argv[1:]
doc = {"client_name": name, "redirect_uris": [redirect], "grant_types": ["authorization_code", "refresh_token"],
       "response_types": ["code"], "token_endpoint_auth_method": "none"}
if scope:
    doc["scope"] = scope
print(json.dumps(doc))' "${doc_name[$1]}" "${doc_redirect[$1]}" "${doc_scope[$1]}"
}
doc_origin=""
start_docserver() {
  local specs=() c
  for c in $clients; do specs+=("$c=$(document "$c")"); done
  : >"$work/docserver.out"; : >"$work/docserver.requests" # before the child opens them: read below at once
  python3 tests/mcp/docserver.py --cert tests/fixtures/cimd/server.pem --key tests/fixtures/cimd/server.key \
    "${specs[@]}" >"$work/docserver.out" 2>"$work/docserver.requests" &
  DOC_PID=$!
  for _ in $(seq 100); do
    doc_origin=$(sed -n 's/^listening on \(https:.*\)$/\1/p' "$work/docserver.out")
    [ -n "$doc_origin" ] && return 0
    kill -0 "$DOC_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$work/docserver.out" "$work/docserver.requests"; echo "the document server (tests/mcp/docserver.py) did not start"; return 1
}

if [ -n "$base" ]; then
  BASE=$base
  if [[ " $modes " == *" cimd "* ]] && [ -z "$cimd_url" ]; then
    echo "== CIMD mode skipped: --base $base cannot fetch documents from this machine's test document server (and has no test CA); set CIMD_URL to a document it can fetch"
    modes=${modes//cimd/}
  fi
else
  CIMD_TEST_LOOPBACK_CA_FILE=$PWD/tests/fixtures/cimd/ca.pem start_server "$bin" "$work"; logs=$work
  if [[ " $modes " == *" cimd "* ]] && [ -z "$cimd_url" ]; then
    start_docserver
    echo "== client metadata documents at $doc_origin/{${clients// /,}}/client.json"
  fi
fi

py=$PWD/.venv-mcp/bin/python
failed=0
summary=()
for m in $modes; do
  for c in $clients; do
    case $c in
      ts) name="MCP TypeScript SDK"; cmd=(node ts_client.mjs) ;;
      py) name="MCP Python SDK"; cmd=("$py" py_client.py) ;;
    esac
    vars=(BASE="$BASE")
    fetched=""
    if [ "$m" = dcr ]; then
      label="dynamic registration"
      vars+=(REGISTRATION_TOKEN="$reg")
    elif [ -n "$cimd_url" ]; then
      label="client id metadata document $cimd_url"
      vars+=(CIMD_URL="$cimd_url" REDIRECT_URI="$cimd_redirect" CIMD_CLIENT_NAME="$cimd_name")
    else
      label="client id metadata document"
      path=/$c/client.json
      port=$(free_port)
      # The document's redirect URI on a free port (it lists it without one).
      vars+=(CIMD_URL="$doc_origin$path" CIMD_CLIENT_NAME="${doc_name[$c]}"
        REDIRECT_URI="$(sed "s#^\(http://[^/]*\)/#\1:$port/#" <<<"${doc_redirect[$c]}")")
      before=$(wc -l <"$work/docserver.requests")
    fi
    echo "== $name, $label"
    set +e
    (cd tests/mcp && env -u CIMD_URL -u REDIRECT_URI -u CIMD_CLIENT_NAME "${vars[@]}" timeout "$limit" "${cmd[@]}") 2>&1 | tee "$work/$c-$m.out"
    status=${PIPESTATUS[0]}
    set -e
    line=$(grep -E '^mcp (ts|python) sdk .*: [0-9]+ passed, [0-9]+ failed$' "$work/$c-$m.out" | tail -n 1 | sed 's/.*: //' || true)
    [ -n "$line" ] || line="no result"
    [ "$status" -ne 124 ] || line="$line; timed out after ${limit}s"
    if [ "$m" = cimd ] && [ -z "$cimd_url" ]; then
      # The clients do not fetch the document (REDIRECT_URI is given): every GET is the server's.
      requests=$(tail -n +"$((before + 1))" "$work/docserver.requests" | grep "^GET $path " || true)
      fetches=$(grep -c . <<<"$requests" || true)
      good=$(grep -c "^GET $path 200 accept=.*application/json" <<<"$requests" || true)
      fetched="; the server fetched $path $fetches time(s)"
      if [ "$good" -lt 1 ]; then
        fetched="$fetched (FAIL: none a GET with Accept: application/json answered 200)"; status=1
      fi
    fi
    if [ "$status" -ne 0 ]; then
      failed=1
      summary+=("FAIL $name, $label: $line$fetched (exit $status)")
    else
      summary+=("ok   $name, $label: $line$fetched")
    fi
  done
done

echo "== summary"
[ ${#summary[@]} -gt 0 ] || summary=("nothing run (MCP_MODES=${MCP_MODES:-dcr cimd}, MCP_CLIENTS=$clients)")
for l in "${summary[@]}"; do echo "$l"; done
if [ "$failed" -ne 0 ]; then
  if [ -n "$logs" ]; then echo "--- server log"; tail -n 30 "$logs"/*.log; fi
  if [ -s "$work/docserver.requests" ]; then echo "--- document server log"; tail -n 20 "$work/docserver.requests"; fi
  echo "mcp interop failed"
  exit 1
fi
