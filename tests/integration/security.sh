#!/bin/bash
# SPDX-License-Identifier: MIT
# Security: a TCP listen on a non-loopback address needs allowed_clients,
# and a client not in the list is closed at accept (127.0.0.2 playing
# "elsewhere"); started as root with user/group, the server drops its
# privileges after binding (and its exec children run unprivileged);
# a param cannot split a response or a log line; params named LD_PRELOAD
# or PATH do not reach an exec child.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup

# ---- allowed_clients ---------------------------------------------------------
rc=0
out=$("$FCGI_CANCEL" -t --listen tcp:0.0.0.0:9 2>&1) || rc=$?
[ "$rc" -eq 1 ] && grep -q 'allowed_clients: required' <<< "$out" ||
    t_fail "non-loopback listen without allowed_clients: $rc $out"
t_ok "a non-loopback TCP listen without allowed_clients is refused: $out"

port=$(t_free_port)
cat > "$T/allow.json" <<JSON
{ "listen": "tcp:127.0.0.1:$port", "allowed_clients": ["127.0.0.1", "::1"] }
JSON
"$FCGI_CANCEL" --config "$T/allow.json" > "$T/allow.log" 2>&1 &
pid=$!
t_track "$pid"
t_wait_for 3000 sh -c "'$FCGI_CLIENT' -q -u /ping -s 127.0.0.1 'tcp:127.0.0.1:$port' 2>/dev/null" ||
    t_fail "127.0.0.1 is not served"
rc=0
out=$("$FCGI_CLIENT" -u /ping -s 127.0.0.2 -t 3000 "tcp:127.0.0.1:$port" 2>&1) || rc=$?
[ "$rc" -eq 1 ] && grep -q '^eof' <<< "$out" && ! grep -q pong <<< "$out" ||
    t_fail "127.0.0.2 was not closed at accept: rc $rc, $out"
t_wait_for 2000 grep -q 'connection from ::ffff:127.0.0.2 refused' "$T/allow.log" ||
    t_fail "the refusal is not logged"
out=$("$FCGI_CLIENT" -u /ping -s 127.0.0.1 "tcp:127.0.0.1:$port" 2>/dev/null)
grep -q '^pong' <<< "$out" || t_fail "127.0.0.1 after the refusal: $out"
kill "$pid"
t_ok "allowed_clients: 127.0.0.2 closed at accept (logged), 127.0.0.1 served"

# ---- privilege drop ------------------------------------------------------------
if [ "$(id -u)" -eq 0 ]; then
    # whoami.so refuses to initialise as root; a copy in $T, which nobody
    # can reach (the build tree may not be).
    cp "$top_builddir/tests/modules/whoami.so" "$T/whoami.so"
    chmod 755 "$T/whoami.so"
    cat > "$T/drop.json" <<JSON
{ "user": "nobody", "group": "nogroup",
  "routes": [
    { "path": "/ping", "handler": "ping" },
    { "path": "/id", "handler": "exec", "output": "raw",
      "content_type": "text/plain", "argv": ["/usr/bin/id", "-u"] },
    { "path": "/whoami", "handler": "module", "module": "$T/whoami.so",
      "symbol": "whoami_handler" } ] }
JSON
    out=$("$FCGI_CANCEL" -t --config "$T/drop.json" 2>&1) ||
        t_fail "-t as root, user nobody, a module: $out"
    t_start_server --config "$T/drop.json"
    # The socket is bound as root; the drop comes after it, before the
    # "serving on" line.
    t_wait_for 10000 t_log_has ' serving on ' ||
        t_fail "the server did not start serving"
    uid=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$SERVER_PID/status")
    gid=$(awk '/^Gid:/ { print $2, $3, $4, $5 }' "/proc/$SERVER_PID/status")
    groups=$(awk '/^Groups:/ { print $2 }' "/proc/$SERVER_PID/status")
    nobody=$(id -u nobody)
    nogroup=$(getent group nogroup | cut -d: -f3)
    [ "$uid" = "$nobody $nobody $nobody $nobody" ] || t_fail "uids: $uid"
    [ "$gid" = "$nogroup $nogroup $nogroup $nogroup" ] || t_fail "gids: $gid"
    [ -z "$groups" ] || t_fail "supplementary groups left: $groups"
    out=$(t_fcgi -u /id 2>/dev/null | tail -n 1)
    [ "$out" = "$nobody" ] || t_fail "exec child runs as uid $out"
    [ "$(stat -c %U "$SERVER_SOCK")" = root ] || t_fail "socket not created before the drop"
    out=$(t_fcgi -u /whoami 2>/dev/null | tail -n 1)
    [ "$out" = "init=$nobody handler=$nobody" ] ||
        t_fail "module: $out (expected init and handler as $nobody)"
    t_ok "user/group: runs as nobody:nogroup after binding as root; its" \
         "programs too; modules load and initialise as nobody (-t too)"
    t_stop_server TERM 5000
else
    # Not root (a developer's run): asking for a user must fail clearly.
    rc=0
    out=$("$FCGI_CANCEL" --listen "unix:$T/np.sock" --config <(echo '{"user":"nobody"}') 2>&1) || rc=$?
    [ "$rc" -eq 1 ] && grep -q 'cannot become nobody' <<< "$out" || t_fail "non-root: $out"
    t_ok "not root: 'user' fails clearly ($out)"
fi

# ---- a param cannot split a response or a log line -------------------------
cat > "$T/env.json" <<JSON
{ "routes": [
    { "path": "/cancel_tg", "handler": "work", "steps": 0 },
    { "path": "/env", "handler": "exec", "argv": ["$top_srcdir/tests/data/env.sh"] } ] }
JSON
t_start_server --config "$T/env.json"
t_start_nginx 'fastcgi_param LD_PRELOAD /tmp/evil.so; fastcgi_param PATH /evil/bin;'
curl -s -D "$T/head" -o "$T/body" "$NGINX_URL/cancel_tg?task_param=a%0D%0AX-Injected:%20yes%0D%0A%0D%0Abody"
grep -qi '^X-Injected' "$T/head" && t_fail "a header was injected"
[ "$(jq -r .result "$T/body")" = "$(printf 'Work completed for a\r\nX-Injected: yes\r\n\r\nbody')" ] ||
    t_fail "body: $(cat "$T/body")"
grep -q $'\r' "$T/server.log" && t_fail "a raw CR reached the log"
t_log_has 'task_param="a\\x0d\\x0aX-Injected: yes' || t_fail "the log line is not escaped"
t_ok "CR LF in a param: no header injected, JSON-escaped in the body, \\x0d\\x0a in the log"

curl -s -o "$T/env.out" "$NGINX_URL/env"
grep -q '^LD_PRELOAD' "$T/env.out" && t_fail "LD_PRELOAD reached the program"
grep -q '^PATH=/evil' "$T/env.out" && t_fail "the request's PATH reached the program"
grep -q '^PATH=/usr/local/bin:/usr/bin:/bin$' "$T/env.out" || t_fail "PATH: $(grep ^PATH "$T/env.out")"
t_ok "exec: params LD_PRELOAD and PATH do not reach the program"
