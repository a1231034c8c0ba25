#!/bin/bash
# SPDX-License-Identifier: MIT
# Close -> job cancelled, behind each front end, with the snippets of conf/:
#   nginx                                  client closes (FIN)
#   lighttpd, "tcp-fin-propagate" enabled  client closes (FIN)
#   lighttpd, "tcp-fin-propagate" disabled client resets (RST)
#   Apache mod_proxy_fcgi, probe_ms 100    client closes (FIN)
# N clients each (default 10), one after another, each closing after
# 700 + 17*i ms (so that the closes fall at every phase of the probe
# period); the time from the client's close() (its clock) to the server
# log's "job cancelled" line is reported as median and worst.  The lighttpd
# clients send their request once lighttpd has accepted the connection
# (see conf/lighttpd.conf); a last line counts how many of N closes
# lighttpd misses when the client sends at once (tests/http-client).
# Usage: bench/frontends-latency.sh [N]   (from a built tree; scripts/build
# first; needs nginx, lighttpd and apache2).
set -euo pipefail
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/frontends.sh"
N=${1:-10}
t_setup
cat > "$T/conf.json" <<'EOF'
{
    "routes": [
        { "path": "/cancel_event", "handler": "work", "style": "wait",
          "task_param": "default_for_cancel_tg_dependency" },
        { "path": "/probed", "handler": "work", "style": "wait",
          "task_param": "probed", "probe_ms": 100 },
    ],
}
EOF
t_start_server --config "$T/conf.json" --workers 8

# measure TAG LABEL CLIENT PORT PATH [-c|-r]: N closes, print median and
# worst.
measure() {
    local tag=$1 name=$2 client=$3 port=$4 path=$5 how=${6:--c} i tp out
    local closed id line vals=()
    for i in $(seq 1 "$N"); do
        tp="$tag-$i"
        out=$($client "$how" $((700 + 17 * i)) -t 10000 127.0.0.1 "$port" \
            "$path?steps=5&step_ms=1000&task_param=$tp" 2>/dev/null) ||
            t_fail "$tp: client failed"
        closed=${out#closed_at_ms=}
        t_wait_for 2000 grep -q "task_param=\"$tp\"" "$T/server.log" ||
            t_fail "$tp: never started"
        id=$(sed -n "s/.* req=\([0-9]*\) job start task_param=\"$tp\".*/\1/p" \
            "$T/server.log")
        t_wait_for 3000 t_log_has "req=$id job cancelled" ||
            t_fail "$tp: req $id not cancelled within 3 s"
        line=$(grep -E " req=$id job cancelled" "$T/server.log")
        vals+=("$(awk -v a="$(t_log_ms "${line%% *}")" -v b="$closed" \
            'BEGIN { printf "%.3f", a - b }')")
    done
    [ -n "${VERBOSE:-}" ] && echo "$name: ${vals[*]}" >&2
    printf '%s\n' "${vals[@]}" | sort -g | awk -v m="$name" -v n="$N" '
        { v[NR] = $1 }
        END { printf "%-38s n=%d  median %7.2f ms  worst %7.2f ms\n", m, n,
              (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2), v[n] }'
}

t_start_nginx
measure nginx "nginx, close" "$HTTP_CLIENT" "$NGINX_PORT" /cancel_event

t_start_lighttpd
measure lfin "lighttpd fin-propagate, close" t_http_after_accept \
    "$LIGHTTPD_PORT" /cancel_event
t_start_lighttpd '"tcp-fin-propagate" => "disable",'
measure lrst "lighttpd no fin-propagate, reset" t_http_after_accept \
    "$LIGHTTPD_PORT" /cancel_event -r

t_start_apache
measure apache "apache probe_ms 100, close" "$HTTP_CLIENT" "$APACHE_PORT" /probed

# The gap: tests/http-client sends at once after connect().
t_start_lighttpd
missed=0
for i in $(seq 1 "$N"); do
    tp="gap-$i"
    "$HTTP_CLIENT" -c 300 -t 10000 127.0.0.1 "$LIGHTTPD_PORT" \
        "/cancel_event?steps=2&step_ms=500&task_param=$tp" > /dev/null 2>&1
    t_wait_for 2000 grep -q "task_param=\"$tp\"" "$T/server.log" ||
        t_fail "$tp: never started"
    id=$(sed -n "s/.* req=\([0-9]*\) job start task_param=\"$tp\".*/\1/p" \
        "$T/server.log")
    t_wait_for 3000 grep -qE "access req=$id " "$T/server.log" ||
        t_fail "$tp: req $id did not end"
    if ! t_log_has "req=$id job cancelled"; then
        missed=$((missed + 1))
    fi
done
printf '%-38s n=%d  %d missed (the 1 s job ran to its end)\n' \
    "lighttpd fin-propagate, sent at once" "$N" "$missed"
