# SPDX-License-Identifier: MIT
#
# frontends.sh: helpers for the integration tests of the front ends other
# than the plain nginx of tests/lib.sh: lighttpd, Apache (mod_proxy_fcgi),
# nginx with an upstream of several fcgi-cancel instances, or of pools.
# Source it after tests/lib.sh (it uses t_setup's $T, t_track, t_fail,
# t_free_port, t_wait_for).
#
# Each front end runs in the foreground on 127.0.0.1 and a port from
# t_free_port, with a configuration written into $T around the snippet
# shipped in conf/ (the snippet itself is included, with only its socket
# paths and port replaced, so what the tests check is what users copy).
#
# Public functions:
#   t_start_lighttpd [EXTRA_HOST_OPTIONS]  conf/lighttpd.conf
#   t_stop_lighttpd
#   t_start_apache [EXTRA_DIRECTIVES]      conf/apache.conf
#   t_start_nginx_upstream SOCK1 SOCK2     conf/nginx-upstream.conf
#   t_start_nginx_snippet FILE SED-ARG...  conf/FILE, sockets replaced
#   t_check_local_only URL                 /status, /metrics: local only
#   t_start_instance N ARGS...             another fcgi-cancel, $T/fcgiN.sock
#   t_instance_status SOCK [JQ_PATH]       /status of one instance, directly
#   t_http_after_accept [-c MS|-r MS] [-t MS] HOST PORT PATH
#   t_log_ms ISO-TIME                      a log timestamp in epoch ms
#   t_listen_queue PORT                    connections waiting for accept()
# Public variables: LIGHTTPD_PID LIGHTTPD_PORT LIGHTTPD_URL, APACHE_PID
# APACHE_PORT APACHE_URL, NGINX_PID NGINX_PORT NGINX_URL (as lib.sh's),
# INSTANCE_PID[N] INSTANCE_SOCK[N] INSTANCE_LOG[N].

if [ -z "${T-}" ] && ! declare -F t_setup >/dev/null; then
    echo "FAIL: source tests/lib.sh before tests/frontends.sh" >&2
    exit 1
fi

declare -a INSTANCE_PID=() INSTANCE_SOCK=() INSTANCE_LOG=()

# The socket path the snippets in conf/ use; the tests replace it.
_FE_SNIPPET_SOCK=/run/fcgi-cancel/fcgi-cancel.sock

# ---------------------------------------------------------------------------
# Small tools

# t_log_ms ISO-TIME: print the epoch time in milliseconds (3 decimals) of
# a server log timestamp such as 2026-11-25T22:37:43.916152Z.
t_log_ms() {
    local s
    s=$(date -u -d "${1%%.*}Z" +%s) || return 1
    awk -v s="$s" -v f="0.${1#*.}" \
        'BEGIN { sub(/Z$/, "", f); printf "%.3f", s * 1000 + f * 1000 }'
}

# t_listen_queue PORT: print how many connections to 127.0.0.1:PORT wait
# in the listening socket's accept queue (ss's Recv-Q of a LISTEN socket).
t_listen_queue() {
    local line q
    line=$(ss -Hltn "sport = $1" 2>/dev/null | head -n 1)
    [ -n "$line" ] || return 1
    read -r _ q _ <<< "$line"
    echo "$q"
}

# _fe_dead PID: true once PID is gone (or a zombie).
_fe_dead() {
    ! _t_alive "$1"
}

# ---------------------------------------------------------------------------
# A client that sends its request only once the front end has accepted the
# connection.
#
# lighttpd 1.4.69 reads a request at once when it is already there at
# accept() time, and then never polls that connection until it writes the
# response: a FIN or RST from such a client goes unnoticed while the
# worker is silent (see conf/lighttpd.conf).  tests/http-client sends right
# after connect(), so whether lighttpd sees its close is a race.  This
# client connects, waits until the listening socket's accept queue is empty
# (the front end took the connection and found nothing to read), then
# sends; its close is then always watched.  Same output as http-client:
# with -c/-r, `closed_at_ms=...` on stdout; without, the whole response.
_FE_RAW_CLIENT=$(cat <<'PERL'
use strict;
use warnings;
use Socket qw(SOL_SOCKET SO_LINGER);
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time sleep);

my ($how, $ms, $timeout_ms, $host, $port, $path) = @ARGV;
my $start = time;
my $deadline = $start + $timeout_ms / 1000;
my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
                              Proto => 'tcp')
    or do { print STDERR "connect $host:$port: $!\n"; exit 1 };
