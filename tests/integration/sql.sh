#!/bin/bash
# SPDX-License-Identifier: MIT
# The sql handler against a real PostgreSQL 15 (a throwaway cluster in the
# test's directory) behind a real nginx:
#  - -t checks the route keys (a query that does not use $1..$n, both
#    conninfo and conninfo_file, a bad read_only) at their line;
#  - types map to JSON (numbers, NaN as a string, bool, null, json and
#    jsonb embedded, text escaped), NDJSON and CSV;
#  - values are bound: an injection attempt is just data;
#  - errors: a missing argument and a bad value are 400, an SQL error is a
#    500 that shows neither the SQL nor the conninfo, a write on a
#    read_only route fails, the password is in no log and no answer;
#  - a million rows stream in bounded server memory (VmHWM);
#  - a client that leaves cancels pg_sleep(60) and a CPU-bound cross join
#    in the database: pg_stat_activity shows the backend idle within a
#    bound, and the next request reuses that connection (same backend
#    pid); a deadline answers 504 and the statement is gone;
#  - a cancel that PostgreSQL drops (it came before the backend read the
#    statement: the backend held with SIGSTOP) is sent again;
#  - a request waiting for a pool connection stops when its client leaves;
#  - the database down: 503 with Retry-After at once; back up: 200;
#  - SIGTERM with a query running: cancelled in the database too;
#  - the pgquery example module (its own libpq connection) answers, and
#    cancels its query in the database when its client leaves.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup

t_start_postgres
t_psql "create table items (id int primary key, name text, price numeric,
    ratio float8, small real, big int8, ok bool, doc jsonb, raw json,
    tags text[], born date, blob bytea)"
t_psql "insert into items values
    (1, 'plain', 1.50, 0.25, 1.5, 9007199254740993, true,
     '{\"k\": [1, 2]}', '[1, 2]', '{a,b}', '2026-01-02', '\\x0001'),
    (2, E'quote\" back\\\\ nl\n tab\t bell\x07 é', 'NaN', 'Infinity',
     '-Infinity', -1, false, 'null', '{}', '{}', null, ''),
    (3, null, null, null, null, null, null, null, null, null, null, null)"
t_psql "create table notes (id serial primary key, body text)"

PASSWORD=hunter2-$$
CONN="$PG_CONNINFO password=$PASSWORD"
printf '%s\n' "$CONN" > "$T/conninfo"
chmod 600 "$T/conninfo"

# ---- -t -----------------------------------------------------------------
# refused SNIPPET MESSAGE: -t on a config whose routes[1] is SNIPPET says
# "bad.json:LINE:COL: MESSAGE".
refused() {
    printf '{ "routes": [\n{ "path": "/ping", "handler": "ping" },\n%s\n] }\n' \
        "$1" > "$T/bad.json"
    local out
    if out=$("$FCGI_CANCEL" -t --config "$T/bad.json" 2>&1); then
        t_fail "-t accepted: $1"
    fi
    [ "$out" = "$T/bad.json:$2" ] || t_fail "-t said: $out, not: $2"
}
refused '{ "path": "/q", "handler": "sql", "query": "select $2::int",
  "params": ["a", "b"] }' \
    '3:35: routes[1].query: does not use $1 (params has 2 entries)'
refused '{ "path": "/q", "handler": "sql", "query": "select $3", "params": ["a"] }' \
    '3:35: routes[1].query: uses $3, but params has 1 entry'
refused '{ "path": "/q", "handler": "sql", "query": "select 1; drop table x" }' \
    '3:35: routes[1].query: must be one statement (text after the '"';'"')'
refused '{ "path": "/q", "handler": "sql", "query": "select 1", "read_only": 0 }' \
    '3:56: routes[1].read_only: must be true or false'
refused '{ "path": "/q", "handler": "sql", "query": "select 1",
  "conninfo": "", "conninfo_file": "/x" }' \
    '4:19: routes[1].conninfo_file: give "conninfo" or "conninfo_file", not both'
refused '{ "path": "/q", "handler": "sql", "query": "select 1",
  "params": [{ "arg": "a", "body": "b" }] }' \
    '4:14: routes[1].params[0]: must have one of "arg", "body" and "param", not two'
