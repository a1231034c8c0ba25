#!/bin/bash
# SPDX-License-Identifier: MIT
# What no front end sends but the FastCGI spec allows, with the raw client:
# FCGI_ABORT_REQUEST cancels the job (aborted), the server answers it with
# FCGI_END_REQUEST, and a kept connection stays usable after it; a
# half-close cancels (client_gone); stray bytes do not cancel.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup
t_start_server --workers 4
t_start_nginx

before=$(t_status .cancelled_by_reason.aborted)
out=$(t_fcgi -u '/cancel_event?task_param=abort1' -a 300 -t 5000 2>&1) ||
    t_fail "client: $out"
grep -q '^end_request id=1 .*protocol_status=0' <<< "$out" ||
    t_fail "no FCGI_END_REQUEST after the abort: $out"
t_wait_for 2000 t_log_has 'job cancelled reason=aborted' ||
    t_fail "the job was not cancelled with reason aborted"
[ $(( $(t_status .cancelled_by_reason.aborted) - before )) -eq 1 ] ||
    t_fail "aborted not up by one"
t_ok "ABORT_REQUEST: job cancelled (aborted), END_REQUEST received"

# kept_aborts WHAT: on one kept connection, abort two requests in a row
# (the second's abort reaches the server through the pool's epoll set,
# which holds the connection from its first wait); both are cancelled with
# reason aborted and answered; then a full request completes.
kept_aborts() {
    local before out
    before=$(t_log_count 'job cancelled reason=aborted')
    out=$(t_fcgi -k -n 2 -i 7 -u '/cancel_tg?step_ms=1000' -a 200 -t 5000 2>&1) ||
        t_fail "kept connection ($1): $out"
    [ "$(grep -c '^end_request id=7 ' <<< "$out")" -eq 2 ] ||
        t_fail "expected two END_REQUESTs on the kept connection ($1): $out"
    t_wait_for 2000 sh -c "[ \$(grep -c 'job cancelled reason=aborted' \
        '$T/server.log') -ge $(( before + 2 )) ]" ||
        t_fail "the two aborts on the kept connection ($1) did not cancel"
    out=$(t_fcgi -k -n 3 -u '/ping' -t 5000 2>&1) || t_fail "ping x3: $out"
    [ "$(grep -c '^pong' <<< "$out")" -eq 3 ] || t_fail "ping x3: $out"
}
kept_aborts "a worker free"
t_ok "kept connection: two aborted requests in a row, then three pings"

# With every other worker busy, nobody waits in the pool's epoll set, so
# an abort must reach the watcher itself.  The second request of a kept
# connection starts while workers are free; three jobs then take the other
# three workers before its abort comes (1.5 s in); the abort must cancel
# it long before those three end (their clients close 4 s in).
before=$(t_log_count 'job cancelled reason=aborted')
gone=$(t_log_count 'job cancelled reason=client_gone')
t_fcgi -k -n 2 -i 9 -u '/cancel_event?steps=50&step_ms=100&task_param=late' \
    -a 1500 -t 8000 > "$T/late.out" 2>&1 &
pids=($!)
t_wait_for 4000 sh -c "[ \$(grep -c 'job start task_param=\"late\"' \
    '$T/server.log') -eq 2 ]" || t_fail "the kept connection's second job did not start"
for i in 1 2 3; do
    t_fcgi -u "/cancel_event?steps=50&step_ms=100&task_param=busy$i" \
        -c 4000 -t 8000 > /dev/null 2>&1 &
    pids+=($!)
done
t_wait_for 1000 sh -c "[ \$(grep -c 'job start task_param=\"busy' \
    '$T/server.log') -eq 3 ]" || t_fail "the three busy jobs did not start"
t_wait_for 3000 sh -c "[ \$(grep -c 'job cancelled reason=aborted' \
    '$T/server.log') -ge $(( before + 2 )) ]" ||
    t_fail "an abort with every other worker busy did not cancel"
[ "$(t_log_count 'job cancelled reason=client_gone')" -eq "$gone" ] ||
    t_fail "the abort was seen only after the busy jobs ended"
wait "${pids[@]}"
[ "$(grep -c '^end_request id=9 ' "$T/late.out")" -eq 2 ] ||
    t_fail "expected two END_REQUESTs: $(cat "$T/late.out")"
t_ok "an abort with every other worker busy cancels at once"

# half_close_cancels TAG: a half-close 300 ms into a job (what lighttpd
# forwards for a client FIN) cancels it with client_gone.
half_close_cancels() {
    local out id
    out=$(t_fcgi -u "/cancel_tg_dependency?task_param=$1" -h 300 -t 5000 2>&1) ||
        t_fail "half-close ($1): $out"
    id=$(sed -n "s/.* req=\([0-9]*\) job start task_param=\"$1\".*/\1/p" \
        "$T/server.log")
    t_wait_for 2000 t_log_has "req=$id job cancelled reason=client_gone" ||
        t_fail "half-close ($1) did not cancel"
}
half_close_cancels half
t_ok "half-close cancels with client_gone"

# Stray bytes after the request (a record of another type): no cancel.
"$FCGI_CLIENT" -w "$T/req.bin" -u '/cancel_event?steps=2&step_ms=200&task_param=stray' -k
printf '\001\010\000\001\000\000\000\000' >> "$T/req.bin"   # FCGI_DATA, empty
out=$("$FCGI_CLIENT" -R "$T/req.bin" -t 5000 "$FCGI_ADDR" 2>&1) ||
    t_fail "stray: $out"
grep -q '"Work completed for stray"' <<< "$out" ||
    t_fail "stray bytes cancelled the job: $out"
t_ok "stray bytes on the connection do not cancel"
