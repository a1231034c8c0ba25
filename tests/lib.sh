# SPDX-License-Identifier: MIT
#
# lib.sh: shell helpers for the fcgi-cancel integration tests (bash only).
#
# A test script sources this file, calls t_setup, starts the server under
# test (t_start_server) and optionally nginx in front of it (t_start_nginx),
# drives them with tests/fcgi-client, tests/http-client or curl, and checks
# the results with t_status / t_log_count.  Everything a test starts is
# tracked and stopped by the EXIT trap, which also removes the scratch
# directory $T (unless KEEP_TMP=1) and, if the test failed, prints the tail
# of every $T/*.log.
#
# Expected environment (automake's AM_TESTS_ENVIRONMENT): top_builddir and
# top_srcdir, both absolute.  The library does not change shell options
# (set -e / -u / pipefail are the test's choice) and works under all of
# them.
#
# Public functions: t_setup t_cleanup t_track t_fail t_ok t_wait_for
# t_now_ms t_free_port t_start_server t_stop_server t_start_nginx
# t_restart_nginx t_fcgi t_status t_log_count t_log_has t_stop t_wait_socket
# t_verify_units t_find_activate t_start_postgres t_stop_postgres t_psql.
# Public variables: T, FCGI_CANCEL, FCGI_CLIENT, HTTP_CLIENT, SERVER_SOCK,
# FCGI_ADDR, SERVER_PID, SERVER_STATUS, NGINX_PID, NGINX_PORT, NGINX_URL,
# ACTIVATE, PG_BIN, PG_DIR, PG_SOCKDIR, PG_PID, PG_CONNINFO.

if [ -z "${BASH_VERSION-}" ]; then
    echo "FAIL: tests/lib.sh needs bash" >&2
    exit 1
fi

if [ -z "${top_builddir-}" ] || [ -z "${top_srcdir-}" ]; then
    echo "FAIL: top_builddir and top_srcdir must be set" \
         "(AM_TESTS_ENVIRONMENT)" >&2
    exit 1
fi

FCGI_CANCEL=$top_builddir/src/fcgi-cancel
FCGI_CLIENT=$top_builddir/tests/fcgi-client
# shellcheck disable=SC2034  # for the test scripts
HTTP_CLIENT=$top_builddir/tests/http-client

_t_pids=()
_T_NOW=0

# ---------------------------------------------------------------------------
# Reporting

# t_fail MSG: report a failure and end the test (exit 1; the EXIT trap
# then cleans up and dumps the logs).  Inside $(...) it only ends the
# subshell, so call it from the test's own shell.
t_fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# t_ok MSG: report one passed check.
t_ok() {
    echo "ok - $*"
}

# ---------------------------------------------------------------------------
# Time and polling

