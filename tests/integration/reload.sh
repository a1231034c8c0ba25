#!/bin/bash
# SPDX-License-Identifier: MIT
# Live reload (SIGHUP), behind a real nginx.  A good file: a route added is
# served, a route removed is 404, a module route added is served, the
# size limit and the access log (file and format) of the new file apply,
# /status and the log say generation 2.  A job that began before the
# reload finishes under its old route (its old options and timing), and
# its generation is freed only then.  A key that needs a restart
# (workers) is named in the log and left as it was.  A bad file is
# refused with -t's FILE:LINE:COL message and the old routes go on
# serving.  Under load (wrk through nginx, 2 threads, 16 connections, 4
# s) six reloads alternating two files cost no failed request.  Without
# -c, SIGHUP reopens the logs and says there is nothing to read.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup

EX=$top_builddir/examples
CONF=$T/conf.json

command -v wrk > /dev/null 2>&1 || t_fail "wrk is not installed"

# install FILE: make FILE the configuration, replaced at once (rename).
install_conf() {
    cp "$1" "$T/conf.tmp"
    mv "$T/conf.tmp" "$CONF"
}

# reload N: SIGHUP, then wait for the log to say generation N.
reload() {
    kill -HUP "$SERVER_PID"
    t_wait_for 5000 t_log_has "reload: generation $1: " ||
        t_fail "no 'reload: generation $1' in the log"
}

# get PATH: through nginx, body in $T/body; print the status code.
get() {
    curl -s -o "$T/body" -w '%{http_code}' --max-time 30 "$NGINX_URL$1"
}

# expect PATH CODE [BODY-REGEX]: get PATH, fail unless CODE (and BODY).
expect() {
    local code
    code=$(get "$1")
    [ "$code" = "$2" ] || t_fail "$1: $code, not $2: $(cat "$T/body")"
    if [ -n "${3-}" ]; then
        grep -qE -- "$3" "$T/body" || t_fail "$1: body $(cat "$T/body")"
    fi
}

cat > "$T/a.json" <<EOF
{
    "workers": 8,
    "routes": [
        { "path": "/status", "handler": "status" },
        { "path": "/ping", "handler": "ping" },
        { "path": "/old", "handler": "ping" },
        { "path": "/slow", "handler": "work", "task_param": "old",
          "steps": 8, "step_ms": 250 },
    ],
}
EOF
cat > "$T/b.json" <<EOF
{
    "workers": 4,
    "max_body_bytes": 1000,
    "access_log": "$T/access.log",
    "access_log_format": "json",
    "routes": [
        { "path": "/status", "handler": "status" },
        { "path": "/ping", "handler": "ping" },
        { "path": "/new", "handler": "ping" },
        { "path": "/primes", "handler": "module",
          "module": "$EX/primes.so", "symbol": "primes_handler" },
        { "path": "/slow", "handler": "work", "task_param": "new",
          "steps": 1, "step_ms": 10 },
    ],
}
EOF

install_conf "$T/a.json"
t_start_server --config "$CONF"
t_start_nginx
# The line comes once the workers have started, maybe after the socket
# answers (which is what t_start_server waits for).
t_wait_for 5000 t_log_has 'routes, configuration generation 1$' ||
    t_fail "the start-up line does not name generation 1"
[ "$(t_status .generation)" = 1 ] || t_fail "/status: generation not 1"
expect /old 200 '^pong$'
expect /new 404
expect /primes 404

# ---- a good file ----------------------------------------------------------
# A job of the old /slow (8 x 250 ms, "old") is running when the file
# changes to one whose /slow is 1 x 10 ms, "new".
t0=$(t_now_ms)
curl -s -o "$T/slow.body" --max-time 30 "$NGINX_URL/slow" &
SLOW_PID=$!
t_track "$SLOW_PID"
t_wait_for 5000 t_log_has 'job start task_param="old"' ||
    t_fail "the old /slow job did not start"
install_conf "$T/b.json"
reload 2

expect /new 200 '^pong$'
expect /old 404
expect '/primes?n=100' 200 '"primes":25'
expect /slow 200 'Work completed for new'
[ "$(t_status .generation)" = 2 ] || t_fail "/status: generation not 2"
t_log_has 'reload: generation 2: 5 routes; changed: .*route \+/new' ||
    t_fail "the reload line does not say what changed"
t_ok "good file: /new and the module route /primes served, /old 404," \
    "/status generation 2"

# The size limit of the new file: a 2000-byte body now gets 413.
t_fcgi -m POST -u /ping -B "$(head -c 2000 /dev/zero | tr '\0' x)" \
    2>/dev/null | grep -q '^Status: 413' ||
    t_fail "max_body_bytes 1000 of the new file does not apply"
# The access log of the new file, in its format.
t_wait_for 2000 grep -q '"path":"/new"' "$T/access.log" ||
    t_fail "the new access log (json) does not get /new"
