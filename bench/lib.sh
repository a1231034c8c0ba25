# SPDX-License-Identifier: MIT
#
# bench/lib.sh: what the benchmark tables share (bash only).  bench/run
# sources it, calls bench_init, then sources each table's script
# (bench/tN-*.sh, which defines tableN) and calls it, and bench_assemble
# after each table.  It sources tests/lib.sh and uses its scratch
# directory and EXIT trap (t_setup), process tracking and stopping
# (t_track, t_stop), polling (t_wait_for, t_wait_socket), ports
# (t_free_port) and its nginx configuration skeleton and start loop
# (_t_nginx_conf, _t_nginx_run); what is here is only what the bench
# adds: the peers, one nginx for all of them, wrk runs and their figures,
# and RESULTS.md.
#
# Expects top_srcdir and top_builddir (absolute) and BENCH (the bench
# directory); set -euo pipefail is the caller's.
#
# Knobs (environment): RUNS (3) runs per configuration, DURATION (3) wrk
# seconds, THREADS (2) and CONNS (64) wrk threads and connections, WORKERS
# (64) workers of every peer in table 1, QUICK=1 (1 short run of each, to
# check the scripts: results go to $TMPDIR/bench-quick, not bench/),
# BENCH_OUT (where RESULTS.md and results/ go), FC_ALT (another
# fcgi-cancel binary, measured beside this tree's in tables 1 and 6),
# OTHER_MAX and RETRY_BUDGET (see measure), KEEP_TMP=1 keeps the scratch
# directory.
#
# Peers (each on a unix socket in $T, started by start_NAME, PID in
# NAME_PID): fcgi-cancel (FC, and FCLOG with its default logging, FCALT
# for FC_ALT), bench/ceiling.c (CEIL), bench/bare-responder.c (BARE and
# BAREKA), PHP-FPM (PHP), fcgiwrap (CGI).  nginx has one server (port) per
# peer and mode; url PEER-MODE PATH names it.

# shellcheck source=../tests/lib.sh
. "$top_srcdir/tests/lib.sh"

ABANDON_N=200           # table 3: abandoned requests per condition
INFLIGHT=500            # table 3: background jobs
MEM_JOBS=1000           # table 5
OUT=$BENCH
if [ "${QUICK-}" = 1 ]; then
    # Defaults of a quick run; RUNS and DURATION given still win.
    RUNS=${RUNS:-1} DURATION=${DURATION:-2}
    ABANDON_N=20 INFLIGHT=50 MEM_JOBS=100
    OUT=${TMPDIR:-/tmp}/bench-quick
fi
RUNS=${RUNS:-3}
# 3 s: from ~6,000 requests a run (PHP-FPM's query, table 9) to ~150,000
# (nginx alone) on 2 vCPU, round robin, the median of RUNS; longer runs
# would only make the whole bench slower (its budget: under 15 minutes
# on 2 vCPU, bench/README.md).
DURATION=${DURATION:-3}
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
WORKERS=${WORKERS:-64}
OUT=${BENCH_OUT:-$OUT}
FC_ALT=${FC_ALT-}
# A throughput run during which something outside this benchmark used more
# than this share of one CPU (percent) is measured once more, and the less
# disturbed of the two kept.
OTHER_MAX=${OTHER_MAX:-15}
# At most this many runs measured again per table (time bound).
RETRY_BUDGET=${RETRY_BUDGET:-8}
RETRIES=0
WRK_CMD="wrk -t$THREADS -c$CONNS -d${DURATION}s --latency URL"

# say MSG: a progress line on stderr.
say() { printf '# %s\n' "$*" >&2; }

# need CMD: fail unless CMD is installed.
need() {
    command -v "$1" >/dev/null 2>&1 ||
        t_fail "$1 is not installed (scripts/deps installs it)"
}

# ---------------------------------------------------------------------------
# Set-up

