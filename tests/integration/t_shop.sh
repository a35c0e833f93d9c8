#!/usr/bin/env bash
# examples/shop for real (issue 8): PostgreSQL 15, Redis, a migration, the
# Python app and nginx, all started by `envrun exec` from Debian's packages,
# and the file's own test (check_chain.py) going through the whole chain.
# First one run, with --report and --timeline; then two runs of the same file
# side by side, which must both pass on different ports; then one cancelled
# with SIGTERM while its command runs (exit 143, the shop stopped cleanly).
# Afterwards nothing of any run may be alive.
#
# Finding leftovers: each run exports SHOP_MARKER=<marker of the run> into
# envrun's environment, which every service and the test inherit; but
# postgres, redis-server and nginx set their process titles by writing over
# their argv and environment block, so /proc/PID/environ of those no longer
# holds the marker.  They are found by their working directory instead:
# postgres chdirs into its data directory, and the example gives redis
# (--dir) and nginx (cwd:) ENVRUN_STATE_DIR, all under this test's private
# --state-dir base.
#
# Missing servers are a failure, never a skip: tests/run installs them.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
SHOP=$ENVRUN_SRC/examples/shop
M=envrun-t-shop-$$

missing=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=("postgresql-15 (/usr/lib/postgresql/15/bin/postgres)")
command -v redis-server >/dev/null 2>&1 || missing+=("redis-server")
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=("nginx")
command -v psql >/dev/null 2>&1 || missing+=("psql (postgresql-client)")
[ -x "$PY" ] || missing+=("python3")
if [ "${#missing[@]}" -gt 0 ]; then
  fail "the shop's servers are installed" "missing: ${missing[*]}" \
    "install them with: bash tests/run (it apt-get installs postgresql-15 redis-server nginx)"
  finish
  exit 1
fi

# The file says `user: postgres`: applied when envrun is root (PostgreSQL
# refuses root); any other user runs it as itself, and the report says so
# (check_report checks both, by who runs this script).
# One state base for all runs, so that side-by-side runs share the port
# reservations; the postgres user must be able to traverse down to it.
BASE=$TEST_TMP/state
chmod 0711 "$TEST_TMP"

# shop_run TAG [EXEC-ARGS...]: envrun exec of examples/shop, marked
# $M-TAG, report in $TEST_TMP/TAG.json, output in $TEST_TMP/TAG.out; exit
# status in $TEST_TMP/TAG.rc.  timeout(1) only guards against a hang.
shop_run() {
  local tag=$1; shift
  (cd "$SHOP" && SHOP_MARKER=$M-$tag exec timeout -s KILL 50 "$ENVRUN" --state-dir "$BASE" \
    exec --report "$TEST_TMP/$tag.json" "$@") </dev/null >"$TEST_TMP/$tag.out" 2>&1
  echo $? >"$TEST_TMP/$tag.rc"
}

# check_report TAG: exit 0, report ok, every service ok, the test passed.
check_report() {
  local tag=$1 rc why
  rc=$(cat "$TEST_TMP/$tag.rc")
  why=$("$PY" - "$TEST_TMP/$tag.json" "$(id -u)" <<'PY' 2>&1
import json, sys
r = json.load(open(sys.argv[1]))
uid = int(sys.argv[2])
bad = [s["name"] + ": " + str(s["result"]) + " (" + str(s["message"]) + ")"
       for s in r["services"] if s["result"] != "ok"]
names = sorted(s["name"] for s in r["services"])
assert names == ["app", "cache", "db", "migrate", "render", "web"], "services: %r" % names
assert not bad, "services not ok: %s" % "; ".join(bad)
assert r["result"] == "ok", "result %r" % r["result"]
assert r["test"]["exit_code"] == 0, "test: %r" % r["test"]
assert r["project"] == "shop", r["project"]
na = {s["name"]: s.get("user_not_applied") for s in r["services"]}
if uid == 0:
    assert not any(na.values()), "as root, user_not_applied: %r" % na
else:
    assert na["db"] and "'postgres' not applied" in na["db"] and "uid %d" % uid in na["db"], \
        "db's user_not_applied: %r" % na["db"]
    assert not any(v for k, v in na.items() if k != "db"), "user_not_applied: %r" % na
assert sorted(r["ports"]) == ["APP_PORT", "PG_PORT", "REDIS_PORT", "WEB_PORT"], r["ports"]
PY
  )
  if [ "$rc" = 0 ] && [ -z "$why" ] && grep -q '^check_chain: ok' "$TEST_TMP/$tag.out"; then
    ok "shop run $tag: exit 0, every service ok, the chain checked through nginx"
  else
    fail "shop run $tag: exit 0, every service ok, the chain checked through nginx" \
      "exit $rc" "$why" "$(tail -25 "$TEST_TMP/$tag.out")"
  fi
}