# Wait until the front end has accepted the connection.
my $acc_deadline = time + 2;
for (;;) {
    my @f = split ' ', (`ss -Hltn "sport = $port" 2>/dev/null` // '');
    last if @f >= 2 && $f[1] == 0;
    if (time > $acc_deadline) {
        print STDERR "not accepted within 2 s (accept queue: ",
            ($f[1] // '?'), ")\n";
        exit 4;
    }
    sleep 0.001;
}
$s->syswrite("GET $path HTTP/1.1\r\nHost: $host\r\nConnection: close\r\n\r\n")
    or do { print STDERR "send: $!\n"; exit 4 };
my $close_at = $how eq 'w' ? undef : time + $ms / 1000;
my $sel = IO::Select->new($s);
my ($received, $eof, $buf) = (0, 0, '');
for (;;) {
    my $now = time;
    last if defined $close_at && $now >= $close_at;
    if ($now >= $deadline) { print STDERR "timeout\n"; exit 3 }
    my $until = $deadline;
    $until = $close_at if defined $close_at && $close_at < $until;
    if ($eof) {
        last unless defined $close_at;
        sleep($until - $now);
        next;
    }
    next unless $sel->can_read($until - $now);
    my $n = sysread($s, $buf, 65536);
    if (!defined $n || $n == 0) { $eof = 1; next }
    $received += $n;
    print $buf unless defined $close_at;
}
exit 0 unless defined $close_at;
setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0)) if $how eq 'r';
my $t = time;
close($s);
printf "closed_at_ms=%.3f\n", $t * 1000;
print STDERR "received=$received eof=$eof\n";
exit 0;
PERL
)

# t_http_after_accept [-c MS | -r MS] [-t MS] HOST PORT PATH: GET PATH from
# HOST:PORT, sending the request only after the front end accepted the
# connection; -c close (FIN) or -r reset MS ms after sending, and print
# closed_at_ms=EPOCH_MS; without them print the response.  -t: overall
# timeout (default 30000).  Exit codes as tests/http-client's.
t_http_after_accept() {
    local how=w ms=0 timeout=30000 OPTIND=1 opt
    while getopts c:r:t: opt; do
        case $opt in
        c) how=c; ms=$OPTARG ;;
        r) how=r; ms=$OPTARG ;;
        t) timeout=$OPTARG ;;
        *) return 2 ;;
        esac
    done
    shift $((OPTIND - 1))
    [ $# -eq 3 ] || { echo "usage: t_http_after_accept [-c MS|-r MS]" \
        "[-t MS] HOST PORT PATH" >&2; return 2; }
    perl -e "$_FE_RAW_CLIENT" "$how" "$ms" "$timeout" "$@"
}

# ---------------------------------------------------------------------------
# More fcgi-cancel instances

_fe_instance_up_or_dead() {
    [ -S "${INSTANCE_SOCK[$1]}" ] || ! _t_alive "${INSTANCE_PID[$1]}"
}

# t_start_instance N ARGS...: start another server,
#   fcgi-cancel --listen unix:$T/fcgiN.sock ARGS...
# (N >= 2; t_start_server is instance 1), log in $T/serverN.log; sets
# INSTANCE_PID[N], INSTANCE_SOCK[N], INSTANCE_LOG[N]; waits up to 5 s for
# the socket.
t_start_instance() {
    local n=$1 rc=0
    shift
    [ -x "$FCGI_CANCEL" ] || t_fail "server binary not built: $FCGI_CANCEL"
    INSTANCE_SOCK[n]=$T/fcgi$n.sock
    INSTANCE_LOG[n]=$T/server$n.log
    rm -f "${INSTANCE_SOCK[$n]}"
    "$FCGI_CANCEL" --listen "unix:${INSTANCE_SOCK[$n]}" "$@" \
        > "${INSTANCE_LOG[$n]}" 2>&1 &
    INSTANCE_PID[n]=$!
    t_track "${INSTANCE_PID[$n]}"
    t_wait_for 5000 _fe_instance_up_or_dead "$n" ||
        t_fail "instance $n did not create ${INSTANCE_SOCK[$n]} within 5 s"
    if ! _t_alive "${INSTANCE_PID[$n]}"; then
        wait "${INSTANCE_PID[$n]}" 2>/dev/null || rc=$?
        t_fail "instance $n exited with status $rc at startup"
    fi
}

# t_instance_status SOCK [JQ_PATH]: ask the instance listening on SOCK for
# /status over FastCGI (not through a front end) and print the JSON body,
# or the field JQ_PATH of it.
t_instance_status() {
    local out
    out=$("$FCGI_CLIENT" -u /status -t 5000 "unix:$1" 2>/dev/null) ||
        return 1
    # The body is what follows the CGI header block.
    printf '%s\n' "$out" | sed '1,/^\r\{0,1\}$/d' | jq -r "${2:-.}"
}