# bench_init: check the tools, create the scratch directory (t_setup),
# copy the server binary, compile the helpers, write the peers' files and
# start nginx.  Sets BIN, HOLD, FC_COMMIT, PHP_FPM, HAVE_PERF.
bench_init() {
    PHP_FPM=$(command -v php-fpm8.2 || command -v php-fpm ||
              ls /usr/sbin/php-fpm* 2>/dev/null | head -n1 || true)
    local c
    for c in nginx wrk curl jq gcc fcgiwrap; do need "$c"; done
    [ -n "$PHP_FPM" ] || t_fail "php-fpm is not installed (scripts/deps)"
    [ -x "$FCGI_CANCEL" ] || t_fail "not built: $FCGI_CANCEL (scripts/build)"
    HAVE_PERF=0
    if command -v perf >/dev/null 2>&1 &&
       perf stat -e task-clock true >/dev/null 2>&1; then
        HAVE_PERF=1
    fi

    t_setup
    mkdir -p "$T/bin" "$T/www" "$T/nginx" "$OUT/results"
    BIN=$T/bin
    HOLD=$BIN/hold
    # The server measured: a copy taken now, so that a rebuild of the tree
    # while the benchmark runs changes nothing; and its commit.
    cp "$FCGI_CANCEL" "$BIN/fcgi-cancel"
    FCGI_CANCEL_BUILT=$FCGI_CANCEL
    FCGI_CANCEL=$BIN/fcgi-cancel
    FC_ALT_RUN=""
    if [ -n "$FC_ALT" ]; then
        cp "$FC_ALT" "$BIN/fcgi-cancel-alt"
        FC_ALT_RUN=$BIN/fcgi-cancel-alt
    fi
    FC_COMMIT=$(git -C "$top_srcdir" rev-parse --short HEAD 2>/dev/null || echo "?")
    if [ -n "$(git -C "$top_srcdir" status --porcelain --untracked-files=no \
        -- src 2>/dev/null)" ]; then
        FC_COMMIT="$FC_COMMIT + uncommitted changes in src/"
    fi
    if [ "$FCGI_CANCEL_BUILT" -ot "$(ls -t "$top_srcdir"/src/*.c "$top_srcdir"/src/*/*.c 2>/dev/null | head -n1)" ]; then
        FC_COMMIT="$FC_COMMIT (binary older than src/: scripts/build first?)"
    fi
    bench_cc hold
    bench_cc ceiling
    bench_cc bare-responder -pthread -lfcgi
    bench_www
    write_fc_conf "$T/fc-quiet.json" warn '"off"'
    write_fc_conf "$T/fc-log.json" info "\"$T/fclog-access.log\""
    write_fc_conf "$T/fc-acc.json" warn "\"$T/fcacc-access.log\""
    write_fc_conf "$T/fc-info.json" info null
    bench_nginx_start
}

# bench_cc NAME [FLAGS...]: compile bench/NAME.c to $BIN/NAME.
bench_cc() {
    local name=$1
    shift
    gcc -std=gnu11 -O2 -g -Wall -Wextra -o "$BIN/$name" "$BENCH/$name.c" "$@" ||
        t_fail "cannot compile bench/$name.c"
}