refused '{ "path": "/q", "handler": "sql" }' \
    '3:1: routes[1]: missing key "query"'
refused '{ "path": "/q", "handler": "sql", "query": "select 1",
  "conninfo": "host=x password=s3cret '"'"'" }' \
    '4:3: routes[1].conninfo: is not a valid libpq connection string'
t_ok "-t refuses bad sql routes, each at its key"

cat > "$T/conf.json" <<EOF
{
    "workers": 8,
    "grace_ms": 300,
    "routes": [
        { "path": "/status", "handler": "status" },
        { "path": "/metrics", "handler": "metrics" },
        { "path": "/items", "handler": "sql", "conninfo": "$CONN",
          "query": "select * from items where id >= \$1 order by id",
          "params": [{ "arg": "from", "default": 0 }] },
        { "path": "/items.ndjson", "handler": "sql", "output": "ndjson",
          "conninfo_file": "$T/conninfo",
          "query": "select id, name, ok from items order by id" },
        { "path": "/items.csv", "handler": "sql", "output": "csv",
          "conninfo": "$CONN",
          "query": "select id, name, price, ok, doc from items order by id" },
        { "path": "/whoami", "handler": "sql",
          "query": "select current_user as u, current_setting('application_name') as app, current_setting('default_transaction_read_only') as ro" },
        { "path": "/byname", "handler": "sql", "conninfo": "$CONN",
          "query": "select id from items where name = \$1", "params": ["name"] },
        { "path": "/echo", "handler": "sql", "conninfo": "$CONN",
          "methods": ["POST"],
          "query": "select \$1::text as a, \$2::int as b, \$3::jsonb as c, \$4::text as m, \$5::text as d",
          "params": [{ "body": "a" }, { "body": "b" }, { "body": "c" },
                     { "param": "REQUEST_METHOD" },
                     { "body": "d", "default": null }] },
        { "path": "/nosuch", "handler": "sql", "conninfo": "$CONN",
          "query": "select * from no_such_table" },
        { "path": "/note", "handler": "sql", "conninfo": "$CONN",
          "query": "insert into notes (body) values (\$1) returning id",
          "params": ["body"] },
        { "path": "/note-rw", "handler": "sql", "conninfo": "$CONN",
          "read_only": false,
          "query": "insert into notes (body) values (\$1) returning id",
          "params": ["body"] },
        { "path": "/big", "handler": "sql", "conninfo": "$CONN",
          "output": "csv", "pool_size": 1,
          "query": "select g as id, md5(g::text) as h from generate_series(1, \$1::int) g",
          "params": [{ "arg": "n", "default": 1000000 }] },
        { "path": "/sleep", "handler": "sql", "conninfo": "$CONN",
          "pool_size": 1,
          "query": "select pg_backend_pid() as pid, pg_sleep(\$1::float8) is null as slept",
          "params": [{ "arg": "s", "default": 0 }] },
        { "path": "/burn", "handler": "sql", "conninfo": "$CONN",
          "pool_size": 1,
          "query": "select pg_backend_pid() as pid, (select count(*) from generate_series(1, \$1::int) a, generate_series(1, 100000) b) as n",
          "params": [{ "arg": "n", "default": 100000 }] },
        { "path": "/pgquery", "handler": "module",
          "module": "$top_builddir/examples/pgquery.so",
          "symbol": "pgquery_handler",
          "options": { "conninfo": "$PG_CONNINFO application_name=pgquery",
                       "query": "select pg_sleep(\$1::float8)::text as s, null as n, 'x' as v",
                       "arg": "s" } },
        { "path": "/short", "handler": "sql", "conninfo": "$CONN",
          "deadline_ms": 500, "pool_size": 1,
          "query": "select pg_backend_pid() as pid, pg_sleep(\$1::float8) is null as slept",
          "params": [{ "arg": "s", "default": 60 }] },
    ],
}
EOF
out=$("$FCGI_CANCEL" -t --config "$T/conf.json" 2>&1) || t_fail "-t: $out"
t_ok "-t accepts the test's sql routes"
# /whoami has no conninfo: the PG* environment says where to connect.
PGHOST=$PG_SOCKDIR PGUSER=postgres PGDATABASE=postgres \
    t_start_server --config "$T/conf.json"
