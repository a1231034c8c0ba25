#!/bin/bash
# SPDX-License-Identifier: MIT
# /metrics, /status?full and the slow line, behind a real nginx:
#  - after completed, 404, refused (413) and abandoned (client_gone)
#    requests, the text format passes `promtool check metrics` and its
#    counters say exactly that;
#  - the OpenMetrics answer (Accept: application/openmetrics-text) has
#    its Content-Type, counter families without "_total", every line a
#    comment or a sample of the family above it, and "# EOF" last;
#  - /status?full lists a running job (route, method, client, elapsed,
#    not cancelled), with milliseconds at 3 decimals;
#  - slow_ms: one warn line per job past it, and the counter; none on a
#    route whose own slow_ms is 0;
#  - fcgi_cancel_exec_children counts the exec route's running program;
#  - a real Prometheus server scrapes /metrics through nginx (in
#    OpenMetrics, what it asks for first) and its query API answers the
#    client_gone counter this test made move;
#  - conf/nginx.conf lets only local clients reach /status and /metrics.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/frontends.sh"
t_setup
command -v promtool >/dev/null || t_fail "promtool is not installed"
command -v prometheus >/dev/null || t_fail "prometheus is not installed"

cat > "$T/conf.json" <<EOF
{
    "slow_ms": 300, "max_body_bytes": 1024, "access_log": "off",
    "routes": [
        { "path": "/cancel_event", "methods": ["GET", "HEAD"],
          "handler": "work", "style": "wait" },
        // A long program, and no slow line for it.
        { "path": "/sleep", "handler": "exec", "argv": ["/bin/sleep", "30"],
          "slow_ms": 0 },
        { "path": "/status", "methods": ["GET", "HEAD"], "handler": "status" },
        { "path": "/metrics", "methods": ["GET", "HEAD"], "handler": "metrics" },
        { "path": "/ping", "handler": "ping" },
    ],
}
EOF
t_start_server -c "$T/conf.json" --workers 4
t_start_nginx

# metric NAME{LABELS}: print the value of that sample in $T/m.txt.
metric() {
    awk -v k="$1" '$1 == k { print $2; found = 1 } END { if (!found) print "absent" }' \
        "$T/m.txt"
}

# want NAME{LABELS} VALUE: the sample in $T/m.txt has that value.
want() {
    local got
    got=$(metric "$1")
    [ "$got" = "$2" ] || t_fail "$1 is $got, want $2"
}

# ---- requests that end every way ----------------------------------------
for i in 1 2 3; do
    curl -sf -o /dev/null "$NGINX_URL/cancel_event?steps=1&step_ms=1" ||
        t_fail "request $i"
done
for i in 1 2; do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$NGINX_URL/nowhere")" = 404 ] ||
        t_fail "/nowhere is not 404"
done
head -c 4096 /dev/zero > "$T/body"
[ "$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$T/body" \
    "$NGINX_URL/ping")" = 413 ] || t_fail "a 4 KiB body is not refused 413"

# A job left running: /status?full shows it, then its client leaves.
curl -s -o /dev/null --max-time 30 "$NGINX_URL/cancel_event" &
cpid=$!
t_track "$cpid"
t_wait_for 5000 t_log_has 'req=[0-9]+ slow route=/cancel_event client=127\.0\.0\.1 elapsed_ms=[0-9]+' ||
    t_fail "no slow line for the running job"
curl -s --max-time 10 "$NGINX_URL/status?full" > "$T/full.json"
jq -e '[.jobs[] | select(.route == "/cancel_event" and .method == "GET"
    and .client == "127.0.0.1" and .cancelled == false and .reason == null
    and .elapsed_ms >= 300)] | length == 1' "$T/full.json" > /dev/null ||
    t_fail "/status?full: $(cat "$T/full.json")"
jq -e '.slow == 1' "$T/full.json" > /dev/null ||
    t_fail "/status slow: $(jq .slow "$T/full.json")"
curl -s --max-time 10 "$NGINX_URL/status" | jq -e 'has("jobs") | not' \
    > /dev/null || t_fail "/status without ?full lists jobs"
t_ok "/status?full lists the running job; slow line written"
kill "$cpid"
# Two more abandoned, past slow_ms too.
for i in 1 2; do
    curl -s -o /dev/null --max-time 0.5 "$NGINX_URL/cancel_event" || true
done
t_wait_for 5000 eval '[ "$(t_log_count "job cancelled reason=client_gone")" = 3 ]' ||
    t_fail "$(t_log_count "job cancelled reason=client_gone") of 3 jobs cancelled"
[ "$(t_log_count ' slow route=/cancel_event ')" = 3 ] ||
    t_fail "want one slow line per abandoned job: $(grep ' slow ' "$T/server.log")"