# bench_www: the PHP and CGI scripts of the peers, in $T/www.
bench_www() {
    cat > "$T/www/tiny.php" <<'EOF'
<?php
header('Content-Type: application/json');
echo '{"ok":true}';
EOF
    # A 5 s CPU job that writes nothing until its end.
    cat > "$T/www/busy.php" <<'EOF'
<?php
$end = microtime(true) + 5.0;
$x = 0;
while (microtime(true) < $end) {
    $x++;
}
header('Content-Type: application/json');
echo '{"ok":true,"n":' . $x . '}';
EOF
    # The same, writing (and flushing) one blank every 100 ms: PHP-FPM
    # learns of a gone client only when such a write fails.
    cat > "$T/www/busyflush.php" <<'EOF'
<?php
while (ob_get_level() > 0) {
    ob_end_flush();
}
header('Content-Type: application/json');
$end = microtime(true) + 5.0;
$next = microtime(true) + 0.1;
$x = 0;
while (($now = microtime(true)) < $end) {
    $x++;
    if ($now >= $next) {
        echo ' ';
        flush();
        $next += 0.1;
    }
}
echo '{"ok":true,"n":' . $x . '}';
EOF
    # The same job as a CGI script for fcgiwrap: bash burning one CPU for
    # 5 s.
    cat > "$T/www/busy.cgi" <<'EOF'
#!/bin/bash
now() { local t=${EPOCHREALTIME//[!0-9]/}; echo "$t"; }
end=$(( $(now) + 5000000 ))
while [ "$(( ${EPOCHREALTIME//[!0-9]/} ))" -lt "$end" ]; do :; done
printf 'Content-Type: application/json\r\n\r\n{"ok":true}'
EOF
    chmod 755 "$T/www/busy.cgi"
}

# write_fc_conf FILE LOG_LEVEL ACCESS_LOG: the fcgi-cancel configuration
# of the benchmarks (ACCESS_LOG: a JSON value).
write_fc_conf() {
    cat > "$1" <<EOF
{
    "log_level": "$2",
    "access_log": $3,
    "grace_ms": 0,
    "routes": [
        // The tiny JSON route: the work job with 0 steps answers at once.
        { "path": "/tiny", "handler": "work", "style": "poll",
          "task_param": "t", "steps": 0 },
        { "path": "/cancel_event", "handler": "work", "style": "wait",
          "task_param": "default", "steps": 5, "step_ms": 1000,
          "mode": "sleep" },
        { "path": "/status", "handler": "status" },
        { "path": "/ping", "handler": "ping" }
    ]
}
EOF
}

# ---------------------------------------------------------------------------
# The peers

FC_PID="" FCALT_PID="" FCLOG_PID="" BARE_PID="" BAREKA_PID="" PHP_PID=""
CGI_PID="" CEIL_PID="" HOLD_PID="" FC_LOG=""

# peer_run VAR SOCK LOG CMD...: start CMD (stdout and stderr to LOG), its
# PID in the variable VAR (tracked), and wait for it to create SOCK.
peer_run() {
    local var=$1 sock=$2 log=$3
    shift 3
    rm -f "$sock"
    "$@" > "$log" 2>&1 &
    printf -v "$var" '%s' "$!"
    t_track "$!"
    t_wait_socket "$!" "$sock"
}

# start_fc CONF LOG ARGS...: fcgi-cancel on $T/fc.sock (FC_PID).
start_fc() {
    local conf=$1 log=$2
    shift 2
    FC_LOG=$log
    peer_run FC_PID "$T/fc.sock" "$log" \
        "$FCGI_CANCEL" --config "$conf" --listen "unix:$T/fc.sock" "$@"
    echo "src/fcgi-cancel --config \$T/${conf##*/} --listen unix:\$T/fc.sock $*" \
        >> "$T/commands"
}

# start_fcalt ARGS...: the FC_ALT binary on $T/fcalt.sock (FCALT_PID), if
# FC_ALT is set.
start_fcalt() {
    [ -n "$FC_ALT" ] || return 0
    peer_run FCALT_PID "$T/fcalt.sock" "$T/fcalt.log" "$FC_ALT_RUN" \
        --config "$T/fc-quiet.json" --listen "unix:$T/fcalt.sock" "$@"
    echo "$FC_ALT --config \$T/fc-quiet.json --listen unix:\$T/fcalt.sock $*   (FC_ALT)" >> "$T/commands"
}

# start_fclog ARGS...: the instance with default logging, $T/fclog.sock
# (FCLOG_PID).
start_fclog() {
    peer_run FCLOG_PID "$T/fclog.sock" "$T/fclog.log" "$FCGI_CANCEL" \
        --config "$T/fc-log.json" --listen "unix:$T/fclog.sock" "$@"
}

# start_fcacc ARGS...: the instance with the access log alone (to a file,
# log_level warn), $T/fcacc.sock (FCACC_PID).
start_fcacc() {
    peer_run FCACC_PID "$T/fcacc.sock" "$T/fcacc.log" "$FCGI_CANCEL" \
        --config "$T/fc-acc.json" --listen "unix:$T/fcacc.sock" "$@"
}

# start_ceiling: bench/ceiling.c on $T/ceiling.sock (CEIL_PID), one
# instance for both modes: its idle kept connections cost it nothing.
start_ceiling() {
    peer_run CEIL_PID "$T/ceiling.sock" "$T/ceiling.log" \
        "$BIN/ceiling" "$T/ceiling.sock"
    echo "bench/ceiling \$T/ceiling.sock" >> "$T/commands"
}

# start_bare N: two bare responders of N threads: $T/bare.sock for
# keep_conn off (BARE_PID) and $T/bare-ka.sock for upstream keepalive
# (BAREKA_PID).  Two instances, because the idle kept connections of the
# keepalive mode pin the threads of a thread-per-connection server, and the
# keep_conn-off figure must not suffer from them.
start_bare() {
    peer_run BARE_PID "$T/bare.sock" "$T/bare.log" \
        "$BIN/bare-responder" -n "$1" "$T/bare.sock"
    peer_run BAREKA_PID "$T/bare-ka.sock" "$T/bare-ka.log" \
        "$BIN/bare-responder" -n "$1" "$T/bare-ka.sock"
    echo "bench/bare-responder -n $1 \$T/bare.sock      (and \$T/bare-ka.sock)" \
        >> "$T/commands"
}

# stop_bare: stop both bare responders.
stop_bare() {
    t_stop "$BARE_PID" "$BAREKA_PID"
}

# start_php N: PHP-FPM, two pools (same reason as the bare responder's two
# instances), pm static with N children each: $T/php.sock and
# $T/php-ka.sock (PHP_PID, the master).
start_php() {
    local user="" pool
    [ "$(id -u)" = 0 ] && user=$'user = root\ngroup = root'
    cat > "$T/php-fpm.conf" <<EOF
[global]
pid = $T/php-fpm.pid
error_log = $T/php-fpm.log
log_level = warning
daemonize = no
EOF
    for pool in php php-ka; do
        cat >> "$T/php-fpm.conf" <<EOF

[$pool]
$user
listen = $T/$pool.sock
listen.mode = 0666
listen.backlog = 4096
pm = static
pm.max_children = $1
pm.max_requests = 0
catch_workers_output = no
EOF
    done
    rm -f "$T/php-ka.sock"
    if [ "$(id -u)" = 0 ]; then
        peer_run PHP_PID "$T/php.sock" "$T/php-stdout.log" \
            "$PHP_FPM" -F -R -y "$T/php-fpm.conf"
    else
        peer_run PHP_PID "$T/php.sock" "$T/php-stdout.log" \
            "$PHP_FPM" -F -y "$T/php-fpm.conf"
    fi
    t_wait_socket "$PHP_PID" "$T/php-ka.sock"
    # pm static: wait until the children exist.
    php_children() { [ "$(pgrep -c -P "$PHP_PID" || true)" -ge "$(( 2 * $1 ))" ]; }
    t_wait_for 3000 php_children "$1" || true
    echo "$PHP_FPM -F -y php-fpm.conf  (two pools, \$T/php.sock and \$T/php-ka.sock: pm = static, pm.max_children = $1)" \
        >> "$T/commands"
}

# start_cgi N: fcgiwrap with N children on $T/cgi.sock (CGI_PID).
start_cgi() {
    peer_run CGI_PID "$T/cgi.sock" "$T/fcgiwrap.log" \
        fcgiwrap -c "$1" -s "unix:$T/cgi.sock"
    chmod 666 "$T/cgi.sock"
    echo "fcgiwrap -c $1 -s unix:\$T/cgi.sock" >> "$T/commands"
}

# ---------------------------------------------------------------------------
# nginx: one process for the whole run, one server (port) per peer and mode

PEERS="ceiling bare php fc fclog fcacc cgi"
[ -n "$FC_ALT" ] && PEERS="$PEERS fcalt"
declare -A PORT

# bench_nginx_start: write $T/nginx.conf and start nginx (NGINX_PID), with
# tests/lib.sh's start loop (a free port, retried if taken meanwhile).
bench_nginx_start() {
    if [ "$(id -u)" = 0 ]; then
        _t_check_worker_access
    fi
    if [ -r /etc/nginx/fastcgi_params ]; then
        BENCH_PARAMS="include /etc/nginx/fastcgi_params;"
    else
        BENCH_PARAMS=$(_t_fastcgi_params_inline)
    fi
    _t_nginx_run bench_nginx_write _t_nginx_ready_or_dead
}

# bench_nginx_write: the configuration for NGINX_PORT (nginx answering
# alone) and a fresh port per peer and mode (PORT[PEER-MODE]).
bench_nginx_write() {
    local p
    PORT[nginx]=$NGINX_PORT
    for p in $PEERS; do
        PORT[$p-off]=$(t_free_port)
        PORT[$p-ka]=$(t_free_port)
    done
    PORT[fc-h2]=$(t_free_port)
    _t_nginx_conf "bench/run" "'\$request \$status'" \
        "$(bench_nginx_http)" 8192
}

# bench_nginx_http: the http block's body of bench_nginx_write.
bench_nginx_http() {
    local p kasock
    cat <<EOF
    access_log off;
    error_log $T/nginx-error.log warn;
    keepalive_requests 1000000;
    root $T/www;
    fastcgi_read_timeout 600s;

    # nginx answering alone.
    server {
        listen 127.0.0.1:${PORT[nginx]} backlog=4096;
        location / {
            default_type application/json;
            return 200 '{"ok":true}';
        }
        location = /__t_nginx_ready {
            return 204;
        }
    }

    # fcgi-cancel over cleartext HTTP/2 (table 8: a stream reset).
    server {
        listen 127.0.0.1:${PORT[fc-h2]} http2 backlog=4096;
        location / {
            $BENCH_PARAMS
            fastcgi_pass unix:$T/fc.sock;
        }
    }
EOF
    for p in $PEERS; do
        kasock=$p
        case $p in bare|php) kasock=$p-ka ;; esac
        cat <<EOF

    upstream ${p}_ka {
        server unix:$T/$kasock.sock;
        keepalive 64;
    }
    # $p, fastcgi_keep_conn off: a new FastCGI connection per request.
    server {
        listen 127.0.0.1:${PORT[$p-off]} backlog=4096;
        location / {
            $BENCH_PARAMS
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:$T/$p.sock;
        }
    }
    # $p, upstream keepalive 64 + fastcgi_keep_conn on.
    server {
        listen 127.0.0.1:${PORT[$p-ka]} backlog=4096;
        location / {
            $BENCH_PARAMS
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass ${p}_ka;
            fastcgi_keep_conn on;
        }
    }
EOF
    done
}

# url PEER-MODE PATH: the URL of a peer's server, e.g. url fc-ka /tiny.
url() { echo "http://127.0.0.1:${PORT[$1]}$2"; }

# ---------------------------------------------------------------------------
# Figures

# median: the median of the numbers on stdin ("-" if none).
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) print "-";
        else if (NR % 2) print v[(NR + 1) / 2];
        else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# AWK_EPOCH: awk's epoch_ms(s), the epoch ms of a server log's UTC