# ---------------------------------------------------------------------------
# lighttpd

# _fe_lighttpd_snippet EXTRA: print conf/lighttpd.conf with the socket
# replaced by $SERVER_SOCK and the host options of EXTRA (lines such as
# '"tcp-fin-propagate" => "disable",') put in place of the snippet's lines
# for the same keys.
_fe_lighttpd_snippet() {
    local extra=$1 src=$top_srcdir/conf/lighttpd.conf key keys=() expr=()
    [ -r "$src" ] || t_fail "missing $src"
    grep -q "\"socket\" *=> *\"$_FE_SNIPPET_SOCK\"" "$src" ||
        t_fail "conf/lighttpd.conf has no \"socket\" => \"$_FE_SNIPPET_SOCK\""
    mapfile -t keys < <(printf '%s\n' "$extra" |
        sed -n 's/^[[:space:]]*"\([^"]*\)"[[:space:]]*=>.*/\1/p')
    for key in "${keys[@]}"; do
        expr+=(-e "/^[[:space:]]*\"$key\"[[:space:]]*=>/d")
    done
    sed "${expr[@]}" -e "s|$_FE_SNIPPET_SOCK|$SERVER_SOCK|" "$src" |
        awk -v extra="$extra" '
            { print }
            /^[[:space:]]*"socket"[[:space:]]*=>/ && extra != "" {
                print "        # added by the test:"; print extra
            }'
}

# t_start_lighttpd [EXTRA_HOST_OPTIONS]: run lighttpd -D on
# 127.0.0.1:$LIGHTTPD_PORT with conf/lighttpd.conf (socket: $SERVER_SOCK)
# and the given fastcgi.server host options, e.g.
#   t_start_lighttpd '"tcp-fin-propagate" => "disable",'
# (an option the snippet sets too replaces it).  Logs: $T/lighttpd-*.log.
# As root, lighttpd keeps root unless LIGHTTPD_USER/LIGHTTPD_GROUP are set
# (it refuses group 0, so it cannot use "root" as group to reach the
# server's root:root 0660 socket: give the socket a group with the
# server's "socket_group" and run lighttpd in that group).  Sets
# LIGHTTPD_PID (tracked), LIGHTTPD_PORT, LIGHTTPD_URL; a second call stops
# the first lighttpd.
t_start_lighttpd() {
    local extra=${1-} user_lines=""
    command -v lighttpd >/dev/null 2>&1 || t_fail "lighttpd is not installed"
    t_stop_lighttpd
    if [ "$(id -u)" = 0 ] && [ -n "${LIGHTTPD_GROUP-}" ]; then
        user_lines="server.username = \"${LIGHTTPD_USER:-nobody}\"
server.groupname = \"$LIGHTTPD_GROUP\""
    fi
    _fe_lighttpd_snippet "$extra" > "$T/lighttpd-fcgi.conf"
    mkdir -p "$T/htdocs"
    if [ -n "$user_lines" ]; then
        # lighttpd opens its logs after it dropped root.
        : >> "$T/lighttpd-error.log"
        : >> "$T/lighttpd-access.log"
        chown "${LIGHTTPD_USER:-nobody}:$LIGHTTPD_GROUP" \
            "$T/lighttpd-error.log" "$T/lighttpd-access.log"
    fi
    _FE_LIGHTTPD_USER_LINES=$user_lines
    _t_frontend_run lighttpd 5000 _fe_lighttpd_write _t_port_ready_or_dead \
        lighttpd -D -f "$T/lighttpd.conf"
    LIGHTTPD_PID=$FE_PID
}

# _fe_lighttpd_write: $T/lighttpd.conf for t_start_lighttpd, checked.
_fe_lighttpd_write() {
    LIGHTTPD_PORT=$FE_PORT
    LIGHTTPD_URL=$FE_URL
    cat > "$T/lighttpd.conf" <<EOF
# Generated by tests/frontends.sh (t_start_lighttpd) for one test run.
server.document-root = "$T/htdocs"
server.bind = "127.0.0.1"
server.port = $LIGHTTPD_PORT
server.errorlog = "$T/lighttpd-error.log"
server.modules = ( "mod_accesslog" )
accesslog.filename = "$T/lighttpd-access.log"
$_FE_LIGHTTPD_USER_LINES
include "$T/lighttpd-fcgi.conf"
EOF
    lighttpd -tt -f "$T/lighttpd.conf" > "$T/lighttpd-check.log" 2>&1 ||
        t_fail "lighttpd -tt refused the configuration:" \
               "$(cat "$T/lighttpd-check.log")"
}

