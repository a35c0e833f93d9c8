#!/usr/bin/env bash
# Benchmark: what `envrun exec -- true` costs beyond what its services cost,
# with 1, 50 and 200 services ready on spawn (goal: < 1 s for 200).
#
# "Ready on spawn": every service is "testsvc --stdout ready --hold", which
# prints its ready line as its very first action, and envrun waits for it
# with an `output: "^ready$"` check.  A service with no check at all would be
# ready once its exec succeeded, which a shell script cannot observe (bash's
# `&` returns after the fork), so the two would not be doing the same work;
# the printed line is a readiness both can wait for in the same way.
#
# The services' own time is what tests/bench/bare_exec.sh takes: the same
# starts, the same wait for each ready line, `true`, SIGTERM to each and a
# wait for all, and nothing else.  Overhead = envrun's wall time minus the
# script's, paired run by run (interleaved, so that load drifting on a shared
# machine hits both).  Also measured: envrun with session containment
# (ENVRUN_FORCE_REAPER=1: what a host without a writable cgroup gets).
# After every run no process of it may be left (every process started
# carries TESTSVC_MARKER; a survivor fails the benchmark).  Release build.
#
#   tests/bench/exec_overhead.sh [--smoke] [--record] [ENVRUN] [TESTSVC]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
record=0 sizes=(1 50 200) runs=(20 20 10)
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) sizes=(1 10 50) runs=(3 2 1); shift ;;
    --record) record=1; shift ;;
    *) break ;;
  esac
done
bench_begin exec "${1:-$top/build/release/envrun}" "${2:-$top/build/release/tests/testsvc}"


# one RUNNER N: runs it once, prints its wall time in microseconds
one() {
  local t0 t1 rc=0
  t0=$(us)
  case $1 in
    envrun) TESTSVC_MARKER=$marker "$bin" -q --state-dir "$tmp/state" exec -f "$tmp/n$2.yml" -- true \
              2>"$tmp/err" || rc=$? ;;
    session) TESTSVC_MARKER=$marker ENVRUN_FORCE_REAPER=1 "$bin" -q --state-dir "$tmp/state" exec \
               -f "$tmp/n$2.yml" -- true 2>"$tmp/err" || rc=$? ;;
    script) TESTSVC_MARKER=$marker bash "$top/tests/bench/bare_exec.sh" "$2" "$testsvc" "$tmp" \
              2>"$tmp/err" || rc=$? ;;
  esac
  t1=$(us)
  if [ "$rc" != 0 ]; then
    echo "$1 with $2 services failed (status $rc):" >&2; cat "$tmp/err" >&2; exit 1
  fi
  # Zero processes left behind, checked after every run.
  local left
  left=$(marked_pids "$marker")
  if [ -n "$left" ]; then
    echo "$1 with $2 services left processes behind: $(echo $left)" >&2
    ps -o pid,ppid,stat,args -p "$(echo $left | tr ' ' ,)" >&2 || true
    exit 1
  fi
  echo $((t1 - t0))
}

# mmm VALUES... (us) -> "min median max" in ms
mmm() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {
  printf "%.1f %.1f %.1f\n", a[1]/1e3, a[int((NR+1)/2)]/1e3, a[NR]/1e3 }'; }

runners=(envrun session script)
rows="" goal=""
for k in "${!sizes[@]}"; do
  n=${sizes[$k]} r=${runs[$k]}
  { echo "services:"
    for i in $(seq "$n"); do
      printf '  s%d:\n    command: ["%s", --stdout, ready, --hold]\n    ready: {output: "^ready$"}\n' \
        "$i" "$testsvc"
    done; } >"$tmp/n$n.yml"
  declare -A t=()
  d_envrun=() d_session=()
  for _ in $(seq "$r"); do
    for x in "${runners[@]}"; do
      v=$(one "$x" "$n") || exit 1
      t[$x]+=" $v"
    done
    read -r -a e <<<"${t[envrun]}"; read -r -a s <<<"${t[session]}"; read -r -a b <<<"${t[script]}"
    d_envrun+=($(( ${e[-1]} - ${b[-1]} ))); d_session+=($(( ${s[-1]} - ${b[-1]} )))
  done
  read -r emin emed emax < <(mmm ${t[envrun]})
  read -r smin smed smax < <(mmm ${t[session]})
  read -r bmin bmed bmax < <(mmm ${t[script]})
  read -r dmin dmed dmax < <(mmm "${d_envrun[@]}")
  read -r qmin qmed qmax < <(mmm "${d_session[@]}")
  printf '%3d services, %2d runs: envrun %s/%s/%s ms, session %s/%s/%s ms, script %s/%s/%s ms (min/median/max); overhead envrun-script median %s ms (%s..%s), session %s ms (%s..%s)\n' \
    "$n" "$r" "$emin" "$emed" "$emax" "$smin" "$smed" "$smax" "$bmin" "$bmed" "$bmax" \
    "$dmed" "$dmin" "$dmax" "$qmed" "$qmin" "$qmax"
  rows+="| $n | $r | $emin / **$emed** / $emax | $bmin / **$bmed** / $bmax | $dmin / **$dmed** / $dmax | $smin / $smed / $smax | $qmin / $qmed / $qmax |"$'\n'
  if [ "$n" = 200 ]; then
    verdict() { awk -v d="$1" 'BEGIN { print (d < 1000 ? "met" : "missed") }'; }
    goal="Goal (< 1 s overhead for 200 services): $(verdict "$dmed") with cgroup2 containment (median $dmed ms);"
    goal+=" with session containment $(verdict "$qmed") (median $qmed ms)."
    echo "$goal"
  fi
  unset t
done

if [ "$record" = 1 ]; then
  commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
  section=$(cat <<MD
<!-- exec_overhead:begin -->
### exec overhead: envrun exec -- true against a bare shell script (goal: < 1 s for 200 services)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -r)), commit $commit, release build, cgroup2 containment
unless said otherwise. Every service is \`testsvc --stdout ready --hold\`: it prints its ready line first thing
(envrun: an \`output: "^ready\$"\` check), so it is ready on spawn. The script (tests/bench/bare_exec.sh) starts
the same services in the background, reads the N lines from one fifo, runs \`true\`, sends SIGTERM to each and
waits: the services' own time. Overhead: envrun minus the script, paired run by run (interleaved). Wall times
in ms, min / **median** / max; session: envrun with ENVRUN_FORCE_REAPER=1 (hosts without a writable cgroup).
No process was left behind after any run (checked after each). A negative overhead means the script's own
start (bash) took longer than envrun's whole work.
$goal

| services | runs | envrun exec | bare script | overhead (envrun - script) | envrun, session containment | overhead, session |
|---|---|---|---|---|---|---|
${rows%$'\n'}
<!-- exec_overhead:end -->
MD
)
  record_section exec_overhead "$section"
fi
