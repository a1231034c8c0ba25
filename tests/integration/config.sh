#!/bin/bash
# SPDX-License-Identifier: MIT
# The configuration file through the binary and a real nginx: -t on the
# examples in conf/, -t and start-up errors with FILE:LINE:COL (and names
# of users and groups that do not exist), flags that override the file;
# -t on listen addresses: taken, free, a missing directory, and what it
# cannot tell; deadlines (504 and no step after it; nginx shortening
# one with fastcgi_param FCGI_CANCEL_DEADLINE_MS); a body over
# max_body_bytes gets 413 without the job starting.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup

# -t on every example in conf/ and examples/.
for f in "$top_srcdir"/conf/*.json "$top_srcdir"/examples/*.json; do
    [ -e "$f" ] || continue
    out=$("$FCGI_CANCEL" -t --config "$f" 2>&1) || t_fail "-t $f: $out"
    [ "$out" = OK ] || t_fail "-t $f said: $out"
    t_ok "-t passes on ${f#"$top_srcdir"/}"
done
out=$("$FCGI_CANCEL" -t 2>&1) && [ "$out" = OK ] || t_fail "-t without a file: $out"

# Errors: the same message from -t and from a server start, exit 1.
printf '{\n  "workers": 4\n  "grace_ms": 10\n}\n' > "$T/syntax.json"
printf '{ "routes": [ { "path": "/x", "handler": "work",\n  "deadline_ms": 0 } ] }\n' > "$T/range.json"
printf '{ "wrokers": 4 }\n' > "$T/unknown.json"
printf '{ "socket_group": "fc-no-such-group" }\n' > "$T/sgroup.json"
printf '{ "user": "fc-no-such-user" }\n' > "$T/user.json"
printf '{ "user": "nobody", "group": "fc-no-such-group" }\n' > "$T/group.json"
for c in "syntax.json:3:3: expected ',' or '}' after a value" \
    'sgroup.json: socket_group: no such group "fc-no-such-group"' \
    'user.json: user: no such user "fc-no-such-user"' \
    'group.json: group: no such group "fc-no-such-group"' \
    "range.json:2:3: routes\[0\].deadline_ms: must be 1..86400000" \
    "unknown.json:1:3: wrokers: unknown key" \
    "missing.json: No such file or directory"; do
    f=${c%%:*}
    want="$T/${c}"
    rc=0
    out=$("$FCGI_CANCEL" -t --config "$T/$f" 2>&1) || rc=$?
    [ "$rc" -eq 1 ] || t_fail "-t $f: exit $rc"
    grep -qE "^$want\$" <<< "$out" || t_fail "-t $f said '$out', expected '$want'"
    rc=0
    out2=$(timeout 5 "$FCGI_CANCEL" --config "$T/$f" --listen "unix:$T/x.sock" 2>&1) || rc=$?
    [ "$rc" -eq 1 ] && [ "$out2" = "$out" ] ||
        t_fail "start with $f: exit $rc, '$out2'"
    [ ! -e "$T/x.sock" ] || t_fail "a socket was created for a bad config"
    t_ok "$f: -t and start-up both say: $out"
done

# A file with routes, and flags that override it.
cat > "$T/conf.json" <<JSON
{
    // comments and trailing commas are fine
    "workers": 8,
    "max_body_bytes": 1000,
    "routes": [
        { "path": "/status", "handler": "status" },
        { "path": "/slow", "handler": "work", "style": "wait",
          "steps": 10, "step_ms": 200, "deadline_ms": 500 },
        { "path": "/long", "handler": "work", "style": "poll",
          "steps": 10, "step_ms": 200 },
        { "path": "/post", "handler": "work", "methods": ["POST"],
          "steps": 0, "task_param": "posted" },
    ],
}
JSON
t_start_server --config "$T/conf.json" --workers 3
t_start_nginx 'fastcgi_keep_conn on;'
[ "$(t_status .workers.total)" -eq 3 ] || t_fail "--workers did not override"
t_ok "--workers 3 overrides the file's 8"

# -t binds a TCP address and lets it go, and looks at a unix path, as
# start-up would: an address in use (nginx's port, the running server's
# socket) or a missing directory is an error, a free address is OK.
port=$(t_free_port)
for c in "tcp:127.0.0.1:$NGINX_PORT|tcp:127.0.0.1:$NGINX_PORT: Address already in use" \
    "$FCGI_ADDR|$FCGI_ADDR: in use by a running server" \
    "unix:$T/no-dir/x.sock|unix:$T/no-dir/x.sock: the directory does not exist" \
    "tcp:127.0.0.1:$port|" "unix:$T/free.sock|"; do
    addr=${c%%|*}
    want=${c#*|}
    rc=0
    out=$("$FCGI_CANCEL" -t --listen "$addr" 2>&1) || rc=$?
    if [ -z "$want" ]; then
        [ "$rc" -eq 0 ] && [ "$out" = OK ] || t_fail "-t --listen $addr: $out"
        continue
    fi
    [ "$rc" -eq 1 ] && [ "$out" = "fcgi-cancel: listen: $want" ] ||
        t_fail "-t --listen $addr: exit $rc, '$out'"
done
[ ! -e "$T/free.sock" ] || t_fail "-t left a socket file behind"
t_ok "-t on listen: addresses in use and a missing directory refused, free ones OK"

# What -t cannot tell, it says, and passes: port 1 as a user who may not
# bind it (the server, started as root, may).
as_nobody=()
if [ "$(id -u)" = 0 ]; then
    as_nobody=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
rc=0
out=$("${as_nobody[@]}" "$FCGI_CANCEL" -t --listen tcp:127.0.0.1:1 \
    2> "$T/note") || rc=$?
[ "$rc" -eq 0 ] && [ "$out" = OK ] || t_fail "-t on port 1 as nobody: $rc $out"
grep -qx 'fcgi-cancel: listen: cannot tell whether tcp:127.0.0.1:1 can be bound: the port needs root (or CAP_NET_BIND_SERVICE), which -t run as uid [0-9]* lacks' \
    "$T/note" || t_fail "-t on port 1 as nobody said: $(cat "$T/note")"
t_ok "-t says what it cannot tell (port 1 as uid $("${as_nobody[@]}" id -u)) and passes"

# Deadline: 504 JSON after 500 ms, the job stopped (no step after it).
start=$(t_now_ms)
code=$(curl -s -o "$T/body" -w '%{http_code}' "$NGINX_URL/slow?task_param=dl")
took=$(( $(t_now_ms) - start ))
[ "$code" = 504 ] || t_fail "deadline: status $code"
jq -e '.status == 504 and (.error | test("deadline"))' "$T/body" > /dev/null ||
    t_fail "deadline body: $(cat "$T/body")"
[ "$took" -ge 450 ] && [ "$took" -lt 2000 ] || t_fail "deadline after $took ms"
id=$(sed -n 's/.* req=\([0-9]*\) job start task_param="dl".*/\1/p' "$T/server.log")
t_log_has "req=$id job cancelled reason=deadline" || t_fail "not cancelled: deadline"
[ "$(grep -cE " req=$id Working" "$T/server.log")" -eq 3 ] ||
    t_fail "steps after the deadline (expected 0,1,2 at 0, 200, 400 ms)"
