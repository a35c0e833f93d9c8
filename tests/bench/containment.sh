#!/usr/bin/env bash
# Benchmark: the whole cycle of `envrun exec -- true` with 1 and 10 services
# (each listening at once, a tcp check), per containment a user gets: root
# as the host allows (cgroup2 here), root with reapers forced
# (ENVRUN_FORCE_REAPER=1), and an unprivileged user (envrun-test, made by
# tests/run; reapers, as it has no cgroup).  With --old OLD_ENVRUN, an older
# binary runs too, interleaved with the new one run by run, so a change's
# cost is measured in one sitting (the reaper issue: at most 0.3 ms per
# service).  Each cycle is timed inside the process that runs envrun
# (bash's EPOCHREALTIME around it: no fork, no runuser/PAM in the number).
# Medians over RUNS runs, in ms.  Release build.
#   tests/bench/containment.sh [--smoke] [--record] [--old OLD_ENVRUN] [ENVRUN] [TESTSVC]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
runs=21 record=0 old=
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) runs=2; shift ;;
    --record) record=1; shift ;;
    --old) old=$2; shift 2 ;;
    *) break ;;
  esac
done
bench_begin containment "${1:-$top/build/release/envrun}" "${2:-$top/build/release/tests/testsvc}"
user=envrun-test
chmod 0755 "$tmp"
cp "$bin" "$tmp/new"
cp "$testsvc" "$tmp/testsvc"
bins=(new)
if [ -n "$old" ]; then cp "$old" "$tmp/old"; bins=(old new); fi
chmod 0755 "$tmp"/*

ports=($(/usr/bin/python3 -c '
import socket
s = [socket.socket() for _ in range(10)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))'))
for n in 1 10; do
  {
    echo "services:"
    for i in $(seq 0 $((n - 1))); do
      echo "  s$i:"
      echo "    command: [\"$tmp/testsvc\", --tcp, \"${ports[$i]}\", --hold]"
      echo "    ready: {tcp: ${ports[$i]}}"
    done
  } >"$tmp/n$n.yml"
done
chmod 0644 "$tmp"/*.yml

whos=(root root-reaper)
if [ "$(id -u)" -ne 0 ]; then
  whos=(self)
elif id "$user" >/dev/null 2>&1; then
  whos+=(user)
  mkdir -p "$tmp/ustate" && chown "$user:" "$tmp/ustate"
else
  echo "# no user $user: the non-root row is missing (tests/run creates the user)" >&2
fi

# one BIN WHO N: the cycle in microseconds
one() {
  local b=$1 who=$2 n=$3 state=$tmp/state prefix=() env=(TESTSVC_MARKER=$marker)
  case $who in
    root-reaper) env+=(ENVRUN_FORCE_REAPER=1 ENVRUN_FORCE_SESSION=1) ;;
    user) prefix=(setpriv --reuid="$user" --regid="$user" --init-groups --); state=$tmp/ustate ;;
  esac
  "${prefix[@]}" env "${env[@]}" /bin/bash -c '
    s=$EPOCHREALTIME
    "$1" -q --state-dir "$2" exec -f "$3" -- true || exit 1
    e=$EPOCHREALTIME
    echo $(( (${e/./} - ${s/./}) ))' bash "$tmp/$b" "$state" "$tmp/n$n.yml" 2>"$tmp/err" ||
    { echo "$b as $who, $n services failed:" >&2; cat "$tmp/err" >&2; exit 1; }
  if [ -n "$(marked_pids "$marker")" ]; then echo "$b as $who left processes behind" >&2; exit 1; fi
}

# Interleaved, and the order of old and new swapped every run: the first
# cgroup write after an idle moment waits for an RCU grace period (8-16 ms
# on hybrid hosts), which would otherwise always fall on the same binary.
declare -A col
for r in $(seq "$runs"); do
  order=("${bins[@]}")
  [ $((r % 2)) = 0 ] && [ ${#bins[@]} = 2 ] && order=("${bins[1]}" "${bins[0]}")
  for n in 1 10; do
    for who in "${whos[@]}"; do
      for b in "${order[@]}"; do
        col[$b.$who.$n]+=" $(one "$b" "$who" "$n")"
      done
    done
  done
done
med() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)] / 1000}'; }

rows=""
for who in "${whos[@]}"; do
  for n in 1 10; do
    new=$(med "${col[new.$who.$n]}")
    if [ -n "$old" ]; then
      o=$(med "${col[old.$who.$n]}")
      d=$(awk -v a="$new" -v b="$o" -v n="$n" 'BEGIN {printf "%+.2f (%+.3f per service)", a - b, (a - b) / n}')
      printf '%-12s %2s services: old %8s ms  new %8s ms  new - old %s ms\n' "$who" "$n" "$o" "$new" "$d"
      rows+="| $who | $n | $o | $new | $d |"$'\n'
    else
      printf '%-12s %2s services: %8s ms\n' "$who" "$n" "$new"
      rows+="| $who | $n | $new |"$'\n'
    fi
  done
done

if [ "$record" = 1 ]; then
  commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo "?")
  if [ -n "$old" ]; then
    head="| who | services | old | new | new - old |"$'\n'"|---|---|---|---|---|"
    what="old: ${OLD_DESC:-the binary given to --old}; new: commit $commit"
  else
    head="| who | services | ms |"$'\n'"|---|---|---|"
    what="commit $commit"
  fi
  section=$(cat <<MD
<!-- containment:begin -->
### the whole cycle per containment: root (cgroup2 here), root with reapers, a normal user

Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -r)), $what, release build, $runs runs each
(interleaved), medians in ms (tests/bench/containment.sh). \`envrun exec -- true\` with 1 or 10 services that
listen at once (tcp checks), timed inside the process that runs envrun. "user" is envrun-test, who has no
writable cgroup here and so gets reapers; root gets cgroup2 unless reapers are forced.

$head
${rows%$'\n'}
<!-- containment:end -->
MD
)
  record_section containment "$section"
fi
