# Helpers shared by the benchmark scripts (sourced; $top is the repository).

# record_section NAME SECTION: puts SECTION (which starts with
# "<!-- NAME:begin -->" and ends with "<!-- NAME:end -->") into
# tests/bench/RESULTS.md, replacing the previous one or appending it.
record_section() {
  local f=$top/tests/bench/RESULTS.md
  [ -f "$f" ] || printf '# envrun benchmark results\n\nRewritten by the scripts under tests/bench (`--record`).\n' >"$f"
  /usr/bin/python3 - "$f" "$1" "$2" <<'PY'
import re, sys
path, name, section = sys.argv[1:4]
text = open(path).read()
pattern = r"<!-- %s:begin -->.*?<!-- %s:end -->" % (name, name)
if re.search(pattern, text, flags=re.S):
    text = re.sub(pattern, lambda m: section, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
  echo "recorded in $f"
}

# bench_begin NAME ENVRUN [TESTSVC]: what every benchmark starts with.
# Sets bin (ENVRUN, checked), tmp (a temporary directory), marker (for
# TESTSVC_MARKER) and, when TESTSVC is given, testsvc (built into tmp when
# it is not executable); at exit whatever carries the marker is killed and
# tmp removed.
bench_begin() {
  bin=$2
  [ -x "$bin" ] || { echo "no envrun binary at $bin (build the release build first)" >&2; exit 1; }
  tmp=$(mktemp -d)
  marker=envrun-bench-$1-$$-$RANDOM
  trap 'kill_marked_pids "$marker"; rm -rf "$tmp"' EXIT
  if [ $# -ge 3 ]; then testsvc=$(testsvc_or_build "$3" "$tmp"); fi
}

# us: $EPOCHREALTIME (seconds.microseconds, no fork) as microseconds
us() { echo "${EPOCHREALTIME/./}"; }

# testsvc_or_build PATH DIR: PATH when it is executable, else the fake
# service compiled into DIR.
testsvc_or_build() {
  if [ -x "$1" ]; then echo "$1"; return; fi
  cc -O2 -D_GNU_SOURCE -o "$2/testsvc" "$top/tests/helpers/testsvc.c" && echo "$2/testsvc"
}

# marked_pids MARKER: the pids of the processes whose environment holds
# TESTSVC_MARKER=MARKER (what a runner started and everything those forked;
# the caller must not export the marker itself).
marked_pids() {
  grep -lsaF "TESTSVC_MARKER=$1" /proc/[0-9]*/environ 2>/dev/null |
    sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p' || true
}

# kill_marked_pids MARKER: SIGKILL to each of them, by pid.
kill_marked_pids() {
  local p
  for p in $(marked_pids "$1"); do kill -KILL "$p" 2>/dev/null || true; done
}
