# SPDX-License-Identifier: MIT
#
# bench/t9-sql.sh: table 9, PostgreSQL queries (issue 12): fcgi-cancel's
# sql handler beside PHP-FPM with pdo_pgsql, through the same nginx, on a
# throwaway PostgreSQL 15 cluster of the table's own (tests/lib.sh's
# t_start_postgres): (a) the CPU a backend burns after the client of a
# CPU-bound query leaves; (b) client close -> backend idle in
# pg_stat_activity over many abandons (bench/pgwatch.c polls it on one
# connection); (c) throughput of a small indexed query.
# Sourced by bench/run (defines table9); run directly, it runs
# bench/run t9.

[ "${BASH_SOURCE[0]}" != "$0" ] || exec "$(dirname "$0")/run" t9 "$@"

if [ "${QUICK-}" = 1 ]; then
    SQL_ABANDONS=${SQL_ABANDONS:-20}
fi
SQL_ABANDONS=${SQL_ABANDONS:-100}     # (b): abandons per query kind
SQL_POOL=${SQL_POOL:-8}               # (c): fcgi-cancel's pool_size
SQL_ITEMS=100000                      # (c): rows of the items table
BURN_S=5                              # (a): the query's length, seconds
WASTE_MS=6000                         # (a): CPU window after the close
                                      # (the query's 3.5 s left, + 2.5 s)
T9_CLOSE_MS=100                       # (b): close after sending, ms
T9_GAP_MS=50                          # (b): then wait, ms

# The CPU-bound query of (a) and (b): $1 million rows of a cross join
# counted, and the backend's pid (to find its /proc entry).
T9_BURN='select pg_backend_pid() as pid, (select count(*) from generate_series(1, $1::int * 1000) a, generate_series(1, 1000) b) as n'
T9_ITEM='select id, name, price from items where id = $1'

# table9: measure table 9 into results/t9.raw, write results/t9.md.
table9() {
    local maxconn=$(( 2 * WORKERS + SQL_POOL + 40 ))
    table_begin 9
    say "table 9: PostgreSQL queries, fcgi-cancel's sql handler and PHP-FPM + pdo_pgsql"
    need psql
    pkg-config --exists libpq || t_fail "libpq-dev is not installed (scripts/deps)"
    "$PHP_FPM" -m 2>/dev/null | grep -x pdo_pgsql > /dev/null ||
        t_fail "pdo_pgsql is not installed (php8.2-pgsql, scripts/deps)"
    # shellcheck disable=SC2046  # pkg-config's flags are words
    bench_cc pgwatch $(pkg-config --cflags --libs libpq)
    # Every PHP-FPM child keeps its own connection (two pools of WORKERS in
    # (c)), fcgi-cancel's pools theirs, the pollers theirs.
    t_start_postgres "max_connections=$maxconn"
    echo "postgres -D \$T/pg/data -k \$T/pg/run -c listen_addresses= -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=$maxconn   (tests/lib.sh t_start_postgres)" \
        >> "$T/commands"
    t_psql "create table items (id int primary key, name text, price numeric(10, 2))"
    t_psql "insert into items select g, 'item ' || g, (g % 1000) / 10.0
        from generate_series(1, $SQL_ITEMS) g"
    t_psql "analyze items"
    t9_calibrate
    t9_files
    start_fc "$T/fc-sql.json" "$T/t9-fc.log" --workers "$WORKERS"

    start_php 1
    t9_waste
    t_stop "$PHP_PID"

    t9_idle sleep "/sleep?s=60"
    t9_idle cpu "/burn?n=$BURN_M"

    start_php "$WORKERS"
    t9_throughput
    t_stop "$FC_PID" "$PHP_PID"
    t_stop_postgres || t_fail "PostgreSQL did not stop"
    table_end 9
}

