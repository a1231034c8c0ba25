#!/bin/bash
# SPDX-License-Identifier: MIT
# Front ends on other hosts, with network namespaces this test creates
# and removes: nginx in namespace N, three fcgi-cancel instances in A, B
# and C, each joined to N by its own veth pair (10.231.K.1 on N's end,
# 10.231.K.2 on the instance's; no other address, no route out), each
# listening on tcp:10.231.K.2:9000 with allowed_clients nginx's address
# and peer_timeout_ms 2000.  nginx reaches each instance on its own
# (/a/, /b/, /c/) and all three as one upstream (with
# fastcgi_next_upstream error timeout).
#   1. The link to A is cut (N's end down: A's host hears nothing more,
#      as when the front-end host vanishes) under three silent 30 s jobs
#      on A: A cancels them, reason client_gone, within peer_timeout_ms
#      and some slack; two jobs on B meanwhile complete.  Link back: A
#      serves again.
#   2. C is killed (SIGKILL) while jobs run on every instance: nginx
#      moves new requests to A and B, the jobs on A and B complete.
#   3. Accounting, on A and B: /status accepted is exactly the requests
#      nginx's log says reached the instance, every one ended
#      (completed + cancelled + failed), and the cancels are the three
#      of the cut.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"

PEER_MS=2000
SLACK_MS=2000           # the probes' 1 s ticks, and scheduling
command -v ip >/dev/null 2>&1 || t_fail "ip (iproute2) is not installed"
command -v nginx >/dev/null 2>&1 || t_fail "nginx is not installed"

t_setup
NS_N=fcc-$$-n
NSES=()
# Namespaces go after everything that runs in them is stopped.
_netns_exit() {
    local rc=$? ns
    trap - EXIT
    set +e
    t_cleanup "$rc"
    for ns in "${NSES[@]}"; do
        ip netns del "$ns" 2>/dev/null
    done
    exit "$rc"
}
trap _netns_exit EXIT

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

ip netns add "$NS_N" || t_fail "cannot create network namespace $NS_N"
NSES+=("$NS_N")
nsx "$NS_N" ip link set lo up
k=0
for x in a b c; do
    k=$((k + 1))
    ns=fcc-$$-$x
    ip netns add "$ns"
    NSES+=("$ns")
    # veth names: at most 15 bytes.
    ip link add "fcn$$$x" netns "$NS_N" type veth peer name "fci$$$x" \
        netns "$ns"
    nsx "$NS_N" ip addr add "10.231.$k.1/30" dev "fcn$$$x"
    nsx "$ns" ip addr add "10.231.$k.2/30" dev "fci$$$x"
    nsx "$NS_N" ip link set "fcn$$$x" up
    nsx "$ns" ip link set "fci$$$x" up
    nsx "$ns" ip link set lo up
done
t_ok "namespaces $NS_N and fcc-$$-{a,b,c}, joined by veth pairs"

# ---------------------------------------------------------------------------
# The instances

declare -A SRV_PID ADDR
k=0
for x in a b c; do
    k=$((k + 1))
    ADDR[$x]=10.231.$k.2:9000
    cat > "$T/$x.json" <<JSON
{ "listen": "tcp:${ADDR[$x]}", "allowed_clients": ["10.231.$k.1"],
  "peer_timeout_ms": $PEER_MS, "workers": 8 }
JSON
    # ip execs the server: $! is the server's PID.
    ip netns exec "fcc-$$-$x" "$FCGI_CANCEL" --config "$T/$x.json" \
        > "$T/server-$x.log" 2>&1 &
    SRV_PID[$x]=$!
    t_track "${SRV_PID[$x]}"
done
for x in a b c; do
    _up() { grep -q "serving on tcp:" "$T/server-$1.log" ||
            ! _t_alive "${SRV_PID[$1]}"; }
    t_wait_for 5000 _up "$x" || t_fail "instance $x did not start"
    _t_alive "${SRV_PID[$x]}" ||
        t_fail "instance $x exited: $(tail -3 "$T/server-$x.log")"
done

# ---------------------------------------------------------------------------
# nginx in N