# timestamp (no gawk needed); tables 3 and 7 put it in front of programs.
AWK_EPOCH='
function epoch_ms(s,    y, m, d, hh, mi, sec, era, yoe, mp, doy, doe) {
    y = substr(s, 1, 4) + 0; m = substr(s, 6, 2) + 0; d = substr(s, 9, 2) + 0
    hh = substr(s, 12, 2) + 0; mi = substr(s, 15, 2) + 0
    sec = substr(s, 18); sub(/Z$/, "", sec); sec += 0
    if (m <= 2) y--
    era = int(y / 400); yoe = y - era * 400
    mp = (m + 9) % 12
    doy = int((153 * mp + 2) / 5) + d - 1
    doe = yoe * 365 + int(yoe / 4) - int(yoe / 100) + doy
    return ((era * 146097 + doe - 719468) * 86400 + hh * 3600 + mi * 60) * 1000 + sec * 1000
}'

# pctl P: the P-th percentile (nearest rank) of the numbers on stdin.
pctl() {
    sort -g | awk -v p="$1" '{ v[NR] = $1 } END {
        if (NR == 0) { print "-"; exit }
        k = int(NR * p / 100); if (k < NR * p / 100) k++; if (k < 1) k = 1;
        printf "%.3f\n", v[k] }'
}

