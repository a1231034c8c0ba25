#!/bin/bash
# SPDX-License-Identifier: MIT
# Soak: a bounded mixed load through nginx (SOAK_SECONDS, default 120;
# tests/soak-long.sh runs it for 600 s):
#   - tiny requests, 50 per curl on a kept connection;
#   - long jobs (the three work styles, an exec program that starts a
#     grandchild, the primes module), a random 30 % of them abandoned at a
#     random time (20-300 ms, before any of them can end), by close or by
#     reset;
#   - every 10 s, the configuration file rewritten (a route's deadline_ms
#     changed), the access log moved away as logrotate does, and SIGHUP;
#   - halfway, nginx restarted (SIGQUIT: what it has in flight finishes).
# At the end, exact accounting: /status accepted is every request that
# reached the server (the warm-up, each tiny request and job answered,
# each abandoned one; a request refused while nginx restarts never
# reached it), cancelled is exactly the abandoned ones, nothing failed,
# in_flight back to 0, the access logs (all of them) have one line per
# request; no child process left; the server's RSS and open descriptors
# within 5 % of their value after the warm-up (SOAK_NO_RSS=1 skips RSS,
# for sanitizers).  Figures in the output.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup
SECS=${SOAK_SECONDS:-120}
WARM=$(( SECS / 4 < 30 ? SECS / 4 : 30 ))

# soak_config DEADLINE_MS: write the configuration (16 workers: the load
# keeps at most ~6 requests in flight, and idle workers only add warm-up
# noise, their allocator caches and stacks).
soak_config() {
    cat > "$T/soak.json.tmp" <<JSON
{ "access_log": "$T/access.log",
  "routes": [
    { "path": "/cancel_tg", "handler": "work", "style": "poll" },
    { "path": "/cancel_tg_dependency", "handler": "work",
      "style": "callback" },
    { "path": "/cancel_event", "handler": "work", "style": "wait",
      "deadline_ms": $1 },
    { "path": "/progress", "handler": "exec",
      "argv": ["$top_srcdir/tests/data/progress.sh"],
      "env": { "STEPS": "8" } },
    { "path": "/primes", "handler": "module",
      "module": "$top_builddir/examples/primes.so",
      "symbol": "primes_handler", "options": { "max_n": 2000000000 } },
    { "path": "/status", "handler": "status" },
    { "path": "/ping", "handler": "ping" } ] }
JSON
    mv "$T/soak.json.tmp" "$T/soak.json"
}
soak_config 60000
t_start_server --workers 16 --config "$T/soak.json"
t_start_nginx 'fastcgi_keep_conn on;'
# Warm-up: every worker runs every kind of job once (16 at a time, so
# that each worker takes one), so that the allocator's per-thread arenas
# have grown to their working size before RSS is taken as the reference.
warm=0
for q in "primes?n=400000000" "progress" "cancel_event?steps=1&step_ms=50"; do
    wpids=()
    for k in $(seq 1 16); do
        curl -s -o /dev/null "$NGINX_URL/$q" & wpids+=($!)
    done
    wait "${wpids[@]}"
    warm=$((warm + 16))
done
end=$(( $(date +%s) + SECS ))

