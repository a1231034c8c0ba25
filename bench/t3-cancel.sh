# SPDX-License-Identifier: MIT
#
# bench/t3-cancel.sh: table 3, cancel latency: requests abandoned one after
# another, with 1 and with many jobs in flight; client close -> job
# returned, from the client's clock and the server's log.
# Sourced by bench/run (defines table3); run directly, it runs
# bench/run t3.

[ "${BASH_SOURCE[0]}" != "$0" ] || exec "$(dirname "$0")/run" t3 "$@"

# table3: measure table 3 into results/t3.raw, write results/t3.md.
table3() {
    local mode inflight tag s0 s1 n want c0 c1
    table_begin 3
    say "table 3: cancel latency ($ABANDON_N abandoned requests per condition)"
    for inflight in 1 "$INFLIGHT"; do
        for mode in sleep cpu; do
            tag="$mode-$inflight"
            start_fc "$T/fc-info.json" "$T/t3-$tag.log" --workers 600
            if [ "$inflight" != 1 ]; then
                hold_start "$inflight" \
                    "/cancel_event?steps=1&step_ms=600000&task_param=hold-%d"
            fi
            s0=$(status_json)
            c0=$(cpu_now)
            "$HOLD" abandon -c 50 -g 20 "$ABANDON_N" 127.0.0.1 \
                "${PORT[fc-off]}" \
                "/cancel_event?steps=1&step_ms=60000&mode=$mode&task_param=ab-%d" \
                > "$T/t3-$tag.abandon"
            c1=$(cpu_now)
            # Every abandoned job must have been cancelled.
            want=$ABANDON_N
            cancelled() {
                [ "$(grep -c ' job cancelled ' "$FC_LOG")" -ge "$want" ]
            }
            t_wait_for 10000 cancelled ||
                t_fail "$tag: not every abandoned job was cancelled"
            s1=$(status_json)
            n=$(( $(jq -r .cancel_latency.samples <<< "$s1") -
                  $(jq -r .cancel_latency.samples <<< "$s0") ))
            # Client close -> "job cancelled" line, and the server's own
            # cancel -> return, per request.
            awk "$AWK_EPOCH"'
                FNR == NR { sub(/closed_at_ms=/, "", $2); closed[$1] = $2;
                            if ($3 == "early=1") early++; next }
                / job start task_param="ab-/ {
                    t = $0; sub(/.*task_param="ab-/, "", t); sub(/".*/, "", t)
                    id = $3; idx[id] = t; next }
                / job cancelled / && ($3 in idx) {
                    r = $0; sub(/.*returned_after_ms=/, "", r)
                    i = idx[$3]
                    if (i in closed)
                        printf "%s %.3f %s %.3f\n", i, epoch_ms($1) - closed[i], r + 0,
                            epoch_ms($1) - closed[i] - r }
                END { if (early > 0) print "early " early > "/dev/stderr" }
                ' "$T/t3-$tag.abandon" "$FC_LOG" > "$T/t3-$tag.lat"
            printf '%s %s %s %s %s %s %s %s %s %s %s %s %s %s %s\n' "$tag" \
                "$(wc -l < "$T/t3-$tag.lat")" \
                "$(awk '{ print $2 }' "$T/t3-$tag.lat" | pctl 50)" \
                "$(awk '{ print $2 }' "$T/t3-$tag.lat" | pctl 99)" \
                "$(awk '{ print $2 }' "$T/t3-$tag.lat" | pctl 100)" \
                "$(awk '{ print $3 }' "$T/t3-$tag.lat" | pctl 50)" \
                "$(awk '{ print $3 }' "$T/t3-$tag.lat" | pctl 99)" \
                "$(awk '{ print $3 }' "$T/t3-$tag.lat" | pctl 100)" \
                "$n" \
                "$(jq -r '.cancel_latency | "\(.p50_ms) \(.p99_ms)"' <<< "$s1")" \
                "$(jq -r .cancel_latency.max_ms <<< "$s1")" \
                "$(other_pct "$c0" "$c1")" \
                "$(awk '{ print $4 }' "$T/t3-$tag.lat" | pctl 50)" \
                "$(awk '{ print $4 }' "$T/t3-$tag.lat" | pctl 99)" \
                "$(awk '{ sub(/close_ms=/, "", $4); if ($4 + 0 > 1) n++ } END { print n + 0 }' "$T/t3-$tag.abandon")" >> "$RAW"
            cp "$T/t3-$tag.lat" "$OUT/results/t3-$tag.lat"
            say "$tag: $(tail -n1 "$RAW")"
            hold_stop
            t_stop "$FC_PID"
        done
    done
    table_end 3
}