# ratio A B: A / B with 2 decimals ("-" if B is 0 or missing).
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (b + 0 == 0 || a == "-" || b == "-") print "-";
        else printf "%.2f\n", a / b }'
}

# verdict VALUE OP TARGET: "met" if VALUE OP TARGET (OP ">=" or "<"),
# "**missed**" otherwise or if VALUE is "-".
verdict() {
    if awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {
        if (v == "-") exit 1; exit !(op == ">=" ? v >= t : v < t) }'; then
        echo "met"
    else
        echo "**missed**"
    fi
}

# cpu_now: "TREE_NS BUSY_NS WALL_NS": CPU of this benchmark's process tree,
# of the whole machine, and the time.
cpu_now() {
    local s
    s=$("$HOLD" cpu $$)
    s=${s//tree_ns=/}
    s=${s//busy_ns=/}
    echo "$s ${EPOCHREALTIME//[!0-9]/}000"
}

# other_pct BEFORE AFTER: the share of one CPU that processes outside this
# benchmark used between two cpu_now samples, in percent.
other_pct() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        split(a, x, " "); split(b, y, " ");
        wall = y[3] - x[3]; if (wall <= 0) { print 0; exit }
        o = ((y[2] - x[2]) - (y[1] - x[1])) / wall * 100;
        printf "%.1f\n", o < 0 ? 0 : o }'
}

