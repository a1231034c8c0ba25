#!/bin/bash
# SPDX-License-Identifier: MIT
# Pools: two instances of the template units fcgi-cancel@.socket and
# fcgi-cancel@.service, "www" and "api", each with its own configuration,
# socket and user, behind one nginx configured with conf/nginx-pools.conf.
# systemd does not run as PID 1 here, so the test does for each instance
# what systemd would: it reads ListenStream=, ExecStart= and User= of the
# instance from the units make generated, has systemd-socket-activate bind
# the socket (under $T instead of /run/fcgi-cancel) and run ExecStart's
# command (the configuration under $T instead of sysconfdir), as a user of
# the pool's own: when run as root, a free uid of the range DynamicUser=
# allocates from.  Checked: each pool serves its routes through nginx, as
# its own uid, and a client that leaves cancels its job in the pool that
# runs it and nowhere else.
# shellcheck disable=SC2154  # sbindir, sysconfdir: eval'd from make
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/frontends.sh"
t_setup
t_find_activate
eval "$(env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
    make -s -C "$top_builddir" print-install-dirs)"
UNITS=$top_builddir/conf
mkdir -p "$T/pools" "$T/etc/fcgi-cancel"

# unit_value UNIT KEY NAME: KEY= of the template UNIT for the instance NAME.
unit_value() {
    sed -n "s/^$2=//p" "$UNITS/$1" | sed "s/%i/$3/g"
}

declare -A POOL_PID POOL_UID POOL_LOG
next_uid=61184      # the first uid systemd's DynamicUser= hands out

# start_pool NAME ROUTES: write $T/etc/fcgi-cancel/NAME.json with ROUTES,
# check it with -t, and start the instance NAME as systemd would.
start_pool() {
    local name=$1 sock exec_start user conf out
    local -a cmd as=()
    sock=$(unit_value fcgi-cancel@.socket ListenStream "$name")
    exec_start=$(unit_value fcgi-cancel@.service ExecStart "$name")
    user=$(unit_value fcgi-cancel@.service User "$name")
    [ "$sock" = "/run/fcgi-cancel/$name.sock" ] ||
        t_fail "fcgi-cancel@$name.socket: ListenStream=$sock"
    [ "$user" = "fcgi-cancel-$name" ] ||
        t_fail "fcgi-cancel@$name.service: User=$user"
    [ "$exec_start" = "$sbindir/fcgi-cancel --config $sysconfdir/fcgi-cancel/$name.json" ] ||
        t_fail "fcgi-cancel@$name.service: ExecStart=$exec_start"
    read -r -a cmd <<< "$exec_start"
    conf=$T/etc/fcgi-cancel/$name.json
    cmd[0]=$FCGI_CANCEL
    cmd[2]=$conf
    printf '{ "workers": 4, "routes": %s }\n' "$2" > "$conf"
    out=$("$FCGI_CANCEL" -t --config "$conf" 2>&1) && [ "$out" = OK ] ||
        t_fail "-t $name.json: $out"
    sock=$T/pools/${sock#/run/fcgi-cancel/}
    if [ "$(id -u)" = 0 ]; then
        while getent passwd "$next_uid" > /dev/null ||
              getent group "$next_uid" > /dev/null; do
            next_uid=$((next_uid + 1))
        done
        POOL_UID[$name]=$next_uid
        as=(setpriv --reuid="$next_uid" --regid="$next_uid" --clear-groups)
        next_uid=$((next_uid + 1))
    else
        POOL_UID[$name]=$(id -u)
    fi
    POOL_LOG[$name]=$T/$name.log
    "$ACTIVATE" -l "$sock" -- "${as[@]}" "${cmd[@]}" \
        > "${POOL_LOG[$name]}" 2>&1 &
    POOL_PID[$name]=$!
    t_track "${POOL_PID[$name]}"
    t_wait_for 5000 test -S "$sock" || t_fail "no socket $sock for $name"
    # SocketMode=0660; nginx's workers come in through group root here.
    chmod 0660 "$sock"
}

id_route='{ "path": "%s", "handler": "exec", "output": "raw",
    "content_type": "text/plain", "argv": ["/usr/bin/id", "-u"] }'
