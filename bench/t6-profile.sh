# SPDX-License-Identifier: MIT
#
# bench/t6-profile.sh: table 6, profile of the tiny-request path: the
# server's CPU, context switches and system calls per request (perf stat)
# for fcgi-cancel, the bare responder and the ceiling, and where
# fcgi-cancel's and the bare responder's time goes (perf record).
# Sourced by bench/run (defines table6); run directly, it runs
# bench/run t6.

[ "${BASH_SOURCE[0]}" != "$0" ] || exec "$(dirname "$0")/run" t6 "$@"


# The system calls counted per request in table 6.
SYSCALLS="accept accept4 epoll_wait epoll_pwait epoll_ctl poll ppoll read
readv recvfrom recvmsg write writev sendto sendmsg shutdown close
setsockopt getsockopt fcntl futex ioctl mmap munmap mprotect madvise brk
clock_nanosleep nanosleep sched_yield eventfd2 timerfd_settime"

# pstat NAME URL PID: perf stat of PID while wrk runs on URL; prints
# "NAME REQUESTS RPS CPU_US_PER_REQ CTX_SWITCHES_PER_REQ SYSCALLS_PER_REQ"
# and writes the calls per request, by system call, to $T/t6-NAME.calls.
pstat() {
    local name=$1 u=$2 pid=$3 ppid r reqs ev="task-clock,context-switches,raw_syscalls:sys_enter" s
    for s in $SYSCALLS; do
        ev="$ev,syscalls:sys_enter_$s"
    done
    perf stat -x, -e "$ev" -p "$pid" -o "$T/pstat-$name.csv" \
        -- sleep "$((DURATION + 1))" > /dev/null 2>&1 &
    ppid=$!
    sleep 0.3
    r=$(wrk_once "$u")
    wait "$ppid" 2>/dev/null || true
    reqs=$(awk '{ print $7 }' <<< "$r")
    awk -F, -v q="$reqs" '$3 ~ /^syscalls:sys_enter_/ && $1 + 0 > 0 {
            sub(/^syscalls:sys_enter_/, "", $3);
            printf "%s %.2f\n", $3, $1 / (q > 0 ? q : 1) }' \
        "$T/pstat-$name.csv" | sort -k2,2gr > "$T/t6-$name.calls"
    awk -F, -v n="$name" -v q="$reqs" -v rps="${r%% *}" '
        $3 ~ /^task-clock/ { tc = $1 }
        $3 ~ /^context-switches/ { cs = $1 }
        $3 ~ /^raw_syscalls:sys_enter/ { sc = $1 }
        END { if (q == 0) q = 1;
              printf "%s %d %s %.1f %.2f %.2f\n", n, q, rps,
              tc * 1000 / q, cs / q, sc / q }' "$T/pstat-$name.csv"
}

# cpu_split SERVER_PID: "OURS NGINX SERVER BUSY WALL" (ns) now: the CPU of
# this benchmark's tree, of nginx, of the server, of the machine, the time.
cpu_split() {
    local ours busy ng sv
    read -r ours busy < <("$HOLD" cpu $$ | tr -cs '0-9\n' ' ')
    read -r ng _ < <("$HOLD" cpu "$NGINX_PID" | tr -cs '0-9\n' ' ')
    read -r sv _ < <("$HOLD" cpu "$1" | tr -cs '0-9\n' ' ')
    echo "$ours $ng $sv $busy ${EPOCHREALTIME//[!0-9]/}000"
}

