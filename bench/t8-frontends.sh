# SPDX-License-Identifier: MIT
#
# bench/t8-frontends.sh: table 8, cancel latency behind every front end:
# T8_N requests (default 100; QUICK=1: 10) abandoned one after another,
# sleeping and CPU-bound jobs of 1 s, each abandoned 100 ms after it was
# sent (200 ms on the routes with probes, after their first probe);
# client close (or stream reset) -> the server's "job cancelled" line:
# p50, p99, max, and how many were never cancelled (the job ran to its
# end).  Front ends, with the snippets of conf/ (tests/frontends.sh):
# nginx HTTP/1.1; nginx HTTP/2, one stream reset (bench/h2-abandon.py);
# lighttpd HTTP/2, one stream reset; lighttpd HTTP/1.1 with
# tcp-fin-propagate, without and with probes; Apache with probes.
# Sourced by bench/run (defines table8); run directly, it runs
# bench/run t8.

[ "${BASH_SOURCE[0]}" != "$0" ] || exec "$(dirname "$0")/run" t8 "$@"

# shellcheck source=../tests/frontends.sh
. "$top_srcdir/tests/frontends.sh"

if [ "${QUICK-}" = 1 ]; then
    T8_N=${T8_N:-10}
fi
T8_N=${T8_N:-100}
# When the client closes: the job has started a few ms after the request
# was sent, so 100 ms leaves it running long before; on the routes with
# probe_ms 100, 200 ms, so that the first probe has gone out (it is what
# makes lighttpd watch the connection) and the close falls just before a
# probe, as at 300 ms.  The job (2 steps of 500 ms) outlasts the slowest
# cancel (Apache: two probes, ~200 ms) with room to spare, and a job never
# cancelled ends 1 s after its start.
T8_CLOSE_MS=100
T8_PROBE_CLOSE_MS=200
T8_JOB="steps=2&step_ms=500"
T8_PY=/usr/bin/python3      # Debian's, with python3-h2

# t8_measure TAG PATH CLIENT PORT [CLOSE_MS]: T8_N abandons of PATH ("%d":
# the index) through CLIENT (hold or h2) on PORT, each CLOSE_MS (default
# T8_CLOSE_MS) after it was sent; append to $RAW the line "TAG N NEVER P50
# P99 MAX LATE" (ms; "-" if none was cancelled; LATE: how many jobs
# started only after their client had closed, which the close was meant
# to find running: the table says so under it).
t8_measure() {
    local tag=$1 path=$2 client=$3 port=$4 close_ms=${5:-$T8_CLOSE_MS}
    local p="$path&task_param=$tag-%d" late
    case $client in
    hold)
        "$HOLD" abandon -c "$close_ms" -g 20 "$T8_N" 127.0.0.1 "$port" \
            "$p" > "$T/t8-$tag.abandon"
        echo "bench/hold abandon -c $close_ms -g 20 $T8_N 127.0.0.1 PORT '$p'" \
            >> "$T/commands" ;;
    h2)
        "$T8_PY" "$BENCH/h2-abandon.py" -c "$close_ms" -g 20 "$T8_N" \
            127.0.0.1 "$port" "$p" > "$T/t8-$tag.abandon" ||
            t_fail "table 8: $tag: h2-abandon.py failed"
        echo "bench/h2-abandon.py -c $close_ms -g 20 $T8_N 127.0.0.1 PORT '$p'" \
            >> "$T/commands" ;;
    esac
    # Every job has ended (cancelled, or run to its end) before counting.
    ended() {
        [ "$(grep -cE "access req=[0-9]+ GET \"[^\"]*task_param=$tag-" \
            "$FC_LOG")" -ge "$T8_N" ]
    }
    t_wait_for 15000 ended ||
        t_fail "table 8: $tag: not every job ended within 15 s"
    awk "$AWK_EPOCH"'
        FNR == NR { sub(/closed_at_ms=/, "", $2); closed[$1] = $2; next }
        / job start task_param="'"$tag"'-/ {
            t = $0; sub(/.*task_param="'"$tag"'-/, "", t); sub(/".*/, "", t)
            idx[$3] = t
            if ((t in closed) && epoch_ms($1) > closed[t])
                print "late" > "/dev/stderr"
            next }
        / job cancelled / && ($3 in idx) && (idx[$3] in closed) {
            printf "%.3f\n", epoch_ms($1) - closed[idx[$3]] }
        ' "$T/t8-$tag.abandon" "$FC_LOG" > "$T/t8-$tag.lat" 2> "$T/t8-$tag.late"
    late=$(wc -l < "$T/t8-$tag.late")
    [ "$late" = 0 ] ||
        say "table 8: $tag: $late jobs started after their client closed"
    printf '%s %s %s %s %s %s %s\n' "$tag" "$T8_N" \
        "$((T8_N - $(wc -l < "$T/t8-$tag.lat")))" \
        "$(pctl 50 < "$T/t8-$tag.lat")" "$(pctl 99 < "$T/t8-$tag.lat")" \
        "$(pctl 100 < "$T/t8-$tag.lat")" "$late" | tee -a "$RAW" >&2
}

