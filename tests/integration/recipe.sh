#!/bin/bash
# SPDX-License-Identifier: MIT
# The recipe's three routes behind a real nginx: a client that waits gets
# exactly {"result": "Work completed for <task_param>"} as JSON, with the
# recipe's defaults; bad parameters get 400 JSON, unknown paths 404 JSON;
# /ping answers pong and /status carries the documented fields.
set -euo pipefail
. "$top_srcdir/tests/lib.sh"
t_setup
t_start_server --workers 8
t_start_nginx

# get PATH: fetch through nginx into $T/body, headers in $T/head; print
# the status code.
get() {
    curl -s -D "$T/head" -o "$T/body" -w '%{http_code}' "$NGINX_URL$1"
}

# The three routes with the recipe's defaults (5 steps of 1 s), at once.
declare -A want=(
    [/cancel_tg]=default_for_cancel_tg
    [/cancel_tg_dependency]=default_for_cancel_tg_dependency
    [/cancel_event]=default_for_cancel_tg_dependency
)
pids=()
for r in "${!want[@]}"; do
    curl -s -D "$T/head$(basename "$r")" -o "$T/body$(basename "$r")" \
        -w '%{http_code} %{time_total}' "$NGINX_URL$r" \
        > "$T/code$(basename "$r")" &
    pids+=($!)
done
wait "${pids[@]}"
for r in "${!want[@]}"; do
    b=$(basename "$r")
    read -r code secs < "$T/code$b" || true
    [ "$code" = 200 ] || t_fail "$r: status $code"
    grep -qi '^content-type: application/json' "$T/head$b" ||
        t_fail "$r: not application/json"
    got=$(jq -c . "$T/body$b")
    [ "$got" = "{\"result\":\"Work completed for ${want[$r]}\"}" ] ||
        t_fail "$r: body $got"
    # 5 steps of 1000 ms: at least 5 s.
    awk -v s="$secs" 'BEGIN { exit !(s >= 5.0) }' ||
        t_fail "$r: answered after $secs s, expected >= 5 s"
    t_ok "$r waits 5 x 1 s and answers $got"
done
[ "$(t_log_count 'Working\.\.\. [0-4]$')" -eq 15 ] ||
    t_fail "expected 15 'Working... i' lines"
t_ok "each job logged Working... 0..4"

# task_param, steps, step_ms, mode=cpu.
[ "$(get '/cancel_event?task_param=a%20b%2Fc&steps=2&step_ms=10&mode=cpu')" = 200 ] ||
    t_fail "cancel_event with parameters"
[ "$(jq -r .result "$T/body")" = "Work completed for a b/c" ] ||
    t_fail "task_param not decoded: $(cat "$T/body")"
t_ok "task_param is decoded, mode=cpu completes"

# Any task_param gives valid UTF-8 JSON, as FastAPI answers: ill-formed
# bytes become U+FFFD, a NUL is \u0000, the last of repeated ones wins.
# The bytes are compared exactly, and iconv checks they are UTF-8.
for q in '%FF%FE:\xef\xbf\xbd\xef\xbf\xbd' 'a%00b:a\\u0000b' \
    'x&task_param=y:y' '%E2%82%AC%E2%82:\xe2\x82\xac\xef\xbf\xbd'; do
    [ "$(get "/cancel_event?steps=0&task_param=${q%%:*}")" = 200 ] ||
        t_fail "task_param=${q%%:*}: status"
    printf "{\"result\":\"Work completed for ${q#*:}\"}" > "$T/want"
    cmp -s "$T/body" "$T/want" ||
        t_fail "task_param=${q%%:*}: $(od -c "$T/body" | head -3)"
    iconv -f UTF-8 -t UTF-8 "$T/body" > /dev/null 2>&1 ||
        t_fail "task_param=${q%%:*}: the body is not UTF-8"
    jq -e .result "$T/body" > /dev/null ||
        t_fail "task_param=${q%%:*}: the body is not JSON"
done
t_ok "task_param %FF%FE, a%00b, repeated: valid UTF-8 JSON as FastAPI answers"

# Bad parameters: 400 with a JSON error body naming the parameter.
for q in 'steps=abc:steps' 'steps=1001:steps' 'steps=-1:steps' \
    'step_ms=600001:step_ms' 'step_ms=1x:step_ms' 'mode=fast:mode'; do
    code=$(get "/cancel_tg?${q%%:*}")
    [ "$code" = 400 ] || t_fail "?${q%%:*}: status $code, expected 400"
    jq -e --arg k "${q##*:}" '.status == 400 and (.error | contains($k))' \
        "$T/body" > /dev/null || t_fail "?${q%%:*}: body $(cat "$T/body")"
done
t_ok "bad parameters get 400 with a JSON error"

code=$(get /no/such/path)
[ "$code" = 404 ] && jq -e '.status == 404' "$T/body" > /dev/null ||
    t_fail "unknown path: $code $(cat "$T/body")"
code=$(curl -s -o "$T/body" -w '%{http_code}' -X POST "$NGINX_URL/cancel_tg")
[ "$code" = 405 ] || t_fail "POST /cancel_tg: $code, expected 405"
t_ok "unknown path 404, wrong method 405, JSON bodies"

[ "$(get /ping)" = 200 ] && [ "$(cat "$T/body")" = pong ] ||
    t_fail "/ping: $(cat "$T/body")"
get /status > /dev/null
jq -e '(.requests | has("accepted") and has("completed") and has("cancelled")
        and has("failed")) and
       (.cancelled_by_reason | has("client_gone") and has("aborted") and
        has("write_error") and has("deadline") and has("shutdown")) and
       (.in_flight | type == "number") and (.workers.total == 8) and
       (.workers.busy | type == "number") and (.uptime_s | type == "number")' \
    "$T/body" > /dev/null || t_fail "/status lacks fields: $(cat "$T/body")"
[ "$(jq .requests.failed "$T/body")" = 0 ] || t_fail "failed requests"
t_ok "/ping and /status"

# The access log: one line per request, with method, path and status.
t_wait_for 2000 t_log_has 'access req=[0-9]+ GET "/cancel_tg\?steps=abc" 400 ' ||
    t_fail "no access line for the 400"
t_ok "access log lines"