# profile NAME URL PID: perf record of the server PID while wrk runs on
# URL; writes $T/t6-NAME.{split,dso,sym,children}.
profile() {
    local name=$1 u=$2 pid=$3 prec s0 s1
    perf record -q -g -F 1999 -p "$pid" -o "$T/perf-$name.data" \
        -- sleep "$DURATION" > /dev/null 2>&1 &
    prec=$!
    s0=$(cpu_split "$pid")
    wrk_once "$u" > /dev/null
    s1=$(cpu_split "$pid")
    wait "$prec" || true
    # Where the machine's CPU went, in % of one CPU.
    awk -v a="$s0" -v b="$s1" 'BEGIN {
        split(a, x, " "); split(b, y, " "); w = (y[5] - x[5]) / 100;
        ours = y[1] - x[1]; ng = y[2] - x[2]; sv = y[3] - x[3];
        busy = y[4] - x[4];
        printf "wrk and bench tools %.0f %%, nginx %.0f %%, server %.0f %%, other processes %.0f %%, idle %.0f %% (of one CPU; 200 %% = both)\n",
            (ours - ng - sv) / w, ng / w, sv / w,
            (busy - ours > 0 ? busy - ours : 0) / w,
            (200 * w - busy > 0 ? 200 * w - busy : 0) / w }' \
        > "$T/t6-$name.split"
    perf report -i "$T/perf-$name.data" --stdio --no-children --sort dso \
        -g none --percent-limit 0.5 2>/dev/null |
        grep -v '^#' | grep -v '^$' > "$T/t6-$name.dso" || true
    perf report -i "$T/perf-$name.data" --stdio --no-children \
        --sort dso,sym -g none --percent-limit 0.7 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -n 45 > "$T/t6-$name.sym" || true
    perf report -i "$T/perf-$name.data" --stdio --children --sort sym \
        -g none --percent-limit 5 2>/dev/null |
        grep -v '^#' | grep -v '^$' | head -n 40 \
        > "$T/t6-$name.children" || true
}

# table6: measure table 6 into results/t6.raw, write results/t6.md.
table6() {
    table_begin 6
    if [ "$HAVE_PERF" != 1 ]; then
        say "table 6: perf does not work here, skipped"
        { section_head "6. Profile of the tiny-request path"
          echo "perf is not available on this machine: not measured."; } \
            > "$OUT/results/t6.md"
        return 0
    fi
    say "table 6: profile of the tiny-request path"
    start_ceiling
    start_bare "$WORKERS"
    start_fc "$T/fc-quiet.json" "$T/fc-quiet6.log" --workers "$WORKERS"
    start_fcalt --workers "$WORKERS"
    warm "$(url fc-off /tiny)"
    warm "$(url bare-off /)"
    warm "$(url fc-ka /tiny)"
    warm "$(url ceiling-ka /)"
    {
        pstat bare-off "$(url bare-off /)" "$BARE_PID"
        pstat ceiling-off "$(url ceiling-off /)" "$CEIL_PID"
        pstat ceiling-ka "$(url ceiling-ka /)" "$CEIL_PID"
        pstat fc-tiny-off "$(url fc-off /tiny)" "$FC_PID"
        pstat fc-tiny-ka "$(url fc-ka /tiny)" "$FC_PID"
        if [ -n "$FC_ALT" ]; then
            pstat fcalt-tiny-off "$(url fcalt-off /tiny)" "$FCALT_PID"
            pstat fcalt-tiny-ka "$(url fcalt-ka /tiny)" "$FCALT_PID"
        fi
    } > "$T/t6.pstat"
    cat "$T/t6.pstat" >&2
    profile fc "$(url fc-off /tiny)" "$FC_PID"
    profile bare "$(url bare-off /)" "$BARE_PID"
    cp "$T/t6.pstat" "$RAW"
    t_stop "$FCALT_PID" "$FC_PID" "$CEIL_PID"
    stop_bare
    table_end 6
}

# t6_label NAME: the column heading of a pstat run NAME.
t6_label() {
    case $1 in
    bare-*) echo "bare responder, ${1##*-}" ;;
    ceiling-*) echo "ceiling, ${1##*-}" ;;
    fcalt-*) echo "FC_ALT build, ${1##*-}" ;;
    *) echo "fcgi-cancel, ${1##*-}" ;;
    esac
}