_fcgi_params() {
    if [ -r /etc/nginx/fastcgi_params ]; then
        echo "include /etc/nginx/fastcgi_params;"
    else
        _t_fastcgi_params_inline
    fi
}
_netns_nginx_write() {
    local x loc=""
    NGINX_PORT=$FE_PORT
    NGINX_URL=$FE_URL
    for x in a b c; do
        loc+="
        location /$x/ {
            rewrite ^/$x(/.*)\$ \$1 break;
            $(_fcgi_params)
            fastcgi_pass ${ADDR[$x]};
            fastcgi_connect_timeout 1s;
            fastcgi_read_timeout 60s;
        }"
    done
    _t_nginx_conf "tests/integration/netns.sh" \
        "'\$remote_addr \"\$request\" \$status ua=\"\$upstream_addr\" us=\"\$upstream_status\"'" \
        "    upstream instances {
        server ${ADDR[a]} max_fails=1 fail_timeout=30s;
        server ${ADDR[b]} max_fails=1 fail_timeout=30s;
        server ${ADDR[c]} max_fails=1 fail_timeout=30s;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location = /__t_nginx_ready { access_log off; return 204; }
        $loc
        location / {
            $(_fcgi_params)
            fastcgi_pass instances;
            fastcgi_connect_timeout 1s;
            fastcgi_read_timeout 60s;
            fastcgi_next_upstream error timeout;
            fastcgi_next_upstream_timeout 10s;
        }
    }"
}
_netns_nginx_ready() {
    local code
    _t_alive "$FE_PID" || return 0
    code=$(nsx "$NS_N" curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
        "$FE_URL/__t_nginx_ready" 2>/dev/null) || return 1
    [ "$code" = 204 ]
}
[ "$(id -u)" != 0 ] || _t_check_worker_access
_t_frontend_run nginx 5000 _netns_nginx_write _netns_nginx_ready \
    ip netns exec "$NS_N" nginx -e "$T/nginx-error.log" -p "$T/" \
    -c "$T/nginx.conf"
NGINX_PID=$FE_PID

# get PATH: GET through nginx from N; prints "CODE BODY".
get() {
    local out
    out=$(nsx "$NS_N" curl -s --max-time 10 -w '\n%{http_code}' \
        "$NGINX_URL$1") || true
    echo "${out##*$'\n'} ${out%$'\n'*}"
}
# bg NAME PATH: GET through nginx in the background (at most 60 s);
# the status goes to $T/NAME.code.
bg() {
    ip netns exec "$NS_N" curl -s -o /dev/null --max-time 60 \
        -w '%{http_code}' "$NGINX_URL$2" > "$T/$1.code" 2>/dev/null &
    t_track "$!"
    BG_PID=$!
}
# count_log X REGEX: matching lines in instance X's log.
count_log() { grep -cE -- "$2" "$T/server-$1.log" || true; }

for x in a b c; do
    [ "$(get "/$x/ping")" = "200 pong" ] ||
        t_fail "instance $x not served through nginx: $(get "/$x/ping")"
done
t_ok "nginx in $NS_N serves the three instances over their veth links"

# ---------------------------------------------------------------------------
# 1. Cut the link to A under running jobs.

pids=()
for i in 1 2 3; do
    bg "cut$i" "/a/cancel_event?steps=30&step_ms=1000&task_param=cut$i"
    pids+=("$BG_PID")
done
for i in 1 2; do
    bg "beside$i" "/b/cancel_event?steps=6&step_ms=1000&task_param=beside$i"
    pids+=("$BG_PID")
done
_started() { [ "$(count_log "$1" 'job start task_param=')" -ge "$2" ]; }
t_wait_for 5000 _started a 3 || t_fail "the jobs on A did not start"
t_wait_for 5000 _started b 2 || t_fail "the jobs on B did not start"
# Let the jobs run past the first keepalive probe (after 1 s of silence).
t_wait_for 3000 _started a 999 || true
nsx "$NS_N" ip link set "fcn$$a" down
t_cut=$(t_now_ms)
_cancelled() {
    [ "$(count_log a 'job cancelled reason=client_gone')" -ge 3 ]
}
t_wait_for $((PEER_MS + SLACK_MS + 1000)) _cancelled ||
    t_fail "A: $(count_log a 'job cancelled reason=client_gone') of 3 jobs" \
           "cancelled $((PEER_MS + SLACK_MS + 1000)) ms after the link was cut"
worst=0
while read -r ts; do
    ms=$(awk -v a="$(t_ms_of "$ts")" -v b="$t_cut" 'BEGIN { printf "%d", a - b }')
    [ "$ms" -le "$worst" ] || worst=$ms
done < <(grep 'job cancelled reason=client_gone' "$T/server-a.log" |
         awk '{ print $1 }')
echo "# A: 3 jobs cancelled (client_gone) at most $worst ms after the link was cut"
[ "$worst" -le $((PEER_MS + SLACK_MS)) ] ||
    t_fail "A: cancelled $worst ms after the cut; bound $PEER_MS + $SLACK_MS ms"
# The first unanswered probe goes out up to 1 s after the cut, and the
# connection fails peer_timeout_ms after the last answer, so no sooner
# than 1 s after the cut; 500 ms says it was the timeout, not the cut.
[ "$worst" -ge 500 ] ||
    t_fail "A: cancelled $worst ms after the cut: before any timeout could fire"
