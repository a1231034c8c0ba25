#!/bin/bash
# SPDX-License-Identifier: MIT
# sd_notify and the signals of an operator: the test owns the NOTIFY_SOCKET
# (tests/notify-recv binds it and writes each datagram to a file), starts
# the server under it with WATCHDOG_USEC=200000, and checks READY=1 once
# serving, STATUS= lines with the in-flight and cancel counts, WATCHDOG=1
# at least every 200 ms (sent every ~100 ms), and STOPPING=1 then
# "draining" after SIGTERM.  An abstract socket ("@name") works too, and a
# WATCHDOG_PID for another process turns the watchdog off.  SIGHUP reopens
# the access log: moved away by hand, then by logrotate with the
# conf/logrotate snippet.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup

NOTIFY_RECV=$top_builddir/tests/notify-recv
[ -x "$NOTIFY_RECV" ] || t_fail "not built: $NOTIFY_RECV"
[ -x "$FCGI_CANCEL" ] || t_fail "server binary not built: $FCGI_CANCEL"

# start_recv SOCKET OUT: a receiver on SOCKET writing to OUT (timestamped),
# tracked; waits until it is bound (OUT appears).  Its PID in RECV_PID.
start_recv() {
    rm -f "$2"
    "$NOTIFY_RECV" -t -a 120 "$1" "$2" 2> "$T/recv-err.log" &
    RECV_PID=$!
    t_track "$RECV_PID"
    t_wait_for 3000 test -e "$2" || t_fail "notify-recv did not bind $1"
}

# has OUT REGEX: some message in OUT (after its time stamp) matches REGEX.
has() {
    cut -d' ' -f2- "$1" | grep -qE -- "$2"
}

mkdir -p "$T/logs"
cat > "$T/conf.json" <<EOF
// Default routes; the access log in a file, for the SIGHUP checks.
{ "access_log": "$T/logs/access.log", }
EOF

# ---- 1. READY, STATUS, WATCHDOG ---------------------------------------
start_recv "$T/notify.sock" "$T/notify.out"
export NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=200000
t_start_server --config "$T/conf.json" --workers 4 --grace-ms 1500
unset NOTIFY_SOCKET WATCHDOG_USEC

t_wait_for 3000 has "$T/notify.out" '^READY=1$' ||
    t_fail "no READY=1 within 3 s"
# READY comes once, first, and only once the server is serving.
[ "$(cut -d' ' -f2- "$T/notify.out" | head -n 1)" = "READY=1" ] ||
    t_fail "the first message is not READY=1"
t_log_has 'serving on unix:' || t_fail "READY=1 before the server serves"
t_fcgi -q -u /ping 2>/dev/null || t_fail "/ping after READY=1"
t_ok "READY=1 first, once serving"

idle='^STATUS=serving: 0 in flight, 0 cancelled \(client_gone 0, aborted 0, write_error 0, deadline 0, shutdown 0\)$'
t_wait_for 3000 has "$T/notify.out" "$idle" ||
    t_fail "no idle STATUS= line: $(grep STATUS= "$T/notify.out" | head -n 1)"
t_ok "STATUS= line of an idle server"

# A job in flight shows, then its client leaves: cancelled, client_gone.
t_fcgi -q -t 10000 -c 2500 -u '/cancel_event?task_param=notify' \
    > "$T/client.out" 2>&1 &
client=$!
t_track "$client"
t_wait_for 3000 has "$T/notify.out" '^STATUS=serving: 1 in flight, 0 cancelled' ||
    t_fail "no STATUS= line with 1 in flight"
t_ok "STATUS=serving: 1 in flight"
wait "$client" || t_fail "fcgi-client failed: $(cat "$T/client.out")"
t_wait_for 3000 has "$T/notify.out" \
    '^STATUS=serving: 0 in flight, 1 cancelled \(client_gone 1, aborted 0,' ||
    t_fail "no STATUS= line with the cancel"
t_ok "STATUS=serving: 0 in flight, 1 cancelled (client_gone 1, ...)"

# STATUS= about once a second: the job took 2.5 s, so 3 lines at least.
n=$(grep -c ' STATUS=' "$T/notify.out")
[ "$n" -ge 3 ] || t_fail "only $n STATUS= lines in over 2.5 s"

