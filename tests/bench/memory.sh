#!/usr/bin/env bash
# Benchmark: envrun's peak RSS (VmHWM), read by the test command from
# /proc/$PPID/status (its parent is envrun) once everything is up: one
# service with an output check, one with an http check on 127.0.0.1
# (envrun's own client: no libcurl), and 200 services ready on spawn.  Release build.
#   tests/bench/memory.sh [--smoke] [--record] [ENVRUN] [TESTSVC]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
record=0 n200=200
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) n200=20; shift ;;
    --record) record=1; shift ;;
    *) break ;;
  esac
done
bin=${1:-$top/build/release/envrun}
testsvc=${2:-$top/build/release/tests/testsvc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
testsvc=$(testsvc_or_build "$testsvc" "$tmp")
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
hwm() { # FILE: runs envrun on it, prints VmHWM in KiB
  "$bin" -q exec -f "$1" -- sh -c 'sed -n "s/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p" /proc/$PPID/status' 2>/dev/null
}
cat >"$tmp/one.yml" <<YML
services:
  svc:
    command: ["$testsvc", --stdout, ready, --hold]
    ready: {output: "^ready\$"}
YML
cat >"$tmp/http.yml" <<YML
services:
  svc:
    command: ["$testsvc", --http, "$port", "200", --hold]
    ready: {http: "http://127.0.0.1:$port/"}
YML
{ echo "services:"; for i in $(seq "$n200"); do printf '  s%d:\n    command: ["%s", --hold]\n' "$i" "$testsvc"; done; } >"$tmp/many.yml"
one=$(hwm "$tmp/one.yml"); http=$(hwm "$tmp/http.yml"); many=$(hwm "$tmp/many.yml")
echo "peak RSS, 1 service (output check): $one KiB"
echo "peak RSS, 1 service (http check on 127.0.0.1): $http KiB"
echo "peak RSS, $n200 services: $many KiB"
if [ "$record" = 1 ]; then
  commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
  section=$(cat <<MD
<!-- memory:begin -->
### envrun's peak RSS (VmHWM) with everything up (goals: < 4 MB for 1 service with or without an http check, < 6 MB for 200 services)

Measured $(date -u +%Y-%m-%d), commit $commit, release build.

| environment | peak RSS |
|---|---|
| 1 service, output check | $one KiB |
| 1 service, http check on 127.0.0.1 (envrun's own client, no libcurl) | $http KiB |
| $n200 services ready on spawn | $many KiB |
<!-- memory:end -->
MD
)
  record_section memory "$section"
fi