t_start_nginx

# get PATH [CURL ARGS...]: through nginx; body in $T/body, headers in
# $T/headers; prints the status code.
get() {
    local path=$1
    shift
    curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' --max-time 60 \
        "$@" "$NGINX_URL$path"
}

# expect CODE PATH [CURL ARGS...]: get, and fail unless the status is CODE.
expect() {
    local want=$1 code
    shift
    code=$(get "$@") || true
    [ "$code" = "$want" ] || t_fail "$1: $code, not $want: $(head -c 300 "$T/body")"
}

# ---- types ----------------------------------------------------------------
expect 200 /items
grep -qi '^content-type: application/json' "$T/headers" ||
    t_fail "/items: $(cat "$T/headers")"
jq -e 'length == 3' "$T/body" > /dev/null || t_fail "/items: $(cat "$T/body")"
jq -e '.[0] == {"id": 1, "name": "plain", "price": 1.50, "ratio": 0.25,
    "small": 1.5, "big": 9007199254740993, "ok": true, "doc": {"k": [1, 2]},
    "raw": [1, 2], "tags": "{a,b}", "born": "2026-01-02", "blob": "\\x0001"}' \
    "$T/body" > /dev/null || t_fail "row 1: $(jq -c '.[0]' "$T/body")"
# jq reads 9007199254740993 as a double: check the digits themselves.
grep -q '"big":9007199254740993,' "$T/body" || t_fail "int8 digits lost"
jq -e '.[1] == {"id": 2, "name": "quote\" back\\ nl\n tab\t bell\u0007 é",
    "price": "NaN", "ratio": "Infinity", "small": "-Infinity", "big": -1,
    "ok": false, "doc": null, "raw": {}, "tags": "{}", "born": null,
    "blob": "\\x"}' "$T/body" > /dev/null ||
    t_fail "row 2: $(jq -c '.[1]' "$T/body")"
jq -e '.[2] | to_entries | map(select(.key != "id")) | all(.value == null)' \
    "$T/body" > /dev/null || t_fail "row 3: $(jq -c '.[2]' "$T/body")"
t_ok "types: numbers, NaN/Infinity as strings, bool, null, json/jsonb" \
    "embedded, text escaped"

expect 200 '/items?from=3'
[ "$(jq -c . "$T/body")" = '[{"id":3,"name":null,"price":null,"ratio":null,"small":null,"big":null,"ok":null,"doc":null,"raw":null,"tags":null,"born":null,"blob":null}]' ] ||
    t_fail "?from=3: $(cat "$T/body")"
expect 200 '/items?from=9'
[ "$(cat "$T/body")" = "[]" ] || t_fail "no rows: $(cat "$T/body")"

expect 200 /items.ndjson
grep -qi '^content-type: application/x-ndjson' "$T/headers" ||
    t_fail "ndjson: $(cat "$T/headers")"
[ "$(wc -l < "$T/body")" -eq 3 ] || t_fail "ndjson: $(cat "$T/body")"
[ "$(jq -sc 'map(.id)' "$T/body")" = "[1,2,3]" ] ||
    t_fail "ndjson: $(cat "$T/body")"
expect 200 /items.csv
grep -qi '^content-type: text/csv' "$T/headers" ||
    t_fail "csv: $(cat "$T/headers")"
printf 'id,name,price,ok,doc\r\n1,plain,1.50,true,"{""k"": [1, 2]}"\r\n2,"quote"" back\\ nl\n tab\t bell\a é",NaN,false,null\r\n3,,,,\r\n' \
    > "$T/want.csv"
cmp -s "$T/body" "$T/want.csv" ||
    t_fail "csv: $(od -c "$T/body" | head -20)"
t_ok "NDJSON and CSV (RFC 4180 quoting, NULL as an empty field)"

expect 200 /whoami
[ "$(jq -c . "$T/body")" = '[{"u":"postgres","app":"fcgi-cancel","ro":"on"}]' ] ||
    t_fail "whoami: $(cat "$T/body")"