# Sets _T_NOW to the current epoch time in integer milliseconds, without
# forking.  ${EPOCHREALTIME} may use ',' as decimal point in some locales,
# hence the digit filter (the fraction always has 6 digits).
_t_now() {
    local t=${EPOCHREALTIME//[!0-9]/}
    _T_NOW=$(( t / 1000 ))
}

# t_now_ms: print the epoch time in milliseconds (CLOCK_REALTIME, like the
# closed_at_ms=... line of http-client).
t_now_ms() {
    _t_now
    echo "$_T_NOW"
}

# t_ms_of ISO-TIME: epoch milliseconds (with fraction) of a server log
# timestamp (UTC, microseconds), comparable with t_now_ms and with
# http-client's closed_at_ms.
t_ms_of() {
    local s
    s=$(date -u -d "${1%%.*}Z" +%s)
    awk -v s="$s" -v f="0.${1#*.}" 'BEGIN { sub(/Z$/, "", f); printf "%.3f", s * 1000 + f * 1000 }'
}

# t_wait_for TIMEOUT_MS CMD...: run CMD every 10 ms until it succeeds
# (return 0) or TIMEOUT_MS have passed (return 1).  CMD runs at least once.
t_wait_for() {
    local timeout_ms=$1 deadline
    shift
    _t_now
    deadline=$(( _T_NOW + timeout_ms ))
    while :; do
        if "$@"; then
            return 0
        fi
        _t_now
        if [ "$_T_NOW" -ge "$deadline" ]; then
            return 1
        fi
        sleep 0.01
    done
}

# ---------------------------------------------------------------------------
# Process tracking and cleanup

# t_track PID...: have t_cleanup stop these processes (and their
# descendants) at the end of the test.
t_track() {
    _t_pids+=("$@")
}

# _t_alive PID: true if PID exists and is not a zombie.  (kill -0 is not
# enough: a tracked child that exited stays a zombie until it is waited
# for.)
_t_alive() {
    local s
    { read -r s < "/proc/$1/stat"; } 2>/dev/null || return 1
    s=${s##*) }
    [ "${s%% *}" != Z ]
}

# _t_children PID: print the direct children of PID.
_t_children() {
    local parent=$1 f s pid rest
    if command -v pgrep >/dev/null 2>&1; then
        pgrep -P "$parent" 2>/dev/null || true
        return 0
    fi
    for f in /proc/[0-9]*/stat; do
        { read -r s < "$f"; } 2>/dev/null || continue
        pid=${s%% *}
        rest=${s##*) }      # "STATE PPID ..."
        rest=${rest#* }     # "PPID ..."
        if [ "${rest%% *}" = "$parent" ]; then
            echo "$pid"
        fi
    done
}

# _t_descendants PID: print all descendants of PID (children first).
_t_descendants() {
    local c
    for c in $(_t_children "$1"); do
        echo "$c"
        _t_descendants "$c"
    done
}

# _t_trees PID...: print each PID that is alive and its descendants.
# Collect them before signalling: once a parent dies its children are
# re-parented and can no longer be found (nginx workers, for instance,
# outlive a KILLed master).
_t_trees() {
    local p
    for p in "$@"; do
        [ -n "$p" ] && _t_alive "$p" || continue
        echo "$p"
        _t_descendants "$p"
    done
}

# t_cleanup [STATUS]: stop every tracked process (TERM, then KILL for
# whatever is still alive after a bounded 3 s poll), print the last 50
# lines of each $T/*.log when STATUS is non-zero, and remove $T unless
# KEEP_TMP=1.  Normally called by the EXIT trap installed by t_setup.
t_cleanup() {
    local rc=${1:-0} p f all=()

    mapfile -t all < <(_t_trees "${_t_pids[@]}")
    _t_term_wait_kill t_cleanup 3000 "${all[@]}"
    # Reap our own children so that bash does not report them.
    for p in "${_t_pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    _t_pids=()

    if [ -n "${T-}" ] && [ -d "$T" ]; then
        if [ "$rc" -ne 0 ]; then
            for f in "$T"/*.log; do
                [ -f "$f" ] || continue
                echo "----- last 50 lines of ${f##*/} -----" >&2
                tail -n 50 "$f" >&2
            done
            echo "----- end of logs -----" >&2
        fi
        if [ "${KEEP_TMP-}" = 1 ]; then
            echo "# KEEP_TMP=1: scratch directory kept: $T" >&2
        else
            rm -rf "$T"
        fi
    fi
}

# _t_term_wait_kill WHO TIMEOUT_MS PID...: send SIGTERM to every PID, poll
# until all are gone or TIMEOUT_MS have passed, then SIGKILL (and say so,
# as WHO) whatever is still alive.  Does not reap.
_t_term_wait_kill() {
    local who=$1 timeout_ms=$2 p deadline left=()
    shift 2
    [ "$#" -gt 0 ] || return 0
    kill -TERM "$@" 2>/dev/null || true
    _t_now
    deadline=$(( _T_NOW + timeout_ms ))
    while :; do
        left=()
        for p in "$@"; do
            if _t_alive "$p"; then
                left+=("$p")
            fi
        done
        [ "${#left[@]}" -eq 0 ] && break
        _t_now
        if [ "$_T_NOW" -ge "$deadline" ]; then
            echo "$who: still alive after SIGTERM + $(( timeout_ms / 1000 )) s," \
                 "sending SIGKILL: ${left[*]}" >&2
            kill -KILL "${left[@]}" 2>/dev/null || true
            break
        fi
        sleep 0.02
    done
}

# t_stop PID...: stop these tracked processes and their descendants now
# (SIGTERM, SIGKILL after 5 s), reap them and stop tracking them, so that
# t_cleanup cannot signal a later process that reuses a PID.  Empty
# arguments are ignored; returns 0.
t_stop() {
    local p q all=() keep=()
    mapfile -t all < <(_t_trees "$@")
    _t_term_wait_kill t_stop 5000 "${all[@]}"
    for p in "$@"; do
        [ -n "$p" ] || continue
        wait "$p" 2>/dev/null || true
    done
    for q in "${_t_pids[@]}"; do
        for p in "$@"; do
            [ "$q" = "$p" ] && continue 2
        done
        keep+=("$q")
    done
    _t_pids=("${keep[@]}")
    return 0
}

# t_wait_socket PID PATH [TIMEOUT_MS]: wait up to TIMEOUT_MS (default 5000)
# for the process PID to create the socket PATH; fails the test if PID
# exits first or the time runs out.
t_wait_socket() {
    local pid=$1 path=$2
    _t_sock_or_dead() { [ -S "$path" ] || ! _t_alive "$pid"; }
    t_wait_for "${3:-5000}" _t_sock_or_dead ||
        t_fail "no socket $path after ${3:-5000} ms"
    _t_alive "$pid" || t_fail "process $pid exited before creating $path"
    return 0
}

_t_on_exit() {
    local rc=$?
    trap - EXIT
    set +e
    t_cleanup "$rc"
    exit "$rc"
}

# t_setup: create the scratch directory $T and install the EXIT trap.
# $T is mode 755 so that nginx workers (user nobody) can reach the socket.
t_setup() {
    T=$(mktemp -d "${TMPDIR:-/tmp}/fcgi-cancel-test.XXXXXX") ||
        t_fail "mktemp -d failed"
    chmod 755 "$T"
    # sun_path holds 107 bytes; leave room for "/fcgi.sock".
    if [ "${#T}" -gt 90 ]; then
        rm -rf "$T"
        t_fail "scratch dir path too long for a unix socket: $T" \
               "(set TMPDIR to a shorter directory)"
    fi
    export T
    SERVER_SOCK=$T/fcgi.sock
    FCGI_ADDR=unix:$SERVER_SOCK
    _t_pids=()
    trap _t_on_exit EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# ---------------------------------------------------------------------------
# Ports

# t_free_port: print a TCP port on 127.0.0.1 that nothing uses right now.
# No python and nothing compiled: random candidates in 20000-60000 outside
# the kernel's ephemeral range (so outgoing connections do not collide),
# never one already handed out in this test, rejected if ss(8) shows any
# socket on it or if a connect through bash's /dev/tcp succeeds.  (There
# is an unavoidable window between this check and the caller's bind.)
t_free_port() {
    local elo=32768 ehi=60999 p i
    if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
        read -r elo ehi < /proc/sys/net/ipv4/ip_local_port_range
    fi
    for ((i = 0; i < 500; i++)); do
        p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40001 ))
        if [ "$p" -ge "$elo" ] && [ "$p" -le "$ehi" ]; then
            continue
        fi
        if [ -n "${T-}" ] && [ -f "$T/.ports" ] &&
           grep -qx "$p" "$T/.ports"; then
            continue
        fi
        if command -v ss >/dev/null 2>&1 &&
           [ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then
            continue
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            continue
        fi
        if [ -n "${T-}" ] && [ -d "$T" ]; then
            echo "$p" >> "$T/.ports"
        fi
        echo "$p"
        return 0
    done
    echo "t_free_port: no free port found" >&2
    return 1
}

# ---------------------------------------------------------------------------
# The server under test

_t_server_dead() {
    ! _t_alive "$SERVER_PID"
}

_t_server_up_or_dead() {
    [ -S "$SERVER_SOCK" ] || ! _t_alive "$SERVER_PID"
}

# t_start_server ARGS...: start
#   $top_builddir/src/fcgi-cancel --listen unix:$T/fcgi.sock ARGS...
# in the background, stdout+stderr to $T/server.log, PID in SERVER_PID
# (tracked), and wait up to 5 s for the socket to appear.  A stale socket
# file is removed first so that the wait means something; the log of an
# earlier start in the same test is kept as $T/server.prev-N.log.
t_start_server() {
    local n=1
    [ -x "$FCGI_CANCEL" ] || t_fail "server binary not built: $FCGI_CANCEL"
    if [ -s "$T/server.log" ]; then
        while [ -e "$T/server.prev-$n.log" ]; do
            n=$((n + 1))
        done
        mv "$T/server.log" "$T/server.prev-$n.log"
    fi
    rm -f "$SERVER_SOCK"
    "$FCGI_CANCEL" --listen "$FCGI_ADDR" "$@" > "$T/server.log" 2>&1 &
    SERVER_PID=$!
    t_track "$SERVER_PID"
    if ! t_wait_for 5000 _t_server_up_or_dead; then
        t_fail "server did not create $SERVER_SOCK within 5 s"
    fi
    if ! _t_alive "$SERVER_PID"; then
        SERVER_STATUS=0
        wait "$SERVER_PID" 2>/dev/null || SERVER_STATUS=$?
        t_fail "server exited with status $SERVER_STATUS at startup"
    fi
}

# t_stop_server [SIGNAL [TIMEOUT_MS]]: send SIGNAL (default TERM) to the
# server and wait up to TIMEOUT_MS (default 5000) for it to exit.  Sets
# SERVER_STATUS to its exit status (128+N if killed by signal N) and
# returns 0; returns 1 if it is still running at the timeout.
t_stop_server() {
    local sig=${1:-TERM} timeout_ms=${2:-5000}
    kill -"$sig" "$SERVER_PID" 2>/dev/null || true
    if ! t_wait_for "$timeout_ms" _t_server_dead; then
        return 1
    fi
    SERVER_STATUS=0
    wait "$SERVER_PID" 2>/dev/null || SERVER_STATUS=$?
    return 0
}

# t_fcgi ARGS...: run tests/fcgi-client ARGS... against the server socket.
# t_cpu_ms [PID]: the CPU time of a process (default: the server), all
# threads, user + system, in milliseconds.
t_cpu_ms() {
    local s f
    read -r s < "/proc/${1:-$SERVER_PID}/stat"
    read -r -a f <<< "${s##*) }"     # f[0] is field 3, the state
    echo $(( (f[11] + f[12]) * 1000 / $(getconf CLK_TCK) ))
}

t_fcgi() {
    "$FCGI_CLIENT" "$@" "$FCGI_ADDR"
}

# t_log_count REGEX: print how many lines of $T/server.log match REGEX
# (extended regex); 0 if none or no log yet.
t_log_count() {
    local n
    n=$(grep -cE -- "$1" "$T/server.log" 2>/dev/null) || true
    echo "${n:-0}"
}

# t_log_has REGEX: true if some line of $T/server.log matches REGEX; handy
# as t_wait_for 2000 t_log_has 'cancelled .*client_gone'.
t_log_has() {
    grep -qE -- "$1" "$T/server.log" 2>/dev/null
}

# ---------------------------------------------------------------------------
# nginx in front of the server

_t_nginx_ready_or_dead() {
    local code
    _t_alive "$FE_PID" || return 0
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 \
           "$FE_URL/__t_nginx_ready" 2>/dev/null) || return 1
    [ "$code" = 204 ]
}

# _t_check_worker_access [USER]: a front end run as root runs its workers
# as USER (default nobody) with group root, and they must reach
# $T/fcgi.sock: check that they can traverse to $T.
_t_check_worker_access() {
    local u=${1:-nobody}
    if command -v setpriv >/dev/null 2>&1; then
        setpriv --reuid="$u" --regid=0 --clear-groups test -x "$T" ||
            t_fail "user $u cannot reach $T (a parent directory is" \
                   "not world-searchable); set TMPDIR to e.g. /tmp"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u "$u" -g root -- test -x "$T" ||
            t_fail "user $u cannot reach $T (a parent directory is" \
                   "not world-searchable); set TMPDIR to e.g. /tmp"
    fi
}

# FastCGI params for when /etc/nginx/fastcgi_params is missing (same set
# as Debian's file).
_t_fastcgi_params_inline() {
    cat <<'EOF'
            fastcgi_param QUERY_STRING       $query_string;
            fastcgi_param REQUEST_METHOD     $request_method;
            fastcgi_param CONTENT_TYPE       $content_type;
            fastcgi_param CONTENT_LENGTH     $content_length;
            fastcgi_param SCRIPT_NAME        $fastcgi_script_name;
            fastcgi_param REQUEST_URI        $request_uri;
            fastcgi_param DOCUMENT_URI       $document_uri;
            fastcgi_param DOCUMENT_ROOT      $document_root;
            fastcgi_param SERVER_PROTOCOL    $server_protocol;
            fastcgi_param REQUEST_SCHEME     $scheme;
            fastcgi_param GATEWAY_INTERFACE  CGI/1.1;
            fastcgi_param SERVER_SOFTWARE    nginx/$nginx_version;
            fastcgi_param REMOTE_ADDR        $remote_addr;
            fastcgi_param REMOTE_PORT        $remote_port;
            fastcgi_param SERVER_ADDR        $server_addr;
            fastcgi_param SERVER_PORT        $server_port;
            fastcgi_param SERVER_NAME        $server_name;
            fastcgi_param HTTP_HOST          $host;
EOF
}

# _t_nginx_conf WHO LOG_FORMAT HTTP_BODY [CONNECTIONS]: write
# $T/nginx.conf, the part every test nginx shares (1 worker, as
# nobody:root when root, logs and temporary files in $T) around HTTP_BODY;
# WHO names the writer.  CONNECTIONS (default 256) is the worker's
# worker_connections; given, the worker's descriptor limit is twice it.
_t_nginx_conf() {
    local user_line="" nofile=""
    [ -z "${4-}" ] || nofile=$'\n'"worker_rlimit_nofile $(( 2 * $4 ));"
    # Workers run as nobody with primary group root: the server's socket
    # is root:root 0660, so group root is what lets them in.
    [ "$(id -u)" != 0 ] || user_line="user nobody root;"
    mkdir -p "$T/nginx"
    cat > "$T/nginx.conf" <<EOF
# Generated by $1 for one test run.
daemon off;
master_process on;
worker_processes 1;
$user_line$nofile
error_log $T/nginx-error.log info;
pid $T/nginx.pid;

events {
    worker_connections ${4:-256};
}

http {
    log_format t $2;
    access_log $T/nginx-access.log t;
    default_type application/octet-stream;

    client_body_temp_path $T/nginx/client_body;
    proxy_temp_path       $T/nginx/proxy;
    fastcgi_temp_path     $T/nginx/fastcgi;
    uwsgi_temp_path       $T/nginx/uwsgi;
    scgi_temp_path        $T/nginx/scgi;

$3
}
EOF
}

# _t_write_nginx_conf EXTRA: write $T/nginx.conf for NGINX_PORT.
_t_write_nginx_conf() {
    local extra=$1 params

    if [ -r /etc/nginx/fastcgi_params ]; then
        params="            include /etc/nginx/fastcgi_params;"
    else
        params=$(_t_fastcgi_params_inline)
    fi
    _t_nginx_conf "tests/lib.sh (t_start_nginx)" \
        "'\$remote_addr [\$time_local] \"\$request\" \$status \$body_bytes_sent rt=\$request_time upstream=\$upstream_status urt=\$upstream_response_time'" \
        "    server {
        listen 127.0.0.1:$NGINX_PORT;
        server_name localhost;

        location = /__t_nginx_ready {
            access_log off;
            return 204;
        }

        location / {
$params
            fastcgi_pass unix:$T/fcgi.sock;
            fastcgi_read_timeout 600s;
            $extra
        }
    }"
}

# _t_frontend_run NAME WAIT_MS WRITE READY CMD...: start a front end on a
# free port of 127.0.0.1: set FE_PORT and FE_URL, run the command WRITE
# (it writes, and may check, the configuration for FE_PORT), start CMD in
# the background (stdout and stderr to $T/NAME-stdout.log; PID in FE_PID,
# tracked) and wait up to WAIT_MS until the command READY succeeds (or the
# process died).  Up to 3 ports: another test running in parallel may
# grab the port between t_free_port and the bind, which the retry sees in
# $T/NAME-error.log or $T/NAME-stdout.log.  Fails the test otherwise.
_t_frontend_run() {
    local name=$1 wait_ms=$2 write=$3 ready=$4 attempt
    shift 4
    for attempt in 1 2 3; do
        FE_PORT=$(t_free_port) || t_fail "no free TCP port for $name"
        FE_URL=http://127.0.0.1:$FE_PORT
        "$write"
        "$@" > "$T/$name-stdout.log" 2>&1 &
        FE_PID=$!
        t_track "$FE_PID"
        t_wait_for "$wait_ms" "$ready" ||
            t_fail "$name did not answer on $FE_URL within $wait_ms ms"
        _t_alive "$FE_PID" && return 0
        wait "$FE_PID" 2>/dev/null || true
        if [ "$attempt" -lt 3 ] && grep -qi "address already in use" \
            "$T/$name-error.log" "$T/$name-stdout.log" 2>/dev/null; then
            echo "# $name: port $FE_PORT taken, retrying" >&2
            continue
        fi
        break
    done
    t_fail "$name exited at startup (see $name-error.log)"
}

# _t_port_ready_or_dead: true once something accepts connections on
# FE_PORT, or FE_PID is gone.
_t_port_ready_or_dead() {
    _t_alive "$FE_PID" || return 0
    (exec 3<>"/dev/tcp/127.0.0.1/$FE_PORT") 2>/dev/null
}

# _t_nginx_run WRITE READY: start nginx (daemon off) with the configuration
# that WRITE writes for NGINX_PORT, as _t_frontend_run; sets NGINX_PORT,
# NGINX_URL and NGINX_PID.
_t_nginx_run() {
    _T_NGINX_WRITE=$1
    # -e: errors from before error_log is read go to the test's log too,
    # not to the system-wide one.
    _t_frontend_run nginx 5000 _t_nginx_write "$2" \
        nginx -e "$T/nginx-error.log" -p "$T/" -c "$T/nginx.conf"
    NGINX_PID=$FE_PID
}

_t_nginx_write() {
    NGINX_PORT=$FE_PORT
    NGINX_URL=$FE_URL
    "$_T_NGINX_WRITE"
    : > "$T/nginx-error.log"
}

# t_start_nginx [EXTRA_LOCATION_CONF]: write $T/nginx.conf (nginx on
# 127.0.0.1:$NGINX_PORT passing everything to unix:$T/fcgi.sock, with
# EXTRA_LOCATION_CONF, e.g. "fastcgi_keep_conn on;", inside "location /"),
# start nginx (daemon off, in the background; master PID in NGINX_PID,
# tracked) and wait up to 5 s until it answers.  Sets NGINX_PORT and
# NGINX_URL.
# Readiness is probed on a dedicated location answered by nginx itself
# (/__t_nginx_ready, 204) so that no request reaches the server under
# test and its counters stay untouched.
t_start_nginx() {
    _T_NGINX_EXTRA=${1-}
    command -v nginx >/dev/null 2>&1 || t_fail "nginx is not installed"
    command -v curl >/dev/null 2>&1 || t_fail "curl is not installed"
    if [ "$(id -u)" = 0 ]; then
        _t_check_worker_access
    fi
    _t_nginx_run _t_write_nginx_conf_extra _t_nginx_ready_or_dead
}

# t_restart_nginx: stop nginx gracefully (SIGQUIT: the requests it has in
# flight finish; new connections are refused meanwhile) and start it again
# with the same configuration, port included, as an operator restarts it.
# Waits up to 10 s for the old one to exit and 5 s for the new one to
# answer; sets NGINX_PID (tracked).
t_restart_nginx() {
    _t_nginx_gone() { ! _t_alive "$NGINX_PID"; }
    kill -QUIT "$NGINX_PID" 2>/dev/null || true
    t_wait_for 10000 _t_nginx_gone ||
        t_fail "nginx did not exit within 10 s of SIGQUIT"
    t_stop "$NGINX_PID"
    nginx -e "$T/nginx-error.log" -p "$T/" -c "$T/nginx.conf" \
        >> "$T/nginx-stdout.log" 2>&1 &
    NGINX_PID=$!
    FE_PID=$NGINX_PID
    FE_URL=$NGINX_URL
    t_track "$NGINX_PID"
    t_wait_for 5000 _t_nginx_ready_or_dead && _t_alive "$NGINX_PID" ||
        t_fail "nginx did not start again on $NGINX_URL"
}

_t_write_nginx_conf_extra() {
    _t_write_nginx_conf "$_T_NGINX_EXTRA"
}

# t_status JQ_PATH: fetch $NGINX_URL/status (through nginx) and print the
# field, e.g. t_status .cancelled_by_reason.client_gone
t_status() {
    curl -s --max-time 10 "$NGINX_URL/status" | jq -r "$1"
}

# t_verify_units MANDIR UNIT-FILE...: `systemd-analyze verify` the unit
# files (a template as an instance of it: DIR/fcgi-cancel@www.service);
# their Documentation= pages are looked up in MANDIR ("": man's default
# path), unless man(1) is missing.  Fails the test, with verify's output,
# unless verify exits 0 and says nothing.
t_verify_units() {
    local mandir=$1 man=no rc=0
    shift
    if command -v man >/dev/null 2>&1; then
        man=yes
    fi
    if [ -n "$mandir" ]; then
        MANPATH=$mandir systemd-analyze verify --man="$man" "$@" \
            > "$T/verify.log" 2>&1 || rc=$?
    else
        systemd-analyze verify --man="$man" "$@" > "$T/verify.log" 2>&1 ||
            rc=$?
    fi
    if [ "$rc" -ne 0 ] || [ -s "$T/verify.log" ]; then
        cat "$T/verify.log" >&2
        t_fail "systemd-analyze verify (Documentation= checked: $man):" \
            "status $rc, output above"
    fi
}

# t_find_activate: set ACTIVATE to systemd-socket-activate, which passes
# a socket exactly as systemd does (fd 3, LISTEN_FDS=1, LISTEN_PID), or
# fail the test.
t_find_activate() {
    local c
    ACTIVATE=""
    for c in systemd-socket-activate /lib/systemd/systemd-socket-activate \
             /usr/lib/systemd/systemd-socket-activate \
             /lib/systemd/systemd-activate; do
        if command -v "$c" >/dev/null 2>&1; then
            # shellcheck disable=SC2034  # for the test scripts
            ACTIVATE=$(command -v "$c")
            return 0
        fi
    done
    t_fail "systemd-socket-activate not found (package systemd)"
}

# ---------------------------------------------------------------------------
# PostgreSQL: a throwaway cluster of the test's own

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

# _t_pg_as: set _T_PG_AS to the command prefix that runs a command as the
# cluster's owner: nobody when we are root (PostgreSQL refuses to run as
# root), else nothing.  setpriv execs, so a backgrounded command's PID is
# the command's own.
_t_pg_as() {
    _T_PG_AS=()
    if [ "$(id -u)" = 0 ]; then
        _T_PG_AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups
            --reset-env --)
    fi
}

