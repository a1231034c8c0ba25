#!/bin/bash
# SPDX-License-Identifier: MIT
# Where the server listens: a unix socket (mode 0660, removed at exit), TCP,
# fd 0 as spawn-fcgi passes it; and clear errors with exit status 1 for a
# bad address, a missing directory, or a socket held by a live server.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup

# expect_error MESSAGE-REGEX ARGS...: the server must exit 1 at once,
# saying MESSAGE on stderr.
expect_error() {
    local re=$1 rc=0 out
    shift
    out=$(timeout 5 "$FCGI_CANCEL" "$@" 2>&1) || rc=$?
    [ "$rc" -eq 1 ] || t_fail "$*: exit status $rc, expected 1 ($out)"
    grep -qE "$re" <<< "$out" || t_fail "$*: message '$out' lacks /$re/"
    t_ok "$* -> $out"
}
expect_error 'must be unix:/PATH or tcp:HOST:PORT' --listen bogus
expect_error 'directory does not exist' --listen "unix:$T/no/such/dir.sock"
expect_error 'notaport: the port must be 0..65535' --listen tcp:127.0.0.1:notaport
expect_error 'must be tcp:HOST:PORT' --listen tcp:127.0.0.1
expect_error 'must be absolute' --listen unix:relative.sock
expect_error 'workers' --workers 0
expect_error 'no --listen given' < /dev/null

t_start_server --workers 2
[ "$(stat -c %a "$SERVER_SOCK")" = 660 ] || t_fail "socket mode $(stat -c %a "$SERVER_SOCK")"
t_ok "unix socket created with mode 0660"
expect_error 'in use by a running server' --listen "$FCGI_ADDR"
out=$(t_fcgi -u /ping 2>/dev/null) || t_fail "the first server was hurt"
t_stop_server TERM 5000 && [ "$SERVER_STATUS" -eq 0 ] || t_fail "stop"
[ ! -e "$SERVER_SOCK" ] || t_fail "socket not removed at exit"
t_ok "socket in use refused, first server unharmed, socket removed at exit"

# A stale socket (server killed with SIGKILL) is replaced.
t_start_server --workers 2
t_stop_server KILL 5000
[ -S "$SERVER_SOCK" ] || t_fail "expected a stale socket"
"$FCGI_CANCEL" --listen "$FCGI_ADDR" --workers 2 > "$T/stale.log" 2>&1 &
pid=$!
t_track "$pid"
t_wait_for 3000 sh -c "'$FCGI_CLIENT' -q -u /ping '$FCGI_ADDR' 2>/dev/null" ||
    t_fail "server did not take over the stale socket"
kill "$pid"
t_ok "stale socket replaced"

# TCP on 127.0.0.1.
port=$(t_free_port)
"$FCGI_CANCEL" --listen "tcp:127.0.0.1:$port" --workers 2 > "$T/tcp.log" 2>&1 &
pid=$!
t_track "$pid"
t_wait_for 3000 sh -c "'$FCGI_CLIENT' -q -u /ping 'tcp:127.0.0.1:$port' 2>/dev/null" ||
    t_fail "no answer over TCP"
out=$("$FCGI_CLIENT" -u /ping "tcp:127.0.0.1:$port" 2>/dev/null)
grep -q '^pong' <<< "$out" || t_fail "TCP ping: $out"
kill "$pid"
t_ok "tcp:127.0.0.1:$port serves"

# fd 0 as spawn-fcgi passes it.
spawn-fcgi -n -s "$T/spawn.sock" -M 0660 -- "$FCGI_CANCEL" --workers 2 \
    > "$T/spawn.log" 2>&1 &
pid=$!
t_track "$pid"
t_wait_for 3000 sh -c "'$FCGI_CLIENT' -q -u /ping 'unix:$T/spawn.sock' 2>/dev/null" ||
    t_fail "no answer on the socket spawn-fcgi passed as fd 0"
grep -q 'serving on fd 0' "$T/spawn.log" || t_fail "did not use fd 0"
kill "$pid"
t_ok "spawn-fcgi: serves on fd 0"