# peer_ns PID: the CPU (ns) of the process tree of PID since it started.
peer_ns() {
    local s
    s=$("$HOLD" cpu "$1")
    s=${s%% *}
    echo "${s#tree_ns=}"
}

# ---------------------------------------------------------------------------
# wrk runs

# wrk_once URL [PID]: one wrk run (with the Lua script WRK_SCRIPT, if
# set: table 9's random ids); prints "RPS P50_MS P99_MS ERRORS
# TIMEOUTS NON2XX REQUESTS OTHER_PCT PEER_US_PER_REQUEST" (the last: the
# CPU of the process tree of PID per request, "-" without PID).
wrk_once() {
    local url=$1 pid=${2-} out c0 c1 other p0=0 p1=0
    [ -n "$pid" ] && p0=$(peer_ns "$pid")
    c0=$(cpu_now)
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency \
        ${WRK_SCRIPT:+-s "$WRK_SCRIPT"} "$url" 2>&1) || true
    c1=$(cpu_now)
    [ -n "$pid" ] && p1=$(peer_ns "$pid")
    other=$(other_pct "$c0" "$c1")
    { echo "== wrk -t$THREADS -c$CONNS -d${DURATION}s --latency ${WRK_SCRIPT:+-s $WRK_SCRIPT }$url"
      echo "$out"; } >> "$T/wrk-raw.log"
    printf '%s\n' "$out" | awk -v other="$other" -v pid="$pid" \
        -v pns="$(( p1 - p0 ))" '
        function ms(s) {
            if (s ~ /us$/) return s / 1000;
            if (s ~ /ms$/) return s + 0;
            if (s ~ /s$/) return s * 1000;
            if (s ~ /m$/) return s * 60000;
            return s + 0 }
        /^ +50%/ { p50 = ms($2) }
        /^ +99%/ { p99 = ms($2) }
        / requests in / { reqs = $1 }
        /Socket errors:/ {
            gsub(/,/, ""); err = $4 + $6 + $8; to = $10 }
        /Non-2xx or 3xx responses:/ { non2xx = $5 }
        /^Requests\/sec:/ { rps = $2 }
        END { cpu = (pid == "" || reqs == 0) ? "-" : sprintf("%.1f", pns / 1000 / reqs);
              printf "%.0f %.3f %.3f %d %d %d %d %s %s\n", rps, p50, p99,
              err, to, non2xx, reqs, other, cpu }'
}

# measure NAME URL [PID]: one run of NAME (appended to $RAW; PID: the
# peer, whose CPU per request is recorded).  If something outside the
# benchmark used more than OTHER_MAX % of a CPU meanwhile, it is measured
# once more (while RETRIES lasts) and the less disturbed of the two runs
# is kept.
measure() {
    local name=$1 url=$2 pid=${3-} r r2 o o2
    r=$(wrk_once "$url" "$pid")
    o=$(awk '{ print $8 }' <<< "$r")
    if [ "$RETRIES" -gt 0 ] &&
       ! awk -v o="$o" -v m="$OTHER_MAX" 'BEGIN { exit !(o <= m) }'; then
        RETRIES=$((RETRIES - 1))
        say "$name: other load $o% of a CPU, measuring again"
        r2=$(wrk_once "$url" "$pid")
        o2=$(awk '{ print $8 }' <<< "$r2")
        if awk -v a="$o" -v b="$o2" 'BEGIN { exit !(b < a) }'; then
            r=$r2
        fi
    fi
    echo "$name $r" >> "$RAW"
    say "$name: $r"
}

