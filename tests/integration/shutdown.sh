#!/bin/bash
# SPDX-License-Identifier: MIT
# SIGTERM drains: jobs that finish within --grace-ms complete; jobs still
# running after it are cancelled with reason shutdown (503), and the
# process exits 0 within the grace period plus a little.  The socket file
# is removed at exit.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup

# 1. Jobs shorter than the grace period complete.
t_start_server --workers 4 --grace-ms 5000
t_start_nginx
pids=()
for i in 1 2; do
    curl -s -o "$T/short$i" -w '%{http_code}' \
        "$NGINX_URL/cancel_event?steps=3&step_ms=200" > "$T/scode$i" &
    pids+=($!)
done
t_wait_for 3000 sh -c "[ \$(grep -c 'job start' '$T/server.log') -ge 2 ]" ||
    t_fail "jobs did not start"
t_stop_server TERM 5000 || t_fail "server still running 5 s after SIGTERM"
[ "$SERVER_STATUS" -eq 0 ] || t_fail "exit status $SERVER_STATUS"
wait "${pids[@]}"
for i in 1 2; do
    [ "$(cat "$T/scode$i")" = 200 ] || t_fail "short job $i: $(cat "$T/scode$i")"
done
[ ! -e "$T/fcgi.sock" ] || t_fail "socket file left behind"
t_ok "jobs within the grace period complete; exit 0; socket removed"

# 2. Long jobs are cancelled with reason shutdown after the grace period.
t_start_server --workers 4 --grace-ms 700
pids=()
for r in cancel_tg cancel_tg_dependency cancel_event; do
    curl -s -o "$T/long-$r" -w '%{http_code}' "$NGINX_URL/$r" \
        > "$T/lcode-$r" &
    pids+=($!)
done
t_wait_for 3000 sh -c "[ \$(grep -c 'job start' '$T/server.log') -ge 3 ]" ||
    t_fail "jobs did not start"
start=$(t_now_ms)
t_stop_server TERM 5000 || t_fail "server still running 5 s after SIGTERM"
took=$(( $(t_now_ms) - start ))
[ "$SERVER_STATUS" -eq 0 ] || t_fail "exit status $SERVER_STATUS"
[ "$took" -ge 600 ] && [ "$took" -lt 3000 ] ||
    t_fail "exited after $took ms, expected the 700 ms grace period"
wait "${pids[@]}"
for r in cancel_tg cancel_tg_dependency cancel_event; do
    [ "$(cat "$T/lcode-$r")" = 503 ] || t_fail "$r: $(cat "$T/lcode-$r")"
    jq -e '.status == 503' "$T/long-$r" > /dev/null || t_fail "$r: body"
done
[ "$(t_log_count 'job cancelled reason=shutdown')" -eq 3 ] ||
    t_fail "expected 3 jobs cancelled with reason shutdown"
t_ok "long jobs cancelled with shutdown after the grace period (exit after $took ms)"

# 3. A request that has begun to arrive when SIGTERM comes, with no job
#    running, is read whole and served before the server exits; idle
#    connections are closed at once.
t_start_server --workers 2 --grace-ms 5000
t_fcgi -u /ping -L 800 -t 5000 > "$T/late.out" 2>&1 &
late=$!
t_fcgi -u /status -t 2000 > "$T/status.out" 2>&1 || true
t_wait_for 3000 sh -c "'$FCGI_CLIENT' -u /status -t 2000 '$FCGI_ADDR' 2>/dev/null | grep -q '\"arriving\":1'" ||
    t_fail "the stalled request is not counted in /status arriving: $(cat "$T/status.out")"
start=$(t_now_ms)
t_stop_server TERM 5000 || t_fail "server still running 5 s after SIGTERM"
took=$(( $(t_now_ms) - start ))
[ "$SERVER_STATUS" -eq 0 ] || t_fail "exit status $SERVER_STATUS"
rc=0
wait "$late" || rc=$?
[ "$rc" -eq 0 ] && grep -q '^pong' "$T/late.out" ||
    t_fail "the arriving request was not served (exit $rc): $(cat "$T/late.out")"
t_ok "a request arriving at SIGTERM is read whole and served; exit after $took ms"
