# SPDX-License-Identifier: MIT
#
# bench/t1-throughput.sh: table 1, tiny-request throughput through nginx,
# every peer with WORKERS workers, keep_conn off and upstream keepalive.
# Sourced by bench/run (defines table1); run directly, it runs
# bench/run t1.

[ "${BASH_SOURCE[0]}" != "$0" ] || exec "$(dirname "$0")/run" t1 "$@"

# table1: measure table 1 into results/t1.raw, write results/t1.md.
table1() {
    local -a cfg
    table_begin 1
    say "table 1: tiny-request throughput ($RUNS x ${DURATION}s per configuration)"
    start_ceiling
    start_bare "$WORKERS"
    start_php "$WORKERS"
    start_fc "$T/fc-quiet.json" "$T/fc-quiet.log" --workers "$WORKERS"
    start_fclog --workers "$WORKERS"
    start_fcacc --workers "$WORKERS"
    # name|url|pid (the peer: its CPU per request is recorded), in the
    # order of the table.
    cfg=(
        "nginx|$(url nginx /)|$NGINX_PID"
        "ceiling-off|$(url ceiling-off /)|$CEIL_PID"
        "ceiling-ka|$(url ceiling-ka /)|$CEIL_PID"
        "bare-off|$(url bare-off /)|$BARE_PID"
        "bare-ka|$(url bare-ka /)|$BAREKA_PID"
        "php-off|$(url php-off /tiny.php)|$PHP_PID"
        "php-ka|$(url php-ka /tiny.php)|$PHP_PID"
        "fc-ping-off|$(url fc-off /ping)|$FC_PID"
        "fc-ping-ka|$(url fc-ka /ping)|$FC_PID"
        "fc-tiny-off|$(url fc-off /tiny)|$FC_PID"
        "fc-tiny-ka|$(url fc-ka /tiny)|$FC_PID"
        "fclog-tiny-off|$(url fclog-off /tiny)|$FCLOG_PID"
        "fclog-tiny-ka|$(url fclog-ka /tiny)|$FCLOG_PID"
        "fcacc-tiny-off|$(url fcacc-off /tiny)|$FCACC_PID"
        "fcacc-tiny-ka|$(url fcacc-ka /tiny)|$FCACC_PID"
    )
    if [ -n "$FC_ALT" ]; then
        start_fcalt --workers "$WORKERS"
        cfg+=("fcalt-tiny-off|$(url fcalt-off /tiny)|$FCALT_PID"
              "fcalt-tiny-ka|$(url fcalt-ka /tiny)|$FCALT_PID")
    fi
    measure_round_robin "${cfg[@]}"
    t_stop "$FCLOG_PID" "$FCACC_PID" "$FC_PID" "$PHP_PID" "$FCALT_PID" \
        "$CEIL_PID"
    stop_bare
    table_end 1
}

# t1_row NAME LABEL MODE: one row of table 1.
t1_row() {
    local name=$1 label=$2 mode=$3 rps
    rps=$(stat_of "$name" 2)
    printf '| %s | %s | **%s** | %s | %s | %s | %s / %s / %s | %s | %s | %s | %s | %s | %s | %s |\n' \
        "$label" "$mode" "$rps" "$(stat_of "$name" list2)" \
        "$(stat_of "$name" 3)" "$(stat_of "$name" 4)" \
        "$(stat_of "$name" sum5)" "$(stat_of "$name" sum6)" \
        "$(stat_of "$name" sum7)" \
        "$(ratio "$rps" "$(stat_of nginx 2)")" \
        "$(ratio "$rps" "$(stat_of "ceiling-$mode" 2)")" \
        "$(ratio "$rps" "$(stat_of "bare-$mode" 2)")" \
        "$(ratio "$rps" "$(stat_of bare-off 2)")" \
        "$(ratio "$rps" "$(stat_of "php-$mode" 2)")" \
        "$(stat_of "$name" 10)" \
        "$(stat_of "$name" max9)"
}

# t1_ratio A B: the ratio of the median req/s of the runs A and B.
t1_ratio() {
    ratio "$(stat_of "$1" 2)" "$(stat_of "$2" 2)"
}

