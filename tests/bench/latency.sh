#!/usr/bin/env bash
# Benchmark: readiness latency of every check kind — from the moment the
# fake service is really ready (it records CLOCK_MONOTONIC just before its
# resource appears) to the moment the test command starts (it records its
# own start first thing) — for envrun and for the floor runner
# (tests/bench/floor.c: the same service, readiness learnt from one inotify
# event, the test forked at once).  Also the whole up -> test -> down cycle.
#   tests/bench/latency.sh [--smoke] [--record] [ENVRUN] [TESTSVC]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
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
testsvc=$(testsvc_or_build "$testsvc" "$tmp")
cc -O2 -o "$tmp/floor" "$top/tests/bench/floor.c"
[ -x "$bin" ] || { echo "no envrun binary at $bin" >&2; exit 1; }

# A free loopback port for the tcp and http kinds.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# kind -> the fake service's actions (it records its ready moment just
# before the resource appears) and the check that waits for it.
declare -A actions check
actions[output]="--record $tmp/ready --stdout ready --hold";   check[output]='{output: "^ready$"}'
actions[exit]="--record $tmp/ready --exit 0";                   check[exit]='{exit: 0}'
actions[pidfile]="--record $tmp/ready --pidfile $tmp/svc.pid --hold"; check[pidfile]="{pidfile: $tmp/svc.pid}"
actions[notify]="--record $tmp/ready --notify READY=1 --hold";  check[notify]='{notify: true}'
actions[tcp]="--record $tmp/ready --tcp $port --hold";          check[tcp]="{tcp: $port}"
actions[unix]="--record $tmp/ready --unix $tmp/svc.sock --hold"; check[unix]="{unix: $tmp/svc.sock}"
actions[http]="--record $tmp/ready --http $port 200 --hold";    check[http]="{http: \"http://127.0.0.1:$port/\"}"
actions[exec]="--record $tmp/ready --pidfile $tmp/flag --hold"; check[exec]="{exec: [test, -f, $tmp/flag]}"
kinds=(output exit pidfile notify tcp unix http exec)

# stats VALUES... (ns) -> "p50 p99 min max" in ms
stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {
  p50=a[int((NR+1)/2)]; i=int(NR*0.99+0.999); if (i<1) i=1; if (i>NR) i=NR;
  printf "%.3f %.3f %.3f %.3f\n", p50/1e6, a[i]/1e6, a[1]/1e6, a[NR]/1e6 }'; }

rows=""
for kind in "${kinds[@]}"; do
  # The service waits 50 ms first, so that a polled check is really polling.
  read -r -a act <<<"--sleep 0.05 ${actions[$kind]}"
  q=$(printf '"%s", ' "$testsvc" "${act[@]}")
  cat >"$tmp/environment.yml" <<YML
services:
  svc:
    command: [${q%, }]
    ready: ${check[$kind]}
    stop_timeout: 5s
YML
  lat_envrun=() lat_floor=() wall_envrun=() wall_floor=()
  for _ in $(seq "$runs"); do
    rm -f "$tmp/ready" "$tmp/test" "$tmp/svc.pid" "$tmp/flag" "$tmp/svc.sock"
    t0=$(date +%s%N)
    "$bin" -q exec -f "$tmp/environment.yml" -- "$testsvc" --record "$tmp/test" 2>/dev/null ||
      { echo "envrun exec failed for the $kind check" >&2; exit 1; }
    t1=$(date +%s%N)
    lat_envrun+=($(( $(cat "$tmp/test") - $(cat "$tmp/ready") )))
    wall_envrun+=($(( t1 - t0 )))
    rm -f "$tmp/ready" "$tmp/test" "$tmp/svc.pid" "$tmp/flag" "$tmp/svc.sock"
    t0=$(date +%s%N)
    NOTIFY_SOCKET= "$tmp/floor" "$tmp/ready" -- "$testsvc" "${act[@]/--notify/--stdout}" \
      --- "$testsvc" --record "$tmp/test" >/dev/null
    t1=$(date +%s%N)
    lat_floor+=($(( $(cat "$tmp/test") - $(cat "$tmp/ready") )))
    wall_floor+=($(( t1 - t0 )))
  done
  read -r e50 e99 emin emax < <(stats "${lat_envrun[@]}")
  read -r f50 f99 fmin fmax < <(stats "${lat_floor[@]}")
  read -r w50 w99 wmin wmax < <(stats "${wall_envrun[@]}")
  read -r g50 g99 gmin gmax < <(stats "${wall_floor[@]}")
  printf '%-8s ready -> test start: envrun p50 %s p99 %s ms | floor p50 %s p99 %s ms | whole cycle: envrun p50 %s ms, floor p50 %s ms\n' \
    "$kind" "$e50" "$e99" "$f50" "$f99" "$w50" "$g50"
  rows+="| $kind | $e50 | $e99 | $f50 | $f99 | $(awk -v a="$e50" -v b="$f50" 'BEGIN{printf "%+.3f", a-b}') | $w50 | $g50 |"$'\n'
done

if [ "$record" = 1 ]; then
  commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
  section=$(cat <<MD
<!-- latency:begin -->
### readiness: ready -> test start, per check kind, against the floor

Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -r)), commit $commit, release build, $runs runs per kind.
The fake service (tests/helpers/testsvc) waits 50 ms, records CLOCK_MONOTONIC just before its resource
appears (line printed, exit, pid file, READY=1, listen, HTTP server, flag file), and the test records its
start first thing. The floor (tests/bench/floor.c) learns readiness from one inotify event on that record
and forks the test at once. Goals: event-driven kinds within 1 ms of the floor, polled kinds within 2 ms.

| kind | envrun p50 (ms) | envrun p99 | floor p50 | floor p99 | p50 over floor | whole exec p50 | floor cycle p50 |
|---|---|---|---|---|---|---|---|
${rows%$'\n'}
<!-- latency:end -->
MD
)
  record_section latency "$section"
fi