# Milliseconds at 3 decimals, never 0.086999999999999994.
curl -s --max-time 10 "$NGINX_URL/status" > "$T/status.json"
grep -Eq '"p50_ms": ?[0-9]+\.[0-9]{3}[,}]' "$T/status.json" ||
    t_fail "p50_ms not at 3 decimals: $(cat "$T/status.json")"
! grep -Eq '[0-9]\.[0-9]{4,}' "$T/status.json" ||
    t_fail "a long number in /status: $(cat "$T/status.json")"
t_ok "/status numbers at 3 decimals"

# ---- the text format, checked by promtool --------------------------------
curl -s -D "$T/m.hdr" --max-time 10 "$NGINX_URL/metrics" > "$T/m.txt"
grep -qi '^content-type: text/plain; version=0\.0\.4; charset=utf-8' \
    "$T/m.hdr" || t_fail "text Content-Type: $(cat "$T/m.hdr")"
promtool check metrics < "$T/m.txt" > "$T/promtool.out" 2>&1 ||
    t_fail "promtool check metrics: $(cat "$T/promtool.out")"
[ ! -s "$T/promtool.out" ] || t_fail "promtool: $(cat "$T/promtool.out")"
r='route="/cancel_event"'
want "fcgi_cancel_requests_total{$r,outcome=\"completed\",reason=\"none\"}" 3
want "fcgi_cancel_requests_total{$r,outcome=\"cancelled\",reason=\"client_gone\"}" 3
want "fcgi_cancel_requests_total{$r,outcome=\"cancelled\",reason=\"deadline\"}" 0
want "fcgi_cancel_requests_total{$r,outcome=\"failed\",reason=\"none\"}" 0
want "fcgi_cancel_responses_total{$r,code=\"2xx\"}" 3
want "fcgi_cancel_responses_total{$r,code=\"4xx\"}" 3
want 'fcgi_cancel_requests_total{route="none",outcome="completed",reason="none"}' 3
want 'fcgi_cancel_responses_total{route="none",code="4xx"}' 3
want 'fcgi_cancel_refused_requests_total{code="413"}' 1
want "fcgi_cancel_request_duration_seconds_count{$r}" 6
want "fcgi_cancel_request_duration_seconds_bucket{$r,le=\"+Inf\"}" 6
want 'fcgi_cancel_cancel_latency_seconds_count' 3
want 'fcgi_cancel_slow_requests_total' 3
want 'fcgi_cancel_workers' 4
want 'fcgi_cancel_requests_in_flight' 1     # this scrape
want 'fcgi_cancel_stragglers' 0
[ "$(metric process_open_fds)" -gt 3 ] || t_fail "process_open_fds"
[ "$(metric process_resident_memory_bytes)" -gt 0 ] ||
    t_fail "process_resident_memory_bytes"
t_ok "text format: promtool passes, counters after 3 completed, 3 404/413, 3 client_gone"

# ---- OpenMetrics -----------------------------------------------------------
curl -s -D "$T/om.hdr" -H 'Accept: application/openmetrics-text; version=1.0.0' \
    --max-time 10 "$NGINX_URL/metrics" > "$T/om.txt"
grep -qi '^content-type: application/openmetrics-text; version=1\.0\.0; charset=utf-8' \
    "$T/om.hdr" || t_fail "OpenMetrics Content-Type: $(cat "$T/om.hdr")"
[ "$(tail -n 1 "$T/om.txt")" = "# EOF" ] || t_fail "OpenMetrics: no # EOF last"
[ "$(grep -c '^# EOF$' "$T/om.txt")" = 1 ] || t_fail "OpenMetrics: # EOF twice"
grep -q '^# TYPE fcgi_cancel_requests counter$' "$T/om.txt" ||
    t_fail "OpenMetrics: counter family fcgi_cancel_requests"
! grep -q '^# TYPE [a-z_]*_total ' "$T/om.txt" ||
    t_fail "OpenMetrics: a family named *_total"
