# SPDX-License-Identifier: MIT
#
# bench/t7-10k.sh: table 7, 10,000 jobs in flight: sleeping /cancel_event
# jobs (wait style) held through direct FastCGI connections
# (tests/hold-conns, which never reads), --workers 10240 --stack-kb 64:
# the server's RSS idle and with every job running, the time to accept
# them all, and the time to cancel them all when their connections close
# at once (on SIGUSR1 the holder closes them one after the other, noting
# the time of each close), with each job's delay from its own
# connection's close to its "job cancelled" line.  The cycle (hold them
# all, close them all) runs T7_RUNS times on the same server (default 3):
# the delays move by a factor of two or three from one run to the next on
# a shared 2 vCPU machine, and one run would show one draw.  The count is
# a knob: T7_JOBS (default 10000).
# Sourced by bench/run (defines table7); run directly, it runs
# bench/run t7.

[ "${BASH_SOURCE[0]}" != "$0" ] || exec "$(dirname "$0")/run" t7 "$@"

T7_JOBS=${T7_JOBS:-10000}
T7_RUNS=${T7_RUNS:-3}
T7_WORKERS=10240

# t7_rss PID: the resident set of PID in MB.
t7_rss() {
    awk '/^VmRSS:/ { printf "%.1f\n", $2 / 1024 }' "/proc/$1/status"
}

# T7_JOIN: awk over the holder's closes (NUMBER EPOCH_MS) and then the
# server's log: each request's connection number from its access line
# ("?c=NUMBER"), and for each "job cancelled" line after the first skip
# (-v skip=N: the runs before), its time minus the close of its own
# connection, in ms.
T7_JOIN=$AWK_EPOCH'
FNR == NR { closed[$1 + 0] = $2; next }
/ access req=/ && match($0, /[?]c=[0-9]+"/) {
    req = $3; sub(/^req=/, "", req)
    conn[req] = substr($0, RSTART + 3, RLENGTH - 4) + 0
}
/ job cancelled reason=client_gone/ {
    if (++seen <= skip)
        next                    # a run before this one
    req = $3; sub(/^req=/, "", req)
    done[req] = epoch_ms($1)
}
END {
    for (req in done)
        if ((req in conn) && (conn[req] in closed))
            printf "%.3f\n", done[req] - closed[conn[req]]
}'

