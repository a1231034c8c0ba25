#!/bin/bash
# SPDX-License-Identifier: MIT
# The exec handler behind a real nginx, with the programs of tests/data:
# CGI Status and headers reach the client; a failing or vanished program
# gives a 502 naming the route; a 200 KB body goes through `cat` intact;
# the environment is the CGI allow-list and nothing of the server's; and
# whatever ends the request (client close, FCGI_ABORT_REQUEST, deadline,
# or the program completing) takes the program's whole process group down,
# SIGKILL after kill_grace_ms for one that ignores SIGTERM.  The server
# leaks no descriptor and no zombie.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup

D=$top_srcdir/tests/data
cp "$D/status201.sh" "$T/gone.sh"
cat > "$T/conf.json" <<EOF
{
    "workers": 8,
    "routes": [
        { "path": "/status", "handler": "status" },
        { "path": "/status201", "handler": "exec",
          "argv": ["$D/status201.sh"] },
        { "path": "/fail", "handler": "exec", "argv": ["$D/fail.sh"] },
        { "path": "/gone", "handler": "exec", "argv": ["$T/gone.sh"] },
        { "path": "/cat", "handler": "exec", "methods": ["POST"],
          "argv": ["$D/cat.sh"] },
        { "path": "/env", "handler": "exec", "methods": ["GET", "POST"],
          "argv": ["$D/env.sh"], "cwd": "$T",
          "env": { "ROUTE_VAR": "from the route" } },
        { "path": "/progress", "handler": "exec",
          "argv": ["$D/progress.sh"],
          "env": { "PID_FILE": "$T/progress.pid" } },
        { "path": "/short", "handler": "exec",
          "argv": ["$D/progress.sh"],
          "env": { "PID_FILE": "$T/short.pid", "STEPS": "3" } },
        { "path": "/ignore-term", "handler": "exec",
          "argv": ["$D/ignore-term.sh"], "kill_grace_ms": 300,
          "env": { "PID_FILE": "$T/ignore.pid" } },
        { "path": "/silent", "handler": "exec", "deadline_ms": 300,
          "argv": ["/bin/sleep", "37.25"], "output": "raw",
          "content_type": "text/plain" },
    ],
}
EOF
# Must not reach any program.
export EXEC_TEST_SERVER_SECRET=leaked
t_start_server --config "$T/conf.json"
unset EXEC_TEST_SERVER_SECRET
t_start_nginx

# get PATH [CURL ARGS...]: through nginx, body in $T/body, headers in
# $T/head; print the status code.
get() {
    local path=$1
    shift
    curl -s -D "$T/head" -o "$T/body" -w '%{http_code}' "$@" \
        "$NGINX_URL$path"
}

# pid_of FILE: wait up to 5 s for a program to write its PID into FILE.
pid_of() {
    t_wait_for 5000 test -s "$1" || t_fail "no PID in $1"
    cat "$1"
}

# dead PID: true if PID is gone or a zombie (orphans go to init).
dead() {
    ! _t_alive "$1"
}

