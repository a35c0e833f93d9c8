#!/usr/bin/env bash
# The README's quick start, run as written (issue 21), so that it cannot rot.
# The README marks its blocks with HTML comments, each before a fenced block:
#   <!-- quickstart: install -->          apt-get lines: checked, not run
#   <!-- quickstart: build -->            cmake lines: checked, not run
#   <!-- quickstart: file NAME -->        written to NAME in the current directory
#   <!-- quickstart: run -->              run, in order, in one shell
# The file and run blocks become one script, run with a HOME of its own and
# the envrun under test first on PATH.  It must pass as root (user: applied)
# and as a normal user (user: not applied, said once per service).  The
# servers it needs (postgresql-15, redis-server) missing is a failure, not a
# skip: the quick start promises they are all a reader needs.
# ENVRUN_QUICKSTART_README reads another README (to see this test fail).
. "$(dirname "$0")/lib.sh"
readme=${ENVRUN_QUICKSTART_README:-$ENVRUN_SRC/README.md}
Q=$TEST_TMP/q; mkdir -p "$Q"

# --- the blocks ------------------------------------------------------------
# extract README OUTDIR: install.txt, build.txt (those blocks' lines),
# script.sh (file and run blocks in order), files.txt; exit 1, saying why,
# on a marker without its fenced block or a block kind it does not know.
extract() {
  /usr/bin/python3 - "$1" "$2" <<'PYEOF'
import re, sys
src, out = sys.argv[1], sys.argv[2]
lines = open(src, encoding="utf-8").read().split("\n")
marker = re.compile(r"^<!--\s*quickstart:\s*(\w+)(?:\s+(\S+))?\s*-->\s*$")
blocks, errors, i = [], [], 0
while i < len(lines):
    m = marker.match(lines[i])
    i += 1
    if not m:
        continue
    kind, arg, at = m.group(1), m.group(2), i
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or not lines[i].startswith("```"):
        errors.append(f"README.md:{at}: 'quickstart: {kind}' is not followed by a fenced block")
        continue
    i += 1
    body = []
    while i < len(lines) and lines[i] != "```":
        body.append(lines[i]); i += 1
    if i >= len(lines):
        errors.append(f"README.md:{at}: the block after 'quickstart: {kind}' is not closed")
    i += 1
    if kind not in ("install", "build", "run", "file") or (kind == "file") != bool(arg):
        errors.append(f"README.md:{at}: unknown marker 'quickstart: {kind} {arg or ''}'")
        continue
    blocks.append((kind, arg, body))
script = ["set -e"]
for kind, arg, body in blocks:
    if kind == "run":
        script += body
    elif kind == "file":
        eof = "QUICKSTART_EOF"
        if eof in body:
            errors.append(f"file {arg} holds {eof}")
        script += [f"cat > '{arg}' <<'{eof}'"] + body + [eof]
for kind in ("install", "build"):
    with open(f"{out}/{kind}.txt", "w") as f:
        f.write("\n".join(l for k, _, b in blocks if k == kind for l in b) + "\n")
open(f"{out}/script.sh", "w").write("\n".join(script) + "\n")
open(f"{out}/files.txt", "w").write("\n".join(a for k, a, _ in blocks if k == "file") + "\n")
counts = {k: sum(1 for b in blocks if b[0] == k) for k in ("install", "build", "run", "file")}
print(" ".join(f"{k}={v}" for k, v in counts.items()))
for e in errors:
    print(e, file=sys.stderr)
sys.exit(1 if errors or 0 in counts.values() else 0)
PYEOF
}

if out=$(extract "$readme" "$Q" 2>&1); then
  ok "the README marks its quick start's blocks ($out)"
else
  fail "the README marks its quick start's blocks" "$out"
  finish; exit 1
fi
grep -qx 'environment.yml' "$Q/files.txt" && ok "the quick start writes environment.yml" ||
  fail "the quick start writes environment.yml" "$(cat "$Q/files.txt")"

# --- the lines it does not run -----------------------------------------------
has_line() {  # has_line LABEL FILE ERE
  if grep -qE -- "$3" "$2"; then ok "$1"; else fail "$1" "no line matches /$3/ in:" "$(tail -n 20 "$2")"; fi
}
install_line=$(grep -E '^(sudo )?apt-get install' "$Q/install.txt" | tr '\n' ' ')
missing=()
for p in build-essential cmake pkg-config libyaml-dev libpcre2-dev libjansson-dev \
         libhttp-parser-dev libcurl4-openssl-dev postgresql-15 redis-server; do
  [[ " $install_line " == *" $p "* ]] || missing+=("$p")
done
[ -n "$install_line" ] && [ "${#missing[@]}" -eq 0 ] &&
  ok "the install block's apt-get install names the build tools, postgresql-15 and redis-server" ||
  fail "the install block's apt-get install names the build tools, postgresql-15 and redis-server" \
    "missing: ${missing[*]:-the apt-get install line}"
