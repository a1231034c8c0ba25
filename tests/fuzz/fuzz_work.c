/* SPDX-License-Identifier: MIT */
/*
 * fuzz_work.c - libFuzzer target for the bodies the work routes answer:
 * for any query string, the work handler's answer, in each of its three
 * styles, must parse with a strict UTF-8 JSON parser (json-c's tokener
 * with JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8), as FastAPI's
 * always does: {"result": "Work completed for <task_param>"} with the
 * whole task_param (NULs as \u0000, ill-formed bytes as U+FFFD, the last
 * of repeated ones), or a 400 {"error", "status"}.  Also checked on the
 * way: utf8_sanitize() leaves valid UTF-8 as it is and always gives
 * valid UTF-8.
 *
 * Input: the query string (up to the first NUL); "&steps=0" is appended
 * so that the job does no step (the last of repeated names wins).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "handlers/work.h"
#include "memstream.h"
#include "request.h"
#include "utf8.h"

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz_work: %s:%d: check failed: %s\n", \
        __FILE__, __LINE__, #cond); abort(); } } while (0)

#define PREFIX      "Work completed for "

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* utf8_sanitize() of len bytes at s: valid, and s itself if s was. */
static void
check_sanitize(const char *s, size_t len)
{
    struct buf b = { 0 };

    CHECK(utf8_sanitize(&b, s, len) == 0);
    CHECK(utf8_valid(b.data, b.len));
    if (utf8_valid(s, len))
        CHECK(b.len == len && memcmp(b.data, s, len) == 0);
    else
        CHECK(memmem(b.data, b.len, "\xef\xbf\xbd", 3) != NULL);
    buf_free(&b);
}

/* Run the work handler in style on envp; check its body. */
static void
check_body(enum work_style style, char **envp)
{
    struct work_opts    *o = work_opts_new(style, "default");
    fc_request          *req = request_new(2, envp);
    json_object         *j, *v;
    char                *body;
    size_t               tlen;
    int                  status, result;

    CHECK(o != NULL && req != NULL);
    body = memstream_run(work_handler, o, envp, &status, &result);
    CHECK(result == FC_OK);
    CHECK((j = memstream_json_strict(body)) != NULL);
    if (json_object_object_get_ex(j, "result", &v)) {
        /* The whole task_param, NULs included, after the prefix. */
        CHECK(status == 200);
        if (fc_request_query_len(req, "task_param", &tlen) == NULL)
            tlen = strlen("default");
        CHECK(json_object_is_type(v, json_type_string));
        CHECK((size_t)json_object_get_string_len(v) ==
            strlen(PREFIX) + tlen);
        CHECK(memcmp(json_object_get_string(v), PREFIX,
            strlen(PREFIX)) == 0);
    } else {
        CHECK(status == 400);
        CHECK(json_object_object_get_ex(j, "error", &v));
    }
    json_object_put(j);
    free(body);
    request_free(req);
    work_opts_free(o);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char   head[] = "QUERY_STRING=", tail[] = "&steps=0";
    char               *env, *envp[2];
    size_t              qlen = strnlen((const char *)data, size);

    check_sanitize((const char *)data, size);
    env = malloc(sizeof head + qlen + sizeof tail);
    CHECK(env != NULL);
    memcpy(env, head, sizeof head - 1);
    memcpy(env + sizeof head - 1, data, qlen);
    memcpy(env + sizeof head - 1 + qlen, tail, sizeof tail);
    envp[0] = env;
    envp[1] = NULL;
    check_body(WORK_POLL, envp);
    check_body(WORK_CALLBACK, envp);
    check_body(WORK_WAIT, envp);
    free(env);
    return 0;
}