# The watchdog: WATCHDOG_USEC=200000, so WATCHDOG=1 every ~100 ms; no gap
# may reach the 200 ms after which systemd would kill the service.
# shellcheck disable=SC2016
read -r pings maxgap avg < <(awk '$2 == "WATCHDOG=1" {
        if (n > 0) { g = $1 - last; if (g > max) max = g; sum += g }
        last = $1; n++
    } END { printf "%d %.1f %.1f\n", n, max, (n > 1 ? sum / (n - 1) : 0) }' \
    "$T/notify.out")
[ "$pings" -ge 20 ] || t_fail "only $pings WATCHDOG=1 in about 3 s"
awk -v m="$maxgap" 'BEGIN { exit !(m < 200) }' ||
    t_fail "a WATCHDOG=1 gap of $maxgap ms (>= WATCHDOG_USEC)"
awk -v a="$avg" 'BEGIN { exit !(a >= 80 && a <= 130) }' ||
    t_fail "WATCHDOG=1 every $avg ms on average, expected ~100"
t_ok "WATCHDOG=1: $pings pings, every $avg ms on average, largest gap $maxgap ms"

# ---- 2. SIGHUP reopens the access log -----------------------------------
t_fcgi -q -u '/ping?before-move' 2>/dev/null || t_fail "/ping"
t_wait_for 2000 grep -q 'before-move' "$T/logs/access.log" ||
    t_fail "the access log file does not get the request"
mv "$T/logs/access.log" "$T/logs/access.log.1"
t_fcgi -q -u '/ping?after-move' 2>/dev/null || t_fail "/ping"
t_wait_for 2000 grep -q 'after-move' "$T/logs/access.log.1" ||
    t_fail "before SIGHUP, lines go on to the moved file"
[ ! -e "$T/logs/access.log" ] || t_fail "access.log re-created before SIGHUP"
kill -HUP "$SERVER_PID"
t_wait_for 3000 t_log_has 'SIGHUP: logs reopened' ||
    t_fail "the server did not log the reopen"
t_fcgi -q -u '/ping?after-hup' 2>/dev/null || t_fail "/ping after SIGHUP"
t_wait_for 2000 grep -q 'after-hup' "$T/logs/access.log" ||
    t_fail "after SIGHUP the request is not in a new access.log"
! grep -q 'after-hup' "$T/logs/access.log.1" ||
    t_fail "after SIGHUP a line still went to the moved file"
[ "$(stat -c %a "$T/logs/access.log")" = 640 ] ||
    t_fail "new access.log has mode $(stat -c %a "$T/logs/access.log")"
t_ok "SIGHUP: a new access.log (0640) gets the next request"

# The same through logrotate and the shipped snippet, if logrotate is here.
if command -v logrotate >/dev/null 2>&1; then
    sed -e "s|^/var/log/fcgi-cancel/\*\.log .*{|$T/logs/*.log {|" \
        -e "s|systemctl reload fcgi-cancel.service|kill -HUP $SERVER_PID|" \
        -e "/systemctl reload 'fcgi-cancel@/d" \
        "$top_srcdir/conf/logrotate" > "$T/logrotate.conf"
    grep -q "^$T/logs/\*\.log {" "$T/logrotate.conf" &&
        grep -q "kill -HUP $SERVER_PID" "$T/logrotate.conf" ||
        t_fail "could not adapt conf/logrotate"
    reopened=$(t_log_count 'SIGHUP: logs reopened')
    logrotate -f -s "$T/logrotate.state" "$T/logrotate.conf" \
        > "$T/logrotate.log" 2>&1 || t_fail "logrotate failed"
    t_wait_for 3000 sh -c "[ \$(grep -c 'SIGHUP: logs reopened' \
        '$T/server.log') -gt $reopened ]" ||
        t_fail "logrotate's postrotate did not reach the server"
    grep -q 'after-hup' "$T/logs/access.log.1" ||
        t_fail "logrotate did not move access.log to access.log.1"
    t_fcgi -q -u '/ping?after-logrotate' 2>/dev/null || t_fail "/ping"
    t_wait_for 2000 grep -q 'after-logrotate' "$T/logs/access.log" ||
        t_fail "after logrotate the request is not in a new access.log"
    t_ok "logrotate with conf/logrotate: rotated, reopened, new file in use"
