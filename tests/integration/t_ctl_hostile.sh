#!/usr/bin/env bash
# The control socket of an `up -d` supervisor against hostile clients (SPEC
# §8): well-formed calls work with a raw client (tests/helpers/ctlpoke.py);
# malformed requests get 4xx + JSON; a 10 MB body is refused (413) or
# dropped; a slow-loris client is cut off at the request deadline while
# `envrun status` keeps answering; 70 idle connections at once do not take
# the supervisor down; path traversal, a 100 KB header line and 8,000
# headers get 4xx or a hang-up; 100 clients at once each get 200 or 503,
# and the supervisor's descriptors come back to their number; a client of
# another uid (nobody) is refused even when
# the socket file lets it connect; unknown services get 404.  Through all of
# it the environment is undisturbed (same pids), and down leaves nothing.
. "$(dirname "$0")/lib.sh"
: "${ENVRUN_BUILD:=$(dirname "$ENVRUN")}"
up_setup "envrun-t-ctl-$$"
TS=$UP_TS
[ -x "$TS" ] || { fail "setup" "testsvc not found at $TS"; finish; exit 1; }
[ -r "$UP_POKE" ] || { fail "setup" "ctlpoke.py not found at $UP_POKE"; finish; exit 1; }
D=$TEST_TMP/env
mkdir -p "$D"
cat >"$D/environment.yml" <<YML
ports: [DB_PORT]
services:
  db:
    command: ["$TS", --stdout, "db starting", --tcp, "\${DB_PORT}", --stdout, "db ready", --hold]
    ready: {tcp: "\${DB_PORT}"}
  web:
    command: ["$TS", --stdout, "web up", --hold]
    ready: {output: "^web up\$"}
    depends_on: [db]
YML
up_use "$D/environment.yml" tctl
INST=$UP_STATE/tctl
SOCK=$INST/control.sock

up_run up up -d
[ "$RC" -eq 0 ] || up_bail "up -d: exit 0"
ok "up -d: exit 0"
up_status st0
[ "$RC" -eq 0 ] || up_bail "status: exit 0"
SUP=$(up_jq "$OUT" 'j["supervisor_pid"]')
PIDS0=$(up_jq "$OUT" '" ".join("%s=%s" % (x["name"], x["pid"]) for x in j["services"])')
echo "# supervisor $SUP, services $PIDS0"

# poke TAG ARGS...: ctlpoke.py on the socket; output in $OUT, status in RC.
poke() {
  local tag=$1
  shift
  OUT=$TEST_TMP/$tag.out
  ERR=$TEST_TMP/$tag.err
  timeout -s KILL 40 "$UP_PY" "$UP_POKE" "$SOCK" "$@" </dev/null >"$OUT" 2>"$ERR"
  RC=$?
}
code() { head -n 1 "$OUT"; }
body() { tail -n +2 "$OUT" >"$TEST_TMP/body.json"; echo "$TEST_TMP/body.json"; }

# undisturbed LABEL: status exits 0 with the same supervisor and pids.
undisturbed() {
  local pids
  up_status "undisturbed"
  pids=$(up_jq "$OUT" '" ".join("%s=%s" % (x["name"], x["pid"]) for x in j["services"])')
  if [ "$RC" -eq 0 ] && [ "$pids" = "$PIDS0" ] && [ "$(up_jq "$OUT" 'j["supervisor_pid"]')" = "$SUP" ]; then
    ok "$1: environment undisturbed"
  else
    fail "$1: environment undisturbed" "status exit $RC, pids '$pids' (were '$PIDS0')" "$(up_diag)"
  fi
}

# --------------------------------------------------- 1. well-formed calls
poke get req GET /v1/status
up_is "GET /v1/status: 200" "$(code)" 200
up_check "GET /v1/status: the status JSON" "$(body)" \
  "j['project'] == 'tctl' and j['state'] == 'up' and j['supervisor_pid'] == $SUP and sorted(x['name'] for x in j['services']) == ['db', 'web']"
poke logs req GET '/v1/services/db/logs?tail=1'
up_is "GET /v1/services/db/logs?tail=1: 200" "$(code)" 200
up_has "logs: '<timestamp> O <text>'" "$OUT" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z O db ready$'

