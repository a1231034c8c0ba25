#!/bin/bash
# SPDX-License-Identifier: MIT
# Two fcgi-cancel instances behind one nginx upstream, configured with
# conf/nginx-upstream.conf (round robin, keep-alive):
#   1. 40 requests, 10 one after another and 30 in waves of 10 at once,
#      all answered, and spread over both instances: each instance's own
#      /status (asked directly, not through nginx) shows its share, both
#      shares > 0, and they add up to 40 (+ the 2 /status requests);
#   2. a client that closes its connection cancels exactly one job, on
#      the instance that runs it (client_gone +1 there, +0 on the other);
#   3. one instance is killed with SIGKILL while it runs jobs: its
#      in-flight requests end with 502 at once (they are not run again
#      elsewhere), the other instance's finish with 200, and the requests
#      sent after the kill all succeed, on the survivor;
#   4. a client close still cancels exactly one job, on the survivor;
#   5. /status and /metrics answer local clients only (the snippet's
#      allow/deny).
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/frontends.sh"
t_setup
t_start_server --workers 16
t_start_instance 2 --workers 16
SOCK=("" "$SERVER_SOCK" "${INSTANCE_SOCK[2]}")
LOG=("" "$T/server.log" "${INSTANCE_LOG[2]}")
t_start_nginx_upstream "${SOCK[1]}" "${SOCK[2]}"

# where TASK_PARAM: print the instance (1 or 2) whose log shows the job
# started with that task_param, or nothing yet.
where() {
    local i
    for i in 1 2; do
        if grep -q "job start task_param=\"$1\"" "${LOG[$i]}" 2>/dev/null; then
            echo "$i"
        fi
    done
}

# count REGEX FILE: lines of FILE matching REGEX.
count() {
    local n
    n=$(grep -cE -- "$1" "$2" 2>/dev/null) || true
    echo "${n:-0}"
}

# status N JQ_PATH: a field of instance N's /status.
status() {
    t_instance_status "${SOCK[$1]}" "$2" || t_fail "instance $1: no /status"
}

# get NAME PATH: GET PATH through nginx in the background; the status code
# goes to $T/NAME.code, the body to $T/NAME.body, the time curl ended
# (epoch ms) to $T/NAME.end.
pids=()
get() {
    {
        curl -s --max-time 20 -o "$T/$1.body" -w '%{http_code}\n' \
            "$NGINX_URL$2" > "$T/$1.code"
        t_now_ms > "$T/$1.end"
    } &
    pids+=($!)
}
wait_all() {
    wait "${pids[@]}"
    pids=()
}
# expect_json NAME: NAME got 200 and the recipe's JSON for task_param NAME.
expect_json() {
    local code want
    code=$(cat "$T/$1.code")
    [ "$code" = 200 ] || t_fail "$1: HTTP $code: $(cat "$T/$1.body")"
    want="{\"result\":\"Work completed for $1\"}"
    [ "$(jq -c . "$T/$1.body")" = "$want" ] ||
        t_fail "$1: got $(cat "$T/$1.body"), expected $want"
}

# ---- 1. 40 requests over both instances ------------------------------
q='steps=1&step_ms=100'
for i in $(seq 1 10); do
    get "spread$i" "/cancel_event?$q&task_param=spread$i"
    wait_all
done
for wave in 1 2 3; do
    for i in $(seq $((wave * 10 + 1)) $((wave * 10 + 10))); do
        get "spread$i" "/cancel_event?$q&task_param=spread$i"
    done
    wait_all
done
for i in $(seq 1 40); do
    expect_json "spread$i"
done
t_ok "40 requests through the upstream, all answered with their JSON"

status 1 . > "$T/st1.a"
status 2 . > "$T/st2.a"
a1=$(jq .requests.accepted "$T/st1.a")
a2=$(jq .requests.accepted "$T/st2.a")
# accepted counts the /status request that reports it.
n1=$((a1 - 1)) n2=$((a2 - 1))
if [ "$n1" -eq 0 ] || [ "$n2" -eq 0 ]; then
    t_fail "not spread: instance 1 took $n1, instance 2 took $n2"
