#!/usr/bin/env bash
# The local stack: template.yaml served on 127.0.0.1 the way API Gateway and Lambda serve it,
# each function (the real `cargo lambda build` binaries) under exactly its template IAM
# policy in an IAM-enforcing AWS emulator, and the example protected API behind the shipped
# Lambda authorizer. No Docker, no AWS account. Builds the functions first (NO_BUILD=1 uses
# those already in target/lambda); options go to infra/stack (see `--help`), e.g.
#   scripts/stack.sh --port 3100 --param CorsAllowedOrigins=http://127.0.0.1:5173
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_venv
export PATH="$PWD/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
if [ "${NO_BUILD:-}" != 1 ]; then
  echo "== cargo lambda build --release (the functions of template.yaml)"
  build_lambdas
fi
exec .venv/bin/python infra/stack "$@"
