#!/bin/bash
# SPDX-License-Identifier: MIT
# fcgi-cancel behind a real Apache 2.4 (mpm_event, mod_proxy_fcgi over the
# unix socket) configured with conf/apache.conf (included, only its socket
# path replaced):
#   1. a client that waits gets exactly the recipe's JSON, and on a route
#      with probes the same JSON after the probes' blanks;
#   2. without probes, a client that closes (FIN) or resets (RST) its
#      connection does not cancel its silent job: Apache does not watch
#      its client while the backend is silent (the documented fact), and
#      the job runs to its end;
#   3. on a route with "probe_ms": 100, a client that closes at ~1 s has
#      its job cancelled within 1 s: the probes make Apache write, Apache
#      finds the client gone and closes the FastCGI connection;
#   4. /status and /metrics answer local clients only (the snippet's
#      Require ip).
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/frontends.sh"
t_setup
recipe='{"result":"Work completed for default_for_cancel_tg"}'
probed='{"result":"Work completed for probed"}'
bg_pids=()

cat > "$T/conf.json" <<'EOF'
{
    "routes": [
        // The recipe's route, as in the default configuration: no probes.
        { "path": "/cancel_tg", "methods": ["GET", "HEAD"], "handler": "work",
          "style": "poll", "task_param": "default_for_cancel_tg",
          "steps": 5, "step_ms": 1000, "mode": "sleep" },
        // The same job with probes every 100 ms.
        { "path": "/probed", "methods": ["GET", "HEAD"], "handler": "work",
          "style": "poll", "task_param": "probed", "probe_ms": 100 },
        { "path": "/status", "methods": ["GET", "HEAD"], "handler": "status" },
        { "path": "/metrics", "methods": ["GET", "HEAD"], "handler": "metrics" },
        { "path": "/ping", "handler": "ping" },
    ],
}
EOF
t_start_server --config "$T/conf.json" --workers 8
t_start_apache
grep -qE '^ProxyPass .*flushpackets=on' "$T/apache-fcgi.conf" ||
    t_fail "conf/apache.conf does not set flushpackets=on"

snap() {
    curl -s --max-time 10 "$APACHE_URL/status" > "$T/$1.json" ||
        t_fail "no /status through Apache"
    jq -e . "$T/$1.json" > /dev/null || t_fail "/status: $(cat "$T/$1.json")"
}
delta() {
    echo $(( $(jq "$3" "$T/$2.json") - $(jq "$3" "$T/$1.json") ))
}
req_of() {
    sed -n "s/.* req=\([0-9]*\) job start task_param=\"$1\".*/\1/p" \
        "$T/server.log" | head -n 1
}

# ---- 1. a waiting client gets the recipe's JSON ------------------------
curl -s --max-time 10 -o "$T/body" -w '%{http_code}' \
    "$APACHE_URL/cancel_tg?step_ms=100" > "$T/code"
[ "$(cat "$T/code")" = 200 ] || t_fail "/cancel_tg: HTTP $(cat "$T/code")"
[ "$(cat "$T/body")" = "$recipe" ] ||
    t_fail "/cancel_tg: got '$(cat "$T/body")', expected $recipe"
[ "$(jq -c . "$T/body")" = "$recipe" ] || t_fail "/cancel_tg: not the JSON"
t_ok "1. a waiting client got exactly $recipe"

curl -s --max-time 10 -o "$T/body-probed" -w '%{http_code}' \
    "$APACHE_URL/probed?step_ms=100" > "$T/code"
[ "$(cat "$T/code")" = 200 ] || t_fail "/probed: HTTP $(cat "$T/code")"
[ "$(jq -c . "$T/body-probed")" = "$probed" ] ||
    t_fail "/probed: got '$(cat "$T/body-probed")', expected $probed"
# What precedes the JSON is blanks only (the probes).
body=$(cat "$T/body-probed")
body=${body#"${body%%[![:space:]]*}"}
[ "$body" = "$probed" ] || t_fail "/probed: '$(cat "$T/body-probed")'"
blanks=$(( $(wc -c < "$T/body-probed") - ${#probed} ))
t_ok "1. with probes: the same JSON after $blanks blank(s)"

# ---- 2. without probes a close does not cancel a silent job ------------
snap s0
for how in c r; do
    "$HTTP_CLIENT" -"$how" 1000 -t 10000 127.0.0.1 "$APACHE_PORT" \
        "/cancel_tg?steps=2&task_param=silent-$how" > /dev/null 2>&1 &
    bg_pids+=($!)
done
wait "${bg_pids[@]}"
bg_pids=()
for how in c r; do
    id=$(req_of "silent-$how")
    [ -n "$id" ] || t_fail "silent-$how: no job start in the log"
    t_wait_for 5000 t_log_has "access req=$id GET .* 200 " ||
        t_fail "silent-$how: req $id did not complete"
    ! t_log_has "req=$id job cancelled" ||
        t_fail "silent-$how: req $id was cancelled: Apache noticed?" \
               "(update conf/apache.conf and the README)"
done
snap s1
[ "$(delta s0 s1 .requests.cancelled)" -eq 0 ] ||
    t_fail "a job was cancelled"
t_ok "2. without probes: neither a close nor a reset at 1 s cancelled" \
     "the silent 2 s job (it completed)"

# ---- 3. with probe_ms 100 a close cancels within 1 s -------------------
snap p0
lat=()
for i in 1 2 3; do
    tp=probed-$i
    closed=$("$HTTP_CLIENT" -c 1000 -t 10000 127.0.0.1 "$APACHE_PORT" \
        "/probed?steps=5&step_ms=1000&task_param=$tp" 2> "$T/$tp.err" |
        sed -n 's/^closed_at_ms=//p')
    [ -n "$closed" ] || t_fail "$tp: the client did not close"
    grep -q 'received=[1-9]' "$T/$tp.err" ||
        t_fail "$tp: no probe reached the client ($(cat "$T/$tp.err"))"
    id=$(req_of "$tp")
    [ -n "$id" ] || t_fail "$tp: no job start in the log"
    t_wait_for 3000 t_log_has "req=$id job cancelled" ||
        t_fail "$tp: req $id not cancelled within 3 s of the close"
    line=$(grep -E " req=$id job cancelled" "$T/server.log")
    reason=$(sed 's/.*reason=\([a-z_]*\).*/\1/' <<< "$line")
    case $reason in
    client_gone|write_error) ;;
    *) t_fail "$tp: cancelled with reason $reason" ;;
    esac
    ms=$(awk -v a="$(t_log_ms "${line%% *}")" -v b="$closed" \
        'BEGIN { printf "%.1f", a - b }')
    awk -v m="$ms" 'BEGIN { exit !(m < 1000) }' ||
        t_fail "$tp: cancelled $ms ms after the close (bound 1000 ms)"
    lat+=("$ms ($reason)")
done
snap p1
[ "$(delta p0 p1 .requests.cancelled)" -eq 3 ] ||
    t_fail "/status: cancelled +$(delta p0 p1 .requests.cancelled), expected +3"
t_ok "3. probe_ms 100: 3 closes at 1 s cancelled the job ${lat[*]} ms" \
     "after the close"

# ---- /status and /metrics: local clients only --------------------------
t_check_local_only "$APACHE_URL"
t_ok "4. conf/apache.conf: /status and /metrics answer 127.0.0.1, 403 to 127.0.0.2"