fi
[ $((a1 + a2)) -eq 42 ] ||
    t_fail "accepted: $a1 + $a2, expected 40 requests + 2 /status = 42"
if [ "$(count 'job start task_param="spread' "${LOG[1]}")" -ne "$n1" ] ||
   [ "$(count 'job start task_param="spread' "${LOG[2]}")" -ne "$n2" ]; then
    t_fail "the logs do not match /status ($n1 and $n2 jobs)"
fi
[ $(( $(jq .requests.completed "$T/st1.a") +
      $(jq .requests.completed "$T/st2.a") )) -eq 40 ] ||
    t_fail "completed on both instances does not add up to 40"
t_ok "spread: $n1 on instance 1, $n2 on instance 2 (both /status agree," \
     "sum 40 + 2 /status)"

# ---- 2. a client close cancels one job, where it runs ------------------
# gone TASK_PARAM: close a client after 500 ms of a 5 s job; check that
# exactly one job was cancelled (client_gone), on the instance that ran it.
gone() {
    local tp=$1 i g_before=() g_after=() on
    for i in 1 2; do
        if _t_alive "$(pid_of "$i")"; then
            g_before[i]=$(status "$i" .cancelled_by_reason.client_gone)
        fi
    done
    "$HTTP_CLIENT" -c 500 -t 5000 127.0.0.1 "$NGINX_PORT" \
        "/cancel_event?steps=5&step_ms=1000&task_param=$tp" > /dev/null 2>&1 ||
        t_fail "$tp: http-client failed"
    on=$(where "$tp")
    case $on in
    1|2) ;;
    *) t_fail "$tp: ran on instance(s) '${on//$'\n'/ }', expected one" ;;
    esac
    id=$(req_of "$on" "$tp")
    t_wait_for 2000 grep -qE "req=$id job cancelled reason=client_gone" \
        "${LOG[$on]}" || t_fail "$tp: not cancelled on instance $on"
    for i in 1 2; do
        _t_alive "$(pid_of "$i")" || continue
        g_after[i]=$(status "$i" .cancelled_by_reason.client_gone)
        if [ "$i" = "$on" ]; then
            [ $((g_after[i] - g_before[i])) -eq 1 ] ||
                t_fail "$tp: client_gone on instance $i went" \
                       "${g_before[$i]} -> ${g_after[$i]}, expected +1"
        else
            [ "${g_after[$i]}" -eq "${g_before[$i]}" ] ||
                t_fail "$tp: client_gone on instance $i (not running it)" \
                       "went ${g_before[$i]} -> ${g_after[$i]}"
        fi
    done
    GONE_ON=$on
}
pid_of() {
    if [ "$1" = 1 ]; then echo "$SERVER_PID"; else echo "${INSTANCE_PID[$1]}"; fi
}
# req_of N TASK_PARAM: the request id of that job in instance N's log.
req_of() {
    sed -n "s/.* req=\([0-9]*\) job start task_param=\"$2\".*/\1/p" \
        "${LOG[$1]}" | head -n 1
}

gone gone-a
first=$GONE_ON
t_ok "a client close cancelled its one job, on instance $first" \
     "(client_gone +1 there, +0 on the other)"
# The next request goes to the other instance (round robin): same check.
gone gone-b
t_ok "a client close cancelled its one job, on instance $GONE_ON"

# ---- 3. one instance killed with SIGKILL mid-run -----------------------
for i in 1 2 3 4 5 6; do
    get "long$i" "/cancel_event?steps=6&step_ms=700&task_param=long$i"
done
long_pids=("${pids[@]}")
pids=()
all_started() {
    local i
    for i in 1 2 3 4 5 6; do
        [ -n "$(where "long$i")" ] || return 1
    done
}
t_wait_for 3000 all_started || t_fail "the 6 long jobs did not all start"
on2=() on1=()
for i in 1 2 3 4 5 6; do
    if [ "$(where "long$i")" = 2 ]; then on2+=("$i"); else on1+=("$i"); fi