# group_gone PGID: true if no live process is left in group PGID.
group_gone() {
    local f s pg rest
    for f in /proc/[0-9]*/stat; do
        { read -r s < "$f"; } 2>/dev/null || continue
        rest=${s##*) }              # "STATE PPID PGRP ..."
        [ "${rest%% *}" = Z ] && continue
        rest=${rest#* }
        rest=${rest#* }
        pg=${rest%% *}
        [ "$pg" = "$1" ] && return 1
    done
    return 0
}

# pgid_of PID: the process group of PID.
pgid_of() {
    local s rest
    read -r s < "/proc/$1/stat"
    rest=${s##*) }
    rest=${rest#* }
    rest=${rest#* }
    echo "${rest%% *}"
}

# fd_count: how many descriptors the server has open.
fd_count() {
    find "/proc/$SERVER_PID/fd" -mindepth 1 -maxdepth 1 | wc -l
}

# fds_back: true once the server has no more descriptors than at the start.
fds_back() {
    [ "$(fd_count)" -le "$fds_before" ]
}

# silent_gone: true once the /silent route's program is gone.
silent_gone() {
    ! pgrep -f '^/bin/sleep 37\.25$' > /dev/null
}

# A first request, so that what the server opens once is open.
[ "$(get /status201)" = 201 ] || t_fail "/status201 warm-up"
fds_before=$(fd_count)

# ---- CGI output -----------------------------------------------------------
[ "$(get /status201)" = 201 ] || t_fail "/status201: $(cat "$T/head")"
grep -qi '^X-Custom: yes' "$T/head" || t_fail "/status201: no X-Custom"
grep -qi '^Content-Type: text/plain' "$T/head" ||
    t_fail "/status201: no Content-Type"
[ "$(cat "$T/body")" = created ] || t_fail "/status201 body: $(cat "$T/body")"
t_ok "CGI Status: 201 and X-Custom reach the client"

[ "$(get /fail)" = 502 ] || t_fail "/fail: not 502"
jq -e '.status == 502 and .error == "exec route /fail: program failed"' \
    "$T/body" > /dev/null || t_fail "/fail body: $(cat "$T/body")"
t_wait_for 2000 t_log_has 'stderr: fail\.sh: failing on purpose' ||
    t_fail "fail.sh's stderr is not in the log"
t_log_has 'exec route /fail: .*fail\.sh failed: exit status 3' ||
    t_fail "no exit status 3 in the log"
t_ok "a program failing before any output: 502, stderr and status logged"

rm -f "$T/gone.sh"
[ "$(get /gone)" = 502 ] || t_fail "/gone: not 502"
jq -e '.error == "exec route /gone: cannot start program"' "$T/body" \
    > /dev/null || t_fail "/gone body: $(cat "$T/body")"
t_log_has 'exec route /gone: cannot start .*gone\.sh: No such file' ||
    t_fail "/gone: the reason is not logged"
t_ok "a program deleted after load: 502 naming the route"

# ---- stdin and stdout at once ---------------------------------------------
head -c 204800 /dev/urandom > "$T/big"
[ "$(get /cat --data-binary "@$T/big" \
    -H 'Content-Type: application/x-test')" = 200 ] || t_fail "/cat: not 200"
cmp -s "$T/big" "$T/body" || t_fail "/cat: the body came back different"
t_ok "a 200 KB body goes through cat.sh intact"

# ---- the environment ------------------------------------------------------
[ "$(get '/env?a=1&b=2' -H 'Proxy: http://evil:3128' -H 'X-Test: yes' \
    -H 'User-Agent: exec-test')" = 200 ] || t_fail "/env: not 200"
for want in 'GATEWAY_INTERFACE=CGI/1.1' 'REQUEST_METHOD=GET' \
    'QUERY_STRING=a=1&b=2' 'REQUEST_URI=/env?a=1&b=2' 'SCRIPT_NAME=/env' \
    'SERVER_PROTOCOL=HTTP/1.1' 'HTTP_USER_AGENT=exec-test' \
    'PATH=/usr/local/bin:/usr/bin:/bin' 'ROUTE_VAR=from the route' \
    "PWD=$T"; do
    grep -qxF -- "$want" "$T/body" || t_fail "/env: no $want"
done
for bad in HTTP_PROXY EXEC_TEST_SERVER_SECRET LD_PRELOAD HOME; do
    if grep -q "^$bad=" "$T/body"; then
        t_fail "/env: $bad reached the program"
    fi
done
[ "$(get /env --data-binary 'hello' -H 'Content-Type: text/x-a')" = 200 ] ||
    t_fail "POST /env: not 200"
grep -qx 'CONTENT_LENGTH=5' "$T/body" || t_fail "/env: CONTENT_LENGTH"
grep -qx 'CONTENT_TYPE=text/x-a' "$T/body" || t_fail "/env: CONTENT_TYPE"
grep -qx 'hello' "$T/body" || t_fail "/env: the body is not on stdin"
t_ok "CGI environment, cwd; no HTTP_PROXY, nothing of the server's"

# ---- cancel: client close through nginx -----------------------------------
rm -f "$T/progress.pid"
"$HTTP_CLIENT" -c 500 -t 10000 127.0.0.1 "$NGINX_PORT" /progress \
    > "$T/closed" 2>&1 &
client=$!
gc=$(pid_of "$T/progress.pid")
pg=$(pgid_of "$gc")
wait "$client" || t_fail "http-client failed"
closed=$(sed -n 's/^closed_at_ms=//p' "$T/closed")
t_wait_for 2000 group_gone "$pg" ||
    t_fail "process group $pg outlived the client's close"
dead "$gc" || t_fail "the grandchild $gc survived"
t_wait_for 2000 \
    t_log_has 'access req=[0-9]+ GET "/progress" 499 .*client_gone' ||
    t_fail "no 499 client_gone for /progress"
gone_ms=$(awk -v c="$closed" -v n="$(t_now_ms)" \
    'BEGIN { printf "%.0f", n - c }')
t_ok "client close: progress.sh and its sleep 300 gone" \
    "(checked ${gone_ms} ms after the close)"

# ---- cancel: SIGKILL after kill_grace_ms ----------------------------------
rm -f "$T/ignore.pid"
"$HTTP_CLIENT" -c 500 -t 10000 127.0.0.1 "$NGINX_PORT" /ignore-term \
    > "$T/closed" 2>&1 &
client=$!
pg=$(pid_of "$T/ignore.pid")
wait "$client" || t_fail "http-client failed"
t_wait_for 2000 t_log_has 'ignore-term\.sh: SIGTERM ignored' ||
    t_fail "ignore-term.sh got no SIGTERM"
t_wait_for 3000 group_gone "$pg" || t_fail "ignore-term.sh outlived the grace"
t_log_has "pid $pg still running after 300 ms: SIGKILL to its group" ||
    t_fail "no SIGKILL after the grace in the log"
t_ok "a program that ignores SIGTERM is killed after kill_grace_ms"

# ---- cancel: FCGI_ABORT_REQUEST, no front end -----------------------------
rm -f "$T/progress.pid"
t_fcgi -u /progress -a 500 -q -t 10000 2> "$T/abort.err" ||
    t_fail "fcgi-client -a: $(cat "$T/abort.err")"
gc=$(pid_of "$T/progress.pid")
t_wait_for 2000 dead "$gc" || t_fail "abort: the grandchild $gc survived"
t_wait_for 2000 t_log_has 'GET "/progress" .*reason=aborted' ||
    t_fail "no aborted /progress in the access log"
t_ok "FCGI_ABORT_REQUEST: the group is killed"

# ---- deadline: 504, the program killed ------------------------------------
[ "$(get /silent)" = 504 ] || t_fail "/silent: not 504"
t_wait_for 2000 silent_gone ||
    t_fail "the deadline left /bin/sleep 37.25 running"
t_ok "deadline: 504 and the program killed"

# ---- completion: a background child does not outlive the request ----------
rm -f "$T/short.pid"
[ "$(get /short)" = 200 ] || t_fail "/short: not 200"
[ "$(grep -c '^progress [1-3] of 3$' "$T/body")" = 3 ] ||
    t_fail "/short body: $(cat "$T/body")"
gc=$(pid_of "$T/short.pid")
t_wait_for 2000 dead "$gc" || t_fail "the background sleep 300 survived"
t_ok "the request ends with the program; its background child is killed"

# ---- nothing leaked -------------------------------------------------------
# 300 more exec requests, 4 clients at a time, each answered 201.
pids=()
for k in 1 2 3 4; do
    urls=()
    for _ in $(seq 1 75); do urls+=("$NGINX_URL/status201"); done
    curl -s -o /dev/null -w '%{http_code}\n' "${urls[@]}" > "$T/many$k" &
    pids+=($!)
done
wait "${pids[@]}"
[ "$(cat "$T"/many? | grep -c '^201$')" -eq 300 ] ||
    t_fail "300 exec requests: $(sort "$T"/many? | uniq -c | tr '\n' ' ')"
t_wait_for 3000 fds_back ||
    t_fail "server fds: $fds_before before, $(fd_count) after"
zombies=$( (ps -o pid= --ppid "$SERVER_PID" || true) | wc -l)
[ "$zombies" -eq 0 ] || t_fail "$zombies children of the server left"
t_ok "after 300 more exec requests: no descriptor and no child left in the server"
