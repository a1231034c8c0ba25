#!/bin/bash
# SPDX-License-Identifier: MIT
# Floods of requests that never end, against the default bounds
# max_connections (10000) and max_arriving_bytes (64 MiB), with nginx in
# front serving requests meanwhile:
#   1. 10,000 raw connections that each send half a request
#      (FCGI_BEGIN_REQUEST and part of a param) and stall;
#   2. 1,000 that each send 256 KB of a param that never ends.
# During each flood: the server's peak RSS stays under a bound (before
# the bounds, flood 2 took it to 269 MB here), every request through
# nginx is answered 200 within a bound, and /status counts what was
# dropped.  After each: the server's descriptors are back to where they
# were, its RSS back down, nothing arriving is left.
# FLOOD_NO_RSS=1 skips the memory checks (set under sanitizers).
set -euo pipefail
. "$top_srcdir/tests/lib.sh"

HOLD_CONNS=$top_builddir/tests/hold-conns
N_HALF=10000
N_BIG=1000
BIG_BYTES=262144
HOLD_S=3                        # hold each flood this long once it is sent
PEAK_HALF_KB=$((48 * 1024))     # RSS bounds during the floods
PEAK_BIG_KB=$((96 * 1024))      # 64 MiB of buffers, and what is not them
AFTER_KB=$((24 * 1024))         # RSS after a flood, over the one before
ANSWER_MS=2000                  # each request through nginx, at most

[ -x "$HOLD_CONNS" ] || t_fail "not built: $HOLD_CONNS"
# The flood and the server each need 10,000 descriptors and some.
need=$((N_HALF + 1000))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$need" ]; then
    ulimit -Hn "$need" 2>/dev/null ||
        t_fail "the hard descriptor limit is $(ulimit -Hn), below $need" \
               "(ulimit -Hn $need as root)"
fi
ulimit -n "$(ulimit -Hn)"