# write_table6: print table 6's section (Markdown) from $RAW.
write_table6() {
    local n
    section_head "6. Profile of the tiny-request path"
    cat <<EOF
$WORKERS workers; fcgi-cancel \`/tiny\` without logging, the bare
responder and the ceiling (\`bench/ceiling.c\`, one thread); same wrk
settings as table 1.  Per request, from
\`perf stat -p PID\` of the server process over one ${DURATION} s wrk run
(requests counted by wrk; the CPU figure includes the cost of the ~30
system-call tracepoints counted meanwhile, so it is higher than table 1's
"peer CPU per request"):

| server | nginx → server | requests | req/s | server CPU per request, µs | context switches per request | system calls per request |
|---|---|---:|---:|---:|---:|---:|
EOF
    awk '{ split($1, a, "-"); m = a[length(a)];
           printf "| %s | %s | %s | %s | %s | %s | %s |\n",
               (a[1] == "bare" ? "bare libfcgi responder" : a[1] == "ceiling" ? "ceiling (epoll, 1 thread)" : a[1] == "fcalt" ? "FC_ALT build /tiny" : "fcgi-cancel /tiny"),
               m, $2, $3, $4, $5, $6 }' "$T/t6.pstat"
    cat <<EOF

fcgi-cancel \`/tiny\` ÷ the ceiling, same mode (the ceiling's cost per
request is nginx's share that no backend avoids):

| nginx → server | req/s | server CPU per request | context switches per request | system calls per request |
|---|---:|---:|---:|---:|
EOF
    awk '{ v[$1] = $0 }
         function r(a, b) { return (b + 0 == 0) ? "-" : sprintf("%.2f", a / b) }
         END { for (i = 1; i <= 2; i++) {
                   m = (i == 1 ? "off" : "ka");
                   if (!(("fc-tiny-" m) in v) || !(("ceiling-" m) in v)) continue;
                   split(v["fc-tiny-" m], f, " "); split(v["ceiling-" m], c, " ");
                   printf "| %s | %s | %s | %s | %s |\n", m, r(f[3], c[3]),
                       r(f[4], c[4]), r(f[5], c[5]), r(f[6], c[6]) } }' \
        "$T/t6.pstat"
    cat <<EOF

System calls per request, by call (\`perf stat -e syscalls:sys_enter_CALL\`;
the calls below 0.01 per request are left out):

EOF
    local hdr="| system call |" sep="|---|" nm i=0
    while read -r nm _; do
        hdr="$hdr $(t6_label "$nm") |"
        sep="$sep---:|"
    done < "$T/t6.pstat"
    printf '%s\n%s\n' "$hdr" "$sep"
    while read -r nm _; do
        i=$((i + 1))
        sed "s/^/$i /" "$T/t6-$nm.calls"
    done < "$T/t6.pstat" |
        awk -v n="$(wc -l < "$T/t6.pstat")" '{ v[$2, $1] = $3; all[$2] = 1; if ($3 > m[$2]) m[$2] = $3 }
            END { for (s in all) {
                    line = "| " s " |";
                    for (c = 1; c <= n; c++)
                        line = line " " (((s, c) in v) ? v[s, c] : "0") " |";
                    print m[s] "\t" line } }' |
        sort -t"$(printf '\t')" -k1,1gr | cut -f2-
    cat <<EOF

Reading the profiles: this VM has no hardware PMU (\`cycles\` is not
supported), so perf samples on \`cpu-clock\`, a timer; a sample that falls
while interrupts are off is charged to where they are re-enabled, so
\`finish_task_switch\` and \`_raw_spin_unlock_irq*\` stand for the context
switches and wake-ups around them.
EOF
    for n in fc bare; do
        local who
        if [ "$n" = fc ]; then
            who="fcgi-cancel /tiny"
        else
            who="the bare responder"
        fi
        cat <<EOF

### $who, keep_conn off: \`perf record -g -F 1999 -p SERVER_PID\` over ${DURATION} s of wrk

Where the machine's CPU went meanwhile (process-tree accounting from
/proc, as for "other load"):

\`\`\`
$(cat "$T/t6-$n.split")
\`\`\`

The server's samples by shared object (% of the server's samples):

\`\`\`
$(cat "$T/t6-$n.dso")
\`\`\`

The server's top functions, self time (% of the server's samples; [k]
kernel):

\`\`\`
$(cat "$T/t6-$n.sym")
\`\`\`
EOF
        if [ "$n" = fc ]; then
            cat <<EOF

The server's inclusive time (children), where call chains allow
(frame-pointer unwinding: the chains through libc and libfcgi, built
without frame pointers, are cut, the kernel's are whole):

\`\`\`
$(cat "$T/t6-$n.children")
\`\`\`
EOF
        fi
    done
    cat <<EOF

Commands:

\`\`\`
perf stat -x, -e task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_CALL,... -p SERVER_PID -- sleep $((DURATION + 1))   (during: $WRK_CMD)
perf record -g -F 1999 -p SERVER_PID -- sleep $DURATION   (during: $WRK_CMD)
perf report --stdio --no-children --sort dso,sym -g none
perf report --stdio --children --sort sym -g none
$(sort -u "$T/commands.t6")
\`\`\`
EOF
}