# t9_calibrate: BURN_M, the size of the CPU-bound query (millions of rows)
# that runs for about BURN_S seconds on this machine now (BURN_MILLIONS
# sets it).
t9_calibrate() {
    local t0 t1
    if [ -n "${BURN_MILLIONS-}" ]; then
        BURN_M=$BURN_MILLIONS
    else
        t0=$(t_now_ms)
        t_psql "${T9_BURN//\$1/20}" > /dev/null
        t1=$(t_now_ms)
        BURN_M=$(awk -v ms="$(( t1 - t0 ))" -v s="$BURN_S" 'BEGIN {
            m = int(20 * s * 1000 / ms); print (m < 20 ? 20 : (m > 2000 ? 2000 : m)) }')
    fi
    echo "burn millions=$BURN_M" >> "$RAW"
    say "the CPU-bound query: $BURN_M million rows (~${BURN_S} s)"
}

# t9_files: fcgi-cancel's configuration ($T/fc-sql.json) and the PHP
# scripts ($T/www), the same queries on both sides.
t9_files() {
    cat > "$T/fc-sql.json" <<EOF
{
    "log_level": "info",
    "access_log": "off",
    "grace_ms": 0,
    "routes": [
        { "path": "/burn", "handler": "sql", "conninfo": "$PG_CONNINFO",
          "pool_size": 1, "query": "$T9_BURN",
          "params": [{ "arg": "n", "default": 0 }] },
        { "path": "/sleep", "handler": "sql", "conninfo": "$PG_CONNINFO",
          "pool_size": 1,
          "query": "select pg_backend_pid() as pid, pg_sleep(\$1::float8) is null as slept",
          "params": [{ "arg": "s", "default": 0 }] },
        { "path": "/item", "handler": "sql", "conninfo": "$PG_CONNINFO",
          "pool_size": $SQL_POOL, "query": "$T9_ITEM", "params": ["id"] },
        { "path": "/status", "handler": "status" },
        { "path": "/ping", "handler": "ping" }
    ]
}
EOF
    # One persistent connection per PHP-FPM child (PHP's best: no connect
    # per request).
    cat > "$T/www/db.php" <<EOF
<?php
function db() {
    return new PDO('pgsql:host=$PG_SOCKDIR;dbname=postgres;user=postgres;application_name=php-fpm',
        null, null, [PDO::ATTR_PERSISTENT => true,
                     PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
}
function answer(\$st) {
    header('Content-Type: application/json');
    echo json_encode(\$st->fetchAll(PDO::FETCH_ASSOC));
}
EOF
    cat > "$T/www/burn.php" <<EOF
<?php
require __DIR__ . '/db.php';
\$st = db()->prepare('${T9_BURN//\$1::int/cast(? as int)}');
\$st->execute([\$_GET['n'] ?? '0']);
answer(\$st);
EOF
    # pdo_pgsql's default: a named server-side statement per request
    # (prepare, execute, deallocate).
    cat > "$T/www/item.php" <<EOF
<?php
require __DIR__ . '/db.php';
\$st = db()->prepare('${T9_ITEM//\$1/?}');
\$st->execute([\$_GET['id'] ?? '0']);
answer(\$st);
EOF
    # The same with PDO::PGSQL_ATTR_DISABLE_PREPARES: one round trip, the
    # value still bound (PQexecParams), as fcgi-cancel does.
    cat > "$T/www/item1.php" <<EOF
<?php
require __DIR__ . '/db.php';
\$st = db()->prepare('${T9_ITEM//\$1/?}',
    [PDO::PGSQL_ATTR_DISABLE_PREPARES => true]);
\$st->execute([\$_GET['id'] ?? '0']);
answer(\$st);
EOF
    cat > "$T/random-id.lua" <<EOF
-- wrk: each request asks for a random id of the items table (the URL
-- ends with "id=").
local n = 0
function setup(thread)
    n = n + 1
    thread:set("seed", n)
end
function init(args)
    math.randomseed(os.time() * 100 + seed)
end
function request()
    return wrk.format(nil, wrk.path .. math.random(1, $SQL_ITEMS))
end
EOF
}

# t9_pid PEER-MODE PATH: the backend pid a route's (or script's) next
# request will use: a request with a zero-sized query, which answers it.
t9_pid() {
    local pid
    pid=$(curl -s --max-time 60 "$(url "$1" "$2")" | jq -r '.[0].pid') || true
    case $pid in ''|*[!0-9]*) t_fail "$2: no backend pid (${pid:-no answer})" ;; esac
    echo "$pid"
}

# t9_state PID: the backend's state in pg_stat_activity ("gone" if none).
t9_state() {
    t_psql "select coalesce((select state from pg_stat_activity where pid = $1), 'gone')"
}

# t9_burning PID: true if that backend runs the cross join now.
t9_burning() {
    [ "$(t_psql "select count(*) from pg_stat_activity where pid = $1
        and state = 'active' and query like '%generate_series%'")" = 1 ]
}

# t9_not_active PID: true once the backend is no longer active.
t9_not_active() {
    [ "$(t9_state "$1")" != active ]
}

# t9_waste: (a), RUNS times for each peer: the CPU-bound query abandoned
# at 1.5 s; bench/hold waste reads its backend's CPU before the request,
# just before the close and for WASTE_MS after it.
t9_waste() {
    local n c peer port path pid out c0 c1 seen wpid state
    local -a cfg=(
        "fcgi-cancel|fc-off|/burn"
        "php-fpm|php-off|/burn.php"
    )
    say "(a) CPU-bound query ($BURN_M M rows) abandoned at 1.5 s, ${WASTE_MS} ms window"
    for ((n = 1; n <= RUNS; n++)); do
        for c in "${cfg[@]}"; do
            IFS='|' read -r peer port path <<< "$c"
            pid=$(t9_pid "$port" "$path?n=0")
            c0=$(cpu_now)
            "$HOLD" waste -b 500 -c 1500 -w "$WASTE_MS" 127.0.0.1 \
                "${PORT[$port]}" "$path?n=$BURN_M" "$pid" > "$T/t9-waste.out" &
            wpid=$!
            t_track "$wpid"
            # The backend found before is the one running the query.
            seen=0
            t_wait_for 3000 t9_burning "$pid" && seen=1
            wait "$wpid" || t_fail "bench/hold waste failed"
            c1=$(cpu_now)
            state=$(t9_state "$pid")
            out="$(cat "$T/t9-waste.out") seen=$seen state=${state// /_} other=$(other_pct "$c0" "$c1")"
            echo "waste $peer $out" >> "$RAW"
            say "$peer: backend $pid: $out"
            # The next run starts on an idle database.
            t_wait_for 60000 t9_not_active "$pid" ||
                t_fail "$peer: the query still runs 60 s after the window"
        done
    done
    echo "bench/hold waste -b 500 -c 1500 -w $WASTE_MS 127.0.0.1 NGINX_PORT '/burn?n=$BURN_M' BACKEND_PID   (and /burn.php)" \
        >> "$T/commands"
}

# t9_idle KIND PATH: (b), SQL_ABANDONS requests of fcgi-cancel's PATH
# closed by their client T9_CLOSE_MS after sending, T9_GAP_MS apart;
# bench/pgwatch polls fcgi-cancel's backends every 1 ms; per request into
# results/t9-idle-KIND.lat: index, client close -> the end of its query's
# "active" period (ms), the state after ("idle": back in the pool; "none":
# the backend is gone), 1 if the query started only after the close; or
# "index - noquery 0" if no query of it reached the database.
t9_idle() {
    local kind=$1 path=$2 wpid watch ab lat route s0 stops
    watch=$T/t9-pgwatch-$kind.out
    ab=$T/t9-abandon-$kind.out
    lat=$OUT/results/t9-idle-$kind.lat
    route=${path%%\?*}
    say "(b) $kind: $SQL_ABANDONS abandons of $path"
    t9_pid fc-off "$route" > /dev/null
    "$BIN/pgwatch" -i 1000 -t 600 "$PG_CONNINFO application_name=pgwatch" \
        fcgi-cancel > "$watch" &
    wpid=$!
    t_track "$wpid"
    watching() { [ -s "$watch" ]; }
    t_wait_for 5000 watching || t_fail "pgwatch did not start"
    s0=$(grep -c "sql $route: query cancelled" "$FC_LOG" || true)
    "$HOLD" abandon -c "$T9_CLOSE_MS" -g "$T9_GAP_MS" "$SQL_ABANDONS" 127.0.0.1 \
        "${PORT[fc-off]}" "$path" > "$ab"
    # A query that the cancel missed runs to its end (the CPU-bound one
    # ~BURN_S s): wait until pgwatch has seen every backend leave "active".
    quiet() {
        awk '$1 !~ /^polls=/ { s[$2] = $3 }
            END { for (p in s) if (s[p] == "active") exit 1 }' "$watch"
    }
    t_wait_for 60000 quiet || t_fail "$kind: a query still runs 60 s after the last abandon"
    t_stop "$wpid"
    # The "active" periods in the order they started (a backend's, up to
    # its next state), then each request's: the first period that started
    # after the previous request's close and before the next request was
    # sent (its close - T9_CLOSE_MS).  One pooled connection: one query at a
    # time.
    awk -v close_ms="$T9_CLOSE_MS" 'FNR == NR {
            if ($1 ~ /^polls=/) next
            st = $3; for (i = 4; i <= NF; i++) st = st " " $i
            if (st == "active") {
                if (!($2 in open_)) { open_[$2] = ++np; ps[np] = $1; pe[np] = ""; pa[np] = "running" }
            } else if ($2 in open_) {
                k = open_[$2]; pe[k] = $1; pa[k] = st; delete open_[$2] }
            next }
         { sub(/closed_at_ms=/, "", $2); n++; id[n] = $1; c[n] = $2 + 0 }
         END {
            p = 1
            for (i = 1; i <= n; i++) {
                lo = i > 1 ? c[i - 1] : 0
                hi = i < n ? c[i + 1] - close_ms : 1e300
                while (p <= np && ps[p] <= lo) p++
                if (p <= np && ps[p] < hi) {
                    printf "%s %s %s %d\n", id[i],
                        pe[p] == "" ? "-" : sprintf("%.3f", pe[p] - c[i]),
                        pa[p], (ps[p] > c[i])
                    p++
                } else
                    printf "%s - noquery 0\n", id[i]
            } }' "$watch" "$ab" > "$lat"
    stops=$(grep "sql $route: query cancelled" "$FC_LOG" | tail -n "+$(( s0 + 1 ))")
    printf 'idle %s n=%s queries=%s late=%s not_idle=%s p50=%s p99=%s max=%s stop_n=%s stop_p50=%s stop_p99=%s stop_missed=%s %s\n' \
        "$kind" "$SQL_ABANDONS" "$(awk '$3 != "noquery"' "$lat" | wc -l)" \
        "$(awk '$4 == 1' "$lat" | wc -l)" \
        "$(awk '$3 != "noquery" && $3 != "idle"' "$lat" | wc -l)" \
        "$(awk '$2 != "-" { print $2 }' "$lat" | pctl 50)" \
        "$(awk '$2 != "-" { print $2 }' "$lat" | pctl 99)" \
        "$(awk '$2 != "-" { print $2 }' "$lat" | pctl 100)" \
        "$(printf '%s\n' "$stops" | grep -c 'stopped [0-9.]* ms after')" \
        "$(printf '%s\n' "$stops" | sed -n 's/.*stopped \([0-9.]*\) ms after the cancel.*/\1/p' | pctl 50)" \
        "$(printf '%s\n' "$stops" | sed -n 's/.*stopped \([0-9.]*\) ms after the cancel.*/\1/p' | pctl 99)" \
        "$(printf '%s\n' "$stops" | grep -c 'did not stop' || true)" \
        "$(grep '^polls=' "$watch")" >> "$RAW"
    say "$(tail -n 1 "$RAW")"
    echo "bench/pgwatch -i 1000 '\$PG_CONNINFO application_name=pgwatch' fcgi-cancel & bench/hold abandon -c $T9_CLOSE_MS -g $T9_GAP_MS $SQL_ABANDONS 127.0.0.1 NGINX_PORT '$path'" \
        >> "$T/commands"
}