t_setup
t_start_server
t_start_nginx ""

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status"; }
fds() { find "/proc/$SERVER_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
# st FIELD: a field of /status, asked on the raw socket (not through
# nginx, whose connection would count in open_connections).
st() { t_fcgi -u /status 2>/dev/null | sed -n '/^{/,$p' | jq -r "$1"; }

# A warm start: every worker has served once (their stacks and arenas).
for i in $(seq 1 64); do
    curl -s -o /dev/null "$NGINX_URL/ping"
done
fds0=$(fds)
rss0=$(rss_kb)
echo "# baseline: RSS ${rss0} kB, ${fds0} descriptors"

# flood NAME N HOLD-CONNS-OPTIONS...: hold N connections with hold-conns
# (in the background) and, from the start until they are released, ask
# nginx for a work job again and again (at most 3000 times); each answer
# goes to $T/NAME.storm while hold-conns connects and sends, then to
# $T/NAME.answers while it holds, as "CODE SECONDS".  Sets FLOOD_OPEN to
# the connections /status counted while all were held, and FLOOD_PEAK to
# the server's highest RSS seen (kB).
flood() {
    local name=$1 n=$2 i hp out rss
    shift 2
    "$HOLD_CONNS" -n "$n" -s "$HOLD_S" -r "$T/$name.ready" "$@" "$FCGI_ADDR" \
        > "$T/$name.out" 2> "$T/$name.err" &
    hp=$!
    t_track "$hp"
    : > "$T/$name.answers"
    : > "$T/$name.storm"
    FLOOD_OPEN=
    FLOOD_PEAK=0
    for ((i = 0; i < 3000; i++)); do
        _t_alive "$hp" || break
        out=$T/$name.storm
        [ ! -e "$T/$name.ready" ] || out=$T/$name.answers
        curl -s -o "$T/$name.body" --max-time 10 \
            -w '%{http_code} %{time_total}\n' \
            "$NGINX_URL/cancel_event?steps=1&step_ms=0&task_param=$name" \
            >> "$out" || echo "000 10" >> "$out"
        rss=$(rss_kb)
        [ "$rss" -le "$FLOOD_PEAK" ] || FLOOD_PEAK=$rss
        if [ -z "$FLOOD_OPEN" ] && [ -e "$T/$name.ready" ]; then
            FLOOD_OPEN=$(st .open_connections)
            echo "# $name: all sent, RSS $(rss_kb) kB, $(fds) descriptors," \
                 "/status: open_connections $FLOOD_OPEN," \
                 "arriving_bytes $(st .arriving_bytes)"
        fi
    done
    wait "$hp" || t_fail "$name: hold-conns failed: $(cat "$T/$name.err")"
    t_stop "$hp"
    [ -e "$T/$name.ready" ] || t_fail "$name: hold-conns never sent it all"
    echo "# $name: hold-conns: $(cat "$T/$name.out")"
    rss=$(hwm_kb)
    [ "$rss" -le "$FLOOD_PEAK" ] || FLOOD_PEAK=$rss
}

# check_answers NAME: while the flood connects, requests through nginx
# are answered 200, or 502 because the listen queue was full when nginx
# connected (the flood connects as fast as the server accepts: the
# kernel refuses a non-blocking connect then; nginx logs "Resource
# temporarily unavailable"); once it is held, every one is answered 200
# within ANSWER_MS, and there were some.
check_answers() {
    local n bad slow max storm full
    storm=$(wc -l < "$T/$1.storm")
    bad=$(awk '$1 != 200 && $1 != 502' "$T/$1.storm" | wc -l)
    full=$(grep -c 'connect() to unix:.* failed (11: Resource temporarily unavailable)' \
        "$T/nginx-error.log") || true
    echo "# $1: $storm requests through nginx while the flood connected," \
         "$(awk '$1 == 200' "$T/$1.storm" | wc -l) answered 200;" \
         "$full connect()s refused with the listen queue full so far"
    [ "$bad" -eq 0 ] ||
        t_fail "$1: while the flood connected: $(awk '$1 != 200 && $1 != 502' "$T/$1.storm" | sort | uniq -c | head -3)"
    [ "$(grep -c ' 502 ' "$T/nginx-access.log" || true)" -le "$full" ] ||
        t_fail "$1: 502 answers not explained by a full listen queue"
    n=$(wc -l < "$T/$1.answers")
    bad=$(awk '$1 != 200' "$T/$1.answers" | wc -l)
    max=$(awk '{ ms = $2 * 1000; if (ms > m) m = ms } END { printf "%d", m }' \
        "$T/$1.answers")
    slow=$(awk -v b="$ANSWER_MS" '$2 * 1000 > b' "$T/$1.answers" | wc -l)
    echo "# $1: $n requests through nginx while it was held, slowest ${max} ms"
    [ "$n" -ge 10 ] || t_fail "$1: only $n requests went through nginx"
    [ "$bad" -eq 0 ] ||
        t_fail "$1: $bad of $n not answered 200: $(awk '$1 != 200' "$T/$1.answers" | sort | uniq -c | head -3)"
    [ "$slow" -eq 0 ] ||
        t_fail "$1: $slow of $n answered after more than $ANSWER_MS ms (slowest $max ms)"
    grep -q "\"Work completed for $1\"" "$T/$1.body" ||
        t_fail "$1: unexpected body: $(head -c 200 "$T/$1.body")"
}

# check_released NAME RSS_BEFORE: descriptors back to the baseline,
# nothing arriving, RSS back down.
check_released() {
    local rss
    _fds_back() { [ "$(fds)" -le "$fds0" ]; }
    t_wait_for 5000 _fds_back ||
        t_fail "$1: $(fds) descriptors 5 s after the flood, $fds0 before"
    _nothing_arriving() { [ "$(st '.arriving + .arriving_bytes')" = 0 ]; }
    t_wait_for 2000 _nothing_arriving ||
        t_fail "$1: arriving requests left: $(st '[.arriving, .arriving_bytes]' | tr -d ' \n')"
    [ "$(st .open_connections)" -eq 1 ] ||
        t_fail "$1: open_connections $(st .open_connections), 1 expected (this /status)"
    rss=$(rss_kb)
    echo "# $1: after: RSS ${rss} kB (${2} kB before), $(fds) descriptors"
    if [ -z "${FLOOD_NO_RSS:-}" ]; then
        [ "$rss" -le $(( $2 + AFTER_KB )) ] ||
            t_fail "$1: RSS ${rss} kB after the flood, ${2} kB before"
    fi
}

# check_flood NAME PEAK_KB LOG_REGEX RSS_BEFORE: the answers through
# nginx, the peak RSS within PEAK_KB, a bounds line in the server's log,
# and everything released after.
check_flood() {
    check_answers "$1"
    if [ -z "${FLOOD_NO_RSS:-}" ]; then
        [ "$FLOOD_PEAK" -le "$2" ] ||
            t_fail "$1: peak RSS ${FLOOD_PEAK} kB, bound ${2} kB"
    fi
    t_log_has "$3" || t_fail "$1: no line in the log matches: $3"
    check_released "$1" "$4"
}

# ---------------------------------------------------------------------------
# 1. Half requests: past max_connections, the oldest ones make room for
# nginx's connections.

flood half "$N_HALF" -p 40
dropped=$(st .dropped_max_connections)
echo "# half: peak RSS ${FLOOD_PEAK} kB; dropped_max_connections $dropped," \
     "refused_connections $(st .refused_connections)"
[ "$FLOOD_OPEN" -ge $((N_HALF - 50)) ] && [ "$FLOOD_OPEN" -le 10010 ] ||
    t_fail "half: open_connections $FLOOD_OPEN with $N_HALF held (bound 10000)"
[ "$dropped" -ge 1 ] ||
    t_fail "half: nothing dropped for max_connections although nginx connected at the bound"
[ "$(st .refused_connections)" -eq 0 ] ||
    t_fail "half: new connections refused although arriving ones could be dropped"
check_flood half "$PEAK_HALF_KB" \
    'pool: bounds: 0 new connections refused and [0-9]+ arriving requests dropped \(max_connections 10000\)' \
    "$rss0"
t_ok "10,000 half requests: RSS ${FLOOD_PEAK} kB at most, nginx served" \
     "throughout, $dropped dropped for max_connections, all released"

# ---------------------------------------------------------------------------
# 2. 256 KB of a param that never ends: past max_arriving_bytes, the
# oldest ones are dropped.

rss1=$(rss_kb)
flood big "$N_BIG" -p "$BIG_BYTES"
dropped=$(st .dropped_max_arriving_bytes)
echo "# big: peak RSS ${FLOOD_PEAK} kB; dropped_max_arriving_bytes $dropped"
# 64 MiB hold about a hundred of them (256 KB in a 512 KiB buffer each).
[ "$dropped" -ge $((N_BIG * 3 / 4)) ] ||
    t_fail "big: only $dropped dropped for max_arriving_bytes"
check_flood big "$PEAK_BIG_KB" \
    'pool: bounds: .* [0-9]+ dropped \(max_arriving_bytes 67108864\)' "$rss1"
t_ok "1,000 x 256 KB params: RSS ${FLOOD_PEAK} kB at most, nginx served" \
     "throughout, $dropped dropped for max_arriving_bytes, all released"