t_ok "limits and the access log (file, format) of the new file apply"

# The old job is still running: its generation is not freed yet.
t_log_has 'generation 1: freed' &&
    t_fail "generation 1 freed while its job runs"
wait "$SLOW_PID" || t_fail "the old /slow request failed"
t1=$(t_now_ms)
grep -q 'Work completed for old' "$T/slow.body" ||
    t_fail "the old job: $(cat "$T/slow.body")"
[ $(( t1 - t0 )) -ge 1900 ] ||
    t_fail "the old job took $(( t1 - t0 )) ms, not its 8 x 250 ms"
t_wait_for 2000 t_log_has 'generation 1: freed' ||
    t_fail "generation 1 not freed after its last request"
t_ok "a job begun before the reload finished under its old route" \
    "($(( t1 - t0 )) ms, \"old\"), then generation 1 was freed"

t_log_has 'reload: workers changed: needs a restart' ||
    t_fail "the log does not name workers as needing a restart"
[ "$(t_status .workers.total)" = 8 ] ||
    t_fail "workers changed without a restart"
t_ok "workers (needs a restart) named in the log and left at 8"

# ---- a bad file -------------------------------------------------------------
printf '{\n    "routes": [\n        { "path": "/x", , }\n    ]\n}\n' \
    > "$T/bad.json"
install_conf "$T/bad.json"
if want=$("$FCGI_CANCEL" -t --config "$CONF" 2>&1); then
    t_fail "-t accepted the bad file"
fi
case $want in
"$CONF":3:*) ;;
*) t_fail "-t said: $want" ;;
esac
kill -HUP "$SERVER_PID"
t_wait_for 5000 t_log_has 'reload: refused' ||
    t_fail "the bad file was not refused"
grep -qF "reload: refused, generation 2 goes on serving: $want" \
    "$T/server.log" || t_fail "the refusal does not quote -t ($want)"
expect /new 200 '^pong$'
expect '/primes?n=1000' 200 '"primes":168'
[ "$(t_status .generation)" = 2 ] || t_fail "generation changed"
t_ok "bad file refused with -t's message ($want), generation 2 serves"

# ---- under load ---------------------------------------------------------
# Two files with the module route, alternating; wrk on the module route.
for f in 1 2; do
    sed -e "s|\"/new\"|\"/load$f\"|" -e "s|\"workers\": 4|\"workers\": 8|" \
        "$T/b.json" > "$T/load$f.json"
done
install_conf "$T/load1.json"
reload 3
wrk -t2 -c16 -d4s "$NGINX_URL/primes?n=1000" > "$T/wrk.out" 2>&1 &
WRK_PID=$!
t_track "$WRK_PID"
# Six reloads, one each time the server has served 100 more requests
# (bounded: 3 s each).
gen=3
for i in 1 2 3 4 5 6; do
    n0=$(t_status .requests.accepted)
    more() { [ "$(t_status .requests.accepted)" -ge $(( n0 + 100 )) ]; }
    t_wait_for 3000 more || t_fail "wrk is not getting answers"
    install_conf "$T/load$(( i % 2 + 1 )).json"
    gen=$(( gen + 1 ))
    reload "$gen"
done
kill -0 "$WRK_PID" 2>/dev/null || t_fail "wrk ended before the reloads did"
wait "$WRK_PID" || t_fail "wrk failed: $(cat "$T/wrk.out")"
reqs=$(awk '/requests in/ { print $1 }' "$T/wrk.out")
[ "${reqs:-0}" -ge 500 ] || t_fail "wrk: too few requests: $(cat "$T/wrk.out")"
grep -q 'Non-2xx or 3xx responses' "$T/wrk.out" &&
    t_fail "wrk: failed requests: $(cat "$T/wrk.out")"
grep -q 'Socket errors' "$T/wrk.out" &&
    t_fail "wrk: socket errors: $(cat "$T/wrk.out")"
[ "$(t_status .generation)" = "$gen" ] ||
    t_fail "/status: generation $(t_status .generation), not $gen"
[ "$(t_status .requests.failed)" = 0 ] || t_fail "failed requests"
t_ok "under load: $reqs requests, 6 reloads, 0 non-2xx, 0 socket errors"

# ---- no configuration file ------------------------------------------------
t_stop_server || t_fail "the server did not stop"
t_start_server
kill -HUP "$SERVER_PID"
t_wait_for 5000 t_log_has 'reload: no configuration file' ||
    t_fail "SIGHUP without -c: nothing said"
t_log_has 'SIGHUP: logs reopened' || t_fail "SIGHUP without -c: no reopen"
t_fcgi -q -u /ping 2>/dev/null || t_fail "/ping after SIGHUP without -c"
t_ok "without -c, SIGHUP reopens the logs and says there is no file"