t_ok "deadline_ms 500: 504 JSON after $took ms, job cancelled (deadline)"

# nginx shortens the deadline of a route that has none.
t_start_nginx 'fastcgi_param FCGI_CANCEL_DEADLINE_MS 300;'
start=$(t_now_ms)
code=$(curl -s -o "$T/body" -w '%{http_code}' "$NGINX_URL/long")
took=$(( $(t_now_ms) - start ))
[ "$code" = 504 ] && [ "$took" -lt 1500 ] ||
    t_fail "FCGI_CANCEL_DEADLINE_MS: $code after $took ms"
code=$(curl -s -o "$T/body" -w '%{http_code}' "$NGINX_URL/slow")
[ "$code" = 504 ] || t_fail "param + route deadline: $code"
t_ok "fastcgi_param FCGI_CANCEL_DEADLINE_MS 300: 504 after $took ms"

# 413: the body is refused, the job never starts, the next request works.
t_start_nginx 'fastcgi_keep_conn on;'
before=$(t_log_count 'task_param="posted"')
head -c 5000 /dev/zero > "$T/big"
code=$(curl -s -o "$T/body" -w '%{http_code}' --data-binary @"$T/big" \
    "$NGINX_URL/post")
[ "$code" = 413 ] && jq -e '.status == 413' "$T/body" > /dev/null ||
    t_fail "big body: $code $(cat "$T/body")"
[ "$(t_log_count 'task_param="posted"')" -eq "$before" ] ||
    t_fail "the job started for a refused body"
code=$(curl -s -o "$T/body" -w '%{http_code}' --data-binary 'small' \
    "$NGINX_URL/post")
[ "$code" = 200 ] && [ "$(jq -r .result "$T/body")" = "Work completed for posted" ] ||
    t_fail "after 413: $code $(cat "$T/body")"
# Raw client: a declared length over the limit, body never sent whole.
out=$(t_fcgi -m POST -u /post -p CONTENT_LENGTH=999999 -S -t 5000 2>&1) ||
    t_fail "raw 413: $out"
grep -q '^Status: 413' <<< "$out" || t_fail "raw 413: $out"
t_ok "body over max_body_bytes: 413 JSON, job not started, next request fine"

# A descriptor limit too low for --workers is named at start-up, with the
# value to raise it to (the soft limit is raised to the hard one first).
(ulimit -Sn 100 && ulimit -Hn 150 &&
    exec "$FCGI_CANCEL" --listen "unix:$T/limits.sock" --workers 300) \
    > "$T/limits.log" 2>&1 &
lim_pid=$!
t_track "$lim_pid"
t_wait_for 5000 grep -q 'serving on' "$T/limits.log" ||
    t_fail "--workers 300 under ulimit -n 150: $(cat "$T/limits.log")"
grep -q 'warn limits: RLIMIT_NOFILE is 150: .* raise it to 364 or more' \
    "$T/limits.log" || t_fail "no limits warning: $(cat "$T/limits.log")"
t_stop "$lim_pid"
t_ok "a descriptor limit too low for --workers: named, with the value to set"