_t_pg_ready_or_dead() {
    _t_alive "$PG_PID" || return 0
    "$PG_BIN/pg_isready" -q -h "$PG_SOCKDIR" -d postgres -U postgres
}

# t_start_postgres [SETTING=VALUE...]: initdb a PostgreSQL 15 cluster into
# $T/pg (as nobody when root; trust authentication; superuser
# "postgres"), start it listening on the unix socket in $T/pg/run only
# (no TCP), with the settings given (-c each), wait up to 30 s until it
# accepts connections.  Sets PG_DIR, PG_SOCKDIR, PG_PID (the postmaster,
# tracked) and PG_CONNINFO (a libpq conninfo for it); the log is
# $T/postgres.log.  Call again after t_stop_postgres to restart it.
t_start_postgres() {
    local set=() s
    [ -x "$PG_BIN/postgres" ] || t_fail "PostgreSQL 15 not installed" \
        "($PG_BIN/postgres; scripts/deps installs postgresql-15)"
    PG_DIR=$T/pg
    PG_SOCKDIR=$PG_DIR/run
    PG_CONNINFO="host=$PG_SOCKDIR dbname=postgres user=postgres"
    _t_pg_as
    if [ ! -d "$PG_DIR/data" ]; then
        mkdir -p "$PG_SOCKDIR"
        : > "$T/postgres.log"
        if [ "$(id -u)" = 0 ]; then
            chown -R nobody:nogroup "$PG_DIR" "$T/postgres.log"
        fi
        "${_T_PG_AS[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres \
            --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync \
            > "$T/initdb.log" 2>&1 || t_fail "initdb failed (initdb.log)"
    fi
    for s in "$@"; do
        set+=(-c "$s")
    done
    "${_T_PG_AS[@]}" "$PG_BIN/postgres" -D "$PG_DIR/data" -k "$PG_SOCKDIR" \
        -c listen_addresses= -c fsync=off -c full_page_writes=off \
        -c synchronous_commit=off "${set[@]}" >> "$T/postgres.log" 2>&1 &
    PG_PID=$!
    t_track "$PG_PID"
    t_wait_for 30000 _t_pg_ready_or_dead ||
        t_fail "PostgreSQL did not accept connections within 30 s"
    _t_alive "$PG_PID" || t_fail "PostgreSQL exited at startup" \
        "(postgres.log)"
}

# t_stop_postgres [TIMEOUT_MS]: stop the cluster (SIGINT: a fast
# shutdown, which does not wait for clients) and wait up to TIMEOUT_MS
# (default 10000); return 1 if it is still running then.
t_stop_postgres() {
    kill -INT "$PG_PID" 2>/dev/null || true
    t_wait_for "${1:-10000}" _t_pg_dead || return 1
    wait "$PG_PID" 2>/dev/null || true
}

_t_pg_dead() {
    ! _t_alive "$PG_PID"
}

# t_psql SQL: run SQL in the test cluster as postgres; prints the rows
# unaligned, fields separated by '|', no headers.
t_psql() {
    psql -XAtq -h "$PG_SOCKDIR" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "$1"
}
