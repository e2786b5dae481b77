#!/usr/bin/env bash
# Fuzzing (a bench-like command, not part of CI): runs every cargo-fuzz target in fuzz/ for
# a fixed time each and prints what it found.
#   ./scripts/fuzz.sh [seconds per target, default 60] [target ...]
# Seeds live in fuzz/corpus/<target> (committed); new inputs go to target/fuzz-corpus/<target>
# (ignored); crashes land in fuzz/artifacts/<target>/ and must become regression tests.
# cargo-fuzz needs nightly features: on a stable toolchain RUSTC_BOOTSTRAP=1 enables them.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(params basic_auth redirect_uri jwt_verify registration_json lambda_event dynamodb_response)
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
cd fuzz
cargo fuzz build -O
status=0
for t in "${targets[@]}"; do
  mkdir -p "../target/fuzz-corpus/$t"
  log="../target/fuzz-$t.log"
  start=$(date +%s)
  if cargo fuzz run -O "$t" "../target/fuzz-corpus/$t" "corpus/$t" -- -max_total_time="$secs" -max_len=65536 >"$log" 2>&1; then
    result=ok
  else
    result="CRASH (see fuzz/artifacts/$t and $log)"
    status=1
  fi
  runs=$(sed -nE 's/^Done ([0-9]+) runs.*/\1/p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
  printf '%-18s %4ss  %12s execs  %-10s  %s\n' "$t" "$(( $(date +%s) - start ))" "${runs:-?}" "${cov:-}" "$result"
done
exit $status