# --------------------------------------------------- 2. bad requests
is_4xx_json() {   # LABEL WANT(regex of the code)
  if [[ $(code) =~ ^($2)$ ]]; then ok "$1: $(code)"; else fail "$1: want $2" "$(head -c 300 "$OUT")"; fi
  up_check "$1: JSON body with an error" "$(body)" 'isinstance(j, dict) and isinstance(j.get("error"), str) and j["error"] != ""'
}
poke bad_header raw 'GET /v1/status HTTP/1.1\r\nHost envrun\r\n\r\n'
is_4xx_json "a header line without a colon" 400
poke bad_target raw 'GET http://elsewhere/v1/status HTTP/1.1\r\nHost: envrun\r\n\r\n'
is_4xx_json "an absolute-form request target" 400
poke bad_version raw 'GET /v1/status HTTP/7.x\r\n\r\n'
is_4xx_json "a bad HTTP version" '4[0-9][0-9]'
poke bad_method raw 'BREW /v1/status HTTP/1.1\r\nHost: envrun\r\n\r\n'
is_4xx_json "an unknown method" '4[0-9][0-9]'
poke garbage raw '\x00\xff\xfe\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n'
if [ "$RC" -eq 3 ] || [[ $(code) =~ ^4[0-9][0-9]$ ]]; then ok "binary garbage: 4xx or closed ($(code))"
else fail "binary garbage: 4xx or closed" "$(head -c 300 "$OUT")"; fi
poke wrong_method req GET /v1/services/db/stop
is_4xx_json "GET of a POST-only path" 405
poke unknown_svc req POST /v1/services/nosuch/stop
is_4xx_json "POST /v1/services/nosuch/stop" 404
poke unknown_logs req GET /v1/services/nosuch/logs
is_4xx_json "GET /v1/services/nosuch/logs" 404
poke unknown_path req GET /v2/everything
is_4xx_json "an unknown path" 404
undisturbed "after the bad requests"

# --------------------------------------------------- 3. oversize bodies
poke big big $((10 * 1024 * 1024))
if grep -qxE 'status 413|dropped' "$OUT"; then ok "10 MB body (Content-Length): $(cat "$OUT")"
else fail "10 MB body (Content-Length): 413 or dropped" "$(cat "$OUT" "$ERR")"; fi
poke big_chunked big $((10 * 1024 * 1024)) chunked
if grep -qxE 'status 413|dropped' "$OUT"; then ok "10 MB body (chunked): $(cat "$OUT")"
else fail "10 MB body (chunked): 413 or dropped" "$(cat "$OUT" "$ERR")"; fi
undisturbed "after the oversize bodies"

# --------------------------------------------------- 4. slow loris
# Half a request, held up to 10 s: the server's 5 s request deadline cuts it
# off.  Meanwhile `envrun status` is run again and again: it must answer
# (exit 0) while the loris still holds its connection (were the server
# blocked by the loris, no status could complete before the loris is cut).
LOR=$TEST_TMP/loris
timeout -s KILL 20 "$UP_PY" "$UP_POKE" "$SOCK" loris 10 >"$LOR.out" 2>"$LOR.err" &
LPID=$!
up_poll 10 grep -qx sent "$LOR.out" || fail "loris: connected and sent half a request" "$(cat "$LOR.out" "$LOR.err")"
during=0
bad=()
times=()
end=$(($(date +%s%N) + 15000000000))
while up_alive "$LPID" && [ "$(date +%s%N)" -lt "$end" ]; do
  up_run loris_st status
  if [ "$RC" -ne 0 ]; then bad+=("status: exit $RC in $MS ms: $(head -n 2 "$ERR")")
  elif up_alive "$LPID"; then during=$((during + 1)); fi
  times+=("$MS")
  sleep 0.2
