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

# Keep-alive: abort the first request, the second on the same connection
# runs too and is aborted as well; then a full request completes.
out=$(t_fcgi -k -n 2 -i 7 -u '/cancel_tg?step_ms=1000' -a 200 -t 5000 2>&1) ||
    t_fail "kept connection: $out"
[ "$(grep -c '^end_request id=7 ' <<< "$out")" -eq 2 ] ||
    t_fail "expected two END_REQUESTs on the kept connection: $out"
out=$(t_fcgi -k -n 3 -u '/ping' -t 5000 2>&1) || t_fail "ping x3: $out"
[ "$(grep -c '^pong' <<< "$out")" -eq 3 ] || t_fail "ping x3: $out"
t_ok "kept connection: two aborted requests in a row, then three pings"

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

# "abort_requests": "ignore": abort records are read after the job, which
# runs to its end; a hang-up still cancels; a kept connection stays in step.
t_stop_server TERM 5000 || t_fail "stop"
printf '{ "abort_requests": "ignore" }\n' > "$T/ignore.json"
t_start_server --workers 4 --config "$T/ignore.json"
out=$(t_fcgi -u '/cancel_event?steps=2&step_ms=300&task_param=ign1' -a 100 \
    -t 5000 2>&1) || t_fail "ignore: $out"
grep -q '"Work completed for ign1"' <<< "$out" ||
    t_fail "an ignored abort did not let the job end: $out"
grep -q 'end_request id=1 .*protocol_status=0' <<< "$out" ||
    t_fail "no FCGI_END_REQUEST: $out"
! t_log_has 'job cancelled reason=aborted' ||
    t_fail "a job was cancelled by an abort record under ignore"
out=$(t_fcgi -k -n 2 -i 7 -u '/cancel_event?steps=1&step_ms=200&task_param=ign2' \
    -a 100 -t 5000 2>&1) || t_fail "ignore, kept connection: $out"
[ "$(grep -o '"Work completed for ign2"' <<< "$out" | wc -l)" -eq 2 ] ||
    t_fail "two requests after ignored aborts on a kept connection: $out"
half_close_cancels ignhalf
t_ok "abort_requests ignore: the job ends, a kept connection stays in step, a half-close cancels"