# t_stop_lighttpd: stop the lighttpd of t_start_lighttpd, if any (TERM,
# waits up to 5 s).
t_stop_lighttpd() {
    [ -n "${LIGHTTPD_PID-}" ] || return 0
    if _t_alive "$LIGHTTPD_PID"; then
        kill -CONT "$LIGHTTPD_PID" 2>/dev/null || true
        kill -TERM "$LIGHTTPD_PID" 2>/dev/null || true
        t_wait_for 5000 _fe_dead "$LIGHTTPD_PID" ||
            t_fail "lighttpd $LIGHTTPD_PID did not stop within 5 s"
    fi
    wait "$LIGHTTPD_PID" 2>/dev/null || true
    LIGHTTPD_PID=""
}

# ---------------------------------------------------------------------------
# Apache

_FE_APACHE_MODULES=/usr/lib/apache2/modules

# t_start_apache [EXTRA_DIRECTIVES]: run apache2 -DFOREGROUND (mpm_event)
# on 127.0.0.1:$APACHE_PORT with a standalone configuration that loads
# what it needs and includes conf/apache.conf (socket: $SERVER_SOCK),
# then EXTRA_DIRECTIVES.  As root its children run as daemon:root (group
# root reaches the server's root:root 0660 socket).  Logs:
# $T/apache-*.log.  Sets APACHE_PID (tracked), APACHE_PORT, APACHE_URL.
t_start_apache() {
    local extra=${1-} user_lines="" m src=$top_srcdir/conf/apache.conf
    local loads=""
    command -v apache2 >/dev/null 2>&1 || t_fail "apache2 is not installed"
    [ -r "$src" ] || t_fail "missing $src"
    grep -q "unix:$_FE_SNIPPET_SOCK|" "$src" ||
        t_fail "conf/apache.conf does not pass to unix:$_FE_SNIPPET_SOCK"
    if [ "$(id -u)" = 0 ]; then
        user_lines="User daemon
Group root"
        _t_check_worker_access daemon
    fi
    # Modules that may be compiled in are loaded only if they are not.
    for m in mpm_event unixd authz_core authz_host log_config proxy proxy_fcgi; do
        [ -r "$_FE_APACHE_MODULES/mod_$m.so" ] || {
            case $m in unixd|log_config) continue ;; esac
            t_fail "missing $_FE_APACHE_MODULES/mod_$m.so"
        }
        loads+="<IfModule !${m}_module>
    LoadModule ${m}_module $_FE_APACHE_MODULES/mod_$m.so
</IfModule>
"
    done
    sed "s|$_FE_SNIPPET_SOCK|$SERVER_SOCK|" "$src" > "$T/apache-fcgi.conf"
    mkdir -p "$T/apache-run" "$T/htdocs"
    _FE_APACHE_LOADS=$loads
    _FE_APACHE_USER_LINES=$user_lines
    _FE_APACHE_EXTRA=$extra
    _t_frontend_run apache 10000 _fe_apache_write _t_port_ready_or_dead \
        apache2 -DFOREGROUND -f "$T/apache.conf"
    APACHE_PID=$FE_PID
}

# _fe_apache_write: $T/apache.conf for t_start_apache, checked.
_fe_apache_write() {
    local loads=$_FE_APACHE_LOADS user_lines=$_FE_APACHE_USER_LINES
    local extra=$_FE_APACHE_EXTRA
    APACHE_PORT=$FE_PORT
    APACHE_URL=$FE_URL
    cat > "$T/apache.conf" <<EOF
# Generated by tests/frontends.sh (t_start_apache) for one test run.
ServerRoot "$T"
ServerName localhost
Listen 127.0.0.1:$APACHE_PORT
PidFile "$T/apache-run/apache.pid"
DefaultRuntimeDir "$T/apache-run"
Mutex file:$T/apache-run default
ErrorLog "$T/apache-error.log"
LogLevel info
$loads
$user_lines
DocumentRoot "$T/htdocs"
LogFormat "%h %t \"%r\" %>s %b %{ms}Tms" t
CustomLog "$T/apache-access.log" t
Include "$T/apache-fcgi.conf"
$extra
EOF
    apache2 -t -f "$T/apache.conf" > "$T/apache-check.log" 2>&1 ||
        t_fail "apache2 -t refused the configuration:" \
               "$(cat "$T/apache-check.log")"
}