# t9_throughput: (c), the small indexed query at random ids through
# nginx, keep_conn off and keepalive, round robin.
t9_throughput() {
    local c u
    # Each must answer one row before it is measured.
    for c in "fc-off /item?id=" "fc-ka /item?id=" "php-off /item.php?id=" \
             "php-ka /item.php?id=" "php-off /item1.php?id=" "php-ka /item1.php?id="; do
        u=$(url "${c% *}" "${c#* }7")
        [ "$(curl -s --max-time 10 "$u" | jq -r '.[0].id')" = 7 ] ||
            t_fail "$u does not answer its row"
    done
    say "(c) small indexed query, $RUNS x ${DURATION}s per configuration"
    WRK_SCRIPT=$T/random-id.lua
    measure_round_robin \
        "fc-item-off|$(url fc-off "/item?id=")|$FC_PID" \
        "fc-item-ka|$(url fc-ka "/item?id=")|$FC_PID" \
        "php-item-off|$(url php-off "/item.php?id=")|$PHP_PID" \
        "php-item-ka|$(url php-ka "/item.php?id=")|$PHP_PID" \
        "php1-item-off|$(url php-off "/item1.php?id=")|$PHP_PID" \
        "php1-item-ka|$(url php-ka "/item1.php?id=")|$PHP_PID"
    WRK_SCRIPT=""
    echo "$WRK_CMD with -s random-id.lua, URL ending in ?id=" >> "$T/commands"
}

