#!/usr/bin/env bash
# envrun exec --timeline FILE.svg (SPEC §6): a real run drawn as a Gantt
# chart.  The SVG must parse as XML (Python's parser), hold one bar per
# service that started and one for the test command, each where the JSON
# report of the same run puts it (both come from one er_report), and show
# the command's XML specials intact once parsed.  A failed bring-up draws
# the failed service in red and no bar for what never started nor for the
# test that never ran.  An unwritable path fails the run with 125.
#
# Each case exports TESTSVC_MARKER=envrun-t-timeline-<pid>-<case> for its run
# only; afterwards no process may carry it.
set -u
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "t_timeline needs $PY to parse the SVG"; exit 1; }

newcase() {
  CASE=$1
  D=$TEST_TMP/$1
  mkdir -p "$D"
  M=envrun-t-timeline-$$-$1
}

yml() { cat >"$D/environment.yml"; }

# runx EXEC-ARGS...: envrun exec in $D writing report.json and out.svg; sets
# RC.  timeout(1) only guards against a hang.
runx() {
  rm -f "$D/report.json" "$D/out.svg"
  (cd "$D" && export TESTSVC_MARKER="$M" &&
    exec timeout -s KILL 40 "$ENVRUN" exec --report report.json --timeline out.svg \
      -f environment.yml "$@") </dev/null >"$D/stdout" 2>"$D/stderr"
  RC=$?
}

diag() { printf '%s\n' "envrun stderr (last lines):"; tail -n 12 "$D/stderr" 2>/dev/null | sed 's/^/  | /'; }

is() {
  if [ "$2" = "$3" ]; then ok "$CASE: $1"; else fail "$CASE: $1" "got '$2', want '$3'" "$(diag)"; fi
}

# svg LABEL PYEXPR: PYEXPR must be true, evaluated with
#   bars: {data-name: (class, x, width)} of the <rect>s whose class has "bar",
#   nbars: how many there are, texts: the text of every <text>,
#   rep: the JSON report of the same run, s(NAME): its service NAME.
# Fails too when out.svg is missing or is not well-formed XML.
svg() {
  local out
  if out=$("$PY" - "$D/out.svg" "$D/report.json" "$2" 2>&1 <<'PYEOF'
import json, sys, xml.dom.minidom as m
path, rpath, expr = sys.argv[1:4]
try:
    d = m.parse(path)
except Exception as e:
    print("not well-formed XML: %s" % e); sys.exit(1)
root = d.documentElement
if root.tagName != "svg" or root.getAttribute("xmlns") != "http://www.w3.org/2000/svg":
    print("root is not an SVG <svg> element"); sys.exit(1)
bars, nbars = {}, 0
for r in d.getElementsByTagName("rect"):
    c = r.getAttribute("class")
    if "bar" in c.split():
        nbars += 1
        bars[r.getAttribute("data-name")] = (c, float(r.getAttribute("x")), float(r.getAttribute("width")))
def text(n):
    return "".join(c.data for c in n.childNodes if c.nodeType == c.TEXT_NODE)
texts = [text(x) for x in d.getElementsByTagName("text")]
rep = json.load(open(rpath))
def s(name):
    for x in rep["services"]:
        if x["name"] == name:
            return x
    raise KeyError(name)
try:
    v = eval(expr)
except Exception as e:
    v = False; print("error: %r" % e)
if not v:
    print("false: " + expr)
    print("bars: %r" % bars)
    sys.exit(1)
PYEOF
  ); then ok "$CASE: $1"; else fail "$CASE: $1" "$out" "$(diag)"; fi
}

leftovers() { assert_no_leftovers "$M" "$CASE"; }

# ------------------------------------------------------------ 1. a good run
newcase c01_ok
yml <<'EOF'
name: tl
services:
  db:
    command: ["sh", "-c", "echo ready; exec sleep 300"]
    ready: {output: "ready"}
  cache:
    command: ["sh", "-c", "echo warming; echo ready; exec sleep 300"]
    ready: {output: "^ready$"}
    depends_on: [db]
  api:
    command: ["sleep", "300"]
    depends_on: [cache]