# Every line a HELP/TYPE of a new family, a sample of the current family
# (counters as NAME_total, histograms as _bucket/_sum/_count) or # EOF.
awk '
    /^# EOF$/ { next }
    /^# HELP / { next }
    /^# TYPE / {
        if ($3 in seen) { print "family twice: " $3; bad = 1 }
        seen[$3] = 1; fam = $3; type = $4; next
    }
    {
        name = $1; sub(/\{.*/, "", name)
        if (type == "counter") ok = name == fam "_total"
        else if (type == "histogram") ok = name == fam "_bucket" || name == fam "_sum" || name == fam "_count"
        else ok = name == fam
        if (!ok || NF != 2 || $2 !~ /^-?[0-9.]+([eE][-+]?[0-9]+)?$|^[+-]Inf$|^NaN$/) {
            print "bad line: " $0; bad = 1
        }
    }
    END { exit bad }' "$T/om.txt" > "$T/om.check" ||
    t_fail "OpenMetrics: $(cat "$T/om.check")"
grep -q "^fcgi_cancel_requests_total{$r,outcome=\"cancelled\",reason=\"client_gone\"} 3$" \
    "$T/om.txt" || t_fail "OpenMetrics: the client_gone counter"
t_ok "OpenMetrics: Content-Type, families, samples, # EOF"

# ---- a real Prometheus scrapes it ------------------------------------------
mkdir -p "$T/prom"
cat > "$T/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: fcgi-cancel
    metrics_path: /metrics
    static_configs:
      - targets: ['127.0.0.1:$NGINX_PORT']
EOF
promtool check config "$T/prometheus.yml" > "$T/promtool-config.out" 2>&1 ||
    t_fail "promtool check config: $(cat "$T/promtool-config.out")"

_prom_ready_or_dead() {
    _t_alive "$FE_PID" || return 0
    curl -sf --max-time 1 "$FE_URL/-/ready" > /dev/null 2>&1
}
# The port is picked by _t_frontend_run after its arguments are expanded:
# the command line is written with it, and exec'ed (the PID is
# Prometheus's).
_prom_write() {
    PROM_URL=$FE_URL
    PROM_PORT=$FE_PORT
    cat > "$T/prom-run.sh" <<EOF
exec prometheus --config.file="$T/prometheus.yml" \\
    --storage.tsdb.path="$T/prom" \\
    --web.listen-address="127.0.0.1:$FE_PORT" --log.level=warn
EOF
}
_t_frontend_run prometheus 60000 _prom_write _prom_ready_or_dead \
    bash "$T/prom-run.sh"
PROM_PID=$FE_PID

# query EXPR: print the value of the first series of an instant query.
query() {
    curl -s --max-time 5 -G --data-urlencode "query=$1" \
        "$PROM_URL/api/v1/query" |
        jq -r '.data.result[0].value[1] // "none"' 2>/dev/null || echo none
}
_prom_has() {
    [ "$(query "$1")" = "$2" ]
}
q='fcgi_cancel_requests_total{job="fcgi-cancel",route="/cancel_event",outcome="cancelled",reason="client_gone"}'
t_wait_for 60000 _prom_has "$q" 3 ||
    t_fail "Prometheus says $q = $(query "$q") (up: $(query up), port $PROM_PORT), want 3"
_prom_has 'up{job="fcgi-cancel"}' 1 || t_fail "Prometheus: target not up"
_prom_has 'fcgi_cancel_cancel_latency_seconds_count{job="fcgi-cancel"}' 3 ||
    t_fail "Prometheus: cancel latency count"
t_ok "Prometheus scrapes /metrics and answers the client_gone counter: 3"
t_stop "$PROM_PID"

# ---- an exec route: its running program, and its own slow_ms 0 -----------
scrape() {
    curl -s --max-time 10 "$NGINX_URL/metrics" > "$T/m.txt"
}
children_are() {
    scrape
    [ "$(metric 'fcgi_cancel_exec_children{route="/sleep"}')" = "$1" ]
}
sleep_ran_ms() {
    curl -s --max-time 10 "$NGINX_URL/status?full" |
        jq -e "[.jobs[] | select(.route == \"/sleep\" and .elapsed_ms >= $1)]
            | length == 1" > /dev/null
}
children_are 0 || t_fail "exec children before: $(metric 'fcgi_cancel_exec_children{route="/sleep"}')"
curl -s -o /dev/null --max-time 30 "$NGINX_URL/sleep" &
spid=$!
t_track "$spid"
t_wait_for 5000 children_are 1 ||
    t_fail "exec children while /sleep runs: $(metric 'fcgi_cancel_exec_children{route="/sleep"}')"
t_wait_for 5000 sleep_ran_ms 600 || t_fail "/sleep not listed past 600 ms"
! t_log_has ' slow route=/sleep ' || t_fail "a slow line for /sleep (slow_ms 0)"
t_stop "$spid"
t_wait_for 5000 children_are 0 ||
    t_fail "exec children after the client left: $(metric 'fcgi_cancel_exec_children{route="/sleep"}')"
want 'fcgi_cancel_requests_total{route="/sleep",outcome="cancelled",reason="client_gone"}' 1
t_ok "exec: fcgi_cancel_exec_children 0, 1 while it runs, 0 once cancelled; no slow line (route slow_ms 0)"

# ---- conf/nginx.conf: /status and /metrics for local clients only --------
t_stop "$NGINX_PID"
t_start_nginx_snippet nginx.conf \
    -e "s|unix:/run/fcgi-cancel/fcgi-cancel.sock;|unix:$SERVER_SOCK;|"
t_check_local_only "$NGINX_URL"
t_ok "conf/nginx.conf: /status and /metrics answer 127.0.0.1, 403 to 127.0.0.2"

t_ok "metrics"
