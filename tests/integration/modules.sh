#!/bin/bash
# SPDX-License-Identifier: MIT
# The module handler with the example modules of examples/, behind a real
# nginx.  -t accepts examples/modules.json and refuses a bad module naming
# the route; the daemon exports the fc_* API and nothing else of itself.
# primes answers exactly; a client that closes at 0.5 s cancels a long
# primes job (client_gone counted) and the server's CPU time then stays
# flat (< 50 ms in the 300 ms after the close).  linewait answers a
# waiting client with the line written to its FIFO, is cancelled at once
# when its client closes (it sleeps in poll() on the token's descriptor),
# leaves no FIFO descriptor open, and answers 504 at its route's deadline.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup

EX=$top_builddir/examples
MODS=$top_builddir/tests/modules

# ---- -t ---------------------------------------------------------------
out=$("$FCGI_CANCEL" -t --config "$EX/modules.json" 2>&1) ||
    t_fail "-t examples/modules.json: $out"
[ "$out" = OK ] || t_fail "-t examples/modules.json: $out"
t_ok "-t passes on examples/modules.json"

# bad_module MODULE SYMBOL: write $T/bad.json with the module as routes[1].
bad_module() {
    cat > "$T/bad.json" <<EOF
{
    "routes": [
        { "path": "/ping", "handler": "ping" },
        { "path": "/m", "handler": "module",
          "module": "$1", "symbol": "$2" }
    ]
}
EOF
}

# refused MESSAGE: -t and a start both fail with "bad.json:5:11: MESSAGE".
refused() {
    local want="$T/bad.json:5:11: $1" out
    if out=$("$FCGI_CANCEL" -t --config "$T/bad.json" 2>&1); then
        t_fail "-t accepted a bad module: $out"
    fi
    [ "$out" = "$want" ] || t_fail "-t said: $out, not: $want"
    if out=$("$FCGI_CANCEL" --listen "unix:$T/bad.sock" \
        --config "$T/bad.json" 2>&1); then
        t_fail "the server started with a bad module"
    fi
    [ "$out" = "$want" ] || t_fail "at start-up: $out, not: $want"
    [ ! -e "$T/bad.sock" ] || t_fail "a socket was bound for a bad config"
}

bad_module /nonexistent/x.so x_handler
refused "routes[1].module: /nonexistent/x.so: cannot open shared object\
 file: No such file or directory"
bad_module "$MODS/badabi.so" badabi_handler
refused "routes[1].module: $MODS/badabi.so: ABI version 7, this server\
 speaks 1"
t_ok "a missing module and a wrong ABI are refused, by -t and at start-up"

# ---- what the daemon exports -------------------------------------------
command -v nm > /dev/null 2>&1 || t_fail "nm not installed (binutils)"
nm -D --defined-only "$FCGI_CANCEL" | awk '{ print $NF }' | sort -u \
    > "$T/exported"
# Every function of the header (but the module's own entry points)...
sed -n 's/^FC_API [^(]*[ *]\(fc_[a-z_]*\)(.*/\1/p' \
    "$top_srcdir/src/fcgi_cancel.h" |
    grep -v '^fc_module_' | sort -u > "$T/api"
[ "$(wc -l < "$T/api")" -ge 20 ] || t_fail "API list: $(cat "$T/api")"
missing=$(comm -23 "$T/api" "$T/exported")
[ -z "$missing" ] || t_fail "not exported: $missing"
# ...and no other symbol of the server's own code.
nm -g --defined-only "$top_builddir/src/libfcgicancel.a" |
    awk 'NF == 3 { print $3 }' | sort -u > "$T/ours"
leaked=$(comm -12 "$T/ours" "$T/exported" | grep -v '^fc_' || true)
[ -z "$leaked" ] || t_fail "exported by the daemon:" $leaked
t_ok "the daemon exports the $(wc -l < "$T/api") API functions and" \
    "nothing else of its own"

# ---- the examples behind nginx ------------------------------------------
FIFO=$T/line.fifo
cat > "$T/conf.json" <<EOF
{
    "workers": 8,
    "routes": [
        { "path": "/status", "handler": "status" },
        { "path": "/primes", "handler": "module",
          "module": "$EX/primes.so", "symbol": "primes_handler",
          "options": { "max_n": 2000000000 } },
        { "path": "/linewait", "handler": "module",
          "module": "$EX/linewait.so", "symbol": "linewait_handler",
          "options": { "fifo": "$FIFO" } },
        { "path": "/linewait-short", "handler": "module", "deadline_ms": 300,
          "module": "$EX/linewait.so", "symbol": "linewait_handler",
          "options": { "fifo": "$FIFO" } },
    ],
}
EOF
t_start_server --config "$T/conf.json"
t_start_nginx

# get PATH: through nginx, body in $T/body; print the status code.
get() {
    curl -s -o "$T/body" -w '%{http_code}' --max-time 30 "$NGINX_URL$1"
}


# gone_is N: true if /status counts N client_gone cancels.
gone_is() {
    [ "$(t_status .cancelled_by_reason.client_gone)" -eq "$1" ]
}

# more_499 N: true once the log has more than N 499s of /linewait.
more_499() {
    [ "$(t_log_count 'GET "/linewait" 499')" -gt "$1" ]
}