# _at MS: true once the epoch time in ms reaches MS (for t_wait_for).
_at() { _t_now; [ "$_T_NOW" -ge "$1" ]; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status"; }
fds() { find "/proc/$SERVER_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }

# Tiny requests, 50 per curl on one kept connection: those answered 200
# reached the server; 000 (nginx restarting) did not; anything else is bad.
tiny() {
    local urls=() i codes
    for i in $(seq 1 50); do urls+=(-o /dev/null "$NGINX_URL/ping"); done
    while [ "$(date +%s)" -lt "$end" ]; do
        codes=$(curl -s --max-time 30 -w '%{http_code}\n' "${urls[@]}") ||
            true
        printf '%s\n' "$codes" | awk '$1 == 200 { ok++ } $1 == "000" { no++ }
            $1 != 200 && $1 != "000" { bad++ }
            END { print ok + 0, no + 0, bad + 0 }' >> "$T/tiny-count.$1"
    done
}
# Long jobs: 70 % waited for, 30 % abandoned 20-300 ms after they are
# sent, while they still run: abandoned ones last 600 ms or more (primes:
# n = 4e8, about 0.7 s here).
jobs_loop() {
    local r ms kept=0 gone=0 refused=0 route url=$NGINX_URL code rc
    while [ "$(date +%s)" -lt "$end" ]; do
        r=$((RANDOM % 100))
        case $((RANDOM % 5)) in
            0) route=cancel_tg; long="steps=6&step_ms=100"
               short="steps=2&step_ms=$((RANDOM % 100))" ;;
            1) route=cancel_tg_dependency; long="steps=6&step_ms=100"
               short="steps=2&step_ms=$((RANDOM % 100))" ;;
            2) route=cancel_event; long="steps=6&step_ms=100"
               short="steps=2&step_ms=$((RANDOM % 100))" ;;
            3) route=progress; long="" short="" ;;
            *) route=primes; long="n=400000000"
               short="n=$((1000000 + RANDOM * 1000))" ;;
        esac
        if [ "$r" -lt 30 ]; then
            ms=$((20 + RANDOM % 280))
            if [ $((RANDOM % 2)) -eq 0 ]; then how=-c; else how=-r; fi
            rc=0
            "$HTTP_CLIENT" "$how" "$ms" -t 5000 127.0.0.1 "${url##*:}" \
                "/$route?$long" > /dev/null 2>&1 || rc=$?
            case $rc in
                0) gone=$((gone + 1)) ;;
                1) refused=$((refused + 1)) ;;      # nginx restarting
                *) echo "abandon $route exit $rc" >> "$T/jobs-bad" ;;
            esac
        else
            code=$(curl -s -o /dev/null --max-time 30 -w '%{http_code}' \
                "$url/$route?$short") || true
            case $code in
                200) kept=$((kept + 1)) ;;
                000) refused=$((refused + 1)) ;;
                *) echo "$route $code" >> "$T/jobs-bad" ;;
            esac
        fi
    done
    echo "$kept $gone $refused" > "$T/jobs-count.$1"
}

# RSS and descriptors every 5 s, for the record.
sampler() {
    local t0
    t0=$(date +%s)
    while [ "$(date +%s)" -lt "$end" ]; do
        echo "$(( $(date +%s) - t0 ))s RSS $(rss_kb) kB, $(fds) fds" >> "$T/samples"
        _t_now
        t_wait_for 6000 _at $(( _T_NOW + 5000 )) || true
    done
}

# Every 10 s: a changed configuration file, the access log moved away
# (logrotate's way) and SIGHUP, which reopens the log (and, once the
# server reloads its configuration, loads the file).  Each is checked
# to be handled ("SIGHUP: logs reopened" once more in the server's log).
reloader() {
    local n=0
    while :; do
        _t_now
        t_wait_for 11000 _at $(( _T_NOW + 10000 )) || true
        [ "$(date +%s)" -lt "$end" ] || break
        n=$((n + 1))
        soak_config $(( n % 2 == 1 ? 59000 : 60000 ))
        mv "$T/access.log" "$T/access.log.$n"
        kill -HUP "$SERVER_PID"
        _reopened() { [ "$(t_log_count 'SIGHUP: logs reopened')" -ge "$1" ]; }
        t_wait_for 5000 _reopened "$n" ||
            echo "SIGHUP $n not handled" >> "$T/jobs-bad"
    done
    echo "$n" > "$T/reloads"
}

sampler &
spid=$!
reloader &
rpid=$!
pids=()
for k in 1 2; do tiny "$k" & pids+=($!); done
for k in 1 2 3 4; do jobs_loop "$k" & pids+=($!); done

t_wait_for $(( (WARM + 5) * 1000 )) _at $(( (end - SECS + WARM) * 1000 ))
rss0=$(rss_kb)
fds0=$(fds)
echo "after ${WARM}s: RSS ${rss0} kB, ${fds0} descriptors"
# Halfway: nginx restarted.
t_wait_for $(( SECS * 1000 )) _at $(( (end - SECS / 2) * 1000 ))
t_restart_nginx
echo "nginx restarted at $(( SECS / 2 ))s"
wait "${pids[@]}"
# Read when the load ends, before this script's own /status polls.
rss1=$(rss_kb)
fds1=$(fds)
wait "$spid" "$rpid"
echo "samples: $(tr '\n' ';' < "$T/samples")"

