#!/usr/bin/env bash
# The Lambda binaries link only what they use: no SQLite store (the local server's; Lambda
# functions use DynamoDB) in any of them, and the HTTPS client (reqwest) only where it is
# used: the authorizer (a JWKS URL) and the authorize and token functions (client metadata
# documents). Cargo unifies features across every package of one build, so a build
# from the workspace root with the local server or the tests in it links both everywhere
# (`sam build` builds each function in its own crate folder; scripts/lib.sh build_lambdas
# builds the authorizer apart).
# Usage: scripts/check-lambda-binaries.sh DIR   (DIR/<function>/bootstrap, or DIR/<Logical>/bootstrap)
set -euo pipefail
dir=${1:?usage: $0 DIR}
found=0 bad=0
for bin in "$dir"/*/bootstrap; do
  [ -e "$bin" ] || continue
  found=$((found + 1))
  name=$(basename "$(dirname "$bin")")
  sqlite=$(strings "$bin" | grep -c 'sqlite_master' || true)
  reqwest=$(strings "$bin" | grep -c 'reqwest' || true)
  printf '%-22s %6s KiB  sqlite:%s reqwest:%s\n' "$name" $(( $(stat -c %s "$bin") / 1024 )) "$sqlite" "$reqwest"
  if [ "$sqlite" -ne 0 ]; then echo "  $name links the SQLite store"; bad=1; fi
  case $name in
    authorizer|AuthorizerFunction|authorize|AuthorizeFunction|token|TokenFunction) ;;
    *) if [ "$reqwest" -ne 0 ]; then echo "  $name links the HTTPS client"; bad=1; fi ;;
  esac
done
[ "$found" -gt 0 ] || { echo "no binaries under $dir"; exit 1; }
exit "$bad"