# leftovers TAG: ok when no process carries SHOP_MARKER=$M-TAG and no
# postgres/redis-server/nginx works under $BASE; otherwise fails, naming
# each survivor, and kills it by pid.
leftovers() {
  local tag=$1 f p comm cwd pids=() info=()
  for f in $(grep -lzxF "SHOP_MARKER=$M-$tag" /proc/[0-9]*/environ 2>/dev/null); do
    p=${f#/proc/}; p=${p%/environ}
    [ "$p" != "$$" ] && pids+=("$p")
  done
  for f in /proc/[0-9]*/comm; do
    p=${f#/proc/}; p=${p%/comm}
    { read -r comm <"$f"; } 2>/dev/null || continue
    case $comm in postgres | redis-server | nginx) ;; *) continue ;; esac
    [[ " ${pids[*]} " == *" $p "* ]] && continue
    cwd=$(readlink "/proc/$p/cwd" 2>/dev/null) || continue
    case $cwd in "$BASE"/*) pids+=("$p") ;; esac
  done
  if [ "${#pids[@]}" -eq 0 ]; then ok "shop run $tag: no process left"; return 0; fi
  for p in "${pids[@]}"; do
    info+=("survivor pid $p ($(stat -c %U "/proc/$p" 2>/dev/null)): $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)")
  done
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  fail "shop run $tag: no process left" "${info[@]}"
}

# --- one run, with the report and the timeline ---------------------------
t0=$(date +%s%N)
shop_run one --timeline "$TEST_TMP/one.svg"
t1=$(date +%s%N)
check_report one
if [ -s "$TEST_TMP/one.svg" ] && "$PY" - "$TEST_TMP/one.svg" <<'PY'; then
import sys, xml.etree.ElementTree as ET
text = "".join(ET.parse(sys.argv[1]).getroot().itertext())
assert all(n in text for n in ("db", "cache", "migrate", "app", "render", "web")), text
PY
  ok "the timeline SVG names every service"
else
  fail "the timeline SVG names every service" "$(head -c 400 "$TEST_TMP/one.svg" 2>&1)"
fi
leftovers one
echo "     (one run: $(((t1 - t0) / 1000000)) ms)"

# --- two runs of the same file side by side ------------------------------
t0=$(date +%s%N)
shop_run a & pa=$!
shop_run b & pb=$!
wait "$pa" "$pb"
t1=$(date +%s%N)
check_report a
check_report b
if why=$("$PY" - "$TEST_TMP/a.json" "$TEST_TMP/b.json" 2>&1 <<'PY'
import json, sys
a, b = (set(json.load(open(f))["ports"].values()) for f in sys.argv[1:3])
assert len(a) == 4 and len(b) == 4 and not a & b, "ports %r and %r" % (sorted(a), sorted(b))
PY
); then
  ok "side by side: eight distinct ports"
else
  fail "side by side: eight distinct ports" "$why"
fi
leftovers a
leftovers b
echo "     (two side by side: $(((t1 - t0) / 1000000)) ms)"

# --- a CI runner cancels the job: SIGTERM to envrun while CMD runs --------
# envrun forwards it to CMD, stops the whole shop, reports, and exits 143.
(cd "$SHOP" && SHOP_MARKER=$M-term exec "$ENVRUN" --state-dir "$BASE" exec --report "$TEST_TMP/term.json" \
  -- sh -c ': >"$0"; exec sleep 60' "$TEST_TMP/term.up") </dev/null >"$TEST_TMP/term.out" 2>&1 &
pt=$!
if wait_path "$TEST_TMP/term.up" 50; then
  kill -TERM "$pt"
  wait "$pt"; rc=$?
  if [ "$rc" -eq 143 ] && "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1]))
assert all(s["result"] == "ok" for s in r["services"]), r' "$TEST_TMP/term.json" 2>/dev/null; then
    ok "SIGTERM while the test runs: exit 143, every service stopped cleanly"
  else
    fail "SIGTERM while the test runs: exit 143, every service stopped cleanly" "exit $rc" \
      "$(tail -15 "$TEST_TMP/term.out")"
  fi
else
  kill -KILL "$pt"; wait "$pt"
  fail "SIGTERM while the test runs: the shop came up" "$(tail -15 "$TEST_TMP/term.out")"
fi
leftovers term

left=$(find "$BASE" -mindepth 1 -maxdepth 1 -name 'shop.exec.*' 2>/dev/null)
[ -z "$left" ] && ok "every instance directory removed" || fail "every instance directory removed" "$left"
finish
