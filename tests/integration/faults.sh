#!/bin/bash
# SPDX-License-Identifier: MIT
# Faults: nginx killed with SIGKILL while 50 jobs run (all cancelled with
# client_gone within 100 ms; requests flow again once nginx is back); a job
# that ignores its token keeps its worker, shows in /status as a straggler,
# and the other workers keep serving; out of descriptors, accept failures
# are logged with back-off, without a busy loop, and service resumes.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup

cat > "$T/conf.json" <<JSON
{ "routes": [
    { "path": "/status", "handler": "status" },
    { "path": "/ping", "handler": "ping" },
    { "path": "/cancel_event", "handler": "work", "style": "wait" },
    { "path": "/stubborn", "handler": "work", "style": "ignore",
      "steps": 3, "step_ms": 500 } ] }
JSON
t_start_server --config "$T/conf.json" --workers 64
t_start_nginx

# ---- nginx killed with 50 jobs in flight -----------------------------------
# 50 requests held open by this shell (no client process to wake up and
# compete for the CPU when nginx dies).
held=()
for i in $(seq 1 50); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$NGINX_PORT"
    printf 'GET /cancel_event?task_param=k%d HTTP/1.1\r\nHost: localhost\r\n\r\n' "$i" >&"$fd"
    held+=("$fd")
done
t_wait_for 5000 sh -c "[ \$(grep -c 'job start' '$T/server.log') -ge 50 ]" ||
    t_fail "50 jobs did not start"
workers=$(pgrep -P "$NGINX_PID" | tr '\n' ' ')
killed_at=$(t_now_ms)
# shellcheck disable=SC2086
kill -KILL "$NGINX_PID" $workers 2>/dev/null || true
t_wait_for 3000 sh -c "[ \$(grep -c 'job cancelled reason=client_gone' '$T/server.log') -ge 50 ]" ||
    t_fail "not all 50 jobs were cancelled: $(t_log_count 'job cancelled reason=client_gone')"
for fd in "${held[@]}"; do exec {fd}>&-; done
first=$(grep -m1 "job cancelled reason=client_gone" "$T/server.log" | cut -d" " -f1)
last=$(grep "job cancelled reason=client_gone" "$T/server.log" | tail -n 1 | cut -d" " -f1)
took=$(awk -v a="$(t_ms_of "$last")" -v b="$killed_at" 'BEGIN { printf "%.1f", a - b }')
spread=$(awk -v a="$(t_ms_of "$last")" -v b="$(t_ms_of "$first")" 'BEGIN { printf "%.1f", a - b }')
awk -v t="$took" 'BEGIN { exit !(t < 100) }' ||
    t_fail "the last of the 50 jobs was cancelled $took ms after the kill"
t_ok "nginx SIGKILLed: all 50 jobs cancelled (client_gone) within $took ms (first to last: $spread ms)"
t_start_nginx
[ "$(curl -s "$NGINX_URL/ping")" = pong ] || t_fail "no service after nginx restart"
[ "$(t_status .in_flight)" -eq 1 ] || t_fail "in_flight not back to 0"
t_ok "nginx restarted: requests flow, in_flight back to 0"

# ---- a job that ignores its token ------------------------------------------
"$HTTP_CLIENT" -c 300 -t 5000 127.0.0.1 "$NGINX_PORT" "/stubborn?task_param=st" > /dev/null
id=$(sed -n 's/.* req=\([0-9]*\) job start task_param="st".*/\1/p' "$T/server.log")
straggler() {
    curl -s "$NGINX_URL/status" > "$T/st.json"
    jq -e --argjson id "$id" '.stragglers | any(.id == $id and .reason == "client_gone" and .since_cancel_ms >= 0)' "$T/st.json" > /dev/null
}
t_wait_for 1000 straggler || t_fail "no straggler in /status: $(cat "$T/st.json")"
for i in 1 2 3 4 5; do
    [ "$(curl -s "$NGINX_URL/ping")" = pong ] || t_fail "ping while a straggler runs"
done
t_ok "a job that ignores its token: listed as a straggler, the others serve"
t_wait_for 3000 t_log_has "access req=$id " || t_fail "the straggler never ended"
curl -s "$NGINX_URL/status" > "$T/st.json"
jq -e '.stragglers == []' "$T/st.json" > /dev/null || t_fail "straggler still listed"
t_ok "the straggler ended after its 1.5 s and left the list"
t_stop_server TERM 5000

# ---- out of descriptors ----------------------------------------------------
port=$(t_free_port)
( ulimit -n 40; exec "$FCGI_CANCEL" --listen "tcp:127.0.0.1:$port" --workers 2 ) \
    > "$T/emfile.log" 2>&1 &
epid=$!
t_track "$epid"
t_wait_for 3000 sh -c "'$FCGI_CLIENT' -q -u /ping 'tcp:127.0.0.1:$port' 2>/dev/null" ||
    t_fail "the low-limit server does not answer"
holders=()
for i in $(seq 1 60); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$port"
    holders+=("$fd")
done
# 40 descriptors leave no room for max_connections: the server lowers it
# at start-up (logged), so the 60 connections meet that bound (refused at
# accept, logged at most once a second) or, past it, EMFILE (accept backs
# off, logged once a second): either way no busy loop.
grep -q 'max_connections lowered to' "$T/emfile.log" ||
    t_fail "max_connections not lowered to the descriptor limit"
held() {
    grep -qE 'accept \(backing off\)|pool: bounds: [1-9][0-9]* new connections refused' \
        "$T/emfile.log"
}
t_wait_for 3000 held || t_fail "no accept failure or refusal logged"
c0=$(t_cpu_ms "$epid")
t0=$(t_now_ms)
t_wait_for 1500 sh -c "[ \$(( \$(date +%s%3N) - $t0 )) -ge 1000 ]"
c1=$(t_cpu_ms "$epid")
[ $((c1 - c0)) -lt 200 ] || t_fail "busy loop: $((c1 - c0)) ms of CPU in 1 s"
n=$(grep -cE 'accept \(backing off\)|pool: bounds: ' "$T/emfile.log")
[ "$n" -le 5 ] || t_fail "accept failure logged $n times (no rate limit)"
for fd in "${holders[@]}"; do exec {fd}>&-; done
t_wait_for 3000 sh -c "'$FCGI_CLIENT' -q -u /ping 'tcp:127.0.0.1:$port' 2>/dev/null" ||
    t_fail "no service after descriptors were freed"
t_ok "out of descriptors: logged $n time(s), $((c1 - c0)) ms CPU in 1 s, service resumed"