t_ok "no conninfo: the PG* environment; application_name and read-only" \
    "transactions set"

# ---- binding ----------------------------------------------------------------
expect 200 /byname --get --data-urlencode "name=plain"
[ "$(cat "$T/body" | jq -c .)" = '[{"id":1}]' ] || t_fail "byname: $(cat "$T/body")"
for evil in "plain' or '1'='1" "x'; drop table items; --" 'plain" or 1=1 --'; do
    expect 200 /byname --get --data-urlencode "name=$evil"
    [ "$(cat "$T/body")" = "[]" ] || t_fail "injection $evil: $(cat "$T/body")"
done
[ "$(t_psql 'select count(*) from items')" = 3 ] || t_fail "items changed"
expect 200 /echo -X POST -H 'Content-Type: application/json' \
    --data '{"a": "x'"'"'); drop table items; --", "b": 42, "c": {"n": [1, null]}}'
[ "$(jq -c . "$T/body")" = '[{"a":"x'"'"'); drop table items; --","b":42,"c":{"n": [1, null]},"m":"POST","d":null}]' ] ||
    [ "$(jq -c . "$T/body")" = '[{"a":"x'"'"'); drop table items; --","b":42,"c":{"n":[1,null]},"m":"POST","d":null}]' ] ||
    t_fail "echo: $(cat "$T/body")"
t_ok "values are bound (an injection attempt is data); body fields," \
    "FastCGI params and defaults"

# ---- errors -----------------------------------------------------------------
expect 400 /byname
[ "$(jq -r .error "$T/body")" = 'missing query argument "name"' ] ||
    t_fail "missing: $(cat "$T/body")"
expect 400 '/items?from=abc'
[ "$(jq -r .error "$T/body")" = "bad parameter value" ] ||
    t_fail "bad value: $(cat "$T/body")"
expect 400 /echo -X POST --data 'not json'
[ "$(jq -r .error "$T/body")" = "the body must be a JSON object" ] ||
    t_fail "bad body: $(cat "$T/body")"
expect 500 /nosuch
[ "$(jq -c . "$T/body")" = '{"error":"query failed","status":500}' ] ||
    t_fail "sql error: $(cat "$T/body")"
t_log_has 'sql /nosuch: query failed \(SQLSTATE 42P01, HTTP 500\).*query: select \* from no_such_table' ||
    t_fail "the log does not say which query failed"
expect 500 /note --get --data-urlencode "body=hello"
t_log_has 'sql /note: query failed \(SQLSTATE 25006' ||
    t_fail "a write on a read_only route: not refused by the database"
[ "$(t_psql 'select count(*) from notes')" = 0 ] || t_fail "read_only wrote"
expect 200 /note-rw --get --data-urlencode "body=hello"
[ "$(jq -c . "$T/body")" = '[{"id":1}]' ] || t_fail "note-rw: $(cat "$T/body")"
[ "$(t_psql 'select body from notes')" = hello ] || t_fail "note-rw: not written"
t_ok "400 for a missing or bad value, 500 for an SQL error (generic" \
    "message), read_only refuses writes, read_only false writes"

# ---- streaming in bounded memory ---------------------------------------------
hwm() {
    awk '/^VmHWM:/ { print $2 }' "/proc/$SERVER_PID/status"
}
expect 200 '/big?n=1000'
before=$(hwm)
t0=$(t_now_ms)
code=$(curl -s -o "$T/big.csv" -w '%{http_code}' --max-time 120 "$NGINX_URL/big")
t1=$(t_now_ms)
after=$(hwm)
[ "$code" = 200 ] || t_fail "/big: $code"
[ "$(wc -l < "$T/big.csv")" -eq 1000001 ] ||
    t_fail "/big: $(wc -l < "$T/big.csv") lines"
[ "$(sed -n '1000001p' "$T/big.csv")" = "1000000,$(printf 1000000 | md5sum | cut -c1-32)"$'\r' ] ||
    t_fail "/big: last line $(tail -n 1 "$T/big.csv")"