# table8: measure table 8 into results/t8.raw, write results/t8.md.
table8() {
    local job path probed
    table_begin 8
    need lighttpd
    need apache2
    "$T8_PY" -c 'import h2' 2>/dev/null ||
        t_fail "table 8 needs python3-h2 (scripts/deps installs it)"
    say "table 8: cancel latency behind each front end ($T8_N abandons each)"
    cat > "$T/fc-t8.json" <<'EOF'
{
    "routes": [
        { "path": "/cancel_event", "handler": "work", "style": "wait" },
        { "path": "/probed", "handler": "work", "style": "wait",
          "probe_ms": 100 },
    ],
}
EOF
    start_fc "$T/fc-t8.json" "$T/t8.log" --workers 64
    SERVER_SOCK=$T/fc.sock      # the socket the snippets get
    for job in sleep cpu; do
        path="/cancel_event?$T8_JOB&mode=$job"
        probed="/probed?$T8_JOB&mode=$job"
        t8_measure "nginx-h1-$job" "$path" hold "${PORT[fc-off]}"
        t8_measure "nginx-h2-$job" "$path" h2 "${PORT[fc-h2]}"
        t_start_lighttpd
        t8_measure "lighttpd-h2-$job" "$path" h2 "$LIGHTTPD_PORT"
        t8_measure "lighttpd-h1-$job" "$path" hold "$LIGHTTPD_PORT"
        t8_measure "lighttpd-h1probes-$job" "$probed" hold "$LIGHTTPD_PORT" \
            "$T8_PROBE_CLOSE_MS"
        t_stop_lighttpd
        t_start_apache
        t8_measure "apache-h1probes-$job" "$probed" hold "$APACHE_PORT" \
            "$T8_PROBE_CLOSE_MS"
        t_stop "$APACHE_PID"
    done
    t_stop "$FC_PID"
    table_end 8
}

# t8_label TAG: the row heading of a measured condition.
t8_label() {
    case ${1%-*} in
    nginx-h1) echo "nginx 1.22, HTTP/1.1, client closes" ;;
    nginx-h2) echo "nginx 1.22, HTTP/2, one stream reset" ;;
    lighttpd-h2) echo "lighttpd 1.4.69, HTTP/2, one stream reset" ;;
    lighttpd-h1) echo "lighttpd 1.4.69, HTTP/1.1, tcp-fin-propagate, client closes" ;;
    lighttpd-h1probes) echo "lighttpd 1.4.69, HTTP/1.1, tcp-fin-propagate + probe_ms 100, client closes" ;;
    apache-h1probes) echo "Apache 2.4, HTTP/1.1, probe_ms 100, client closes" ;;
    esac
}

# write_table8: print table 8's section (Markdown) from $RAW.
write_table8() {
    local tag n never p50 p99 mx late
    section_head "8. Cancel latency behind each front end"
    cat <<EOF
$T8_N requests in a row per row, each a 1 s job (\`$T8_JOB\`,
wait style; \`mode=sleep\` or \`mode=cpu\`, which burns the CPU and looks
at its token every ~50 µs) abandoned ${T8_CLOSE_MS} ms after it was sent
(${T8_PROBE_CLOSE_MS} ms on the routes with \`probe_ms\` 100: after the
first probe, just before a later one):
HTTP/1.1 clients (\`bench/hold abandon\`) send at once after connecting
and close; the HTTP/2 client (\`bench/h2-abandon.py\`) keeps one
connection and resets each request's stream (RST_STREAM CANCEL). The
delay is the client's clock just before the close or reset to the
server log's "job cancelled" line (same machine); "never" counts the
jobs that ran to their end. Front ends run with the snippets of conf/.

| front end | job | abandons | never cancelled | p50, ms | p99, ms | max, ms |
|---|---|---:|---:|---:|---:|---:|
EOF
    while read -r tag n never p50 p99 mx late; do
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$(t8_label "$tag")" \
            "${tag##*-}" "$n" "$never" "$p50" "$p99" "$mx"
    done < "$RAW"
    # The close must find the job running: say where it did not.
    late=$(awk '$7 + 0 > 0 { printf "%s%s: %d", s, $1, $7; s = ", " }' "$RAW")
    if [ -n "$late" ]; then
        printf '\nJobs that started only after their client had closed (the machine\n'
        printf 'was too slow for the close delay; their figures are not a running\n'
        printf "job's): %s.\n" "$late"
    else
        printf '\nEvery job had started before its client closed.\n'
    fi
    cat <<EOF

lighttpd 1.4.69 over HTTP/1.1 watches a client's connection for a FIN
only if it had to wait for the request: when the whole request is
already in the socket as it accepts the connection (a client that sends
at once after connecting), it reads it, starts the backend and does not
poll the client again until it writes to it, so "tcp-fin-propagate" has
nothing to pass on (docs/frontends.md). Probes make it write, after which
it polls the connection and passes the FIN on at once.

Commands:

$(commands_block 8)
EOF
}
