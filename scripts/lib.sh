# Shared by the test and bench scripts (source it; not run on its own).

# free_port: print a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server BIN WORKDIR [ARGS...]: start oauth-local on a free port with its data in
# WORKDIR/data and its output in WORKDIR/server.log, wait for its readiness line, and set
# SERVER_PID and BASE. The caller stops it (stop_server) in its EXIT trap.
start_server() {
  local bin=$1 work=$2; shift 2
  local port; port=$(free_port)
  "$bin" --addr "127.0.0.1:$port" --data-dir "$work/data" "$@" >"$work/server.log" 2>&1 &
  SERVER_PID=$!
  BASE="http://127.0.0.1:$port"
  for _ in $(seq 100); do grep -q '^listening on' "$work/server.log" && return 0; sleep 0.1; done
  cat "$work/server.log"; echo "oauth-local did not start"; return 1
}

# stop_server: stop the server started by start_server, if any.
stop_server() {
  if [ -n "${SERVER_PID:-}" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
}
