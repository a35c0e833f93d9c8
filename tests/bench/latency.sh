#!/usr/bin/env bash
# Benchmark: readiness latency of the `output` check — from the moment the
# fake service is really ready (it records CLOCK_MONOTONIC, then prints its
# banner) to the moment the test command starts (it records its own start
# first thing) — for envrun and for the floor runner (tests/bench/floor.c:
# the same service, readiness learnt from one inotify event, the test forked
# at once).  Also the whole up -> test -> down cycle of one service.
#   tests/bench/latency.sh [--smoke] [--record] [ENVRUN] [TESTSVC]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
runs=100 record=0
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) runs=5; shift ;;
    --record) record=1; shift ;;
    *) break ;;
  esac
done
bin=${1:-$top/build/release/envrun}
testsvc=${2:-$top/build/release/tests/testsvc}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if [ ! -x "$testsvc" ]; then
  cc -O2 -D_GNU_SOURCE -o "$tmp/testsvc" "$top/tests/helpers/testsvc.c"; testsvc=$tmp/testsvc
fi
cc -O2 -o "$tmp/floor" "$top/tests/bench/floor.c"
[ -x "$bin" ] || { echo "no envrun binary at $bin" >&2; exit 1; }

cat >"$tmp/environment.yml" <<YML
services:
  svc:
    command: ["$testsvc", --record, "$tmp/ready", --stdout, ready, --hold]
    ready: {output: "^ready\$"}
    stop_timeout: 5s
YML

lat_envrun=() lat_floor=() wall_envrun=() wall_floor=()
for _ in $(seq "$runs"); do
  rm -f "$tmp/ready" "$tmp/test"
  t0=$(date +%s%N)
  "$bin" -q exec -f "$tmp/environment.yml" -- "$testsvc" --record "$tmp/test" 2>/dev/null
  t1=$(date +%s%N)
  lat_envrun+=($(( $(cat "$tmp/test") - $(cat "$tmp/ready") )))
  wall_envrun+=($(( t1 - t0 )))
  rm -f "$tmp/ready" "$tmp/test"
  t0=$(date +%s%N)
  "$tmp/floor" "$tmp/ready" -- "$testsvc" --record "$tmp/ready" --stdout ready --hold \
    --- "$testsvc" --record "$tmp/test" >/dev/null
  t1=$(date +%s%N)
  lat_floor+=($(( $(cat "$tmp/test") - $(cat "$tmp/ready") )))
  wall_floor+=($(( t1 - t0 )))
done

# stats NAME VALUES... (ns) -> "p50 p99 min max" in ms
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {
  p50=a[int((NR+1)/2)]; i=int(NR*0.99+0.999); if (i<1) i=1; if (i>NR) i=NR;
  printf "%.3f %.3f %.3f %.3f\n", p50/1e6, a[i]/1e6, a[1]/1e6, a[NR]/1e6 }'; }
read -r e50 e99 emin emax < <(stats "${lat_envrun[@]}")
read -r f50 f99 fmin fmax < <(stats "${lat_floor[@]}")
read -r w50 w99 wmin wmax < <(stats "${wall_envrun[@]}")
read -r g50 g99 gmin gmax < <(stats "${wall_floor[@]}")
echo "output ready -> test start, envrun: p50 $e50 ms, p99 $e99 ms (min $emin, max $emax) over $runs runs"
echo "output ready -> test start, floor:  p50 $f50 ms, p99 $f99 ms (min $fmin, max $fmax)"
echo "whole cycle, 1 service, envrun: p50 $w50 ms, p99 $w99 ms; floor: p50 $g50 ms, p99 $g99 ms"

if [ "$record" = 1 ]; then
  f=$top/tests/bench/RESULTS.md
  commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
  section=$(cat <<MD
<!-- latency:begin -->
### output check: ready -> test start, and the whole cycle (goal: within 1 ms of the floor)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -r)), commit $commit, release build, $runs runs each.
The fake service records CLOCK_MONOTONIC, then prints its banner; the test records its start first thing.
The floor (tests/bench/floor.c) learns readiness from one inotify event and forks the test at once.

| figure (ms) | p50 | p99 | min | max |
|---|---|---|---|---|
| envrun, ready -> test start | $e50 | $e99 | $emin | $emax |
| floor, ready -> test start | $f50 | $f99 | $fmin | $fmax |
| envrun, whole exec of 1 service | $w50 | $w99 | $wmin | $wmax |
| floor, whole cycle of 1 service | $g50 | $g99 | $gmin | $gmax |
<!-- latency:end -->
MD
)
  /usr/bin/python3 - "$f" "$section" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read()
if "<!-- latency:begin -->" in text:
    text = re.sub(r"<!-- latency:begin -->.*?<!-- latency:end -->", lambda m: section, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
  echo "recorded in $f"
fi