EOF
runx -- sh -c 'test "<&>" = "<&>" && echo ran'
is "exit status 0" "$RC" 0
is "the test ran" "$(cat "$D/stdout")" ran
svg "four bars: one per service, one for the test" 'nbars == 4 and sorted(bars) == ["api", "cache", "db", "test"]'
svg "service bars are ok, the test's too" 'all(bars[n][0] == "bar service ok" for n in ("db", "cache", "api")) and bars["test"][0] == "bar test ok"'
svg "bars start in dependency order" 'bars["db"][1] <= bars["cache"][1] <= bars["api"][1] <= bars["test"][1]'
# One scale for every bar: width / milliseconds, the same within rounding
# (a bar is at least 1 px, so only bars of 10 ms and more are compared).
svg "widths proportional to the report's times" '
(lambda spans: (lambda k: all(abs(w - ms * k) <= 0.05 for w, ms in spans if ms >= 10))(
    max(spans, key=lambda p: p[1])[0] / max(spans, key=lambda p: p[1])[1]))(
    [(bars[n][2], s(n)["stopped_ms"] - s(n)["started_ms"]) for n in ("db", "cache", "api")]
    + [(bars["test"][2], rep["test"]["duration_ms"])])'
svg "positions follow the report's start times" '
(lambda k: all(abs((bars[n][1] - bars["db"][1]) - (s(n)["started_ms"] - s("db")["started_ms"]) * k) <= 0.05
               for n in ("cache", "api")))(bars["db"][2] / (s("db")["stopped_ms"] - s("db")["started_ms"]))'
svg "names shown" 'all(n in texts for n in ("db", "cache", "api", "test"))'
svg "the command escaped in the file, intact once parsed" 'any("$ sh -c '"'"'test \"<&>\" = \"<&>\" && echo ran'"'"'" in t for t in texts)'
is "no raw '<&>' in the file" "$(grep -c '"<&>"' "$D/out.svg")" 0
svg "time axis labelled" '"0" in texts and any(t.endswith("ms") or t.endswith("s") for t in texts)'
svg "self-contained: no script, no external reference" '"<script" not in open(path).read() and "href" not in open(path).read()'
leftovers

# ------------------------------- 1b. a one-shot job's bar ends at its exit
newcase c01b_job
yml <<'EOF'
name: tljob
services:
  migrate:
    command: ["sh", "-c", "sleep 0.3"]
    ready: {exit: 0}
  app:
    command: ["sleep", "300"]
    depends_on: {migrate: {condition: completed}}
EOF
runx -- sleep 1.5
is "exit status 0" "$RC" 0
svg "the job's bar ends at its exit: under half of app's, which lasts the run" \
  'bars["migrate"][2] < bars["app"][2] / 2 and s("migrate")["stopped_ms"] - s("migrate")["started_ms"] < 1000'
leftovers

# ---------------------------------------------- 2. a failed bring-up in red
newcase c02_failed
yml <<'EOF'
services:
  db:
    command: ["sh", "-c", "echo ready; exec sleep 300"]
    ready: {output: "ready"}
  broken:
    command: ["sh", "-c", "echo starting; exit 3"]
    ready: {output: "never printed"}
    depends_on: [db]
  api:
    command: ["sleep", "300"]
    depends_on: [broken]
EOF
runx -- true
is "exit status 125" "$RC" 125
svg "bars for the two that started only" 'nbars == 2 and sorted(bars) == ["broken", "db"]'
svg "the failed service is red" 'bars["broken"][0] == "bar service failed" and bars["db"][0] == "bar service ok"'
svg "its error class is shown" 'any(t.startswith("ProcessExitedWithError") for t in texts)'
svg "the service never started still has its name" '"api" in texts and any(t.startswith("DependencyFailed") for t in texts)'
svg "the test that never ran has no bar" '"test" not in bars and any("not run" in t for t in texts)'
leftovers

# ---------------------------------------------- 3. an unwritable path: 125
newcase c03_unwritable
yml <<'EOF'
services:
  db:
    command: ["sleep", "300"]
EOF
rm -f "$D/report.json"
(cd "$D" && export TESTSVC_MARKER="$M" &&
  exec timeout -s KILL 40 "$ENVRUN" exec --timeline no/such/dir/out.svg -f environment.yml -- true) \
  </dev/null >"$D/stdout" 2>"$D/stderr"
RC=$?
is "exit status 125" "$RC" 125
is "says it cannot write the file" "$(grep -c "cannot write 'no/such/dir/out.svg'" "$D/stderr")" 1
leftovers

finish
