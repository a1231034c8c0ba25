# SPDX-License-Identifier: MIT
#
# bench/t5-memory.sh: table 5, memory: the server's RSS with many sleeping
# jobs in flight, default stack and --stack-kb 256.
# Sourced by bench/run (defines table5); run directly, it runs
# bench/run t5.

[ "${BASH_SOURCE[0]}" != "$0" ] || exec "$(dirname "$0")/run" t5 "$@"

# rss_kb PID FIELD: a field of /proc/PID/status (VmRSS, VmHWM: kB).
rss_kb() {
    awk -v k="$2" '$1 == k ":" { print $2 }' "/proc/$1/status"
}

# table5: measure table 5 into results/t5.raw, write results/t5.md.
table5() {
    local stack n idle busy hwm thr
    table_begin 5
    say "table 5: memory with $MEM_JOBS sleeping jobs ($RUNS runs per stack size)"
    for ((n = 1; n <= RUNS; n++)); do
        for stack in default 256; do
            if [ "$stack" = default ]; then
                start_fc "$T/fc-info.json" "$T/t5.log" --workers 1024
            else
                start_fc "$T/fc-info.json" "$T/t5.log" --workers 1024 \
                    --stack-kb "$stack"
            fi
            sleep 0.3
            idle=$(rss_kb "$FC_PID" VmRSS)
            hold_start "$MEM_JOBS" \
                "/cancel_event?steps=1&step_ms=600000&task_param=mem-%d"
            sleep 0.5
            busy=$(rss_kb "$FC_PID" VmRSS)
            hwm=$(rss_kb "$FC_PID" VmHWM)
            thr=$(rss_kb "$FC_PID" Threads)
            echo "$stack $idle $busy $hwm $thr" >> "$RAW"
            say "stack $stack: idle ${idle} kB, $MEM_JOBS jobs ${busy} kB"
            hold_stop
            t_stop "$FC_PID"
        done
    done
    table_end 5
}

# write_table5: print table 5's section (Markdown) from $RAW.
write_table5() {
    local worst
    section_head "5. Memory with $MEM_JOBS sleeping jobs in flight"
    cat <<EOF
fcgi-cancel --workers 1024, $MEM_JOBS \`/cancel_event\` jobs sleeping
(held open through nginx by \`bench/hold\`); VmRSS and VmHWM of the server
process from \`/proc/PID/status\`.  Medians of $RUNS runs.

| --stack-kb | RSS idle, MiB | RSS with $MEM_JOBS jobs, MiB | peak (VmHWM), MiB | per job, KiB | threads | runs (RSS with jobs, MiB) |
|---|---:|---:|---:|---:|---:|---|
EOF
    for s in default 256; do
        awk -v s="$s" '$1 == s' "$RAW" > "$T/t5.$s"
        local i b h
        i=$(awk '{ print $2 }' "$T/t5.$s" | median)
        b=$(awk '{ print $3 }' "$T/t5.$s" | median)
        h=$(awk '{ print $4 }' "$T/t5.$s" | median)
        printf '| %s | %.1f | **%.1f** | %.1f | %.1f | %s | %s |\n' \
            "$([ "$s" = default ] && echo "default (1024)" || echo "$s")" \
            "$(awk -v v="$i" 'BEGIN { print v / 1024 }')" \
            "$(awk -v v="$b" 'BEGIN { print v / 1024 }')" \
            "$(awk -v v="$h" 'BEGIN { print v / 1024 }')" \
            "$(awk -v a="$b" -v c="$i" -v n="$MEM_JOBS" 'BEGIN { print (a - c) / n }')" \
            "$(awk '{ print $5 }' "$T/t5.$s" | median)" \
            "$(awk '{ printf "%s%.1f", sep, $3 / 1024; sep = " / " } END { print "" }' "$T/t5.$s")"
    done
    worst=$(awk '{ if ($4 > m) m = $4 } END { printf "%.1f", m / 1024 }' "$RAW")
    cat <<EOF

| target | figure | verdict |
|---|---:|---|
| RSS < 64 MiB with $MEM_JOBS jobs (highest peak of all runs) | $worst MiB | $(verdict "$worst" "<" 64) |

Commands:

\`\`\`
$(sort -u "$T/commands.t5")
\`\`\`
EOF
}
