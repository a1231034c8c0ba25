#!/bin/bash
# SPDX-License-Identifier: MIT
# Cancellation across two hops, with the curlfetch example module:
#   curl -> nginx /fetch -> fcgi-cancel (outer, curlfetch.so)
#        -> nginx /inner/ -> fcgi-cancel (inner, a slow "work" route)
# A completed fetch relays the inner answer (status, type, body).  A
# client that leaves the outer request at 1 s makes the outer module
# abort its transfer (its poll watches the token's descriptor), nginx
# closes the inner FastCGI connection, and the inner server cancels its
# job (client_gone, counted in its /status) well before the job's end.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/frontends.sh"
t_setup

EX=$top_builddir/examples

cat > "$T/inner.json" <<EOF
{
    "routes": [
        { "path": "/inner/slow", "handler": "work", "style": "wait",
          "steps": 10, "step_ms": 1000 },
        { "path": "/status", "handler": "status" },
    ],
}
EOF
t_start_instance 2 --config "$T/inner.json"
# One nginx for both hops: /inner/ goes to the inner server, the rest to
# the outer one ($T/fcgi.sock).
t_start_nginx "location /inner/ { fastcgi_pass unix:$T/fcgi2.sock; }"
cat > "$T/outer.json" <<EOF
{
    "routes": [
        { "path": "/fetch", "handler": "module",
          "module": "$EX/curlfetch.so", "symbol": "curlfetch_handler",
          "options": { "url": "$NGINX_URL/inner/slow" } },
        { "path": "/status", "handler": "status" },
    ],
}
EOF
t_start_server --config "$T/outer.json"

# A fetch that completes: the inner answer comes through.
code=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' --max-time 10 \
    "$NGINX_URL/fetch?steps=1&step_ms=10&task_param=hop")
[ "$code" = 200 ] || t_fail "/fetch: $code $(cat "$T/body")"
[ "$(jq -r .result "$T/body")" = "Work completed for hop" ] ||
    t_fail "/fetch: $(cat "$T/body")"
grep -qi '^content-type: application/json' "$T/headers" ||
    t_fail "/fetch: $(cat "$T/headers")"
t_ok "a fetch across two hops relays the inner answer"

# A fetch that the client abandons at 1 s.
t0=$(t_now_ms)
curl -s -o /dev/null --max-time 1 "$NGINX_URL/fetch" || true
close=$(t_now_ms)
inner_gone() {
    [ "$(t_instance_status "${INSTANCE_SOCK[2]}" \
        .cancelled_by_reason.client_gone)" = 1 ]
}
t_wait_for 3000 inner_gone ||
    t_fail "the inner job was not cancelled: $(t_instance_status \
        "${INSTANCE_SOCK[2]}" .cancelled_by_reason)"
grep -q 'job cancelled reason=client_gone' "${INSTANCE_LOG[2]}" ||
    t_fail "inner: no cancel logged"
t_wait_for 2000 t_log_has 'curlfetch: transfer aborted \(client_gone\)' ||
    t_fail "outer: the transfer was not aborted"
# When did the inner job stop, after our client left?
line=$(grep 'job cancelled reason=client_gone' "${INSTANCE_LOG[2]}" | head -n 1)
at=$(t_log_ms "${line%% *}")
lag=$(awk -v a="$at" -v c="$close" 'BEGIN { printf "%d", a - c }')
echo "# inner job cancelled ${lag} ms after the client closed" \
    "(client at $(( close - t0 )) ms)"
[ "$lag" -lt 1000 ] || t_fail "inner cancel ${lag} ms after the close"
[ "$(t_status .cancelled_by_reason.client_gone)" = 1 ] ||
    t_fail "outer: $(t_status .cancelled_by_reason)"
t_ok "abandoned at 1 s: outer transfer aborted, inner job cancelled" \
    "${lag} ms after the client left (10 s job)"
