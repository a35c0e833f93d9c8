#!/usr/bin/env bash
# Benchmark: `envrun validate` of a 200-service file (goal < 20 ms), wall
# time over RUNS runs (min/median/max), and its instruction count under
# callgrind (stable on a noisy machine).  Prints a Markdown table row set;
# with --record, rewrites the validate section of tests/bench/RESULTS.md.
#   tests/bench/validate.sh [--smoke] [--record] [ENVRUN]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
runs=50 record=0
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) runs=3; shift ;;
    --record) record=1; shift ;;
    *) break ;;
  esac
done
bin=${1:-$top/build/release/envrun}
[ -x "$bin" ] || { echo "no envrun binary at $bin (build the release build first)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$top/tests/bench/gen_services.py" 200 >"$tmp/environment.yml"
"$bin" validate -f "$tmp/environment.yml"   # must be valid, or the numbers mean nothing

# The floor: starting any process at all on this machine.
base=()
for _ in $(seq "$runs"); do
  t0=$(date +%s%N); /bin/true; t1=$(date +%s%N)
  base+=($(( (t1 - t0) / 1000 )))
done
read -r bmin bmed bmax < <(printf '%s\n' "${base[@]}" | sort -n | awk '{a[NR]=$1} END {print a[1], a[int((NR+1)/2)], a[NR]}')

times=()
for _ in $(seq "$runs"); do
  t0=$(date +%s%N); "$bin" validate -f "$tmp/environment.yml"; t1=$(date +%s%N)
  times+=($(( (t1 - t0) / 1000 )))
done
read -r min med max < <(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[1], a[int((NR+1)/2)], a[NR]}')
ms() { awk -v us="$1" 'BEGIN {printf "%.2f", us / 1000}'; }
echo "validate 200 services: min $(ms "$min") ms, median $(ms "$med") ms, max $(ms "$max") ms over $runs runs"
echo "/bin/true (process start floor): min $(ms "$bmin") ms, median $(ms "$bmed") ms, max $(ms "$bmax") ms"

instr=n/a
if command -v valgrind >/dev/null; then
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$bin" validate -f "$tmp/environment.yml" 2>"$tmp/cg.log"
  instr=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$tmp/cg.log")
  echo "validate 200 services: $instr instructions (callgrind)"
fi
rss=$( { /usr/bin/time -f '%M' "$bin" validate -f "$tmp/environment.yml"; } 2>&1 | tail -n 1)
echo "validate 200 services: peak RSS $rss KiB"

if [ "$record" = 1 ]; then
  commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
  section=$(cat <<MD
<!-- validate:begin -->
### validate of a 200-service file (goal: < 20 ms)

Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -r)), commit $commit, release build, $runs runs:

| figure | min | median | max |
|---|---|---|---|
| wall time, whole process (ms) | $(ms "$min") | $(ms "$med") | $(ms "$max") |
| /bin/true on the same machine, the floor (ms) | $(ms "$bmin") | $(ms "$bmed") | $(ms "$bmax") |

Instructions (callgrind): $instr. Peak RSS: $rss KiB.
<!-- validate:end -->
MD
)
  record_section validate "$section"
fi
