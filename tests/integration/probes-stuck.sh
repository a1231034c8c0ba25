#!/bin/bash
# SPDX-License-Identifier: MIT
# The watcher never waits on a peer (issue #15): one probed job whose front
# end stops reading, while other jobs are abandoned.
#   1. a raw client sends a request for an exec route with "probe_ms": 10
#      whose program writes 160 KB and then sleeps, and never reads: the
#      socket fills up, and the probes meet a full socket;
#   2. meanwhile 50 jobs on a sleeping route are abandoned (their clients
#      close the connection 300 ms after sending): every one is cancelled
#      (client_gone) and its job returns within 500 ms of the close;
#   3. a /status request on another connection is answered within 500 ms;
#   4. the stuck job is still running, not cancelled: a full socket skips
#      the tick, it is no write error; when its client goes, it is
#      cancelled too.
# With probes that block (a send bounded only by write_timeout_ms, here
# 20 s) under the watcher's lock, 2 and 3 take until that timeout.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup
HOLD_CONNS=$top_builddir/tests/hold-conns
[ -x "$HOLD_CONNS" ] || t_fail "not built: $HOLD_CONNS"
N=${PROBES_STUCK_N:-50}
CLOSE_MS=300
BOUND_MS=500

cat > "$T/flood.sh" <<EOF
#!/bin/sh
head -c 163840 /dev/zero | tr '\\0' x
touch "$T/flood.wrote"
exec sleep 30
EOF
chmod +x "$T/flood.sh"
cat > "$T/conf.json" <<EOF
{
    "write_timeout_ms": 20000,
    "routes": [
        { "path": "/flood", "handler": "exec", "argv": ["$T/flood.sh"],
          "output": "raw", "content_type": "text/plain", "probe_ms": 10 },
        { "path": "/sleep", "handler": "work", "style": "wait",
          "steps": 100, "step_ms": 100, "mode": "sleep" },
        { "path": "/status", "handler": "status" },
    ],
}
EOF
t_start_server --config "$T/conf.json" --workers $((N + 8))

# ---- 1. the client that never reads -------------------------------------
"$FCGI_CLIENT" -u /flood -w "$T/flood.req" || t_fail "fcgi-client -w"
"$HOLD_CONNS" -n 1 -d "$T/flood.req" -N -s 60 -r "$T/flood.ready" \
    "$FCGI_ADDR" > "$T/flood.out" 2> "$T/flood.err" &
FLOOD_PID=$!
t_track "$FLOOD_PID"
t_wait_for 10000 test -e "$T/flood.ready" || t_fail "hold-conns not ready"
t_wait_for 10000 test -e "$T/flood.wrote" ||
    t_fail "the /flood job did not write its output"
# Its program has written everything and sleeps: the socket is full and
# the job silent, so every tick from now on probes a full socket (a
# blocking probe would be stuck from here on).
t_ok "1. a probed job's client stopped reading (160 KB unread)"

# status_json: the body of /status, asked directly over FastCGI.
status_json() {
    "$FCGI_CLIENT" -u /status -t 20000 "$FCGI_ADDR" 2>/dev/null |
        sed '1,/^\r*$/d'
}
cancelled0=$(jq '.cancelled_by_reason.client_gone' <<< "$(status_json)")

# ---- 2. 50 abandoned jobs ------------------------------------------------
pids=()
t0=$(t_now_ms)
for i in $(seq 1 "$N"); do
    "$FCGI_CLIENT" -q -u "/sleep?i=$i" -c "$CLOSE_MS" -t 20000 "$FCGI_ADDR" \
        > /dev/null 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do
    wait "$p" || t_fail "an abandoning client failed"
done
gone() {
    [ "$(t_log_count 'access req=[0-9]+ GET "/sleep[^"]*" 499 .*reason=client_gone')" \
        -ge "$N" ]
}
t_wait_for 5000 gone || t_fail "not all $N abandoned jobs were cancelled"
t1=$(t_now_ms)
# Each job ran from its request to the close (CLOSE_MS) plus the time to
# notice and return: that rest is bounded.
worst=$(sed -n 's/.* GET "\/sleep[^"]*" 499 \([0-9.]*\)ms reason=client_gone.*/\1/p' \
    "$T/server.log" | sort -g | tail -n 1)
[ -n "$worst" ] || t_fail "no access lines for the abandoned jobs"
awk -v w="$worst" -v b=$((CLOSE_MS + BOUND_MS)) 'BEGIN { exit !(w < b) }' ||
    t_fail "an abandoned job ran ${worst} ms (close at ${CLOSE_MS} ms," \
        "bound ${BOUND_MS} ms): cancel detection was held up"
t_ok "2. $N abandoned jobs all cancelled, the slowest after ${worst} ms" \
    "(close at ${CLOSE_MS} ms; all within $((t1 - t0)) ms)"

# ---- 3. /status answers promptly ----------------------------------------
s0=$(t_now_ms)
st=$(status_json) || t_fail "/status did not answer"
s1=$(t_now_ms)
[ $((s1 - s0)) -lt "$BOUND_MS" ] ||
    t_fail "/status took $((s1 - s0)) ms while a probed job is stuck"
[ "$(jq '.cancelled_by_reason.client_gone' <<< "$st")" -eq \
    $((cancelled0 + N)) ] || t_fail "/status: $st"
t_ok "3. /status answered in $((s1 - s0)) ms"

# ---- 4. the stuck job: not cancelled by the full socket; gone when its
# client goes ---------------------------------------------------------------
# In flight: the stuck job and the /status request itself.
[ "$(jq '.in_flight' <<< "$st")" -eq 2 ] ||
    t_fail "the stuck job is not in flight: $st"
[ "$(jq '.cancelled_by_reason.write_error' <<< "$st")" -eq 0 ] ||
    t_fail "a full socket was taken for a write error: $st"
t_stop "$FLOOD_PID"
flood_gone() {
    t_log_count 'access req=[0-9]+ GET "/flood" 499 ' | grep -qx 1
}
t_wait_for 5000 flood_gone ||
    t_fail "the stuck job was not cancelled when its client went"
t_ok "4. the stuck job ran on, skipping full ticks; cancelled when its" \
    "client went"