# t9_waste_col PEER FIELD: the median over the runs of a key=value field
# of PEER's "waste" lines.
t9_waste_col() {
    awk -v p="$1" -v k="$2=" '$1 == "waste" && $2 == p {
        for (i = 3; i <= NF; i++) if (index($i, k) == 1) print substr($i, length(k) + 1) }' \
        "$RAW" | median
}

# t9_waste_list PEER FIELD: the values of that field, one per run.
t9_waste_list() {
    awk -v p="$1" -v k="$2=" '$1 == "waste" && $2 == p {
        for (i = 3; i <= NF; i++) if (index($i, k) == 1) {
            printf "%s%s", s, substr($i, length(k) + 1); s = " / " } }
        END { print "" }' "$RAW"
}

# t9_idle_col KIND FIELD: a key=value field of the "idle KIND" line.
t9_idle_col() {
    awk -v p="$1" -v k="$2=" '$1 == "idle" && $2 == p {
        for (i = 3; i <= NF; i++) if (index($i, k) == 1) print substr($i, length(k) + 1) }' \
        "$RAW" | tail -n 1
}

# t9_row NAME LABEL: a row of (c).
t9_row() {
    local name=$1 mode=${1##*-} rps best
    rps=$(stat_of "$name" 2)
    best=$(printf '%s\n%s\n' "$(stat_of "php-item-$mode" 2)" \
        "$(stat_of "php1-item-$mode" 2)" | sort -g | tail -n 1)
    printf '| %s | %s | **%s** | %s | %s | %s | %s / %s / %s | %s | %s | %s |\n' \
        "$2" "$mode" "$rps" "$(stat_of "$name" list2)" \
        "$(stat_of "$name" 3)" "$(stat_of "$name" 4)" \
        "$(stat_of "$name" sum5)" "$(stat_of "$name" sum6)" \
        "$(stat_of "$name" sum7)" "$(ratio "$rps" "$best")" \
        "$(stat_of "$name" 10)" "$(stat_of "$name" max9)"
}

# t9_best_php MODE: PHP-FPM's better median req/s of its two variants.
t9_best_php() {
    printf '%s\n%s\n' "$(stat_of "php-item-$1" 2)" "$(stat_of "php1-item-$1" 2)" |
        sort -g | tail -n 1
}

# write_table9: print table 9's section (Markdown) from $RAW.
write_table9() {
    local p fc_after php_after k m r_off r_ka burn
    burn=$(awk '$1 == "burn" { sub(/millions=/, "", $2); print $2 }' "$RAW" | tail -n 1)
    section_head "9. PostgreSQL queries: the sql handler beside PHP-FPM + pdo_pgsql"
    cat <<EOF
A throwaway PostgreSQL 15 cluster (unix socket, \`fsync=off\`), the same
nginx and the same queries on both sides: fcgi-cancel's \`sql\` handler
(libpq, a pool per route) and PHP-FPM 8.2 with pdo_pgsql, one persistent
connection per child (\`PDO::ATTR_PERSISTENT\`: PHP's best, no connect per
request).

**(a) CPU the database burns after the client leaves.**  A CPU-bound query
(\`count(*)\` over $burn million rows of a cross join of
\`generate_series\`, sized at the start of the table to run ~${BURN_S} s
here), its client closes at 1.5 s; the CPU of the backend that runs it
(the pool's one connection, found by the \`pg_backend_pid()\` of a
zero-sized request before, and seen in \`pg_stat_activity\` running the
query, "seen running") in the ${WASTE_MS} ms after the close: its utime + stime, read with
ns precision as \`sum_exec_runtime\` from \`/proc/PID/schedstat\` (the
ticks of \`/proc/PID/stat\` are 10 ms), minus its idle rate over 500 ms
before the request.  "State after": the backend's state in
\`pg_stat_activity\` at the end of the window.  Medians of $RUNS runs.

| peer | DB CPU after the close, ms (median) | runs | DB CPU before the close, ms | seen running the query | state after | other load, max % of a CPU |
|---|---:|---|---:|---|---|---:|
EOF
    for p in fcgi-cancel php-fpm; do
        printf '| %s | **%s** | %s | %s | %s | %s | %s |\n' "$p" \
            "$(t9_waste_col "$p" after_ms)" "$(t9_waste_list "$p" after_ms)" \
            "$(t9_waste_col "$p" during_ms)" \
            "$(t9_waste_list "$p" seen | sed 's/1/yes/g; s/0/no/g')" \
            "$(t9_waste_list "$p" state | sed 's/_/ /g')" \
            "$(t9_waste_list "$p" other | tr '/' '\n' | sort -g | tail -n 1 | tr -d ' ')"
    done
    fc_after=$(t9_waste_col fcgi-cancel after_ms)
    php_after=$(t9_waste_col php-fpm after_ms)
    cat <<EOF

**(b) Client close → backend idle** in \`pg_stat_activity\`, fcgi-cancel:
$SQL_ABANDONS requests one after another, each closed by its client ${T9_CLOSE_MS} ms
after it was sent (then ${T9_GAP_MS} ms apart), on a route with one pooled
connection; \`bench/pgwatch\` polls the state of fcgi-cancel's backends on
ONE kept libpq connection, one poll started every 1 ms (a prepared
statement; the period it kept and its mean and worst poll below).  Each
request is matched with the "active" period of its query (the first to
start after the previous close and before the next request), and the
figure is its client's close → the end of that period: the backend idle
again, or, for a query the cancel missed, gone or done (\`bench/hold
abandon\` and \`pgwatch\` print CLOCK_REALTIME; pgwatch stamps a change
after the poll that saw it, so a figure is at most one period + one poll
late).  "Database stop": the server's own figure, cancel request sent →
the "canceling statement" error read (its log lines), and how many
cancels the database did not act on within 5 s (the server then drops the
connection).

| query | abandons | reached the database | close → idle p50, ms | p99, ms | max, ms | query started after the close / not back to idle | database stop p50 / p99, ms; not stopped | pgwatch: polls, period, mean and worst poll (ms) |
|---|---:|---:|---:|---:|---:|---|---|---|
EOF
    for k in sleep cpu; do
        case $k in
        sleep) m="\`pg_sleep(60)\`" ;;
        cpu) m="the CPU-bound query ($burn M rows)" ;;
        esac
        printf '| %s | %s | %s | **%s** | **%s** | %s | %s / %s | %s / %s; %s | %s, one every %s; a poll %s, worst %s |\n' "$m" \
            "$(t9_idle_col "$k" n)" "$(t9_idle_col "$k" queries)" \
            "$(t9_idle_col "$k" p50)" "$(t9_idle_col "$k" p99)" \
            "$(t9_idle_col "$k" max)" "$(t9_idle_col "$k" late)" \
            "$(t9_idle_col "$k" not_idle)" "$(t9_idle_col "$k" stop_p50)" \
            "$(t9_idle_col "$k" stop_p99)" "$(t9_idle_col "$k" stop_missed)" \
            "$(t9_idle_col "$k" polls)" "$(t9_idle_col "$k" period_ms)" \
            "$(t9_idle_col "$k" mean_poll_ms)" "$(t9_idle_col "$k" max_poll_ms)"
    done
    cat <<EOF

**(c) A small indexed query** (\`$T9_ITEM\`, $SQL_ITEMS rows, primary
key; a random id per request from wrk's \`random-id.lua\`) through nginx:
fcgi-cancel with $WORKERS workers and \`pool_size\` $SQL_POOL; PHP-FPM pm
static with $WORKERS children per pool (a connection each), the script
written the usual way (\`prepare\` + \`execute\` + \`fetchAll\` +
\`json_encode\`): pdo_pgsql's default (a named server-side statement per
request: prepare, execute, deallocate) and with
\`PDO::PGSQL_ATTR_DISABLE_PREPARES\` (one round trip, the value still
bound, as the sql handler does).  Medians of $RUNS runs, round robin.
"÷ PHP-FPM": over the better of PHP-FPM's two, same mode.

| peer | nginx → peer | req/s (median) | runs | p50 ms | p99 ms | errors / timeouts / non-2xx (all runs) | ÷ PHP-FPM's best, same mode | peer CPU per request, µs (PostgreSQL's not included) | other load, max % of a CPU |
|---|---|---:|---|---:|---:|---|---:|---:|---:|
EOF
    t9_row fc-item-off "fcgi-cancel \`sql\`"
    t9_row fc-item-ka "fcgi-cancel \`sql\`"
    t9_row php-item-off "PHP-FPM + pdo_pgsql, default prepares"
    t9_row php-item-ka "PHP-FPM + pdo_pgsql, default prepares"
    t9_row php1-item-off "PHP-FPM + pdo_pgsql, DISABLE_PREPARES"
    t9_row php1-item-ka "PHP-FPM + pdo_pgsql, DISABLE_PREPARES"
    r_off=$(ratio "$(stat_of fc-item-off 2)" "$(t9_best_php off)")
    r_ka=$(ratio "$(stat_of fc-item-ka 2)" "$(t9_best_php ka)")
    cat <<EOF

| target (issue 12) | figure | verdict |
|---|---:|---|
| fcgi-cancel: < 10 ms of database CPU per abandoned query | $fc_after ms (PHP-FPM: $php_after ms) | $(verdict "$fc_after" "<" 10) |
| close → backend idle p99 < 10 ms, \`pg_sleep\` | $(t9_idle_col sleep p99) ms | $(verdict "$(t9_idle_col sleep p99)" "<" 10) |
| close → backend idle p99 < 10 ms, CPU-bound query | $(t9_idle_col cpu p99) ms | $(verdict "$(t9_idle_col cpu p99)" "<" 10) |
| small query ≥ 1.5 × PHP-FPM, keep_conn off | $r_off | $(verdict "$r_off" ">=" 1.5) |
| small query ≥ 1.5 × PHP-FPM, keepalive | $r_ka | $(verdict "$r_ka" ">=" 1.5) |

Commands (\$T is the scratch directory; fcgi-cancel's configuration is
\`fc-sql.json\`, the PHP scripts \`burn.php\`, \`item.php\`,
\`item1.php\` over \`db.php\`, all written by \`bench/t9-sql.sh\`):

$(commands_block 9)
EOF
}
