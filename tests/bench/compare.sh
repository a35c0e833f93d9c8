#!/usr/bin/env bash
# Benchmark: an older envrun against a newer one, run by run, for a change
# that must not cost time (a refactor).  Both binaries run the same
# workloads in one session, interleaved (old, new, then new, old in the
# next round), so that load drifting on a shared machine hits both alike:
#   validate-200  `validate` of a 200-service file (tests/bench/gen_services.py)
#   exec-1        `exec -- true` with 1 service ready on its first line
#   exec-20       the same with 20 services, in 5 layers of dependencies
#   up-down-5     `up -d` of 5 services, then `down`
#   exec-http     `exec -- true` with 1 service ready on an http check
# Verdict per workload: the median of the paired differences (new - old in
# the same round) within 3% or 0.3 ms of the old median (the layout
# issue's bound).  Exit 1 when a workload is slower than that.
# After every run no process may be left (TESTSVC_MARKER).
#
#   tests/bench/compare.sh [--smoke] [--record] [--rounds N] OLD NEW [TESTSVC]
# (--smoke: two rounds, no verdict; 100 rounds by default)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
record=0 rounds=100 smoke=0
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) rounds=2 smoke=1; shift ;;
    --record) record=1; shift ;;
    --rounds) rounds=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || { echo "usage: compare.sh [--smoke] [--record] [--rounds N] OLD NEW [TESTSVC]" >&2; exit 2; }
old=$1 new=$2
[ -x "$old" ] || { echo "no envrun binary at $old" >&2; exit 2; }
bench_begin compare "$new" "$(realpath -m "${3:-$top/build/release/tests/testsvc}")"

/usr/bin/python3 "$top/tests/bench/gen_services.py" 200 >"$tmp/v200.yml"
# exec-N: N services ready on their first line, each depending on the one
# N/5 before it (5 layers when N >= 5).
gen() {
  local n=$1 i
  echo "services:"
  for ((i = 0; i < n; i++)); do
    echo "  s$i:"
    echo "    command: [\"$testsvc\", --stdout, ready, --hold]"
    echo "    ready: {output: \"^ready\$\"}"
    if ((n >= 5 && i >= n / 5)); then echo "    depends_on: [s$((i - n / 5))]"; fi
  done
}
gen 1 >"$tmp/e1.yml"
gen 20 >"$tmp/e20.yml"
gen 5 >"$tmp/u5.yml"
hport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/eh.yml" <<YML
services:
  web:
    command: ["$testsvc", --http, "$hport", "200", --hold]
    ready: {http: "http://127.0.0.1:$hport/"}
YML


# one BIN WORKLOAD: runs it once, prints its wall time in microseconds
one() {
  local bin=$1 t0 t1 rc=0
  t0=$(us)
  case $2 in
    validate-200) "$bin" -q validate -f "$tmp/v200.yml" >/dev/null 2>&1 || rc=$? ;;
    exec-1) TESTSVC_MARKER=$marker "$bin" -q --state-dir "$tmp/state" exec -f "$tmp/e1.yml" -- true >/dev/null 2>&1 || rc=$? ;;
    exec-http) TESTSVC_MARKER=$marker "$bin" -q --state-dir "$tmp/state" exec -f "$tmp/eh.yml" -- true >/dev/null 2>&1 || rc=$? ;;
    exec-20) TESTSVC_MARKER=$marker "$bin" -q --state-dir "$tmp/state" exec -f "$tmp/e20.yml" -- true >/dev/null 2>&1 || rc=$? ;;
    up-down-5)
      { TESTSVC_MARKER=$marker "$bin" -q --state-dir "$tmp/state" -p cmp up -d -f "$tmp/u5.yml" &&
        "$bin" -q --state-dir "$tmp/state" -p cmp down -f "$tmp/u5.yml"; } >/dev/null 2>&1 || rc=$? ;;
  esac
  t1=$(us)
  [ "$rc" -eq 0 ] || { echo "$2 with $bin: exit $rc" >&2; exit 1; }
  [ -z "$(marked_pids "$marker")" ] || { echo "$2 with $bin: processes left behind" >&2; exit 1; }
  echo $((t1 - t0))
}

workloads=(validate-200 exec-1 exec-20 up-down-5 exec-http)
declare -A times
for w in "${workloads[@]}"; do
  one "$old" "$w" >/dev/null; one "$new" "$w" >/dev/null # warm the page cache
  for ((r = 0; r < rounds; r++)); do
    if ((r % 2)); then order=(new old); else order=(old new); fi
    for who in "${order[@]}"; do
      if [ "$who" = old ]; then bin=$old; else bin=$new; fi
      times[$w.$who]+="$(one "$bin" "$w") "
    done
  done
done

report=$(for w in "${workloads[@]}"; do echo "$w ${times[$w.old]}| ${times[$w.new]}"; done |
  /usr/bin/python3 -c '
import statistics, sys
bad = 0
print("| workload | old median (ms) | new median (ms) | paired change (median of new - old, same round) | within 3% or 0.3 ms |")
print("|---|---|---|---|---|")
for line in sys.stdin:
    name, rest = line.split(" ", 1)
    o, n = (list(map(int, part.split())) for part in rest.split("|"))
    mo, mn = statistics.median(o) / 1000, statistics.median(n) / 1000
    # Paired: each round ran both, back to back; drift on the machine
    # moves both, so the difference of a round is steadier than the
    # difference of two medians.
    d = statistics.median(b - a for a, b in zip(o, n)) / 1000
    ok = d <= 0.03 * mo or d <= 0.3
    bad += not ok
    verdict = "yes" if ok else "NO"
    print(f"| {name} | {mo:.2f} | {mn:.2f} | {d:+.2f} ms ({100 * d / mo:+.1f}%) | {verdict} |")
sys.exit(1 if bad else 0)
') && verdict=0 || verdict=$?
echo "$report"
echo "($rounds interleaved rounds per binary and workload)"
if [ "$record" = 1 ]; then
  rev=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
  record_section compare "<!-- compare:begin -->
## An old binary against a new one (tests/bench/compare.sh)

\`compare.sh --record OLD NEW\` on $(date -u +%Y-%m-%d), new = $rev, $(nproc) CPUs, $rounds interleaved rounds; medians of wall time.
${COMPARE_NOTE:+
$COMPARE_NOTE
}
$report
<!-- compare:end -->"
fi
# Smoke mode proves the script runs; two rounds say nothing about speed.
[ "$smoke" = 1 ] && exit 0
exit "$verdict"