# table7: measure table 7 into results/t7.raw, write results/t7.md.
table7() {
    local hold=$top_builddir/tests/hold-conns
    local fcli=$top_builddir/tests/fcgi-client
    local hold_pid t0 t1 t_close idle full accept_ms all_ms n span run skip
    table_begin 7
    [ -x "$hold" ] && [ -x "$fcli" ] ||
        t_fail "table 7 needs tests/hold-conns and tests/fcgi-client" \
            "(make tests/hold-conns tests/fcgi-client)"
    say "table 7: $T7_JOBS jobs in flight, $T7_RUNS runs"
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
    # Each connection's number in its query string (hold-conns -i), for
    # the join of T7_JOIN.
    "$fcli" -u '/cancel_event?c=@@@@@@' -w "$T/t7.req"
    # Idle: once every worker thread has started (the RSS stops growing).
    idle=0
    rss_settled() {
        local prev=$idle
        sleep 0.2
        idle=$(t7_rss "$FC_PID")
        [ "$idle" = "$prev" ]
    }
    t_wait_for 10000 rss_settled || true
    echo "tests/hold-conns -n $T7_JOBS -d REQUEST(/cancel_event?c=@@@@@@) -i @@@@@@ -c CLOSES -N -s 300 unix:\$T/fc.sock   ($T7_RUNS times)" \
        >> "$T/commands"
    all_running() { local n; n=$(fc_in_flight) && [ "$n" -ge "$T7_JOBS" ]; }
    none_running() { local n; n=$(fc_in_flight) && [ "$n" -le 0 ]; }
    : > "$RAW"
    for run in $(seq "$T7_RUNS"); do
        rm -f "$T/t7.ready" "$T/t7.closes"
        # The "job cancelled" lines of the runs before, to leave out.
        skip=$(grep -c ' job cancelled reason=client_gone' "$FC_LOG" || true)
        t0=$(date +%s%3N)
        "$hold" -n "$T7_JOBS" -d "$T/t7.req" -i @@@@@@ -c "$T/t7.closes" \
            -N -s 300 -r "$T/t7.ready" "unix:$T/fc.sock" \
            > "$T/t7-hold.out" 2>&1 &
        hold_pid=$!
        t_track "$hold_pid"
        # /status may fail while 10,000 connections arrive (the server's
        # backlog is full): poll again.
        t_wait_for 120000 all_running ||
            t_fail "table 7: $T7_JOBS jobs did not all start ($(fc_in_flight))"
        t1=$(date +%s%3N)
        accept_ms=$((t1 - t0))
        full=$(t7_rss "$FC_PID")
        # Close them all at once: the holder closes them one after the
        # other and notes when.
        t_close=$(date +%s%3N)
        kill -USR1 "$hold_pid"
        t_wait_for 60000 none_running ||
            t_fail "table 7: jobs still running 60 s after the close"
        all_ms=$(( $(date +%s%3N) - t_close ))
        wait "$hold_pid" 2>/dev/null || true
        [ -s "$T/t7.closes" ] || t_fail "table 7: the holder noted no close"
        # The holder's close() calls, first to last.
        span=$(sort -k2,2g "$T/t7.closes" | awk 'NR == 1 { a = $2 } { b = $2 }
            END { printf "%.0f\n", b - a }')
        # A job's "job cancelled" line may still wait in the log's queue
        # when /status no longer counts it.
        cancelled_lines() {
            n=$(( $(grep -c ' job cancelled reason=client_gone' "$FC_LOG" ||
                true) - skip ))
            [ "$n" -ge "$T7_JOBS" ]
        }
        t_wait_for 5000 cancelled_lines || true
        # The access log's flusher writes the last lines within about
        # 100 ms.  Connection numbers repeat from run to run: the join
        # reads this run's lines only (after the first skip cancels).
        all_joined() {
            awk -v skip="$skip" "$T7_JOIN" "$T/t7.closes" "$FC_LOG" \
                > "$T/t7.lat"
            [ "$(wc -l < "$T/t7.lat")" -ge "$n" ]
        }
        t_wait_for 5000 all_joined ||
            t_fail "table 7: $(wc -l < "$T/t7.lat") of $n cancels joined to a close"
        printf '%s %s %s %s %s %s %s %s %s %s\n' "$T7_JOBS" "$idle" \
            "$full" "$accept_ms" "$span" "$all_ms" "$n" \
            "$(pctl 50 < "$T/t7.lat")" "$(pctl 99 < "$T/t7.lat")" \
            "$(pctl 100 < "$T/t7.lat")" >> "$RAW"
        tail -n 1 "$RAW" >&2
    done
    t_stop "$FC_PID"
    table_end 7
}

# write_table7: print table 7's section (Markdown) from $RAW.
write_table7() {
    local jobs idle runs
    read -r jobs idle _ < "$RAW"
    runs=$(wc -l < "$RAW")
    section_head "7. $jobs jobs in flight"
    cat <<EOF
$jobs sleeping \`/cancel_event\` jobs (wait style, 600 s each) held over
direct FastCGI connections by \`tests/hold-conns\` (one request per
connection, never reading), fcgi-cancel \`--workers $T7_WORKERS
--stack-kb 64\`; then the holder closes all its connections at once, one
\`close()\` after the other ("closes span": its first to its last).  The
cycle runs $runs times on the same server, a row each (\`T7_RUNS\`).
RSS from /proc/PID/status (idle: before the first run); "accepted" is
the time from starting the holder until \`/status\` shows every job
running; "all returned" is from the signal that starts the closes until
\`/status\` shows no job running; the close → cancelled delays are per
job, from the \`CLOCK_REALTIME\` the holder noted just before closing
that job's connection to the job's "job cancelled" log line (the
connection's number, in its query string, joins the two through the
access log).

| run | jobs | server RSS idle, MB | RSS with every job running, MB | per job, KB | all accepted and running, ms | closes span, ms | all returned after the close, ms | cancelled (client_gone) | close → cancelled p50, ms | p99, ms | max, ms |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
$(awk '{ printf "| %d | %s | %s | %s | %.1f | %s | %s | %s | %s | %s | %s | %s |\n",
    NR, $1, $2, $3, ($3 - $2) * 1024 / $1, $4, $5, $6, $7, $8, $9, $10 }' "$RAW")

Median of the runs: p99 $(awk '{ print $9 }' "$RAW" | sort -g |
    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }') ms, all
returned $(awk '{ print $6 }' "$RAW" | sort -g |
    awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }') ms.

Targets (issue #16): RSS under 200 MB, all cancelled within 1 s, p99
under 50 ms. The limits to raise for more workers are in
docs/operations.md ("Many jobs at once").

Commands:

$(commands_block 7)
EOF
}
