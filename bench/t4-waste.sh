# SPDX-License-Identifier: MIT
#
# bench/t4-waste.sh: table 4, CPU wasted after a close: a CPU-bound job
# abandoned, and what each peer's process tree burns afterwards.
# Sourced by bench/run (defines table4); run directly, it runs
# bench/run t4.

[ "${BASH_SOURCE[0]}" != "$0" ] || exec "$(dirname "$0")/run" t4 "$@"

# The peer's idle rate is measured over T4_BASE_MS before the request; the
# window after the close covers the 3.5 s the job has left, + 0.5 s.
T4_BASE_MS=500
T4_WINDOW_MS=4000

# table4: measure table 4 into results/t4.raw, write results/t4.md.
table4() {
    local n peer port path pid out c0 c1
    table_begin 4
    say "table 4: CPU wasted after a close ($RUNS runs per peer)"
    start_fc "$T/fc-info.json" "$T/t4-fc.log"
    start_php 4
    start_cgi 2
    local -a cfg=(
        "fcgi-cancel|fc-off|/cancel_event?steps=5&step_ms=1000&mode=cpu&task_param=waste|$FC_PID"
        "php-silent|php-off|/busy.php|$PHP_PID"
        "php-flush|php-off|/busyflush.php|$PHP_PID"
        "fcgiwrap|cgi-off|/busy.cgi|$CGI_PID"
    )
    for ((n = 1; n <= RUNS; n++)); do
        for c in "${cfg[@]}"; do
            IFS='|' read -r peer port path pid <<< "$c"
            c0=$(cpu_now)
            out=$("$HOLD" waste -b "$T4_BASE_MS" -c 1500 -w "$T4_WINDOW_MS" 127.0.0.1 \
                "${PORT[$port]}" "$path" "$pid")
            c1=$(cpu_now)
            out="$out other=$(other_pct "$c0" "$c1")"
            echo "$peer $out" >> "$RAW"
            say "$peer: $out"
        done
    done
    t_stop "$FC_PID" "$PHP_PID" "$CGI_PID"
    table_end 4
}

# write_table4: print table 4's section (Markdown) from $RAW.
write_table4() {
    local fc
    section_head "4. CPU wasted after a close"
    cat <<EOF
One 5 s CPU-bound job per run, its client closes at 1.5 s; the CPU that the
peer's processes burn in the $T4_WINDOW_MS ms after the close: the whole process
tree (master, workers, CGI children), every thread's \`sum_exec_runtime\`
from \`/proc/PID/task/TID/schedstat\`, sampled every 25 ms so that a CGI
child that exits is counted too (fcgiwrap ignores SIGCHLD: its children's
CPU never reaches its \`cutime\`), minus the tree's idle rate measured
over $T4_BASE_MS ms before the request.  The job would have
ended 3.5 s after the close: a peer that never notices burns the CPU it
gets for 3.5 s more, ~3500 ms on an idle machine (less when something
else takes a share of the CPU: see "other load").
Medians of $RUNS runs (round robin).

| peer | job | CPU after the close, ms (median) | runs | CPU before the close, ms | idle CPU, ms/s | other load, max % of a CPU |
|---|---|---:|---|---:|---:|---:|
EOF
    local -A what=(
        [fcgi-cancel]="\`/cancel_event?steps=5&step_ms=1000&mode=cpu\` (looks at its token every ~50 µs)"
        [php-silent]="PHP busy loop for 5 s, silent"
        [php-flush]="PHP busy loop for 5 s, \`echo ' '; flush();\` every 100 ms"
        [fcgiwrap]="bash busy loop for 5 s (CGI script), fcgiwrap -c 2"
    )
    for p in fcgi-cancel php-silent php-flush fcgiwrap; do
        printf '| %s | %s | **%s** | %s | %s | %s | %s |\n' "$p" "${what[$p]}" \
            "$(awk -v p="$p" '$1 == p { sub(/after_ms=/, "", $3); print $3 }' "$RAW" | median)" \
            "$(awk -v p="$p" '$1 == p { sub(/after_ms=/, "", $3); printf "%s%.1f", s, $3; s = " / " } END { print "" }' "$RAW")" \
            "$(awk -v p="$p" '$1 == p { sub(/during_ms=/, "", $2); print $2 }' "$RAW" | median)" \
            "$(awk -v p="$p" '$1 == p { sub(/idle_ms_per_s=/, "", $5); print $5 }' "$RAW" | median)" \
            "$(awk -v p="$p" '$1 == p { sub(/other=/, "", $7); if ($7 + 0 > m) m = $7 + 0 } END { print m + 0 }' "$RAW")"
    done
    fc=$(awk '$1 == "fcgi-cancel" { sub(/after_ms=/, "", $3); print $3 }' "$RAW" | median)
    cat <<EOF

| target | figure | verdict |
|---|---:|---|
| fcgi-cancel < 10 ms of CPU after the close | $fc ms | $(verdict "$fc" "<" 10) |

Commands (\`bench/hold waste\` sends the request, samples the CPU just
before its close and $T4_WINDOW_MS ms after):

\`\`\`
$(sort -u "$T/commands.t4")
bench/hold waste -b $T4_BASE_MS -c 1500 -w $T4_WINDOW_MS 127.0.0.1 NGINX_PORT PATH PEER_PID
\`\`\`
EOF
}