# write_table1: print table 1's section (Markdown) from $RAW.
write_table1() {
    local c1 c2 r1 r2 r3 r4 r5 r6 a1 a2
    section_head "1. Tiny-request throughput through nginx (unix socket)"
    cat <<EOF
Every peer with $WORKERS workers (threads or processes), as many as wrk's
connections, so that no thread-per-connection peer runs short of threads
in keepalive mode (table 2 is the case of more connections than workers);
the ceiling (\`bench/ceiling.c\`: one thread, one epoll loop, the FastCGI
protocol and a canned reply, nothing else) is what nginx costs when its
upstream costs nothing.  fcgi-cancel and PHP-FPM without access log
(PHP-FPM's default); then fcgi-cancel with its default logging (info
level and an access-log line per request, to files), and with the access
log alone (to a file, at log level warn): the cost of writing the access
log.  The work job's "job start" info line per request, one write(2)
each, is what separates the two.
Medians of $RUNS runs, round robin over the configurations.

| peer | nginx → peer | req/s (median) | runs | p50 ms | p99 ms | errors / timeouts / non-2xx (all runs) | ÷ nginx alone | ÷ ceiling, same mode | ÷ bare, same mode | ÷ bare, keep_conn off | ÷ PHP-FPM, same mode | peer CPU per request, µs | other load, max % of a CPU |
|---|---|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|
EOF
    t1_row nginx "nginx alone (\`return 200\`)" "-"
    t1_row ceiling-off "ceiling (epoll, 1 thread)" off
    t1_row ceiling-ka "ceiling (epoll, 1 thread)" ka
    t1_row bare-off "bare libfcgi responder" off
    t1_row bare-ka "bare libfcgi responder" ka
    t1_row php-off "PHP-FPM (pm static)" off
    t1_row php-ka "PHP-FPM (pm static)" ka
    t1_row fc-ping-off "fcgi-cancel /ping" off
    t1_row fc-ping-ka "fcgi-cancel /ping" ka
    t1_row fc-tiny-off "fcgi-cancel /tiny" off
    t1_row fc-tiny-ka "fcgi-cancel /tiny" ka
    t1_row fclog-tiny-off "fcgi-cancel /tiny, default logging" off
    t1_row fclog-tiny-ka "fcgi-cancel /tiny, default logging" ka
    t1_row fcacc-tiny-off "fcgi-cancel /tiny, access log alone" off
    t1_row fcacc-tiny-ka "fcgi-cancel /tiny, access log alone" ka
    if [ -n "$FC_ALT" ]; then
        t1_row fcalt-tiny-off "fcgi-cancel /tiny, FC_ALT build (\`$FC_ALT\`)" off
        t1_row fcalt-tiny-ka "fcgi-cancel /tiny, FC_ALT build (\`$FC_ALT\`)" ka
    fi
    c1=$(t1_ratio fc-tiny-ka ceiling-ka)
    c2=$(t1_ratio fc-tiny-off ceiling-off)
    r1=$(t1_ratio fc-tiny-off bare-off)
    r2=$(t1_ratio fc-tiny-ka bare-off)
    r3=$(t1_ratio fc-tiny-off php-off)
    r4=$(t1_ratio fc-tiny-ka php-ka)
    r5=$(t1_ratio fc-tiny-ka php-off)
    r6=$(t1_ratio fc-ping-off bare-off)
    a1=$(t1_ratio fcacc-tiny-off fc-tiny-off)
    a2=$(t1_ratio fcacc-tiny-ka fc-tiny-ka)
    cat <<EOF

"off": \`fastcgi_keep_conn off\`, a FastCGI connection per request; "ka":
\`upstream { keepalive 64; }\` + \`fastcgi_keep_conn on\`.  The bare
responder's "ka" figure is its collapse (see table 2), so fcgi-cancel is
held against its keep_conn-off figure, its best.

| target | figure | verdict |
|---|---:|---|
| fcgi-cancel /tiny, keepalive ≥ 0.85 × the ceiling, keepalive | $c1 | $(verdict "$c1" ">=" 0.85) |
| fcgi-cancel /tiny ≥ 0.80 × the ceiling (both keep_conn off) | $c2 | $(verdict "$c2" ">=" 0.80) |
| fcgi-cancel /tiny ≥ 0.95 × bare responder (both keep_conn off) | $r1 | $(verdict "$r1" ">=" 0.95) |
| fcgi-cancel /tiny, keepalive ≥ 0.95 × bare responder's best (keep_conn off) | $r2 | $(verdict "$r2" ">=" 0.95) |
| fcgi-cancel /ping ≥ 0.95 × bare responder (both keep_conn off) | $r6 | $(verdict "$r6" ">=" 0.95) |
| fcgi-cancel /tiny ≥ 1.5 × PHP-FPM, keep_conn off | $r3 | $(verdict "$r3" ">=" 1.5) |
| fcgi-cancel /tiny ≥ 1.5 × PHP-FPM, keepalive | $r4 | $(verdict "$r4" ">=" 1.5) |
| fcgi-cancel /tiny keepalive ≥ 1.5 × PHP-FPM's best (keep_conn off) | $r5 | $(verdict "$r5" ">=" 1.5) |
| writing the access log costs < 3 %: /tiny with it ≥ 0.97 × without, keep_conn off | $a1 | $(verdict "$a1" ">=" 0.97) |
| the same, keepalive | $a2 | $(verdict "$a2" ">=" 0.97) |

Commands (\$T is the scratch directory; each run is
\`$WRK_CMD\`):

$(commands_block 1)
EOF
}
