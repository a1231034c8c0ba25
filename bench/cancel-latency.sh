#!/bin/bash
# SPDX-License-Identifier: MIT
# Close -> job returned, behind a real nginx: N clients (default 20) each
# start a job and close their connection after 300 ms, one after another;
# the time from the client's close() (its clock) to the job's return (the
# server log's "job cancelled" line) is reported as median and worst, for
# mode=sleep and mode=cpu.  Usage: bench/cancel-latency.sh [N]
# (from a built tree; scripts/build first).
set -euo pipefail
top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
top_builddir=${top_builddir:-$top_srcdir}
export top_srcdir top_builddir
. "$top_srcdir/tests/lib.sh"
N=${1:-20}
t_setup
t_start_server --workers 8
t_start_nginx


for mode in sleep cpu; do
    for route in cancel_event; do
        vals=()
        for i in $(seq 1 "$N"); do
            tp="lat-$mode-$i"
            closed=$("$HTTP_CLIENT" -c 300 -t 5000 127.0.0.1 "$NGINX_PORT" \
                "/$route?mode=$mode&task_param=$tp" 2>/dev/null | sed -n 's/^closed_at_ms=//p')
            id=""
            t_wait_for 2000 grep -q "task_param=\"$tp\"" "$T/server.log"
            id=$(sed -n "s/.* req=\([0-9]*\) job start task_param=\"$tp\".*/\1/p" "$T/server.log")
            t_wait_for 2000 t_log_has "req=$id job cancelled" ||
                t_fail "req $id not cancelled"
            ret=$(grep -E " req=$id job cancelled" "$T/server.log" | cut -d' ' -f1)
            vals+=("$(awk -v a="$(t_ms_of "$ret")" -v b="$closed" 'BEGIN { printf "%.3f", a - b }')")
        done
        [ -n "${VERBOSE:-}" ] && echo "$mode: ${vals[*]}"
        printf "%s\n" "${vals[@]}" | sort -n | awk -v m="$mode" -v n="$N" '
            { v[NR] = $1 }
            END { printf "mode=%-5s n=%d  median %.2f ms  worst %.2f ms\n",
                  m, n, (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2), v[n] }'
    done
done