size=$(stat -c %s "$T/big.csv")
grow=$(( after - before ))
echo "# 1M rows, $(( size / 1048576 )) MiB of CSV in $(( t1 - t0 )) ms;" \
    "server VmHWM $before -> $after KiB"
# The whole result held at once would be over 40 MiB.  Under ASan the
# allocator's quarantine keeps every freed row (libpq makes one result per
# row): scripts/sanitize sets SQL_NO_RSS=1.
if [ -z "${SQL_NO_RSS:-}" ]; then
    [ "$grow" -lt 8192 ] || t_fail "server peak RSS grew by $grow KiB"
fi
rm -f "$T/big.csv"
t_ok "1M rows ($(( size / 1048576 )) MiB CSV) stream; server peak RSS" \
    "grew by $grow KiB (bound 8192${SQL_NO_RSS:+, not checked: SQL_NO_RSS})"

# ---- cancellation in the database --------------------------------------------
# active_count QUERY_PATTERN: backends of fcgi-cancel running a query like
# the pattern.
active_count() {
    t_psql "select count(*) from pg_stat_activity where application_name =
        'fcgi-cancel' and state = 'active' and query like '$1'"
}
# pid_state PID: the state of that backend ("idle", "active", none).
pid_state() {
    t_psql "select state from pg_stat_activity where pid = $1"
}
backend_idle() {
    [ "$(pid_state "$1")" = idle ]
}
backend_active() {
    [ "$(pid_state "$1")" = active ]
}

# abandon ROUTE QUERY MS PATTERN: get the backend of the route's one
# connection, then send QUERY and leave after MS; check the backend was
# running it, went idle soon after the close, and serves the next request.
abandon() {
    local route=$1 query=$2 ms=$3 pid close idle_ms stop
    expect 200 "$route?$(printf '%s' "$query" | sed 's/=[^&]*/=0/')"
    pid=$(jq -r '.[0].pid' "$T/body")
    [ -n "$pid" ] || t_fail "$route: no pid"
    curl -s -o /dev/null --max-time "$(awk -v m="$ms" 'BEGIN { print m / 1000 }')" \
        "$NGINX_URL$route?$query" || true
    close=$(t_now_ms)
    t_wait_for 2000 backend_idle "$pid" ||
        t_fail "$route: backend $pid still $(pid_state "$pid") 2 s after" \
            "the client left"
    idle_ms=$(( $(t_now_ms) - close ))
    t_wait_for 2000 t_log_has "sql $route: query cancelled \\(client_gone\\)" ||
        t_fail "$route: no cancel logged"
    stop=$(grep -E "sql $route: query cancelled" "$T/server.log" | tail -n 1 |
        sed -n 's/.*stopped \([0-9.]*\) ms.*/\1/p')
    expect 200 "$route?$(printf '%s' "$query" | sed 's/=[^&]*/=0/')"
    [ "$(jq -r '.[0].pid' "$T/body")" = "$pid" ] ||
        t_fail "$route: a new backend after the cancel"
    echo "# $route: the database stopped ${stop} ms after the cancel;" \
        "backend idle in pg_stat_activity ${idle_ms} ms after the close"
    t_ok "$route abandoned at ${ms} ms: cancelled in the database (stopped" \
        "in ${stop} ms), backend $pid idle and reused"
}
abandon /sleep 's=60' 1000
abandon /burn 'n=100000' 1500
t_psql "select count(*) from pg_stat_activity where state = 'active'
    and query like '%generate_series%' and application_name = 'fcgi-cancel'" \
    > "$T/left"
[ "$(cat "$T/left")" = 0 ] || t_fail "a cross join still runs"