# ---- primes -------------------------------------------------------------
for nc in 0:0 2:0 3:1 100:25 1000:168 1000000:78498; do
    n=${nc%:*}
    [ "$(get "/primes?n=$n")" = 200 ] || t_fail "primes n=$n: not 200"
    jq -e --argjson n "$n" --argjson c "${nc#*:}" \
        '.n == $n and .primes == $c' "$T/body" > /dev/null ||
        t_fail "primes n=$n: $(cat "$T/body")"
done
[ "$(get /primes)" = 200 ] &&
    jq -e '.n == 20000000 and .primes == 1270607' "$T/body" > /dev/null ||
    t_fail "primes, default n: $(cat "$T/body")"
[ "$(get '/primes?n=2000000001')" = 400 ] &&
    jq -e '.error == "n must be an integer from 0 to 2000000000"' \
    "$T/body" > /dev/null || t_fail "primes n too large: $(cat "$T/body")"
t_ok "primes: exact counts (n=100: 25, default n=20000000: 1270607), 400" \
    "beyond max_n"

gone0=$(t_status .cancelled_by_reason.client_gone)
cpu0=$(t_cpu_ms)
"$HTTP_CLIENT" -c 500 -t 10000 127.0.0.1 "$NGINX_PORT" \
    '/primes?n=2000000000' > "$T/closed" 2>/dev/null ||
    t_fail "http-client failed"
cpu1=$(t_cpu_ms)
sleep 0.3                   # the window measured, not a readiness wait
cpu2=$(t_cpu_ms)
# At least a clock tick: the job did run (even on a loaded machine).
[ $(( cpu1 - cpu0 )) -gt 0 ] ||
    t_fail "the job did not use the CPU before the close"
[ $(( cpu2 - cpu1 )) -lt 50 ] ||
    t_fail "CPU after the close: $(( cpu2 - cpu1 )) ms in 300 ms"
t_wait_for 3000 t_log_has 'primes stopped: client_gone' ||
    t_fail "the primes job was not stopped"
t_wait_for 3000 gone_is $(( gone0 + 1 )) || t_fail "client_gone not counted"
t_ok "primes n=2e9 closed at 0.5 s: cancelled (client_gone), CPU" \
    "$(( cpu1 - cpu0 )) ms before the close, $(( cpu2 - cpu1 )) ms in the" \
    "300 ms after"

# ---- linewait -----------------------------------------------------------
# fifo_fds: how many descriptors of the server are the FIFO.
fifo_fds() {
    find "/proc/$SERVER_PID/fd" -mindepth 1 -maxdepth 1 -lname "$FIFO" |
        wc -l
}

curl -s -o "$T/line-body" -w '%{http_code}' --max-time 10 \
    "$NGINX_URL/linewait" > "$T/line-code" &
curl_pid=$!
t_track "$curl_pid"
# The handler creates the FIFO and opens it; the write below blocks until
# it has (timeout: in case it never does).
t_wait_for 5000 test -p "$FIFO" || t_fail "linewait did not create $FIFO"
timeout 5 bash -c 'echo "hello, \"fifo\"" > "$1"' _ "$FIFO" ||
    t_fail "could not write a line to $FIFO"
wait "$curl_pid" || t_fail "the waiting client failed"
[ "$(cat "$T/line-code")" = 200 ] || t_fail "linewait: $(cat "$T/line-code")"
jq -e '.line == "hello, \"fifo\""' "$T/line-body" > /dev/null ||
    t_fail "linewait body: $(cat "$T/line-body")"
t_ok "linewait answers a waiting client with the line written to the FIFO"

gone0=$(t_status .cancelled_by_reason.client_gone)
n499=$(t_log_count 'GET "/linewait" 499')
"$HTTP_CLIENT" -c 500 -t 10000 127.0.0.1 "$NGINX_PORT" /linewait \
    > /dev/null 2>&1 || t_fail "http-client failed"
t_wait_for 3000 more_499 "$n499" || t_fail "linewait: no 499 after the close"
line=$(grep 'GET "/linewait" 499' "$T/server.log" | tail -n 1)
ms=$(sed -n 's/.* 499 \([0-9]*\)\.[0-9]*ms .*/\1/p' <<< "$line")
[ -n "$ms" ] && [ "$ms" -lt 600 ] ||
    t_fail "linewait ended $ms ms after its start: $line"
back=$(grep 'job cancelled reason=client_gone' "$T/server.log" | tail -n 1 |
    sed -n 's/.*returned_after_ms=\([0-9]*\)\..*/\1/p')
[ -n "$back" ] && [ "$back" -lt 50 ] ||
    t_fail "linewait returned $back ms after its cancel"
[ "$(t_status .cancelled_by_reason.client_gone)" -eq $(( gone0 + 1 )) ] ||
    t_fail "client_gone not counted for linewait"
[ "$(fifo_fds)" -eq 0 ] || t_fail "the FIFO is still open in the server"
t_ok "linewait: a close at 0.5 s cancels it at once (returned" \
    "${back} ms after the cancel, request over at ${ms} ms), FIFO closed"

start=$(t_now_ms)
code=$(get /linewait-short)
took=$(( $(t_now_ms) - start ))
[ "$code" = 504 ] && [ "$took" -ge 250 ] && [ "$took" -lt 1500 ] ||
    t_fail "linewait deadline: $code after $took ms"
t_ok "linewait with deadline_ms 300: 504 after $took ms"
