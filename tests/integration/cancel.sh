#!/bin/bash
# SPDX-License-Identifier: MIT
# A client that gives up cancels its job, behind a real nginx: for each of
# the three routes, in mode=sleep and mode=cpu, a client that closes (FIN)
# or resets (RST) its connection at ~1.5 s.  /status must show client_gone
# up by one per client and nothing completed, and the job's log must show
# no step started after the close (steps 0 and 1 only, both before it).
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup
t_start_server --workers 16
t_start_nginx


curl -s "$NGINX_URL/status" > "$T/status-before"
before_gone=$(jq .cancelled_by_reason.client_gone "$T/status-before")
before_done=$(jq .requests.completed "$T/status-before")

cases=()
for route in cancel_tg cancel_tg_dependency cancel_event; do
    for mode in sleep cpu; do
        for how in c r; do
            cases+=("$route:$mode:$how")
        done
    done
done
# cpu jobs burn a core each: run the cases in two waves of six.
run_wave() {
    local c route mode how pids=()
    for c in "$@"; do
        IFS=: read -r route mode how <<< "$c"
        "$HTTP_CLIENT" -"$how" 1500 -t 10000 127.0.0.1 "$NGINX_PORT" \
            "/$route?mode=$mode&task_param=$route-$mode-$how" \
            > "$T/closed-$route-$mode-$how" &
        pids+=($!)
    done
    wait "${pids[@]}"
}
run_wave "${cases[@]:0:6}"
run_wave "${cases[@]:6:6}"

lat=()
for c in "${cases[@]}"; do
    IFS=: read -r route mode how <<< "$c"
    tp="$route-$mode-$how"
    closed=$(sed -n 's/^closed_at_ms=//p' "$T/closed-$tp")
    [ -n "$closed" ] || t_fail "$tp: the client did not close"
    id=$(sed -n "s/.* info req=\([0-9]*\) job start task_param=\"$tp\".*/\1/p" \
        "$T/server.log")
    [ -n "$id" ] || t_fail "$tp: no job start in the log"
    t_wait_for 3000 t_log_has "req=$id job cancelled reason=client_gone" ||
        t_fail "$tp: req $id not cancelled with client_gone"
    # No step after the close; with 1 s steps and a close at 1.5 s, that
    # is exactly steps 0 and 1.
    steps=$(grep -cE " req=$id Working\.\.\. " "$T/server.log" || true)
    [ "$steps" -eq 2 ] || t_fail "$tp: $steps steps started, expected 2"
    last=$(grep -E " req=$id Working\.\.\. " "$T/server.log" | tail -n 1 |
        cut -d' ' -f1)
    awk -v a="$(t_ms_of "$last")" -v b="$closed" 'BEGIN { exit !(a < b) }' ||
        t_fail "$tp: a step started after the close"
    ret=$(grep -E " req=$id job cancelled" "$T/server.log" | cut -d' ' -f1)
    ms=$(awk -v a="$(t_ms_of "$ret")" -v b="$closed" 'BEGIN { printf "%.1f", a - b }')
    # Generous bound: this is a functional check, bench/ has the figures.
    awk -v m="$ms" 'BEGIN { exit !(m < 500) }' ||
        t_fail "$tp: the job returned $ms ms after the close"
    lat+=("$ms")
    t_ok "$tp: cancelled (client_gone), 2 steps, returned $ms ms after the close"
done

curl -s "$NGINX_URL/status" > "$T/status-after"
gone=$(jq .cancelled_by_reason.client_gone "$T/status-after")
done_=$(jq .requests.completed "$T/status-after")
[ $((gone - before_gone)) -eq 12 ] ||
    t_fail "client_gone went from $before_gone to $gone, expected +12"
# The only request completed meanwhile is the first /status itself.
[ $((done_ - before_done)) -eq 1 ] ||
    t_fail "completed went from $before_done to $done_, expected +1 (/status)"
[ "$(jq .in_flight "$T/status-after")" -eq 1 ] ||
    t_fail "in_flight not back to 0"
t_ok "status: client_gone +12, completed unchanged, in_flight 0 (but this request)"
echo "close -> job returned (ms, client clock to server log): ${lat[*]}"
