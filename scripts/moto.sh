# Local AWS emulator (moto server) for the test command. Source it, then:
#   ensure_moto            install the pinned Python tools (moto among them) into ./.venv
#   start_moto WORKDIR     start it on a free 127.0.0.1 port, export the AWS_* environment
#   stop_moto              stop it by its PID (call from the EXIT trap)
# Fails loudly when the emulator cannot be installed or started: AWS tests are never skipped.

ensure_moto() { # the pinned tools of scripts/requirements.txt (moto among them); needs scripts/lib.sh
  ensure_venv
}

start_moto() {
  local work=$1 port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  # One request at a time (DynamoDB's atomicity for conditional writes): see infra/stack/emulator.py.
  .venv/bin/python infra/stack/emulator.py 127.0.0.1 "$port" >"$work/moto.log" 2>&1 &
  MOTO_PID=$!
  for _ in $(seq 150); do
    if curl -sf "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
      export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
      export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
      export OAUTH_TEST_AWS=1
      echo "== moto server on $AWS_ENDPOINT_URL (pid $MOTO_PID)"
      return 0
    fi
    if ! kill -0 "$MOTO_PID" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "moto server did not start:"; tail -20 "$work/moto.log"; return 1
}

stop_moto() {
  if [ -n "${MOTO_PID:-}" ]; then kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true; fi
}
