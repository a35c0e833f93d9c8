#!/usr/bin/env bash
# Benchmark: where the whole cycle of one service goes, envrun against the
# floor (tests/bench/floor.c), phase by phase.  One fake service that
# records CLOCK_MONOTONIC and listens on a loopback port at once (a tcp
# check for envrun, one inotify event for the floor); the test command
# records its start.  Around each runner, `testsvc --record` stamps the
# moment before it starts and after it returned, on the same clock:
#   start -> ready   runner start until the service is ready (the runner's
#                    own start, its set-up, the service's spawn and start)
#   ready -> test    readiness noticed and the test spawned until it runs
#   test -> end      the test, the stop of the service, clean-up, report
# Medians over RUNS runs (interleaved), in ms; the difference is envrun's
# cost per phase.  Release build.
#   tests/bench/phases.sh [--smoke] [--record] [ENVRUN] [TESTSVC]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
runs=41 record=0
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) runs=3; shift ;;
    --record) record=1; shift ;;
    *) break ;;
  esac
done
bench_begin phases "${1:-$top/build/release/envrun}" "${2:-$top/build/release/tests/testsvc}"
cc -O2 -o "$tmp/floor" "$top/tests/bench/floor.c"
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$tmp/environment.yml" <<EOF
services:
  s0:
    command: ["$testsvc", --record, "$tmp/ready", --tcp, "$port", --hold]
    ready: {tcp: $port}
EOF

# one RUNNER: prints "start->ready ready->test test->end whole" in microseconds
one() {
  rm -f "$tmp/ready" "$tmp/test"
  "$testsvc" --record "$tmp/t0"
  case $1 in
    envrun) TESTSVC_MARKER=$marker "$bin" -q --state-dir "$tmp/state" exec -f "$tmp/environment.yml" \
              -- "$testsvc" --record "$tmp/test" 2>"$tmp/err" ;;
    floor) TESTSVC_MARKER=$marker "$tmp/floor" "$tmp/ready" -- "$testsvc" --record "$tmp/ready" \
             --tcp "$port" --hold --- "$testsvc" --record "$tmp/test" 2>"$tmp/err" ;;
  esac || { echo "$1 failed:" >&2; cat "$tmp/err" >&2; exit 1; }
  "$testsvc" --record "$tmp/t3"
  local t0 r t t3
  t0=$(<"$tmp/t0") r=$(<"$tmp/ready") t=$(<"$tmp/test") t3=$(<"$tmp/t3")
  if [ -n "$(marked_pids "$marker")" ]; then echo "$1 left processes behind" >&2; exit 1; fi
  echo "$(( (r - t0) / 1000 )) $(( (t - r) / 1000 )) $(( (t3 - t) / 1000 )) $(( (t3 - t0) / 1000 ))"
}

declare -A col
for _ in $(seq "$runs"); do
  for x in envrun floor; do
    read -r a b c w < <(one "$x") || exit 1
    col[$x.0]+=" $a" col[$x.1]+=" $b" col[$x.2]+=" $c" col[$x.3]+=" $w"
  done
done
med() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)] / 1000}'; }
names=("start -> ready" "ready -> test" "test -> end" "whole (with the two stamps)")
rows=""
for k in 0 1 2 3; do
  e=$(med "${col[envrun.$k]}") f=$(med "${col[floor.$k]}")
  d=$(awk -v e="$e" -v f="$f" 'BEGIN {printf "%+.2f", e - f}')
  printf '%-28s envrun %7s ms  floor %7s ms  %s ms\n' "${names[$k]}" "$e" "$f" "$d"
  rows+="| ${names[$k]} | $e | $f | $d |"$'\n'
done

if [ "$record" = 1 ]; then
  commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo "?")
  section=$(cat <<MD
<!-- phases:begin -->
### one service's whole cycle, phase by phase, against the floor (goal: within 3 ms)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -r)), commit $commit, release build, $runs runs each
(interleaved), medians in ms (tests/bench/phases.sh). One fake service that listens at once (envrun: a tcp
check; floor: one inotify event); stamps by \`testsvc --record\` just before the runner starts and just after it
returned, so "whole" includes two stamp processes.

| phase | envrun | floor | envrun - floor |
|---|---|---|---|
${rows%$'\n'}
<!-- phases:end -->
MD
)
  record_section phases "$section"
fi