done
if [ "${#on2[@]}" -eq 0 ] || [ "${#on1[@]}" -eq 0 ]; then
    t_fail "the 6 long jobs are not on both instances" \
           "(instance 2: ${on2[*]-none})"
fi
# Kill once every job of instance 2 is past its second step (> 1.4 s):
# older than fastcgi_next_upstream_timeout (1 s), so nginx must not run
# them again elsewhere.
past_step2() {
    local i
    for i in "${on2[@]}"; do
        grep -qE "req=$(req_of 2 "long$i") Working\.\.\. 2" "${LOG[2]}" ||
            return 1
    done
}
t_wait_for 3000 past_step2 || t_fail "instance 2's jobs did not reach step 2"
[ "$(status 2 .in_flight)" -eq $(( ${#on2[@]} + 1 )) ] ||
    t_fail "instance 2 does not show its ${#on2[@]} jobs in flight"
kill_ms=$(t_now_ms)
kill -KILL "${INSTANCE_PID[2]}"
t_wait_for 3000 _fe_dead "${INSTANCE_PID[2]}" ||
    t_fail "instance 2 survived SIGKILL"
wait "${INSTANCE_PID[2]}" 2>/dev/null || true
t_ok "instance 2 killed with SIGKILL while running jobs ${on2[*]}" \
     "(instance 1 runs ${on1[*]})"

# New requests right away: 5 one after another, 5 at once.
before1=$(status 1 .requests.accepted)
for i in 1 2 3 4 5; do
    get "after$i" "/cancel_event?$q&task_param=after$i"
    wait_all
done
for i in 6 7 8 9 10; do
    get "after$i" "/cancel_event?$q&task_param=after$i"
done
wait_all
for i in $(seq 1 10); do
    expect_json "after$i"
    [ "$(where "after$i")" = 1 ] || t_fail "after$i did not run on instance 1"
done
# +10 requests, +1 for the /status that reports it.
[ $(( $(status 1 .requests.accepted) - before1 )) -eq 11 ] ||
    t_fail "instance 1 did not take the 10 new requests"
t_ok "the 10 requests sent after the kill all succeeded, on instance 1"

wait "${long_pids[@]}"
after_kill=()
for i in "${on2[@]}"; do
    code=$(cat "$T/long$i.code")
    [ "$code" = 502 ] ||
        t_fail "long$i (instance 2): HTTP $code, expected 502"
    # The 502 came at the kill, not at the end of a retry.
    end_ms=$(cat "$T/long$i.end")
    [ $((end_ms - kill_ms)) -lt 1000 ] ||
        t_fail "long$i: the 502 came $((end_ms - kill_ms)) ms after the kill"
    after_kill+=("$((end_ms - kill_ms))")
    [ "$(count "task_param=\"long$i\"" "${LOG[1]}")" -eq 0 ] ||
        t_fail "long$i was run again on instance 1"
done
for i in "${on1[@]}"; do
    expect_json "long$i"
done
t_ok "in flight on the killed instance: 502 (${on2[*]}) at the kill" \
     "(${after_kill[*]} ms after it), not retried; on the survivor: 200" \
     "(${on1[*]})"
grep -q 'upstream prematurely closed' "$T/nginx-error.log" ||
    t_fail "nginx-error.log does not show the lost upstream"

# ---- 4. a client close, after the kill ---------------------------------
gone gone-c
[ "$GONE_ON" = 1 ] || t_fail "gone-c ran on instance $GONE_ON"
t_ok "after the kill, a client close still cancels exactly one job" \
     "(on instance 1)"
[ "$(status 1 .in_flight)" -eq 1 ] || t_fail "instance 1: in_flight not 0"
[ "$(status 1 .requests.failed)" -eq 0 ] || t_fail "instance 1: failed > 0"
t_ok "instance 1: nothing in flight, nothing failed"

# ---- /status and /metrics: local clients only --------------------------
t_check_local_only "$NGINX_URL"
t_ok "conf/nginx-upstream.conf: /status and /metrics answer 127.0.0.1," \
     "403 to 127.0.0.2"