# write_table3: print table 3's section (Markdown) from $RAW.
write_table3() {
    local worst
    section_head "3. Cancel latency"
    cat <<EOF
$ABANDON_N abandoned requests per condition, one after another, through
nginx (keep_conn off): a client asks \`/cancel_event\` (a 60 s job) and
closes its connection 50 ms later; the next starts 20 ms after the close.
"In flight" is the number of jobs running meanwhile: 1 (the abandoned one)
or $INFLIGHT (plus $INFLIGHT sleeping \`/cancel_event\` jobs held open by
\`bench/hold\`).  fcgi-cancel --workers 600, a fresh server per condition.

- **client close → job returned**: the client's clock at \`close()\` to the
  timestamp of the server's "job cancelled" log line (same machine, same
  clock): nginx noticing, closing the FastCGI connection, the watcher's
  wake-up, the cancel, the job's return.
- **close → cancel**: the same minus the server's cancel → return: nginx
  noticing the close and closing the FastCGI connection, and the watcher
  waking up and cancelling.
- **cancel → return (server)**: \`returned_after_ms\` of that line, and the
  \`/status\` \`cancel_latency\` object (p50/p99 over the condition's
  samples, since the server is fresh; max since start).

- **client preempted in close()**: requests whose \`close()\` took the
  client more than 1 ms, clock to clock: the client was descheduled there,
  and the request's figures include that delay.

Percentiles are nearest-rank over the $ABANDON_N requests of a condition.

| mode | in flight | requests | client close → returned: p50 ms | p99 ms | max ms | of which close → cancel (nginx + watcher): p50 ms | p99 ms | cancel → return (log): p50 ms | p99 ms | max ms | /status samples | /status p50 ms | p99 ms | max ms | other load, % of a CPU | client preempted in close() |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
EOF
    awk '{ split($1, a, "-");
           printf "| %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
               a[1], a[2], $2, $3, $4, $5, $14, $15, $6, $7, $8, $9, $10, $11, $12, $13, $16 }' \
        "$RAW"
    worst=$(awk '$4 > m { m = $4 } END { print m + 0 }' "$RAW")
    cat <<EOF

| target | figure | verdict |
|---|---:|---|
| p99 client close → returned < 5 ms, every condition | worst p99 $worst ms | $(verdict "$worst" "<" 5) |
| no growth from 1 to $INFLIGHT in flight (p99 at $INFLIGHT ≤ p99 at 1 + 1 ms) | sleep: $(awk '$1 == "sleep-1" { a = $4 } $1 ~ /^sleep-[0-9][0-9]/ { b = $4 } END { printf "%s → %s ms", a, b }' "$RAW"); cpu: $(awk '$1 == "cpu-1" { a = $4 } $1 ~ /^cpu-[0-9][0-9]/ { b = $4 } END { printf "%s → %s ms", a, b }' "$RAW") | $(awk '{ split($1, k, "-"); p[k[1] "-" (k[2] == 1 ? "one" : "many")] = $4 }
        END { ok = (p["sleep-many"] <= p["sleep-one"] + 1) && (p["cpu-many"] <= p["cpu-one"] + 1);
              print ok ? "met" : "**missed**" }' "$RAW") |

Commands:

\`\`\`
$(sort -u "$T/commands.t3")
bench/hold abandon -c 50 -g 20 $ABANDON_N 127.0.0.1 NGINX_PORT '/cancel_event?steps=1&step_ms=60000&mode=MODE&task_param=ab-%d'
\`\`\`
EOF
}