# PostgreSQL drops a cancel that reaches the backend before it has read
# the statement (seen under load: the statement sent just before the
# client's close lands): the server sends it again until the statement
# stops.  The backend is stopped (SIGSTOP), so the statement waits unread
# while the client leaves and the first cancel is delivered; continued, the
# backend drops that cancel, reads the statement, and a later one stops it.
expect 200 '/sleep?s=0'
pid=$(jq -r '.[0].pid' "$T/body")
# sigint_pending: SIGINT (bit 2) pending on the stopped backend.
sigint_pending() {
    local k v
    while read -r k v; do
        case $k in
        ShdPnd:|SigPnd:) [ $(( 0x$v & 2 )) = 0 ] || return 0 ;;
        esac
    done < "/proc/$pid/status"
    return 1
}
kill -STOP "$pid"
curl -s -o /dev/null --max-time 0.5 "$NGINX_URL/sleep?s=30" || true
pending=0
t_wait_for 5000 sigint_pending && pending=1
kill -CONT "$pid"
[ "$pending" = 1 ] || t_fail "no cancel reached the stopped backend $pid"
t_wait_for 3000 backend_idle "$pid" ||
    t_fail "a cancel that came before the statement was read: backend" \
        "$pid still $(pid_state "$pid") 3 s later"
t_wait_for 2000 t_log_has 'sql /sleep: query cancelled \(client_gone\) in the database: stopped [0-9.]* ms after the cancel \(SQLSTATE 57014\); cancel sent [0-9]+ times' ||
    t_fail "the resent cancel is not logged: $(grep 'sql /sleep' "$T/server.log" | tail -n 1)"
t_ok "a cancel dropped by PostgreSQL (it came before the statement was" \
    "read) is sent again: $(grep -o 'stopped [0-9.]* ms.*times' "$T/server.log" | tail -n 1)"

# Waiting for the pool's one connection, while another request holds it,
# stops when the waiting client leaves.
curl -s -o "$T/holder" --max-time 30 "$NGINX_URL/sleep?s=2" &
holder=$!
query_running() {
    [ "$(active_count '%pg_sleep%')" = 1 ]
}
t_wait_for 5000 query_running || t_fail "pg_sleep did not start"
gone0=$(t_log_count 'job cancelled reason=client_gone')
more_gone() {
    [ "$(t_log_count 'job cancelled reason=client_gone')" -gt "$gone0" ]
}
curl -s -o /dev/null --max-time 0.5 "$NGINX_URL/sleep?s=0" || true
t_wait_for 1000 more_gone || t_fail "a request waiting for the pool was" \
    "not cancelled"
back=$(grep 'job cancelled reason=client_gone' "$T/server.log" | tail -n 1 |
    sed -n 's/.*returned_after_ms=\([0-9]*\).*/\1/p')
[ "$back" -lt 100 ] || t_fail "the pool wait returned ${back} ms after" \
    "its cancel"
wait "$holder" || t_fail "the request holding the connection failed"
jq -e '.[0].pid > 0' "$T/holder" > /dev/null ||
    t_fail "holder: $(cat "$T/holder")"
t_ok "a request waiting for a pool connection is cancelled (returned" \
    "${back} ms after its cancel); the holder completes"

# Deadline: 504, and the statement is gone.
t0=$(t_now_ms)
expect 504 /short
t1=$(t_now_ms)
[ $(( t1 - t0 )) -lt 3000 ] || t_fail "/short took $(( t1 - t0 )) ms"
t_wait_for 2000 t_log_has 'sql /short: query cancelled \(deadline\)' ||
    t_fail "deadline: no cancel logged"
[ "$(active_count '%pg_sleep%')" = 0 ] ||
    t_fail "pg_sleep still runs after the deadline"
t_ok "deadline_ms: 504 after $(( t1 - t0 )) ms, the statement is gone"

# /status's sql section.
curl -s "$NGINX_URL/status" > "$T/status.json"
jq -e '.sql["/sleep"].cancelled >= 1 and .sql["/burn"].cancelled >= 1 and
    .sql["/short"].db_stop.samples == 1 and .sql["/sleep"].pool.size == 1 and
    .sql["/sleep"].pool.open == 1 and .sql["/sleep"].pool.connects == 1 and
    .sql["/big"].rows >= 1000000 and .sql["/items"].bad_request == 1' \
    "$T/status.json" > /dev/null || t_fail "status: $(jq -c .sql "$T/status.json")"
t_ok "/status shows each sql route's cancels, stop times and pool"

