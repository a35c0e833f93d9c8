#!/usr/bin/env bash
# Per-test-suite environments side by side (SPEC §3.1, §7): ten `envrun exec`
# of one environment.yml started at once all pass, with ten distinct sets of
# ports and ten distinct state directories, and leave nothing behind.
. "$(dirname "$0")/lib.sh"
: "${ENVRUN_BUILD:=$(dirname "$ENVRUN")}"
TS=$ENVRUN_BUILD/tests/testsvc
D=$TEST_TMP/side; mkdir -p "$D"
cat >"$D/environment.yml" <<YML
ports: [WEB_PORT, ADMIN_PORT]
services:
  web:
    command: ["$TS", --tcp, "\${WEB_PORT}", --tcp, "\${ADMIN_PORT}", --hold]
    ready:
      - tcp: \${WEB_PORT}
      - tcp: \${ADMIN_PORT}
test: [sh, -c, 'echo "\$WEB_PORT \$ADMIN_PORT \$ENVRUN_STATE_DIR" > "\$OUT"; sleep 0.5']
YML
M=envrun-t-side-$$
pids=()
for i in $(seq 10); do
  (cd "$D" && OUT=$D/out.$i TESTSVC_MARKER=$M exec "$ENVRUN" -q exec --report "$D/r.$i.json") </dev/null >/dev/null 2>"$D/err.$i" &
  pids+=($!)
done
failed=0
for i in $(seq 10); do
  wait "${pids[$((i - 1))]}" || { failed=$((failed + 1)); echo "run $i: $(tail -3 "$D/err.$i")"; }
done
[ "$failed" -eq 0 ] && ok "ten concurrent execs all pass" || fail "ten concurrent execs all pass" "$failed failed"
n_ports=$(cat "$D"/out.* 2>/dev/null | awk '{print $1; print $2}' | sort -u | wc -l)
[ "$n_ports" -eq 20 ] && ok "twenty distinct ports among them" || fail "twenty distinct ports among them" "$n_ports distinct" "$(cat "$D"/out.*)"
n_dirs=$(cat "$D"/out.* 2>/dev/null | awk '{print $3}' | sort -u | wc -l)
[ "$n_dirs" -eq 10 ] && ok "ten distinct state directories" || fail "ten distinct state directories" "$n_dirs"
gone=0
for dir in $(awk '{print $3}' "$D"/out.*); do [ -e "$dir" ] && gone=$((gone + 1)); done
[ "$gone" -eq 0 ] && ok "every state directory removed" || fail "every state directory removed" "$gone left"
/usr/bin/python3 - "$D" <<'PY' && ok "each report lists its own ports" || fail "each report lists its own ports"
import glob, json, sys
seen = set()
for f in glob.glob(sys.argv[1] + "/r.*.json"):
    p = json.load(open(f))["ports"]
    assert set(p) == {"WEB_PORT", "ADMIN_PORT"}, p
    seen |= set(p.values())
assert len(seen) == 20, seen
PY
assert_no_leftovers "$M" "side by side"
finish