# warm URL: a short unrecorded run (JIT-free peers still fill caches, PHP's
# opcache compiles, nginx opens its keepalive connections).
warm() {
    wrk -t"$THREADS" -c"$CONNS" -d1s ${WRK_SCRIPT:+-s "$WRK_SCRIPT"} "$1" \
        > /dev/null 2>&1 || true
}

# measure_round_robin "NAME|URL|PID"...: warm every configuration, then
# measure each RUNS times, round robin (run 1 of every configuration, then
# run 2, ...), so that a disturbance of the machine spreads over the peers.
measure_round_robin() {
    local c nm u pid n
    for c in "$@"; do
        IFS="|" read -r nm u pid <<< "$c"
        warm "$u"
    done
    for ((n = 1; n <= RUNS; n++)); do
        for c in "$@"; do
            IFS="|" read -r nm u pid <<< "$c"
            measure "$nm" "$u" "$pid"
        done
    done
}

# stat_of NAME FIELD: the median over the runs of NAME of a field of $RAW
# (2 rps, 3 p50, 4 p99, 5 errors, 6 timeouts, 7 non-2xx, 9 other load,
# 10 peer CPU per request); FIELD "sum5" etc. sums instead, "max9" takes
# the largest, "list2" lists.
stat_of() {
    local name=$1 f=$2
    case $f in
    sum*) awk -v n="$name" -v f="${f#sum}" '$1 == n { s += $f } END { print s + 0 }' "$RAW" ;;
    list*) awk -v n="$name" -v f="${f#list}" '$1 == n { printf "%s%s", sep, $f; sep = " / " } END { print "" }' "$RAW" ;;
    max*) awk -v n="$name" -v f="${f#max}" '$1 == n && $f > m { m = $f } END { print m + 0 }' "$RAW" ;;
    *) awk -v n="$name" -v f="$f" '$1 == n { print $f }' "$RAW" | median ;;
    esac
}

# table_begin N: start table N's raw file ($RAW, emptied), its list of
# commands and its retry budget.
table_begin() {
    RAW=$OUT/results/t$1.raw
    : > "$RAW"
    : > "$T/commands"
    RETRIES=$RETRY_BUDGET
}

# table_end N: keep table N's commands (as $T/commands.tN) and write its
# section, results/tN.md, with write_tableN.
table_end() {
    cp "$T/commands" "$T/commands.t$1"
    "write_table$1" > "$OUT/results/t$1.md"
}

# section_head TITLE: a table section's heading and date line.
section_head() {
    printf '## %s\n\nMeasured %s, fcgi-cancel at commit %s.\n\n' "$1" \
        "$(date -u '+%Y-%m-%d %H:%M UTC')" "$FC_COMMIT"
}

# commands_block N: the fenced list of table N's commands.
commands_block() {
    printf '```\n'
    sort -u "$T/commands.t$1"
    printf '```\n'
}

# ---------------------------------------------------------------------------
# Jobs held in flight (tables 3 and 5)

status_json() {
    curl -s --max-time 10 "$(url fc-off /status)"
}

# fc_in_flight: the server's in_flight, minus this /status request.
fc_in_flight() {
    local n
    # Not JSON (an error page from nginx): fail, quietly.
    n=$(status_json | jq -r .in_flight 2>/dev/null) || return 1
    [ -n "$n" ] && [ "$n" != null ] || return 1
    echo $(( n - 1 ))
}

# hold_start N PATH: bench/hold holds N requests through nginx (HOLD_PID),
# and this waits until the server has them all in flight.
hold_start() {
    local n=$1 path=$2
    "$HOLD" hold -t 600 "$n" 127.0.0.1 "${PORT[fc-off]}" "$path" \
        > "$T/hold.out" 2>&1 &
    HOLD_PID=$!
    t_track "$HOLD_PID"
    echo "bench/hold hold -t 600 $n 127.0.0.1 NGINX_PORT '$path'" >> "$T/commands"
    held() { local m; m=$(fc_in_flight) && [ "$m" -ge "$n" ]; }
    t_wait_for 60000 held ||
        t_fail "the server did not get $n jobs in flight within 60 s"
}

