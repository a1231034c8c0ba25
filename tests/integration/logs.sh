#!/bin/bash
# SPDX-License-Identifier: MIT
# Logs an operator's tools read, behind a real nginx:
#  - access_log_format "combined": goaccess parses every line (none
#    invalid) and counts the requests, the 499 of an abandoned job among
#    them; duration and cancel reason follow the combined fields;
#  - access_log_format "json": every line a JSON object (jq), valid UTF-8
#    (iconv) even for a query of invalid bytes, with status, bytes, route,
#    client address, duration and reason;
#  - buffered lines are all written when the server stops on SIGTERM;
#  - with JOURNAL_STREAM naming stderr, lines carry "<N>" priorities and
#    no time of their own.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup
command -v goaccess >/dev/null || t_fail "goaccess is not installed"

# ---- combined, read by goaccess ----------------------------------------
cat > "$T/combined.json" <<EOF
{ "access_log": "$T/access.log", "access_log_format": "combined" }
EOF
t_start_server -c "$T/combined.json" --workers 8
t_start_nginx

for i in 1 2 3 4 5; do
    curl -s -o /dev/null -A "agent-$i" -e "http://referer.test/$i" \
        "$NGINX_URL/cancel_event?steps=1&step_ms=1&task_param=c$i" ||
        t_fail "request $i"
done
curl -s -o /dev/null "$NGINX_URL/nowhere" || true
curl -s -o /dev/null --max-time 0.3 "$NGINX_URL/cancel_event" || true
t_wait_for 5000 t_log_has 'job cancelled reason=client_gone' ||
    t_fail "the abandoned job was not cancelled"
# 7 requests; lines are out within about 100 ms.
t_wait_for 3000 eval '[ "$(wc -l < "$T/access.log")" -ge 7 ]' ||
    t_fail "expected 7 access lines, got $(wc -l < "$T/access.log")"
grep -q '^127\.0\.0\.1 - - \[[0-9]\{2\}/[A-Z][a-z]\{2\}/[0-9]\{4\}:[0-9:]\{8\} +0000\] "GET /cancel_event?steps=1&step_ms=1&task_param=c1 HTTP/1\.1" 200 [0-9]\+ "http://referer\.test/1" "agent-1" [0-9.]\+ -$' \
    "$T/access.log" || t_fail "combined line: $(head -n 1 "$T/access.log")"
grep -q '"GET /cancel_event HTTP/1\.1" 499 0 "-" "curl/[^"]*" [0-9.]\+ client_gone$' \
    "$T/access.log" || t_fail "no 499 client_gone line: $(cat "$T/access.log")"
goaccess "$T/access.log" --log-format=COMBINED --no-global-config \
    -o "$T/report.json" 2> "$T/goaccess.err" ||
    t_fail "goaccess: $(cat "$T/goaccess.err")"
total=$(jq .general.total_requests "$T/report.json")
failed=$(jq .general.failed_requests "$T/report.json")
[ "$total" = 7 ] && [ "$failed" = 0 ] ||
    t_fail "goaccess: $total requests, $failed failed (want 7, 0)"
n499=$(jq '[.status_codes.data[].items[] | select(.data | startswith("499"))
    | .hits.count] | add' "$T/report.json")
[ "$n499" = 1 ] || t_fail "goaccess counts $n499 requests with 499, want 1"
t_ok "combined: goaccess reads all 7 lines (the 499 among them)"
t_stop_server || t_fail "server did not stop"

# ---- json, and nothing lost on SIGTERM ---------------------------------
cat > "$T/json.json" <<EOF
{ "access_log": "$T/access.jsonl", "access_log_format": "json" }
EOF
t_start_server -c "$T/json.json" --workers 8
curl -s -o /dev/null -A 'ua "quoted" \ back' \
    "$NGINX_URL/cancel_event?steps=1&step_ms=1&task_param=%FF%FEx%C3%A9" ||
    t_fail "json request"
t_wait_for 3000 test -s "$T/access.jsonl" || t_fail "no json line"
jq -e 'select(.status == 200 and .method == "GET" and .path == "/cancel_event"
    and .route == "/cancel_event" and .remote_addr == "127.0.0.1"
    and .protocol == "HTTP/1.1" and .bytes > 0 and .reason == null
    and (.duration_ms | type) == "number" and .id >= 1
    and (.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{6}Z$"))
    and .user_agent == "ua \"quoted\" \\ back")' "$T/access.jsonl" \
    > /dev/null || t_fail "json line: $(cat "$T/access.jsonl")"