has_line "the build block configures build/release" "$Q/build.txt" '^cmake -S \. -B build/release( |$)'
has_line "the build block builds build/release" "$Q/build.txt" '^cmake --build build/release( |$)'
has_line "the build block puts build/release on PATH" "$Q/build.txt" '^export PATH="\$PWD/build/release:\$PATH"'

# Every build directory the README installs from, builds or packages in is
# one that its own commands create (cmake -S . -B DIR).
made=$(grep -oE 'cmake -S \. -B [^ )&;]+' "$readme" | awk '{print $5}' | sort -u)
used=$(grep -oE 'cmake --(install|build) [^ )&;]+|cd [^ )&;]+ && cpack' "$readme" |
       awk '{print $2 == "--install" || $2 == "--build" ? $3 : $2}' | sort -u)
stray=$(comm -13 <(echo "$made") <(echo "$used"))
[ -n "$used" ] && [ -z "$stray" ] &&
  ok "every build directory the README uses is one it creates ($(echo $used))" ||
  fail "every build directory the README uses is one it creates" "created: $(echo $made)" "not created: $(echo $stray)"

# --- what the quick start needs on the machine --------------------------------
for prog in /usr/lib/postgresql/15/bin/initdb /usr/lib/postgresql/15/bin/postgres \
            /usr/bin/redis-server /usr/bin/psql /usr/bin/pg_isready /usr/bin/redis-cli; do
  [ -x "$prog" ] && ok "installed: $prog" ||
    fail "installed: $prog" "apt-get install postgresql-15 redis-server (the quick start's step 1)"
done

# --- running it --------------------------------------------------------------
# run_quickstart NAME SCRIPT: runs SCRIPT in a fresh HOME and directory with
# the envrun under test first on PATH; sets rc and leaves the output in
# $Q/NAME.out.  The project is named for this run, so that the leftover
# check sees no other run's processes (root and user variants run at once).
run_quickstart() {
  local home=$Q/$1.home
  mkdir -p "$home" "$Q/$1.cwd"
  project=quickstart-$(id -u)-$$-$1
  rc=0
  (cd "$Q/$1.cwd" && HOME=$home PATH="$(dirname "$ENVRUN"):$PATH" ENVRUN_PROJECT=$project \
     timeout 120 bash "$2") </dev/null >"$Q/$1.out" 2>&1 || rc=$?
}
# no_leftovers LABEL: no process carries the project's marker or works in
# its instance directory (Redis's title rewrite clobbers its environment,
# but its --dir is its cwd), and no instance directory of it is left.
no_leftovers() {
  local f pids="" dirs
  for f in $(grep -lzE "^ENVRUN_MARKER=$project[./]" /proc/[0-9]*/environ 2>/dev/null); do
    f=${f#/proc/}; pids="$pids ${f%/environ}"
  done
  for f in /proc/[0-9]*; do
    case $(readlink "$f/cwd" 2>/dev/null) in */"$project".*) pids="$pids ${f#/proc/}" ;; esac
  done
  dirs=$(ls -d /tmp/envrun-"$(id -u)"/"$project"* "${XDG_RUNTIME_DIR:-/nonexistent}"/envrun/"$project"* 2>/dev/null)
  if [ -z "$pids" ] && [ -z "$dirs" ]; then
    ok "$1: nothing left behind"
  else
    for f in $pids; do kill -KILL "$f" 2>/dev/null; done
    fail "$1: nothing left behind" "processes:$pids" "directories: $dirs"
  fi
}

run_quickstart pass "$Q/script.sh"
[ "$rc" -eq 0 ] && ok "the quick start passes as uid $(id -u) (exit 0)" ||
  fail "the quick start passes as uid $(id -u) (exit 0)" "exit $rc" "$(tail -n 40 "$Q/pass.out")"
has_line "its report ends ok, the test passed" "$Q/pass.out" '^envrun: ok \([0-9]+ services, test passed\)$'
if [ "$(id -u)" -eq 0 ]; then
  ! grep -q "not applied" "$Q/pass.out" && ok "as root, user: is applied" ||
    fail "as root, user: is applied" "$(grep "not applied" "$Q/pass.out")"
else
  has_line "as a normal user, envrun says user: is not applied" "$Q/pass.out" \
    "^envrun: warning: .*user 'postgres' not applied: envrun is not root"
fi
no_leftovers "the quick start"

# The negative control: the same quick start with Redis on PostgreSQL's port
# must fail, so a passing run above means something.
sed 's/--port \${REDIS_PORT}/--port ${PG_PORT}/' "$Q/script.sh" >"$Q/broken.sh"
if cmp -s "$Q/script.sh" "$Q/broken.sh"; then
  fail "negative control: the quick start can be broken" "no 'redis-server --port \${REDIS_PORT}' to change"
else
  run_quickstart broken "$Q/broken.sh"
  [ "$rc" -eq 125 ] && ok "negative control: Redis on PG_PORT fails the run (exit 125)" ||
    fail "negative control: Redis on PG_PORT fails the run (exit 125)" "exit $rc" "$(tail -n 30 "$Q/broken.out")"
  no_leftovers "the negative control"
fi

finish