# The same in /metrics, which promtool accepts.
curl -s "$NGINX_URL/metrics" > "$T/metrics.txt"
promtool check metrics < "$T/metrics.txt" > "$T/promtool.out" 2>&1 ||
    t_fail "promtool: $(cat "$T/promtool.out")"
metric() {
    awk -v k="$1" '$1 == k { print $2 }' "$T/metrics.txt"
}
[ "$(metric 'fcgi_cancel_sql_queries_total{route="/items",outcome="bad_request"}')" = 1 ] &&
    [ "$(metric 'fcgi_cancel_sql_cancel_stops_total{route="/short"}')" = 1 ] &&
    [ "$(metric 'fcgi_cancel_sql_pool_connections{route="/sleep",state="open"}')" = 1 ] &&
    [ "$(metric 'fcgi_cancel_sql_pool_connects_total{route="/sleep"}')" = 1 ] ||
    t_fail "sql metrics: $(grep fcgi_cancel_sql "$T/metrics.txt")"
awk '$1 ~ /^fcgi_cancel_sql_queries_total\{route="\/sleep",outcome="cancelled"\}$/ { ok = $2 >= 1 } END { exit !ok }' \
    "$T/metrics.txt" || t_fail "no cancelled /sleep in /metrics"
t_ok "/metrics: the sql routes' statements, cancel stops and pools"

# ---- the pgquery example module --------------------------------------------------
expect 200 '/pgquery?s=0'
[ "$(jq -c . "$T/body")" = '{"rows":[["",null,"x"]]}' ] ||
    t_fail "pgquery: $(cat "$T/body")"
expect 400 /pgquery
curl -s -o /dev/null --max-time 1 "$NGINX_URL/pgquery?s=60" || true
close=$(t_now_ms)
pgquery_idle() {
    [ "$(t_psql "select count(*) from pg_stat_activity where
        application_name = 'pgquery' and state = 'active'")" = 0 ]
}
t_wait_for 2000 pgquery_idle || t_fail "pgquery: pg_sleep still runs"
t_wait_for 2000 t_log_has 'pgquery: query cancelled \(client_gone\): the database stopped it' ||
    t_fail "pgquery: no cancel logged"
t_ok "pgquery example: answers; abandoned, its query is cancelled in the" \
    "database ($(grep -o 'stopped it [0-9.]* ms' "$T/server.log" | tail -n 1))"

# ---- the database down ----------------------------------------------------------
t_stop_postgres || t_fail "PostgreSQL did not stop"
t0=$(t_now_ms)
expect 503 /items
t1=$(t_now_ms)
grep -qi '^retry-after: 5' "$T/headers" || t_fail "503 without Retry-After"
[ $(( t1 - t0 )) -lt 2000 ] || t_fail "503 after $(( t1 - t0 )) ms"
[ "$(jq -c . "$T/body")" = '{"error":"database unavailable","status":503}' ] ||
    t_fail "503: $(cat "$T/body")"
t_start_postgres
expect 200 /items
t_ok "database down: 503 with Retry-After in $(( t1 - t0 )) ms; back up: 200"

# No password anywhere, no conninfo or SQL in an answer.
if grep -rq "$PASSWORD" "$T"/*.log; then
    t_fail "the password is in a log: $(grep -rl "$PASSWORD" "$T"/*.log)"
fi
t_log_has "conninfo: [^;]*host=$PG_SOCKDIR" || t_fail "no conninfo logged"
t_ok "the password is in no log (the conninfo is, without it)"

# ---- SIGTERM with a query running -------------------------------------------------
curl -s -o /dev/null --max-time 30 "$NGINX_URL/sleep?s=60" &
t_track $!
t_wait_for 5000 query_running || t_fail "pg_sleep did not start"
t_stop_server TERM 5000 || t_fail "the server did not exit on SIGTERM"
t_log_has 'sql /sleep: query cancelled \(shutdown\) in the database' ||
    t_fail "shutdown: no cancel logged"
no_sleep() {
    [ "$(active_count '%pg_sleep%')" = 0 ]
}
t_wait_for 2000 no_sleep || t_fail "pg_sleep still runs after SIGTERM"
t_ok "SIGTERM: the running query is cancelled in the database"
