#!/usr/bin/env bash
# Runs the README's curl walk-through, as written, against a fresh oauth-local on a free
# port, and checks what it prints. Usage: scripts/readme-walkthrough.sh <oauth-local binary>
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: $0 <oauth-local binary>}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" --addr "127.0.0.1:$port" --data-dir "$work/data" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q '^listening on' "$work/server.log" && break; sleep 0.1; done
grep -q '^listening on' "$work/server.log" || { cat "$work/server.log"; echo "server did not start"; exit 1; }

# The block between the walkthrough markers, with BASE pointed at this server.
sed -n '/<!-- walkthrough:start -->/,/<!-- walkthrough:end -->/p' README.md \
  | sed '1,2d;$d' | sed '$d' \
  | sed "s|^BASE=.*|BASE=http://127.0.0.1:$port|" >"$work/walkthrough.sh"
bash -euo pipefail "$work/walkthrough.sh" >"$work/out.txt" 2>&1 || { cat "$work/out.txt"; echo "walk-through failed"; exit 1; }

fail=0
expect() { grep -q -- "$1" "$work/out.txt" || { echo "walk-through output lacks: $1"; fail=1; }; }
expect '"message": "User registered successfully!"'
expect '"token_endpoint_auth_method": "client_secret_basic"'
expect '"data": "This is protected data!"'
expect '"hello": "world"'
expect '"active": true'
expect 'revoke: 200'
expect 'HTTP/1.1 401'
expect 'Bearer error="invalid_token"'
if [ "$fail" -ne 0 ]; then cat "$work/out.txt"; exit 1; fi
# Secrets never reach the log.
secret=$(grep -o '"client_secret": "[^"]*"' "$work/out.txt" | head -1 | cut -d'"' -f4)
if [ -n "$secret" ] && grep -qF "$secret" "$work/server.log"; then echo "client secret found in the server log"; exit 1; fi
grep -qF 'correct horse' "$work/server.log" && { echo "password found in the server log"; exit 1; }
echo "README walk-through: 10 passed, 0 failed"