# shellcheck disable=SC2059  # the format is ours
start_pool www "[ $(printf "$id_route" /id),
    { \"path\": \"/slow\", \"handler\": \"work\", \"style\": \"wait\",
      \"steps\": 20, \"step_ms\": 250 } ]"
# shellcheck disable=SC2059
start_pool api "[ $(printf "$id_route" /api/id),
    { \"path\": \"/api/slow\", \"handler\": \"work\", \"style\": \"wait\",
      \"steps\": 20, \"step_ms\": 250 } ]"
t_start_nginx_snippet nginx-pools.conf \
    -e "s|unix:/run/fcgi-cancel/|unix:$T/pools/|g"

# Each pool answers its own routes, as its own user.
www=$(curl -s --max-time 10 "$NGINX_URL/id") || t_fail "GET /id failed"
api=$(curl -s --max-time 10 "$NGINX_URL/api/id") || t_fail "GET /api/id failed"
[ "$www" = "${POOL_UID[www]}" ] || t_fail "/id ran as uid '$www'"
[ "$api" = "${POOL_UID[api]}" ] || t_fail "/api/id ran as uid '$api'"
for p in www api; do
    t_wait_for 3000 grep -q 'serving on fd 3 ' "${POOL_LOG[$p]}" ||
        t_fail "pool $p does not serve on the passed socket"
    uid=$(awk '/^Uid:/ { print $2 }' "/proc/${POOL_PID[$p]}/status")
    [ "$uid" = "${POOL_UID[$p]}" ] || t_fail "pool $p runs as uid $uid"
done
if [ "$(id -u)" = 0 ]; then
    [ "$www" != "$api" ] || t_fail "both pools run as uid $www"
    what="uids $www and $api"
else
    what="not root: both as uid $www"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$NGINX_URL/api/nothing")
[ "$code" = 404 ] || t_fail "/api/nothing: $code (the api pool's 404 expected)"
t_wait_for 2000 grep -q '"/api/nothing" 404' "${POOL_LOG[api]}" ||
    t_fail "/api/nothing did not reach the api pool"
t_ok "through nginx (conf/nginx-pools.conf): / to pool www, /api/ to pool api ($what)"

# A client that leaves cancels its job in the pool that runs it.
"$HTTP_CLIENT" -c 600 -t 10000 127.0.0.1 "$NGINX_PORT" \
    "/api/slow?task_param=pool-api" > "$T/closed" 2>&1 ||
    t_fail "http-client failed: $(cat "$T/closed")"
id=$(sed -n 's/.* req=\([0-9]*\) job start task_param="pool-api".*/\1/p' \
    "${POOL_LOG[api]}")
[ -n "$id" ] || t_fail "the job did not start in the api pool"
t_wait_for 3000 grep -q "req=$id job cancelled reason=client_gone" \
    "${POOL_LOG[api]}" || t_fail "the api pool did not cancel req $id"
! grep -q 'task_param="pool-api"' "${POOL_LOG[www]}" ||
    t_fail "the www pool saw the api pool's job"
t_ok "a client that leaves /api/slow cancels req $id in the api pool only"

# systemctl stop: SIGTERM to each; both drain and exit 0.
for p in www api; do
    kill -TERM "${POOL_PID[$p]}"
done
for p in www api; do
    t_wait_for 5000 eval "! _t_alive ${POOL_PID[$p]}" ||
        t_fail "pool $p still runs 5 s after SIGTERM"
    rc=0
    wait "${POOL_PID[$p]}" || rc=$?
    [ "$rc" -eq 0 ] || t_fail "pool $p exited $rc after SIGTERM"
done
t_ok "SIGTERM: both pools exit 0"
