# SPDX-License-Identifier: MIT
#
# bench/t7-10k.sh: table 7, 10,000 jobs in flight: sleeping /cancel_event
# jobs (wait style) held through direct FastCGI connections
# (tests/hold-conns, which never reads), --workers 10240 --stack-kb 64:
# the server's RSS idle and with every job running, the time to accept
# them all, and the time to cancel them all when their connections close
# at once (the holder is killed), with the per-job close -> "job
# cancelled" delay.  The count is a knob: T7_JOBS (default 10000).
# Sourced by bench/run (defines table7); run directly, it runs
# bench/run t7.

[ "${BASH_SOURCE[0]}" != "$0" ] || exec "$(dirname "$0")/run" t7 "$@"

T7_JOBS=${T7_JOBS:-10000}
T7_WORKERS=10240

# t7_rss PID: the resident set of PID in MB.
t7_rss() {
    awk '/^VmRSS:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"
}

# t7_in_flight: the server's in_flight, minus this /status request.
t7_in_flight() {
    echo $(( $(status_json | jq -r .in_flight) - 1 ))
}

# table7: measure table 7 into results/t7.raw, write results/t7.md.
table7() {
    local hold=$top_builddir/tests/hold-conns
    local fcli=$top_builddir/tests/fcgi-client
    local hold_pid t0 t1 t_close idle full accept_ms all_ms n
    table_begin 7
    [ -x "$hold" ] && [ -x "$fcli" ] ||
        t_fail "table 7 needs tests/hold-conns and tests/fcgi-client" \
            "(make tests/hold-conns tests/fcgi-client)"
    say "table 7: $T7_JOBS jobs in flight"
    # max_connections above the jobs: its default, 10000, would refuse
    # the /status requests that count them.
    cat > "$T/fc-10k.json" <<'EOF'
{
    "max_connections": 10400,
    "routes": [
        { "path": "/cancel_event", "handler": "work", "style": "wait",
          "steps": 1, "step_ms": 600000, "mode": "sleep" },
        { "path": "/status", "handler": "status" },
    ],
}
EOF
    start_fc "$T/fc-10k.json" "$T/t7.log" --workers "$T7_WORKERS" \
        --stack-kb 64
    "$fcli" -u /cancel_event -w "$T/t7.req"
    # Idle: once every worker thread has started (the RSS stops growing).
    idle=0
    rss_settled() {
        local prev=$idle
        sleep 0.2
        idle=$(t7_rss "$FC_PID")
        [ "$idle" = "$prev" ]
    }
    t_wait_for 10000 rss_settled || true
    rm -f "$T/t7.ready"
    t0=$(date +%s%3N)
    "$hold" -n "$T7_JOBS" -d "$T/t7.req" -N -s 300 -r "$T/t7.ready" \
        "unix:$T/fc.sock" > "$T/t7-hold.out" 2>&1 &
    hold_pid=$!
    t_track "$hold_pid"
    echo "tests/hold-conns -n $T7_JOBS -d REQUEST(/cancel_event) -N -s 300 unix:\$T/fc.sock" \
        >> "$T/commands"
    all_running() { [ "$(t7_in_flight)" -ge "$T7_JOBS" ]; }
    t_wait_for 120000 all_running ||
        t_fail "table 7: $T7_JOBS jobs did not all start ($(t7_in_flight))"
    t1=$(date +%s%3N)
    accept_ms=$((t1 - t0))
    full=$(t7_rss "$FC_PID")
    # Close them all at once: the holder dies, the kernel closes its
    # connections.
    t_close=$(date +%s%3N)
    kill -KILL "$hold_pid"
    none_running() { [ "$(t7_in_flight)" -le 0 ]; }
    t_wait_for 60000 none_running ||
        t_fail "table 7: jobs still running 60 s after the close"
    all_ms=$(( $(date +%s%3N) - t_close ))
    wait "$hold_pid" 2>/dev/null || true
    n=$(grep -c ' job cancelled reason=client_gone' "$FC_LOG" || true)
    awk -v c="$t_close" "$AWK_EPOCH"'/ job cancelled reason=client_gone/ {
        printf "%.3f\n", epoch_ms($1) - c }' "$FC_LOG" > "$T/t7.lat"
    printf '%s %s %s %s %s %s %s %s %s\n' "$T7_JOBS" "$idle" "$full" \
        "$accept_ms" "$all_ms" "$n" \
        "$(pctl 50 < "$T/t7.lat")" "$(pctl 99 < "$T/t7.lat")" \
        "$(pctl 100 < "$T/t7.lat")" > "$RAW"
    cat "$RAW" >&2
    t_stop "$FC_PID"
    table_end 7
}

# write_table7: print table 7's section (Markdown) from $RAW.
write_table7() {
    local jobs idle full acc all n p50 p99 mx
    read -r jobs idle full acc all n p50 p99 mx < "$RAW"
    section_head "7. $jobs jobs in flight"
    cat <<EOF
$jobs sleeping \`/cancel_event\` jobs (wait style, 600 s each) held over
direct FastCGI connections by \`tests/hold-conns\` (one request per
connection, never reading), fcgi-cancel \`--workers $T7_WORKERS
--stack-kb 64\`; then the holder is killed, so that all the connections
close at once. RSS from /proc/PID/status; "accepted" is the time from
starting the holder until \`/status\` shows every job running; the close
→ cancelled delays are from the moment just before the kill to each
job's "job cancelled" log line (an upper bound per job: it includes the
kernel's time to close the connections before it).

| jobs | server RSS idle, MB | RSS with every job running, MB | per job, KB | all accepted and running, ms | all returned after the close, ms | cancelled (client_gone) | close → cancelled p50, ms | p99, ms | max, ms |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
| $jobs | $idle | $full | $(awk -v a="$full" -v b="$idle" -v j="$jobs" 'BEGIN { printf "%.1f", (a - b) * 1024 / j }') | $acc | $all | $n | $p50 | $p99 | $mx |

Targets (issue #16): RSS under 200 MB, all cancelled within 1 s, p99
under 50 ms. The limits to raise for more workers are in
docs/operations.md ("Many jobs at once").

Commands:

$(commands_block 7)
EOF
}