# Every /status asked from here on reached the server too: counted.
polls=0
_idle() {
    polls=$((polls + 1))
    [ "$(curl -s "$NGINX_URL/status" | jq .in_flight)" -eq 1 ]
}
t_wait_for 5000 _idle || t_fail "in_flight not back to 0"
curl -s "$NGINX_URL/status" > "$T/status"
polls=$((polls + 1))
read -r acc com can fail inflight < <(jq -r '[.requests.accepted, .requests.completed,
    .requests.cancelled, .requests.failed, .in_flight] | @tsv' "$T/status")
read -r tiny_n tiny_refused tiny_bad < <(cat "$T"/tiny-count.* |
    awk '{ a += $1; b += $2; c += $3 } END { print a + 0, b + 0, c + 0 }')
read -r kept gone refused < <(cat "$T"/jobs-count.* |
    awk '{ a += $1; b += $2; c += $3 } END { print a + 0, b + 0, c + 0 }')
sent=$((warm + tiny_n + kept + gone + polls))
echo "soak ${SECS}s: ${tiny_n} tiny requests, ${kept} jobs waited for," \
     "${gone} abandoned; $((tiny_refused + refused)) refused while nginx" \
     "restarted; $(cat "$T/reloads") SIGHUPs with a new configuration"
echo "server: accepted $acc (sent $sent), completed $com, cancelled $can," \
     "failed $fail; $(jq -c .cancelled_by_reason "$T/status")"
echo "cancel latency: $(jq -c .cancel_latency "$T/status")"
echo "end: RSS ${rss1} kB (after ${WARM}s: ${rss0}), ${fds1} descriptors (${fds0})"

[ ! -s "$T/jobs-bad" ] || t_fail "jobs not answered 200, or not handled: $(sort "$T/jobs-bad" | uniq -c | head)"
[ "$tiny_bad" -eq 0 ] || t_fail "$tiny_bad tiny requests not answered 200"
[ "$acc" -eq "$sent" ] ||
    t_fail "accepted $acc, but $sent requests reached the server"
[ $((acc - inflight)) -eq $((com + can + fail)) ] ||
    t_fail "accepted $acc - in flight $inflight != completed $com + cancelled $can + failed $fail"
[ "$fail" -eq 0 ] || t_fail "$fail failed requests"
[ "$can" -eq "$gone" ] ||
    t_fail "$can cancelled for $gone abandoned"
[ "$(jq '.cancelled_by_reason | .client_gone + .write_error' "$T/status")" -eq "$can" ] ||
    t_fail "cancels for other reasons than a gone client: $(jq -c .cancelled_by_reason "$T/status")"
children=$(_t_children "$SERVER_PID" | wc -l)
[ "$children" -eq 0 ] || t_fail "$children child process(es) of the server left"
# Under ASan the allocator's quarantine grows RSS by design: the sanitizer
# runs (scripts/sanitize) set SOAK_NO_RSS=1; the plain run checks it.
if [ -z "${SOAK_NO_RSS:-}" ]; then
    [ "$rss1" -le $(( rss0 * 105 / 100 )) ] || t_fail "RSS grew from $rss0 to $rss1 kB"
fi
[ "$fds1" -le $(( fds0 * 105 / 100 )) ] || t_fail "descriptors grew from $fds0 to $fds1"
# The access logs, once the server has written all (at exit): one line
# per request.
t_stop_server TERM 10000 || t_fail "the server did not exit"
lines=$(cat "$T"/access.log* | grep -c ' access req=' || true)
[ "$lines" -eq "$acc" ] ||
    t_fail "$lines access log lines (in $(ls "$T"/access.log* | wc -l) files) for $acc requests"
t_ok "soak: accepted = sent, cancelled = abandoned, nothing failed, one" \
     "access line each across the SIGHUPs, nginx restarted, no child left," \
     "RSS and descriptors flat"
