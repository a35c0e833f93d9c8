#!/usr/bin/env bash
# Benchmark: instruction counts (valgrind --tool=callgrind: stable where
# timings are noise) of the envrun process itself, not its children
# (--trace-children=no), for
#   - `envrun validate` of a 200-service file (tests/bench/gen_services.py);
#   - `envrun exec -- true` with one trivial service (testsvc printing its
#     ready line, an output check).
# valgrind emulates neither clone3 nor pidfd_open, so exec runs on the
# fallback path (fork, no pidfd); ENVRUN_NO_PIDFD=1 and
# ENVRUN_FORCE_REAPER=1 pin that path, so the count does not depend on what
# the kernel or valgrind offers.  Session containment scans /proc, so the
# exec count grows with the processes on the machine: it runs in a private
# pid namespace (unshare --pid --mount-proc) where /proc holds only its own
# processes; where that is refused, on the host, and the table says so.
# Totals are the median of RUNS runs (min-max given); the top 5 functions by
# inclusive Ir (the entry chain that holds everything -- the loader's entry,
# (below main), __libc_start_main, main -- left out) and by self Ir show
# where a regression lands.
#   tests/bench/callgrind.sh [--smoke] [--record] [ENVRUN] [TESTSVC]
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/bench/lib.sh"
runs=5 record=0
while [ $# -gt 0 ]; do
  case $1 in
    --smoke) runs=1; shift ;;
    --record) record=1; shift ;;
    *) break ;;
  esac
done
command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null ||
  { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
bench_begin callgrind "${1:-$top/build/release/envrun}" "${2:-$top/build/release/tests/testsvc}"

/usr/bin/python3 "$top/tests/bench/gen_services.py" 200 >"$tmp/validate.yml"
"$bin" validate -f "$tmp/validate.yml"   # must be valid, or the count means nothing
cat >"$tmp/exec.yml" <<YML
services:
  svc:
    command: ["$testsvc", --stdout, ready, --hold]
    ready: {output: "^ready\$"}
YML

# A private pid namespace, when this host allows one.
ns=()
if unshare --pid --fork --mount-proc true 2>/dev/null; then
  # envrun not as pid 1 (the namespace's init ignores signals it has no
  # handler for): a shell is, and waits for it.
  ns=(unshare --pid --fork --mount-proc -- sh -c '"$@"; s=$?; exit $s' sh)
  where="in a private pid namespace (/proc holds only the run's own processes)"
else
  where="on the host (no private pid namespace here: the exec count grows with the $(ls -d /proc/[0-9]* | wc -l) processes on it)"
fi

# cg NAME ARGS...: runs envrun ARGS under callgrind RUNS times; leaves the
# median run's profile in $tmp/NAME.out and "median min max" in $tmp/NAME.ir.
cg() {
  local name=$1 i left
  shift
  : >"$tmp/$name.runs"
  for i in $(seq "$runs"); do
    TESTSVC_MARKER=$marker ENVRUN_NO_PIDFD=1 ENVRUN_FORCE_REAPER=1 "${ns[@]}" \
      valgrind --tool=callgrind --trace-children=no --callgrind-out-file="$tmp/$name.$i.%p.out" \
      "$bin" "$@" >"$tmp/$name.$i.log" 2>&1 ||
      { echo "envrun $* failed under callgrind:" >&2; cat "$tmp/$name.$i.log" >&2; exit 1; }
    left=$(marked_pids "$marker")
    [ -z "$left" ] || { echo "envrun $* left processes behind: $(echo $left)" >&2; exit 1; }
    # envrun's own count: its forked reapers are profiled too, each under
    # its own pid; envrun's pid is the log's first.
    local pid
    pid=$(sed -n '1s/^==\([0-9]*\)==.*/\1/p' "$tmp/$name.$i.log")
    mv "$tmp/$name.$i.$pid.out" "$tmp/$name.$i.out" 2>/dev/null || true
    rm -f "$tmp/$name.$i".*.out
    echo "$(sed -n "s/^==$pid== Collected : \([0-9]*\)\$/\1/p" "$tmp/$name.$i.log") $i" >>"$tmp/$name.runs"
  done
  sort -n "$tmp/$name.runs" | awk '$1 != "" {ir[++n]=$1; run[n]=$2} END {
    if (n) { m = int((n+1)/2); print ir[m], ir[1], ir[n], run[m] } }' >"$tmp/$name.stats"
  local med min max run
  read -r med min max run <"$tmp/$name.stats" || true
  [ -n "${run:-}" ] && [ "$(wc -l <"$tmp/$name.runs")" = "$runs" ] ||
    { echo "no count from callgrind for envrun $*" >&2; exit 1; }
  cp "$tmp/$name.$run.out" "$tmp/$name.out"
  echo "$med $min $max" >"$tmp/$name.ir"
}