# hold_stop: end bench/hold (it closes its connections).
hold_stop() {
    [ -n "$HOLD_PID" ] || return 0
    t_stop "$HOLD_PID"
    HOLD_PID=""
}

# ---------------------------------------------------------------------------
# RESULTS.md

# bench_tables: the numbers of the tables there are (a bench/tN-*.sh each).
bench_tables() {
    local f n
    for f in "$BENCH"/t[0-9]*-*.sh; do
        n=${f##*/t}
        echo "${n%%-*}"
    done | sort -n
}

write_header() {
    cat <<EOF
# fcgi-cancel benchmark results

Written by \`bench/run\` (see bench/README.md for what each table means).
Header updated $(date -u '+%Y-%m-%d %H:%M UTC'); each table says when it
was measured.

## Machine and versions

| | |
|---|---|
| machine | $(nproc) vCPU, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM |
| kernel | $(uname -sr) |
| OS | $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME") |
| fcgi-cancel | $("$FCGI_CANCEL" -V 2>&1 | head -n1) ($FCGI_CANCEL_BUILT, copied at the start of the run; each table names its commit) |
| nginx | $(nginx -v 2>&1 | sed 's/^nginx version: //') |
| PHP-FPM | $("$PHP_FPM" -v 2>&1 | head -n1) |
| wrk | $(wrk -v 2>&1 | head -n1 | sed 's/ Copyright.*//') |
| libfcgi | $(dpkg-query -W -f='${Package} ${Version}' libfcgi0ldbl 2>/dev/null || dpkg-query -W -f='${Package} ${Version}' 'libfcgi0*' 2>/dev/null | head -n1) |
| fcgiwrap | $(dpkg-query -W -f='${Version}' fcgiwrap 2>/dev/null) |
| gcc | $(gcc --version | head -n1) |
| perf | $(perf --version 2>/dev/null || echo "not available") |
| load average at the start of the run | $(cut -d' ' -f1-3 /proc/loadavg) |

Settings: nginx 1 worker process (\`worker_processes 1\`), access log off,
one \`server\` per peer and mode, all peers on unix sockets in a scratch
directory; wrk \`-t$THREADS -c$CONNS -d${DURATION}s --latency\` (2 threads
= one per vCPU; 64 connections = the upstream keepalive pool, and 4x the
16 workers of table 2).  The machine is shared: "other load" is the CPU
that processes outside the benchmark used during a run (from /proc/stat
minus the benchmark's own process tree), in % of one CPU; a run with more
than ${OTHER_MAX} % is measured once more, and the less disturbed of the
two is kept (at most ${RETRY_BUDGET} such repeats per table).

EOF
}

# bench_assemble: write $OUT/RESULTS.md from the header, results/tN.md,
# bench/analysis.md (into bench/ only) and the configurations.
bench_assemble() {
    local i
    {
        write_header
        for i in $(bench_tables); do
            if [ -f "$OUT/results/t$i.md" ]; then
                cat "$OUT/results/t$i.md"
                echo
            fi
        done
        # The hand-written analysis of the latest full run, if any.
        if [ -f "$BENCH/analysis.md" ] && [ "$OUT" = "$BENCH" ]; then
            cat "$BENCH/analysis.md"
            echo
        fi
        echo "## Appendix: the generated nginx configuration"
        echo
        echo '```nginx'
        sed "s#$T#\$T#g" "$T/nginx.conf"
        echo '```'
        echo
        echo "fcgi-cancel's configuration (\`fc-quiet.json\`; \`fc-info.json\` has"
        echo "\"log_level\": \"info\" and \"access_log\": null, the default logging):"
        echo
        echo '```json'
        sed "s#$T#\$T#g" "$T/fc-quiet.json"
        echo '```'
    } > "$OUT/RESULTS.md.tmp"
    mv "$OUT/RESULTS.md.tmp" "$OUT/RESULTS.md"
}