done
echo "# status during the loris took (ms): ${times[*]}"
[ ${#bad[@]} -eq 0 ] && [ "$during" -ge 1 ] &&
  ok "status answered $during times while a loris held a connection" ||
  fail "status answers while a loris holds a connection" "answered $during times" "${bad[@]}"
if up_wait_gone "$LPID" 15; then wait "$LPID"; rc=$?; else kill -KILL "$LPID"; wait "$LPID"; rc=timeout; fi
[ "$rc" = 0 ] && grep -q '^closed after' "$LOR.out" && ok "loris: the server hung up before 10 s: $(tail -n 1 "$LOR.out")" ||
  fail "loris: the server hung up before 10 s" "exit $rc: $(cat "$LOR.out" "$LOR.err")"
undisturbed "after the loris"

# --------------------------------------------------- 5. 70 idle connections
IDL=$TEST_TMP/idle
timeout -s KILL 30 "$UP_PY" "$UP_POKE" "$SOCK" idle 70 3 >"$IDL.out" 2>"$IDL.err" &
IPID=$!
sleep 1
up_alive "$SUP" && ok "70 idle connections: supervisor alive" || fail "70 idle connections: supervisor alive"
up_run idle_st status
[ "$MS" -lt 10000 ] && ok "status while 70 connections are held returns ($RC in $MS ms; busy is fine)" ||
  fail "status while 70 connections are held returns (within 10 s)" "$MS ms"
if up_wait_gone "$IPID" 20; then wait "$IPID"; rc=$?; else kill -KILL "$IPID"; wait "$IPID"; rc=timeout; fi
echo "# idle: $(cat "$IDL.out" "$IDL.err")"
read -r _ conn _ busy _ closed _ open_ <"$IDL.out"
[ "$rc" = 0 ] && [ "${conn:-0}" -eq 70 ] && ok "70 idle connections: all connected" ||
  fail "70 idle connections: all connected" "exit $rc: $(cat "$IDL.out" "$IDL.err")"
up_run idle_after status
[ "$RC" -eq 0 ] && ok "after the idle clients: status exit 0" ||
  fail "after the idle clients: status exit 0" "exit $RC in $MS ms" "$(up_diag)"
undisturbed "after 70 idle connections"

# --------------------------------------------------- 5b. traversal, huge heads, 100 clients
# Paths that try to leave the API's names: never a file's contents, always
# a 4xx with a JSON error.
for t in '/v1/services/../../../../etc/passwd/logs' '/v1/services/..%2f..%2fetc%2fpasswd/logs' \
         '/v1/services/db/logs/../../../../etc/passwd' '/v1/../../etc/passwd' \
         '/v1/services/%2e%2e/logs' '/v1/services/db%00/logs'; do
  poke traversal req GET "$t"
  is_4xx_json "GET $t" '4[0-9][0-9]'
  ! grep -q 'root:' "$OUT" && ok "GET $t: no file's contents" || fail "GET $t: no file's contents" "$(head -c 200 "$OUT")"
done
# One 100 KB header line, and 8,000 small headers (90 KB): past the 64 KiB
# request bound, refused (4xx) or cut off.
long=$(head -c 100000 /dev/zero | tr '\0' a)
poke huge_line raw "GET /v1/status HTTP/1.1\\r\\nHost: envrun\\r\\nX-Long: $long\\r\\n\\r\\n"
if [ "$RC" -eq 3 ] || [[ $(code) =~ ^4[0-9][0-9]$ ]]; then ok "a 100 KB header line: 4xx or closed ($(code))"
else fail "a 100 KB header line: 4xx or closed" "exit $RC: $(head -c 300 "$OUT")"; fi
many=$(for i in $(seq 8000); do printf 'X-H%d: v\\r\\n' "$i"; done)
poke many_headers raw "GET /v1/status HTTP/1.1\\r\\nHost: envrun\\r\\n$many\\r\\n"
if [ "$RC" -eq 3 ] || [[ $(code) =~ ^4[0-9][0-9]$ ]]; then ok "8,000 header lines: 4xx or closed ($(code))"
else fail "8,000 header lines: 4xx or closed" "exit $RC: $(head -c 300 "$OUT")"; fi
undisturbed "after the traversals and the huge heads"
# 100 clients at once (more than the 64 the supervisor serves together):
# each gets its status or a 503, never a broken answer or none.
FDS0=$(ls "/proc/$SUP/fd" | wc -l)
poke burst burst 100
[ "$RC" -eq 0 ] && ok "100 clients at once: each answered 200 or 503 ($(head -n 1 "$OUT"))" ||
  fail "100 clients at once: each answered 200 or 503" "exit $RC: $(head -c 600 "$OUT" "$ERR")"
up_poll 5 test "$(ls "/proc/$SUP/fd" | wc -l)" -eq "$FDS0" &&
  ok "after 100 clients: the supervisor's descriptors are back to $FDS0" ||
  fail "after 100 clients: the supervisor's descriptors are back to $FDS0" "now $(ls "/proc/$SUP/fd" | wc -l)"
undisturbed "after 100 clients at once"

# --------------------------------------------------- 6. another uid
# nobody must be able to reach the socket's directory for the test to mean
# anything: o+x on the test's own directories on the way (restored after).
chmod o+x "$TEST_TMP" "$UP_STATE" "$INST"
as_nobody() {   # TAG ARGS...: ctlpoke.py as nobody (script on stdin)
  local tag=$1
  shift
  OUT=$TEST_TMP/$tag.out
  timeout -s KILL 20 setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$UP_PY" - "$SOCK" "$@" <"$UP_POKE" >"$OUT" 2>&1
  RC=$?
}
if setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$INST"; then
  ok "nobody can reach the instance dir"
else
  fail "nobody can reach the instance dir $INST" "(a parent of $TEST_TMP is closed to others: set TMPDIR)"
fi
as_nobody nobody_0600 req GET /v1/status
if [ "$RC" -eq 4 ] || [ "$RC" -eq 3 ]; then ok "nobody, socket 0600: refused ($(head -n 1 "$OUT"))"
else fail "nobody, socket 0600: refused" "exit $RC: $(head -c 300 "$OUT")"; fi
chmod 0666 "$SOCK"
as_nobody nobody_0666 req GET /v1/status
if [ "$RC" -eq 3 ]; then ok "nobody, socket opened to all: connection closed unanswered (SO_PEERCRED)"
else fail "nobody, socket opened to all: connection closed unanswered" "exit $RC: $(head -c 300 "$OUT")"; fi
as_nobody nobody_stop req POST /v1/services/db/stop
[ "$RC" -eq 3 ] && ok "nobody: POST stop closed unanswered" || fail "nobody: POST stop closed unanswered" "exit $RC: $(head -c 300 "$OUT")"
chmod 0600 "$SOCK"
chmod o-x "$TEST_TMP" "$UP_STATE" "$INST"
undisturbed "after the other uid"

# --------------------------------------------------- 7. down
up_run down down
up_is "down: exit 0" "$RC" 0
for s in db web; do up_has "down: report line for $s, ok" "$ERR" "^$s +ok( |$)"; done
up_wait_gone "$SUP" 5 && ok "down: supervisor gone" || fail "down: supervisor $SUP gone"
[ ! -e "$INST" ] && ok "down: instance dir removed" || fail "down: instance dir removed" "$(ls -la "$INST")"
up_settled "after down"
finish
