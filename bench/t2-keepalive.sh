# SPDX-License-Identifier: MIT
#
# bench/t2-keepalive.sh: table 2, more kept FastCGI connections than
# workers (16 workers, upstream keepalive 64).  Sourced by bench/run
# (defines table2); run directly, it runs bench/run t2.

[ "${BASH_SOURCE[0]}" != "$0" ] || exec "$(dirname "$0")/run" t2 "$@"

# table2: measure table 2 into results/t2.raw, write results/t2.md.
table2() {
    table_begin 2
    say "table 2: keep-alive connections outnumbering workers (16 workers)"
    start_fc "$T/fc-quiet.json" "$T/fc-quiet16.log" --workers 16
    start_ceiling
    start_bare 16
    start_php 16
    measure_round_robin \
        "fc16-off|$(url fc-off /tiny)|$FC_PID" \
        "fc16-ka|$(url fc-ka /tiny)|$FC_PID" \
        "ceiling-off|$(url ceiling-off /)|$CEIL_PID" \
        "ceiling-ka|$(url ceiling-ka /)|$CEIL_PID" \
        "bare16-off|$(url bare-off /)|$BARE_PID" \
        "bare16-ka|$(url bare-ka /)|$BAREKA_PID" \
        "php16-off|$(url php-off /tiny.php)|$PHP_PID" \
        "php16-ka|$(url php-ka /tiny.php)|$PHP_PID"
    t_stop "$FC_PID" "$CEIL_PID" "$PHP_PID"
    stop_bare
    table_end 2
}

# t2_row NAME LABEL MODE: one row of table 2.
t2_row() {
    local name=$1 label=$2 mode=$3 rps off
    rps=$(stat_of "$name" 2)
    off=$(stat_of "${name%-*}-off" 2)
    printf '| %s | %s | **%s** | %s | %s | %s | %s / %s / %s | %s | %s | %s | %s |\n' \
        "$label" "$mode" "$rps" "$(stat_of "$name" list2)" \
        "$(stat_of "$name" 3)" "$(stat_of "$name" 4)" \
        "$(stat_of "$name" sum5)" "$(stat_of "$name" sum6)" \
        "$(stat_of "$name" sum7)" "$(ratio "$rps" "$off")" \
        "$(ratio "$rps" "$(stat_of "ceiling-$mode" 2)")" \
        "$(stat_of "$name" 10)" \
        "$(stat_of "$name" max9)"
}

# write_table2: print table 2's section (Markdown) from $RAW.
write_table2() {
    local ka off errs r
    section_head "2. Keep-alive connections outnumbering workers"
    cat <<EOF
16 workers per peer, nginx \`upstream { keepalive 64; }\`, $CONNS wrk
connections: up to 64 kept FastCGI connections for 16 workers.  The
ceiling (one thread, one epoll loop) has no workers to run short of: it
is the figure for the same nginx and wrk settings.  Same wrk settings as
table 1; medians of $RUNS runs.

| peer | nginx → peer | req/s (median) | runs | p50 ms | p99 ms | errors / timeouts / non-2xx (all runs) | ÷ same peer, keep_conn off | ÷ ceiling, same mode | peer CPU per request, µs | other load, max % of a CPU |
|---|---|---:|---|---:|---:|---|---:|---:|---:|---:|
EOF
    t2_row fc16-off "fcgi-cancel /tiny, --workers 16" off
    t2_row fc16-ka "fcgi-cancel /tiny, --workers 16" ka
    t2_row ceiling-off "ceiling (epoll, 1 thread)" off
    t2_row ceiling-ka "ceiling (epoll, 1 thread)" ka
    t2_row bare16-off "bare libfcgi responder, 16 threads" off
    t2_row bare16-ka "bare libfcgi responder, 16 threads" ka
    t2_row php16-off "PHP-FPM, 16 children" off
    t2_row php16-ka "PHP-FPM, 16 children" ka
    ka=$(stat_of fc16-ka 2)
    off=$(stat_of fc16-off 2)
    errs=$(( $(stat_of fc16-ka sum5) + $(stat_of fc16-ka sum6) + $(stat_of fc16-ka sum7) ))
    r=$(ratio "$ka" "$off")
    cat <<EOF

| target (fcgi-cancel, 16 workers, keepalive 64) | figure | verdict |
|---|---:|---|
| zero errors, timeouts and non-2xx over all runs | $errs | $([ "$errs" = 0 ] && echo met || echo "**missed**") |
| throughput ≥ its keep_conn-off figure | $r | $(verdict "$r" ">=" 1.0) |

Commands:

$(commands_block 2)
EOF
}