# top5 NAME inclusive|self: Markdown rows "| function (object) | Ir | % |"
top5() {
  local incl=no
  [ "$2" = inclusive ] && incl=yes
  callgrind_annotate --inclusive=$incl "$tmp/$1.out" 2>/dev/null | /usr/bin/python3 -c '
import re, sys
skip = re.compile(r"^(0x[0-9a-f]+|\(below main\)|__libc_start_main.*|_start|main)$")
rows, started = [], False
for line in sys.stdin:
    if "file:function" in line:
        started = True
        continue
    m = re.match(r"^\s*([\d,]+) \(\s*([\d.]+)%\)\s+(\S.*?)(?: \[(.*)\])?\s*$", line)
    if not started or not m:
        continue
    ir, pct, where, obj = m.groups()
    fn = where.rsplit(":", 1)[-1]
    if skip.match(fn):
        continue
    obj = obj.rsplit("/", 1)[-1] if obj else "?"
    if len(rows) < 5:  # read on to the end: annotate must not get SIGPIPE
        rows.append("| `%s` (%s) | %s | %s%% |" % (fn, obj, ir, pct))
print("\n".join(rows))'
}

cg validate validate -f "$tmp/validate.yml"
cg exec -q --state-dir "$tmp/state" exec -f "$tmp/exec.yml" -- true
# commas N...: 1234567 -> 1,234,567
commas() { echo "$@" | sed -e ':a' -e 's/\([0-9]\)\([0-9]\{3\}\)\($\|[^0-9]\)/\1,\2\3/' -e 'ta'; }
read -r vmed vmin vmax < <(commas "$(cat "$tmp/validate.ir")")
read -r emed emin emax < <(commas "$(cat "$tmp/exec.ir")")
echo "callgrind, $where:"
echo "validate 200 services: $vmed Ir (median of $runs; $vmin..$vmax)"
echo "exec -- true, 1 service (fallback path): $emed Ir (median of $runs; $emin..$emax)"
for x in validate exec; do
  for k in inclusive self; do
    echo "$x, top 5 by $k Ir:"; top5 "$x" "$k" | sed 's/^/  /'
  done
done

if [ "$record" = 1 ]; then
  commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)
  table() { # NAME
    printf '| function (object), by inclusive Ir | Ir | share |\n|---|---|---|\n%s\n\n' "$(top5 "$1" inclusive)"
    printf '| function (object), by self Ir | Ir | share |\n|---|---|---|\n%s\n' "$(top5 "$1" self)"
  }
  section=$(cat <<MD
<!-- callgrind:begin -->
### instruction counts (callgrind)

Measured $(date -u +%Y-%m-%d), commit $commit, release build, $(valgrind --version), the envrun process only
(--trace-children=no), $where. Median of $runs runs (min-max). exec runs on the fallback path
(fork, no pidfd, session containment: ENVRUN_NO_PIDFD=1 ENVRUN_FORCE_REAPER=1). Function tables: the median
run's profile; inclusive Ir leaves out the entry chain that holds everything (loader entry, (below main),
__libc_start_main, main).

| command | Ir (median) | min - max |
|---|---|---|
| \`envrun validate\`, 200 services (gen_services.py) | $vmed | $vmin - $vmax |
| \`envrun exec -- true\`, 1 service with an output check | $emed | $emin - $emax |

validate, 200 services:

$(table validate)

exec -- true, 1 service:

$(table exec)
<!-- callgrind:end -->
MD
)
  record_section callgrind "$section"
fi