# ---------------------------------------------------------------------------
# nginx with an upstream of several instances

# t_start_nginx_upstream SOCK...: run nginx with conf/nginx-upstream.conf
# (its http-level part: the upstream and the server), its sockets
# /run/fcgi-cancel/fcgi-cancel-N.sock replaced by the given ones in order,
# as t_start_nginx_snippet.
t_start_nginx_upstream() {
    local src=$top_srcdir/conf/nginx-upstream.conf i=1 s sed=()
    for s in "$@"; do
        grep -q "unix:/run/fcgi-cancel/fcgi-cancel-$i.sock" "$src" ||
            t_fail "conf/nginx-upstream.conf has no fcgi-cancel-$i.sock"
        sed+=(-e "s|unix:/run/fcgi-cancel/fcgi-cancel-$i.sock|unix:$s|")
        i=$((i + 1))
    done
    t_start_nginx_snippet nginx-upstream.conf "${sed[@]}"
}

# t_start_nginx_snippet FILE SED-ARG...: run nginx with conf/FILE (an
# http-level part: upstreams and a server listening on 127.0.0.1:8080)
# edited with sed SED-ARG..., which must replace every socket
# /run/fcgi-cancel/..., and its listen port replaced by a free one.  Sets
# NGINX_PID (tracked), NGINX_PORT, NGINX_URL.  Logs: $T/nginx-error.log,
# $T/nginx-access.log (with the upstream address and status of each
# request).
t_start_nginx_snippet() {
    _FE_SNIPPET=$top_srcdir/conf/$1
    shift
    _FE_SNIPPET_SED=("$@")
    command -v nginx >/dev/null 2>&1 || t_fail "nginx is not installed"
    [ -r "$_FE_SNIPPET" ] || t_fail "missing $_FE_SNIPPET"
    if [ "$(id -u)" = 0 ]; then
        _t_check_worker_access nobody
    fi
    if [ -r /etc/nginx/fastcgi_params ]; then
        cp /etc/nginx/fastcgi_params "$T/fastcgi_params"
    else
        _t_fastcgi_params_inline > "$T/fastcgi_params"
    fi
    _t_nginx_run _fe_write_snippet_conf _t_port_ready_or_dead
}

# _fe_write_snippet_conf: $T/nginx.conf for t_start_nginx_snippet.
_fe_write_snippet_conf() {
    sed "${_FE_SNIPPET_SED[@]}" \
        -e "s|listen 127\.0\.0\.1:8080;|listen 127.0.0.1:$NGINX_PORT;|" \
        "$_FE_SNIPPET" > "$T/nginx-snippet.conf"
    if grep -v '^[[:space:]]*#' "$T/nginx-snippet.conf" |
        grep -q "/run/fcgi-cancel/"; then
        t_fail "conf/${_FE_SNIPPET##*/} has more sockets than given"
    fi
    grep -q "listen 127.0.0.1:$NGINX_PORT;" "$T/nginx-snippet.conf" ||
        t_fail "conf/${_FE_SNIPPET##*/} does not listen on 127.0.0.1:8080"
    _t_nginx_conf "tests/frontends.sh (t_start_nginx_snippet)" \
        "'\$remote_addr [\$time_local] \"\$request\" \$status rt=\$request_time upstream=\$upstream_addr ustatus=\$upstream_status'" \
        "    include $T/nginx-snippet.conf;"
}

# ---------------------------------------------------------------------------
# /status and /metrics for local clients only

# _fe_code FROM URL: the HTTP status of GET URL from source address FROM.
_fe_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 --interface "$1" \
        "$2" || true
}

# t_check_local_only URL: through the front end at URL, /status,
# /status?full and /metrics answer 200 to a client on 127.0.0.1 and 403
# to one on 127.0.0.2, while /ping answers both.  127.0.0.2 stands for a
# client on another machine: the snippets allow exactly 127.0.0.1 and
# ::1, not the rest of 127.0.0.0/8, so to them it is not local (and
# /ping shows that it reaches the server).
t_check_local_only() {
    local url=$1 path code
    for path in /status "/status?full" /metrics; do
        code=$(_fe_code 127.0.0.1 "$url$path")
        [ "$code" = 200 ] || t_fail "$path from 127.0.0.1: $code, want 200"
        code=$(_fe_code 127.0.0.2 "$url$path")
        [ "$code" = 403 ] || t_fail "$path from 127.0.0.2: $code, want 403"
    done
    code=$(_fe_code 127.0.0.2 "$url/ping")
    [ "$code" = 200 ] || t_fail "/ping from 127.0.0.2: $code, want 200"
}