else
    echo "# logrotate not installed: conf/logrotate not exercised"
fi

# ---- 3. STOPPING and draining ---------------------------------------------
t_fcgi -t 10000 -u '/cancel_tg?task_param=drain' > "$T/drain.out" 2>&1 &
client=$!
t_track "$client"
t_wait_for 3000 t_log_has 'job start task_param="drain"' ||
    t_fail "the job did not start"
t_stop_server TERM 6000 || t_fail "server still running 6 s after SIGTERM"
[ "$SERVER_STATUS" -eq 0 ] || t_fail "exit status $SERVER_STATUS"
wait "$client" || true
grep -q 'Status: 503' "$T/drain.out" ||
    t_fail "the job running at the end did not get 503: $(cat "$T/drain.out")"
# shellcheck disable=SC2016
order=$(cut -d' ' -f2- "$T/notify.out" | awk '
    /^STOPPING=1$/ { if (!s) s = NR }
    /^STATUS=draining: 1 in flight/ { if (!d) d = NR }
    /^STATUS=serving/ { last = NR }
    END { print (s > last && d > s) ? "ok" : "s=" s " d=" d " last=" last }')
[ "$order" = ok ] ||
    t_fail "expected STOPPING=1 after the last serving STATUS=, then" \
           "STATUS=draining: 1 in flight ($order)"
# The watchdog goes on while draining (the grace period was 1.5 s).
stop_line=$(cut -d' ' -f2- "$T/notify.out" | grep -n '^STOPPING=1$' |
    head -n 1 | cut -d: -f1)
n=$(tail -n +"$stop_line" "$T/notify.out" | grep -c ' WATCHDOG=1$' || true)
[ "$n" -ge 5 ] || t_fail "only $n WATCHDOG=1 while draining"
t_ok "SIGTERM: STOPPING=1, STATUS=draining: 1 in flight, watchdog on, exit 0"
kill "$RECV_PID"
wait "$RECV_PID" || t_fail "notify-recv exited with $?"

# ---- 4. an abstract socket; a watchdog meant for another process --------
name="@fcgi-cancel-test-$$-$RANDOM"
start_recv "$name" "$T/abstract.out"
export NOTIFY_SOCKET=$name WATCHDOG_USEC=50000 WATCHDOG_PID=1
t_start_server --workers 2
unset NOTIFY_SOCKET WATCHDOG_USEC WATCHDOG_PID
t_wait_for 3000 has "$T/abstract.out" '^READY=1$' ||
    t_fail "no READY=1 on the abstract socket $name"
# Two STATUS= lines: a second at least, 20 watchdog periods.
t_wait_for 3000 sh -c "[ \$(grep -c ' STATUS=' '$T/abstract.out') -ge 2 ]" ||
    t_fail "no STATUS= lines on the abstract socket"
! has "$T/abstract.out" '^WATCHDOG=1$' ||
    t_fail "WATCHDOG=1 sent though WATCHDOG_PID is another process"
t_stop_server TERM 5000 && [ "$SERVER_STATUS" -eq 0 ] || t_fail "stop"
t_wait_for 2000 has "$T/abstract.out" '^STOPPING=1$' ||
    t_fail "no STOPPING=1 on the abstract socket"
t_ok "abstract NOTIFY_SOCKET $name: READY, STATUS, STOPPING; no watchdog for another PID"

# ---- 5. no NOTIFY_SOCKET, or a bad one: the server runs all the same ------
NOTIFY_SOCKET=relative/path t_start_server --workers 2
t_fcgi -q -u /ping 2>/dev/null || t_fail "/ping with a bad NOTIFY_SOCKET"
t_wait_for 5000 t_log_has 'NOTIFY_SOCKET=.*not notifying' ||
    t_fail "no warning about the bad NOTIFY_SOCKET"
t_stop_server TERM 5000 && [ "$SERVER_STATUS" -eq 0 ] || t_fail "stop"
t_ok "a malformed NOTIFY_SOCKET: a warning, and the server serves"