iconv -f UTF-8 -t UTF-8 "$T/access.jsonl" > /dev/null ||
    t_fail "json log is not valid UTF-8"
t_ok "json: one valid UTF-8 object per line with every field"

# A burst, then SIGTERM at once: every line is written.
pids=()
for i in $(seq 1 40); do
    curl -s -o /dev/null --max-time 10 "$NGINX_URL/ping" &
    pids+=($!)
done
wait "${pids[@]}"
t_stop_server TERM 10000 || t_fail "server did not stop"
n=$(jq -s '[.[] | select(.path == "/ping")] | length' "$T/access.jsonl")
[ "$n" = 40 ] || t_fail "after SIGTERM $n of 40 /ping lines"
jq -e . "$T/access.jsonl" > /dev/null || t_fail "a json line is cut"
t_ok "SIGTERM: all 40 buffered lines written"

# ---- the default format, in the server's log ------------------------------
t_start_server --workers 2
curl -s -o /dev/null "$NGINX_URL/ping" || t_fail "ping"
curl -s -o /dev/null --max-time 0.3 "$NGINX_URL/cancel_event" || true
stamp='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{6}Z'
t_wait_for 3000 t_log_has "^$stamp access req=[0-9]+ GET \"/ping\" 200 [0-9]+[.][0-9]{3}ms$" ||
    t_fail "default access line: $(grep -m1 ' access ' "$T/server.log")"
t_wait_for 3000 t_log_has "^$stamp access req=[0-9]+ GET \"/cancel_event\" 499 (2[5-9][0-9]|[3-9][0-9]{2}|[0-9]{4,})[.][0-9]{3}ms reason=client_gone$" ||
    t_fail "default 499 line: $(grep ' access ' "$T/server.log")"
# A line longer than the 1 KiB formatted on the stack: whole, its query
# cut by the escaper's 1 KiB.
long=$(head -c 1500 /dev/zero | tr '\0' a)
curl -s -o /dev/null "$NGINX_URL/ping?q=$long" || t_fail "long ping"
t_wait_for 3000 t_log_has "^$stamp access req=[0-9]+ GET \"/ping[?]q=a{1000,}[.]{3}\" 200 [0-9]+[.][0-9]{3}ms$" ||
    t_fail "long access line: $(grep ' access .*q=aaa' "$T/server.log" | cut -c1-200)"
t_log_has "^$stamp info req=[0-9]+ job cancelled reason=client_gone" ||
    t_fail "info line: $(grep -m1 'job cancelled' "$T/server.log")"
t_stop_server || t_fail "server did not stop"
t_ok "default: access and info lines with their UTC time, duration in ms"

# ---- the journal's priorities --------------------------------------------
# The server's stderr is a file; JOURNAL_STREAM names it as systemd does.
: > "$T/journal.log"
exec 4>"$T/journal.log"
js="$(stat -c '%d:%i' "$T/journal.log")"
JOURNAL_STREAM=$js "$FCGI_CANCEL" --listen "unix:$T/j.sock" --workers 2 \
    2>&4 > /dev/null &
jpid=$!
t_track "$jpid"
exec 4>&-
t_wait_for 5000 test -S "$T/j.sock" || t_fail "journal server did not start"
"$FCGI_CLIENT" -q -u /ping "unix:$T/j.sock" ||
    t_fail "ping through the journal server"
kill -TERM "$jpid"
t_wait_for 5000 eval '! kill -0 '"$jpid"' 2>/dev/null' ||
    t_fail "journal server did not stop"
grep -q '^<6>info fcgi-cancel .* serving on ' "$T/journal.log" ||
    t_fail "no <6>info start line: $(head -n 3 "$T/journal.log")"
grep -q '^<6>access req=[0-9]* GET "/ping" 200 ' "$T/journal.log" ||
    t_fail "no <6>access line: $(cat "$T/journal.log")"
! grep -q '^[0-9]\{4\}-' "$T/journal.log" ||
    t_fail "a line carries its own time: $(grep -m1 '^[0-9]\{4\}-' "$T/journal.log")"
! grep -qv '^<[3-7]>' "$T/journal.log" ||
    t_fail "a line without a priority: $(grep -m1 -v '^<[3-7]>' "$T/journal.log")"
t_ok "journal: <N> priorities, no timestamps"

t_ok "logs"