t_ok "link cut: A's 3 silent jobs cancelled (client_gone) $worst ms after," \
     "within peer_timeout_ms $PEER_MS + $SLACK_MS"

nsx "$NS_N" ip link set "fcn$$a" up
_serves_a() { [ "$(get /a/ping)" = "200 pong" ]; }
t_wait_for 5000 _serves_a || t_fail "A not served again after the link came back"
for i in 1 2; do
    wait "${pids[$((2 + i))]}" || true
    [ "$(cat "$T/beside$i.code")" = 200 ] ||
        t_fail "B's job $i: $(cat "$T/beside$i.code") (the cut was A's)"
done
[ "$(count_log b 'job cancelled')" -eq 0 ] || t_fail "B cancelled a job"
# The cut jobs' clients give up now (their nginx connections to A are dead).
t_stop "${pids[0]}" "${pids[1]}" "${pids[2]}"
t_ok "link back: A serves again; B's jobs completed, untouched"

# ---------------------------------------------------------------------------
# 2. Kill C while jobs run everywhere.

pids=()
for i in 1 2 3 4 5 6; do
    bg "up$i" "/cancel_event?steps=3&step_ms=1000&task_param=up$i"
    pids+=("$BG_PID")
done
t_wait_for 5000 _started c 1 || t_fail "no job reached C through the upstream"
kill -KILL "${SRV_PID[c]}"
t_stop "${SRV_PID[c]}"
for i in $(seq 1 12); do
    r=$(get "/cancel_event?steps=1&step_ms=0&task_param=after$i")
    [ "$r" = "200 {\"result\":\"Work completed for after$i\"}" ] ||
        t_fail "after C was killed, request $i: $r"
done
for i in 1 2 3 4 5 6; do
    wait "${pids[$((i - 1))]}" || true
done
for x in a b; do
    [ "$(count_log "$x" 'job cancelled')" -eq "$([ "$x" = a ] && echo 3 || echo 0)" ] ||
        t_fail "$x cancelled jobs of its own after C was killed"
done
# Requests after the kill: served by A or B (nginx may first try C once).
n=$(grep -c '"GET /cancel_event?steps=1&step_ms=0&task_param=after' \
    "$T/nginx-access.log") || true
served=$(grep '"GET /cancel_event?steps=1&step_ms=0&task_param=after' \
    "$T/nginx-access.log" |
    grep -cE "ua=\"([^\"]*, )?(${ADDR[a]}|${ADDR[b]})\" " || true)
[ "$n" -eq 12 ] && [ "$served" -eq 12 ] ||
    t_fail "after C was killed: $served of $n answered by A or B"
t_ok "C killed: 12 new requests answered 200 by A and B; the jobs on A and B" \
     "untouched ($(grep 'task_param=up' "$T/nginx-access.log" | grep -c ' 200 ') of 6" \
     "upstream jobs answered 200, those on C retried elsewhere)"

# ---------------------------------------------------------------------------
# 3. Accounting on A and B: every request nginx's log says reached them.

for x in a b; do
    sent=$(awk -v a="${ADDR[$x]}" '{
        if (match($0, /ua="[^"]*"/)) {
            n = split(substr($0, RSTART + 4, RLENGTH - 5), u, ", ")
            for (i = 1; i <= n; i++) if (u[i] == a) c++
        } } END { print c + 0 }' "$T/nginx-access.log")
    get "/$x/status" | cut -d' ' -f2- > "$T/status-$x.json"
    read -r acc com can fail inflight gone < <(jq -r '[.requests.accepted,
        .requests.completed, .requests.cancelled, .requests.failed,
        .in_flight, .cancelled_by_reason.client_gone] | @tsv' \
        "$T/status-$x.json")
    echo "# $x: nginx sent $sent before this /status; accepted $acc," \
         "completed $com, cancelled $can (client_gone $gone), failed $fail," \
         "in flight $inflight"
    [ "$acc" -eq $((sent + 1)) ] ||
        t_fail "$x: accepted $acc, but nginx sent it $sent (+1: this /status)"
    [ "$inflight" -eq 1 ] && [ $((com + can + fail)) -eq $((acc - 1)) ] ||
        t_fail "$x: completed $com + cancelled $can + failed $fail != accepted $acc - 1"
    [ "$fail" -eq 0 ] || t_fail "$x: $fail failed"
    want=0
    [ "$x" != a ] || want=3
    [ "$can" -eq "$want" ] && [ "$gone" -eq "$want" ] ||
        t_fail "$x: cancelled $can (client_gone $gone), $want expected"
done
t_ok "accounting exact on A and B: accepted = what nginx sent," \
     "all ended, the only cancels the 3 of the cut"
