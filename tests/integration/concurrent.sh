#!/bin/bash
# SPDX-License-Identifier: MIT
# 20 concurrent requests behind nginx, 10 of them abandoned mid-job: exactly
# 10 cancelled (client_gone) and 10 completed, and in_flight back to 0.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup
t_start_server --workers 32
t_start_nginx

curl -s "$NGINX_URL/status" > "$T/before"
pids=()
for i in $(seq 1 10); do
    curl -s -o "$T/body$i" -w '%{http_code}' \
        "$NGINX_URL/cancel_event?steps=4&step_ms=300&task_param=kept$i" \
        > "$T/code$i" &
    pids+=($!)
    "$HTTP_CLIENT" -c 500 -t 5000 127.0.0.1 "$NGINX_PORT" \
        "/cancel_tg?steps=4&step_ms=300&task_param=gone$i" > /dev/null &
    pids+=($!)
done
wait "${pids[@]}"
for i in $(seq 1 10); do
    [ "$(cat "$T/code$i")" = 200 ] || t_fail "kept$i: status $(cat "$T/code$i")"
    [ "$(jq -r .result "$T/body$i")" = "Work completed for kept$i" ] ||
        t_fail "kept$i: $(cat "$T/body$i")"
done
t_ok "the 10 waiting clients got their JSON"
# They ran at once: every job's first step began before the first cancel
# (500 ms in), although of the 32 workers only one per CPU waits for
# events at a time and the others must be let in as jobs take them.
started=$(awk '/job cancelled/ { exit } /Working\.\.\. 1$/ { n++ }
    END { print n + 0 }' "$T/server.log")
[ "$started" -eq 20 ] ||
    t_fail "$started of the 20 jobs began before the first cancel"
t_ok "the 20 jobs ran at once"

t_wait_for 3000 sh -c "[ \$(grep -c 'job cancelled reason=client_gone' '$T/server.log') -ge 10 ]" ||
    t_fail "fewer than 10 jobs cancelled"
curl -s "$NGINX_URL/status" > "$T/after"
d() { echo $(( $(jq "$1" "$T/after") - $(jq "$1" "$T/before") )); }
[ "$(d .cancelled_by_reason.client_gone)" -eq 10 ] ||
    t_fail "client_gone +$(d .cancelled_by_reason.client_gone), expected +10"
[ "$(d .requests.cancelled)" -eq 10 ] ||
    t_fail "cancelled +$(d .requests.cancelled), expected +10"
# +10 jobs, +1 for the first /status.
[ "$(d .requests.completed)" -eq 11 ] ||
    t_fail "completed +$(d .requests.completed), expected +11"
[ "$(jq .requests.failed "$T/after")" -eq 0 ] || t_fail "failed requests"
[ "$(jq .in_flight "$T/after")" -eq 1 ] || t_fail "in_flight not back to 0"
for i in $(seq 1 10); do
    t_log_has "task_param=\"gone$i\"" || t_fail "gone$i never started"
done
t_ok "exactly 10 cancelled, 10 completed, in_flight back to 0"
