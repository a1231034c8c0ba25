/* SPDX-License-Identifier: MIT */
/*
 * test_request.c - unit tests of what surrounds a handler: the decoding of
 * query strings and the request accessors (request.c), the parsing of the
 * demo job's arguments (handlers/work.c), the routing table (router.c), the
 * HTTP reason phrases, the escaping of client strings for the logs
 * (log.c), the response writer driven through an in-memory FCGX_Stream (the
 * CGI header block, the JSON bodies, and a failed write turning into
 * cancel(FC_WRITE_ERROR)), and the counters and the /status document
 * (status.c).  No threads and no sockets: everything here is synchronous.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <json-c/json.h>

#include "fcgi_cancel.h"
#include "handlers/work.h"
#include "log.h"
#include "memstream.h"
#include "request.h"
#include "router.h"
#include "status.h"
#include "token.h"
#include "unit.h"

#define ONE_MB      (1024 * 1024)

/* ---- query_parse ---------------------------------------------------- */

/* Parse qs, asserting success; return the number of args. */
static size_t
parse_ok(const char *qs, struct query_arg **args)
{
    size_t n = 12345;

    CU_ASSERT_EQUAL(query_parse(qs, args, &n), 0);
    return n;
}

/* Return the value of the first arg called name in args, or NULL. */
static const char *
arg_value(const struct query_arg *args, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(args[i].name, name) == 0)
            return args[i].value;
    }
    return NULL;
}

/* An empty string and NULL give no args. */
static void
test_query_empty(void)
{
    struct query_arg *args = (struct query_arg *)&args;    /* not NULL */

    CU_ASSERT_EQUAL(parse_ok("", &args), 0);
    CU_ASSERT_PTR_NULL(args);
    query_free(args, 0);
    args = (struct query_arg *)&args;
    CU_ASSERT_EQUAL(parse_ok(NULL, &args), 0);
    CU_ASSERT_PTR_NULL(args);
    query_free(args, 0);
    CU_ASSERT_EQUAL(parse_ok("&", &args), 0);
    query_free(args, 0);
}

/* Two pairs, in order. */
static void
test_query_pairs(void)
{
    struct query_arg *args;
    size_t            n = parse_ok("a=1&b=2", &args);

    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(args[0].name, "a");
    CU_ASSERT_STRING_EQUAL(args[0].value, "1");
    CU_ASSERT_STRING_EQUAL(args[1].name, "b");
    CU_ASSERT_STRING_EQUAL(args[1].value, "2");
    query_free(args, n);
}

/* '+' is a space and %XX a byte, in names and values, either case of hex. */
static void
test_query_decoding(void)
{
    struct query_arg *args;
    size_t            n;

    n = parse_ok("q=a+b&+=%20x+&%41=%41&h=%4a%4A%2b%2F%25", &args);
    CU_ASSERT_EQUAL_FATAL(n, 4);
    CU_ASSERT_STRING_EQUAL(args[0].value, "a b");
    CU_ASSERT_STRING_EQUAL(args[1].name, " ");
    CU_ASSERT_STRING_EQUAL(args[1].value, " x ");
    CU_ASSERT_STRING_EQUAL(args[2].name, "A");
    CU_ASSERT_STRING_EQUAL(args[2].value, "A");
    CU_ASSERT_STRING_EQUAL(args[3].value, "JJ+/%");
    CU_ASSERT_STRING_EQUAL(arg_value(args, n, "q"), "a b");
    CU_ASSERT_PTR_NULL(arg_value(args, n, "%41"));  /* decoded to "A" */
    query_free(args, n);

    n = parse_ok("task_param=%C3%A9t%C3%A9", &args);      /* UTF-8 bytes */
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(args[0].value, "\xc3\xa9t\xc3\xa9");
    query_free(args, n);
}

/* A malformed escape stays as it is. */
static void
test_query_malformed_escapes(void)
{
    static const struct {
        const char *qs;
        const char *value;
    } cases[] = {
        { "v=%4", "%4" }, { "v=%zz", "%zz" }, { "v=%", "%" },
        { "v=%4g", "%4g" }, { "v=%g4", "%g4" }, { "v=%%41", "%A" },
        { "v=a%", "a%" }, { "v=%%", "%%" }, { "v=%4%41", "%4A" },
        { "v=100%", "100%" },
    };
    struct query_arg *args;
    size_t            i, n;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        n = parse_ok(cases[i].qs, &args);
        CU_ASSERT_EQUAL(n, 1);
        if (n == 1 && strcmp(args[0].value, cases[i].value) != 0) {
            fprintf(stderr, "\n    %s -> \"%s\", expected \"%s\"",
                cases[i].qs, args[0].value, cases[i].value);
            CU_FAIL("malformed escape not kept as is");
        }
        query_free(args, n);
    }
    /* A malformed escape in a name. */
    n = parse_ok("%zz=1", &args);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(args[0].name, "%zz");
    query_free(args, n);
}

/* A key without '=' has an empty value; only the first '=' splits. */
static void
test_query_key_without_value(void)
{
    struct query_arg *args;
    size_t            n = parse_ok("flag&x=1&=v&y=&z==2", &args);

    CU_ASSERT_EQUAL_FATAL(n, 5);
    CU_ASSERT_STRING_EQUAL(args[0].name, "flag");
    CU_ASSERT_STRING_EQUAL(args[0].value, "");
    CU_ASSERT_STRING_EQUAL(args[1].value, "1");
    CU_ASSERT_STRING_EQUAL(args[2].name, "");
    CU_ASSERT_STRING_EQUAL(args[2].value, "v");
    CU_ASSERT_STRING_EQUAL(args[3].name, "y");
    CU_ASSERT_STRING_EQUAL(args[3].value, "");
    CU_ASSERT_STRING_EQUAL(args[4].name, "z");
    CU_ASSERT_STRING_EQUAL(args[4].value, "=2");
    query_free(args, n);
}

/* Empty pairs are skipped. */
static void
test_query_empty_pairs(void)
{
    struct query_arg *args;
    size_t            n = parse_ok("&&a=1&", &args);

    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(args[0].name, "a");
    CU_ASSERT_STRING_EQUAL(args[0].value, "1");
    query_free(args, n);

    n = parse_ok("&&&b=2&&&&c&&", &args);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_STRING_EQUAL(args[0].name, "b");
    CU_ASSERT_STRING_EQUAL(args[1].name, "c");
    query_free(args, n);
}

/* Many args: the array grows past its first allocation. */
static void
test_query_many(void)
{
    struct query_arg *args;
    char              qs[64 * 8], *p = qs;
    size_t            n, i;
    int               bad = 0;

    for (i = 0; i < 50; i++)
        p += sprintf(p, "k%zu=%zu&", i, i * 3);
    n = parse_ok(qs, &args);
    CU_ASSERT_EQUAL_FATAL(n, 50);
    for (i = 0; i < n; i++) {
        char name[32], value[32];

        snprintf(name, sizeof name, "k%zu", i);
        snprintf(value, sizeof value, "%zu", i * 3);
        if (strcmp(args[i].name, name) != 0 ||
            strcmp(args[i].value, value) != 0)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    query_free(args, n);
}

/* A 1 MB query string: one huge value, then a quarter million pairs. */
static void
test_query_one_megabyte(void)
{
    struct query_arg *args;
    char             *qs = malloc(ONE_MB + 64);
    size_t            n, i, len;
    int               bad = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(qs);
    /* big=xxxx...x%41&last=1 */
    memcpy(qs, "big=", 4);
    memset(qs + 4, 'x', ONE_MB);
    strcpy(qs + 4 + ONE_MB, "%41&last=1");
    n = parse_ok(qs, &args);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    len = strlen(args[0].value);
    CU_ASSERT_EQUAL(len, (size_t)ONE_MB + 1);
    CU_ASSERT(len == (size_t)ONE_MB + 1 && args[0].value[ONE_MB] == 'A' &&
        args[0].value[0] == 'x');
    CU_ASSERT_STRING_EQUAL(args[1].value, "1");
    query_free(args, n);

    /* "a=1&" repeated: 262144 args, the array doubling all the way. */
    for (i = 0; i < ONE_MB; i += 4)
        memcpy(qs + i, "a=1&", 4);
    qs[ONE_MB] = '\0';
    n = parse_ok(qs, &args);
    CU_ASSERT_EQUAL_FATAL(n, ONE_MB / 4);
    for (i = 0; i < n; i++) {
        if (strcmp(args[i].name, "a") != 0 || strcmp(args[i].value, "1") != 0)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    query_free(args, n);
    free(qs);
}

/* ---- request accessors ---------------------------------------------- */

/* fc_request_query(): first of duplicate keys wins; absent is NULL. */
static void
test_request_query_duplicates(void)
{
    char        *envp[] = {
        "REQUEST_METHOD=GET", "QUERY_STRING=a=1&b=x+y&a=2&steps=%33",
        "DOCUMENT_URI=/cancel_tg", NULL
    };
    fc_request  *req = request_new(42, envp);

    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    CU_ASSERT_STRING_EQUAL(fc_request_query(req, "a"), "1");
    CU_ASSERT_STRING_EQUAL(fc_request_query(req, "b"), "x y");
    CU_ASSERT_STRING_EQUAL(fc_request_query(req, "steps"), "3");
    CU_ASSERT_PTR_NULL(fc_request_query(req, "missing"));
    CU_ASSERT_PTR_NULL(fc_request_query(req, ""));
    CU_ASSERT_STRING_EQUAL(fc_request_query(req, "a"), "1");  /* again */
    CU_ASSERT_EQUAL(fc_request_id(req), 42);
    request_free(req);
}

/* Method, path (from each param that can carry it), params and body. */
static void
test_request_accessors(void)
{
    char        *e1[] = { "DOCUMENT_URI=/a/b", "REQUEST_URI=/x?y=1",
                          "REQUEST_METHOD=POST", "HTTP_X=1", NULL };
    char        *e2[] = { "SCRIPT_NAME=/s", "PATH_INFO=/p", NULL };
    char        *e3[] = { "REQUEST_URI=/r/t?q=1&z", "REQUEST_METHOD=", NULL };
    char        *e4[] = { "REQUEST_URI=noslash", NULL };
    char        *body;
    fc_request  *req;
    const char  *b;
    size_t       len = 99;

    req = request_new(1, e1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    CU_ASSERT_STRING_EQUAL(fc_request_path(req), "/a/b");
    CU_ASSERT_STRING_EQUAL(fc_request_method(req), "POST");
    CU_ASSERT_STRING_EQUAL(fc_request_param(req, "HTTP_X"), "1");
    CU_ASSERT_PTR_NULL(fc_request_param(req, "HTTP_Y"));
    b = fc_request_body(req, &len);
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_PTR_NOT_NULL(b);
    CU_ASSERT_PTR_NULL(fc_request_query(req, "y"));   /* no QUERY_STRING */
    body = strdup("hello");
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    request_set_body(req, body, 5);                   /* owned by req now */
    b = fc_request_body(req, &len);
    CU_ASSERT_EQUAL(len, 5);
    CU_ASSERT(memcmp(b, "hello", 5) == 0);
    request_free(req);

    req = request_new(2, e2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    CU_ASSERT_STRING_EQUAL(fc_request_path(req), "/s/p");
    CU_ASSERT_STRING_EQUAL(fc_request_method(req), "GET");
    request_free(req);

    req = request_new(3, e3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    CU_ASSERT_STRING_EQUAL(fc_request_path(req), "/r/t");
    CU_ASSERT_STRING_EQUAL(fc_request_method(req), "GET");   /* empty */
    request_free(req);

    req = request_new(4, e4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    CU_ASSERT_STRING_EQUAL(fc_request_path(req), "/");
    request_free(req);
    request_free(NULL);
}

/* ---- work_parse ----------------------------------------------------- */

/* Parse with the recipe's defaults; return work_parse()'s result. */
static int
work_try(const char *steps, const char *step_ms, const char *mode,
    struct work_job *job, const char **err)
{
    struct work_opts *o = work_opts_new(WORK_POLL, "t");
    int               rc;

    if (o == NULL)
        return -99;
    *err = NULL;
    rc = work_parse(o, steps, step_ms, mode, job, err);
    work_opts_free(o);
    return rc;
}

/* Nothing given: the recipe's 5 steps of 1000 ms, sleeping. */
static void
test_work_defaults(void)
{
    struct work_opts *o = work_opts_new(WORK_CALLBACK, "default_x");
    struct work_job   job;
    const char       *err = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(o->task_param, "default_x");
    CU_ASSERT_EQUAL(o->style, WORK_CALLBACK);
    CU_ASSERT_EQUAL(work_parse(o, NULL, NULL, NULL, &job, &err), 0);
    CU_ASSERT_EQUAL(job.steps, 5);
    CU_ASSERT_EQUAL(job.step_ms, 1000);
    CU_ASSERT_EQUAL(job.mode, WORK_SLEEP);
    CU_ASSERT_PTR_NULL(err);
    work_opts_free(o);
    work_opts_free(NULL);
    CU_ASSERT_STRING_EQUAL(work_style_name(WORK_POLL), "poll");
    CU_ASSERT_STRING_EQUAL(work_style_name(WORK_CALLBACK), "callback");
    CU_ASSERT_STRING_EQUAL(work_style_name(WORK_WAIT), "wait");
}

/* steps: 0 to 1000; anything else is an error that names steps. */
static void
test_work_steps(void)
{
    static const char *const bad[] = {
        "1001", "abc", "-1", "5x", "", " 5", "+5", "5 ", "0x10", "1e3",
        "99999999999999999999999"
    };
    struct work_job job;
    const char     *err;
    size_t          i;

    CU_ASSERT_EQUAL(work_try("0", NULL, NULL, &job, &err), 0);
    CU_ASSERT_EQUAL(job.steps, 0);
    CU_ASSERT_EQUAL(work_try("1000", NULL, NULL, &job, &err), 0);
    CU_ASSERT_EQUAL(job.steps, 1000);
    CU_ASSERT_EQUAL(work_try("7", NULL, NULL, &job, &err), 0);
    CU_ASSERT_EQUAL(job.steps, 7);
    CU_ASSERT_EQUAL(job.step_ms, 1000);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (work_try(bad[i], NULL, NULL, &job, &err) != -1 || err == NULL ||
            strstr(err, "steps") == NULL) {
            fprintf(stderr, "\n    steps=\"%s\" accepted", bad[i]);
            CU_FAIL("bad steps accepted");
        }
    }
}

/* step_ms: 0 to 600000. */
static void
test_work_step_ms(void)
{
    struct work_job job;
    const char     *err;

    CU_ASSERT_EQUAL(work_try(NULL, "600000", NULL, &job, &err), 0);
    CU_ASSERT_EQUAL(job.step_ms, 600000);
    CU_ASSERT_EQUAL(work_try(NULL, "0", NULL, &job, &err), 0);
    CU_ASSERT_EQUAL(job.step_ms, 0);
    CU_ASSERT_EQUAL(job.steps, 5);
    CU_ASSERT_EQUAL(work_try(NULL, "600001", NULL, &job, &err), -1);
    CU_ASSERT(err != NULL && strstr(err, "step_ms") != NULL);
    CU_ASSERT_EQUAL(work_try(NULL, "-5", NULL, &job, &err), -1);
    CU_ASSERT_EQUAL(work_try(NULL, "1.5", NULL, &job, &err), -1);
}

/* mode: sleep or cpu; anything else is an error that names mode. */
static void
test_work_mode(void)
{
    struct work_job job;
    const char     *err;

    CU_ASSERT_EQUAL(work_try(NULL, NULL, "sleep", &job, &err), 0);
    CU_ASSERT_EQUAL(job.mode, WORK_SLEEP);
    CU_ASSERT_EQUAL(work_try(NULL, NULL, "cpu", &job, &err), 0);
    CU_ASSERT_EQUAL(job.mode, WORK_CPU);
    CU_ASSERT_EQUAL(work_try(NULL, NULL, "fast", &job, &err), -1);
    CU_ASSERT(err != NULL && strstr(err, "mode") != NULL);
    CU_ASSERT_EQUAL(work_try(NULL, NULL, "", &job, &err), -1);
    CU_ASSERT_EQUAL(work_try(NULL, NULL, "CPU", &job, &err), -1);
    CU_ASSERT_EQUAL(work_try("3", "10", "cpu", &job, &err), 0);
    CU_ASSERT(job.steps == 3 && job.step_ms == 10 && job.mode == WORK_CPU);
}

/* ---- router --------------------------------------------------------- */

/* A handler that is never called; routes only compare its address. */
static int
dummy_a(fc_request *req, fc_response *resp, fc_token *tok, void *data)
{
    (void)req;
    (void)resp;
    (void)tok;
    (void)data;
    return FC_OK;
}

/* A second handler, to tell routes apart. */
static int
dummy_b(fc_request *req, fc_response *resp, fc_token *tok, void *data)
{
    (void)req;
    (void)resp;
    (void)tok;
    (void)data;
    return FC_ERROR;
}

/* Match path and method; return the route's handler name or "404"/"405". */
static const char *
route_of(const struct router *r, const char *path, const char *method)
{
    const struct route *rt;
    int                 status = 0;

    if ((rt = router_match(r, path, method, &status)) != NULL)
        return rt->handler_name;
    return status == 404 ? "404" : status == 405 ? "405" : "?";
}

/* Exact paths match exactly. */
static void
test_router_exact(void)
{
    struct router r = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/x", 0, "x", dummy_a, NULL,
        NULL));
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/x", "GET"), "x");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/x/", "GET"), "404");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/xy", "GET"), "404");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/", "GET"), "404");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "", "GET"), "404");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/X", "GET"), "404");
    CU_ASSERT_EQUAL(r.routes[0].prefix, 0);
    router_free(&r);
    CU_ASSERT_EQUAL(r.n, 0);
}

/* A prefix route ("/a/" then "*") matches "/a", "/a/" and what is under it. */
static void
test_router_prefix(void)
{
    struct router r = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/a/*", 0, "a", dummy_a, NULL,
        NULL));
    CU_ASSERT_EQUAL(r.routes[0].prefix, 1);
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/a/b", "GET"), "a");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/a/b/c", "GET"), "a");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/a/", "GET"), "a");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/a", "GET"), "a");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/ab", "GET"), "404");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/", "GET"), "404");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/b/a/", "GET"), "404");
    router_free(&r);
}

/* No path matches: 404; a path matches but not the method: 405. */
static void
test_router_404_405(void)
{
    struct router r = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/p", METHOD_GET | METHOD_HEAD,
        "p", dummy_a, NULL, NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/d/*", METHOD_DELETE, "d",
        dummy_a, NULL, NULL));
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/p", "GET"), "p");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/p", "HEAD"), "p");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/p", "POST"), "405");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/p", "BREW"), "405");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/p", "get"), "405");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/q", "GET"), "404");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/q", "POST"), "404");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/d/1", "DELETE"), "d");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/d/1", "GET"), "405");
    router_free(&r);
}

/* Routes are tried in order: the first match wins, method by method. */
static void
test_router_first_wins(void)
{
    struct router       r = { 0 };
    const struct route *rt;
    int                 status = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/s", METHOD_POST, "post",
        dummy_a, NULL, NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/s", 0, "any", dummy_a, NULL,
        NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/s", 0, "shadowed", dummy_b,
        NULL, NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/*", 0, "catchall", dummy_b,
        NULL, NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/t", 0, "late", dummy_a,
        NULL, NULL));
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/s", "POST"), "post");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/s", "GET"), "any");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/s", "BREW"), "any");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/t", "GET"), "catchall");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/anything", "GET"), "catchall");
    rt = router_match(&r, "/s", "GET", &status);
    CU_ASSERT(rt != NULL && rt->fn == dummy_a && rt == &r.routes[1]);
    router_free(&r);
}

/* The method names, and the default table (the recipe's routes). */
static void
test_router_defaults(void)
{
    static const char *const recipe[] = {
        "/cancel_tg", "/cancel_tg_dependency", "/cancel_event"
    };
    struct router r = { 0 };
    size_t        i;

    CU_ASSERT_EQUAL(router_method_bit("GET"), METHOD_GET);
    CU_ASSERT_EQUAL(router_method_bit("HEAD"), METHOD_HEAD);
    CU_ASSERT_EQUAL(router_method_bit("POST"), METHOD_POST);
    CU_ASSERT_EQUAL(router_method_bit("PUT"), METHOD_PUT);
    CU_ASSERT_EQUAL(router_method_bit("DELETE"), METHOD_DELETE);
    CU_ASSERT_EQUAL(router_method_bit("PATCH"), METHOD_PATCH);
    CU_ASSERT_EQUAL(router_method_bit("OPTIONS"), METHOD_OPTIONS);
    CU_ASSERT_EQUAL(router_method_bit("BREW"), 0);
    CU_ASSERT_EQUAL(router_method_bit(""), 0);

    CU_ASSERT_EQUAL_FATAL(router_defaults(&r), 0);
    for (i = 0; i < sizeof recipe / sizeof recipe[0]; i++) {
        CU_ASSERT_STRING_EQUAL(route_of(&r, recipe[i], "GET"), "work");
        CU_ASSERT_STRING_EQUAL(route_of(&r, recipe[i], "POST"), "405");
    }
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/status", "GET"), "status");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/ping", "GET"), "ping");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/nope", "GET"), "404");
    router_free(&r);            /* frees the work options too (ASan) */
}

/* ---- http_reason ---------------------------------------------------- */

/* Known statuses have their phrase; others "Unknown". */
static void
test_http_reason(void)
{
    CU_ASSERT_STRING_EQUAL(http_reason(200), "OK");
    CU_ASSERT_STRING_EQUAL(http_reason(400), "Bad Request");
    CU_ASSERT_STRING_EQUAL(http_reason(404), "Not Found");
    CU_ASSERT_STRING_EQUAL(http_reason(405), "Method Not Allowed");
    CU_ASSERT_STRING_EQUAL(http_reason(413), "Content Too Large");
    CU_ASSERT_STRING_EQUAL(http_reason(499), "Client Closed Request");
    CU_ASSERT_STRING_EQUAL(http_reason(500), "Internal Server Error");
    CU_ASSERT_STRING_EQUAL(http_reason(503), "Service Unavailable");
    CU_ASSERT_STRING_EQUAL(http_reason(504), "Gateway Timeout");
    CU_ASSERT_STRING_EQUAL(http_reason(0), "Unknown");
    CU_ASSERT_STRING_EQUAL(http_reason(299), "Unknown");
    CU_ASSERT_STRING_EQUAL(http_reason(-1), "Unknown");
    CU_ASSERT_STRING_EQUAL(http_reason(999), "Unknown");
}

/* ---- log_escape ----------------------------------------------------- */

/* Escape src into a heap buffer of exactly size bytes (1 if 0); caller frees. */
static char *
escape_exact(size_t size, const char *src)
{
    char *dst = malloc(size > 0 ? size : 1);

    if (dst != NULL) {
        memset(dst, '#', size > 0 ? size : 1);
        log_escape(dst, size, src);
    }
    return dst;
}

/* Control characters, quotes, backslashes and high bytes become \xHH. */
/* A string that fits is copied whole: never cut, never "...". */
static void
test_log_escape_fits(void)
{
    char   buf[16];
    size_t size;

    for (size = 4; size <= 6; size++)
        CU_ASSERT_STRING_EQUAL(log_escape(buf, size, "abc"), "abc");
    CU_ASSERT_STRING_EQUAL(log_escape(buf, 5, "\n"), "\\x0a");
    CU_ASSERT_STRING_EQUAL(log_escape(buf, 5, "abcde"), "a...");
}

static void
test_log_escape_chars(void)
{
    char buf[128];

    CU_ASSERT_STRING_EQUAL(log_escape(buf, sizeof buf, "plain /a?b=c 1~"),
        "plain /a?b=c 1~");
    CU_ASSERT_STRING_EQUAL(log_escape(buf, sizeof buf, "a\nb\rc\td\x01\x1f"),
        "a\\x0ab\\x0dc\\x09d\\x01\\x1f");
    CU_ASSERT_STRING_EQUAL(log_escape(buf, sizeof buf, "say \"hi\""),
        "say \\x22hi\\x22");
    CU_ASSERT_STRING_EQUAL(log_escape(buf, sizeof buf, "back\\slash"),
        "back\\x5cslash");
    CU_ASSERT_STRING_EQUAL(log_escape(buf, sizeof buf, "\x7f\x80\xff\xc3\xa9"),
        "\\x7f\\x80\\xff\\xc3\\xa9");
    CU_ASSERT_STRING_EQUAL(log_escape(buf, sizeof buf, ""), "");
    CU_ASSERT_STRING_EQUAL(log_escape(buf, sizeof buf, NULL), "");
    CU_ASSERT_PTR_EQUAL(log_escape(buf, sizeof buf, "x"), buf);
}

/*
 * Every size from 0 to 40 against a long input, each in a heap buffer of
 * exactly that size (ASan): never a byte outside it, always terminated, a
 * prefix of the full escape cut between two escapes, with "..." when cut.
 */
static void
test_log_escape_truncation(void)
{
    static const char src[] = "GET \"/a\x01\x02\" \\ \n\xff tail of the "
        "request line that is much longer than forty bytes";
    char              full[sizeof src * 4], boundary[sizeof src * 4];
    const char       *p;
    size_t            size, flen, plen, o;
    int               bad_nul = 0, bad_prefix = 0, bad_dots = 0;
    int               bad_cut = 0, bad_whole = 0, bad_zero = 0;

    log_escape(full, sizeof full, src);
    flen = strlen(full);
    CU_ASSERT_FATAL(flen > 40);
    /* Where a cut may fall: between the escapes of two source bytes. */
    memset(boundary, 0, sizeof boundary);
    for (p = src, o = 0; *p != '\0'; p++) {
        boundary[o] = 1;
        o += (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') ? 1 : 4;
    }
    boundary[o] = 1;
    CU_ASSERT_EQUAL_FATAL(o, flen);

    for (size = 0; size <= 40; size++) {
        char *out = escape_exact(size, src);

        CU_ASSERT_PTR_NOT_NULL_FATAL(out);
        if (size == 0) {
            bad_zero += out[0] != '#';      /* nothing written at all */
            free(out);
            continue;
        }
        if (memchr(out, '\0', size) == NULL) {
            bad_nul++;
            free(out);
            continue;
        }
        plen = strlen(out);
        if (size >= 4) {
            if (plen < 3 || strcmp(out + plen - 3, "...") != 0) {
                bad_dots++;
                free(out);
                continue;
            }
            plen -= 3;
        }
        if (strncmp(out, full, plen) != 0)
            bad_prefix++;
        else if (!boundary[plen])
            bad_cut++;
        free(out);
    }

    /* Room for all of it and the reserve for "...": not cut at all. */
    for (size = flen + 4; size <= flen + 8; size++) {
        char *out = escape_exact(size, src);

        CU_ASSERT_PTR_NOT_NULL_FATAL(out);
        if (strcmp(out, full) != 0)
            bad_whole++;
        free(out);
    }
    CU_ASSERT_EQUAL(bad_zero, 0);
    CU_ASSERT_EQUAL(bad_nul, 0);
    CU_ASSERT_EQUAL(bad_dots, 0);
    CU_ASSERT_EQUAL(bad_prefix, 0);
    CU_ASSERT_EQUAL(bad_cut, 0);
    CU_ASSERT_EQUAL(bad_whole, 0);
}

/* ---- the response writer, through an in-memory FCGX_Stream ---------- */

/* fc_response_error(): the header block and {"error", "status"} as JSON. */
static void
test_response_error(void)
{
    struct memstream  k;
    fc_token         *tok = token_new(NULL);
    fc_response      *resp;
    json_object      *o, *v;
    const char       *text, *body;

    memstream_init(&k, MEMSTREAM_SMALL, -1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    resp = response_new(&k.s, tok);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL(fc_response_committed(resp), 0);
    CU_ASSERT_EQUAL(fc_response_error(resp, 400, "steps must be \"n\""), 0);
    CU_ASSERT_EQUAL(fc_response_committed(resp), 1);
    CU_ASSERT_EQUAL(response_get_status(resp), 400);
    text = memstream_text(&k);
    CU_ASSERT(strncmp(text, "Status: 400 Bad Request\r\n", 25) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text,
        "\r\nContent-Type: application/json\r\n"));
    CU_ASSERT_PTR_NULL(strstr(text, "text/plain"));
    body = strstr(text, "\r\n\r\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    body += 4;
    CU_ASSERT_EQUAL(response_bytes(resp), strlen(body));
    o = json_tokener_parse(body);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT(json_object_object_get_ex(o, "error", &v) &&
        strcmp(json_object_get_string(v), "steps must be \"n\"") == 0);
    CU_ASSERT(json_object_object_get_ex(o, "status", &v) &&
        json_object_get_int(v) == 400);
    json_object_put(o);
    /* Headers cannot change once sent. */
    CU_ASSERT_EQUAL(fc_response_status(resp, 200), -1);
    CU_ASSERT_EQUAL(fc_response_header(resp, "X-A", "1"), -1);
    CU_ASSERT_EQUAL(fc_token_cancelled(tok), 0);
    CU_ASSERT_EQUAL(response_failed(resp), 0);
    response_free(resp);
    memstream_free(&k);
    token_unref(tok);
}

/* Headers are checked and sent once, before the first body byte. */
static void
test_response_headers_and_body(void)
{
    struct memstream  k;
    fc_token         *tok = token_new(NULL);
    fc_response      *resp;
    json_object      *o;
    const char       *text;

    memstream_init(&k, MEMSTREAM_SMALL, -1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    resp = response_new(&k.s, tok);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL(response_get_status(resp), 200);
    CU_ASSERT_EQUAL(fc_response_status(resp, 99), -1);
    CU_ASSERT_EQUAL(fc_response_status(resp, 1000), -1);
    CU_ASSERT_EQUAL(fc_response_status(resp, 201), 0);
    CU_ASSERT_EQUAL(fc_response_header(resp, "X-Bad:", "1"), -1);
    CU_ASSERT_EQUAL(fc_response_header(resp, "X-Bad", "a\r\nInjected: 1"), -1);
    CU_ASSERT_EQUAL(fc_response_header(resp, "X-Bad\n", "1"), -1);
    CU_ASSERT_EQUAL(fc_response_header(resp, "", "1"), -1);
    CU_ASSERT_EQUAL(fc_response_header(resp, "status", "200"), -1);
    CU_ASSERT_EQUAL(fc_response_header(resp, "X-Good", "yes"), 0);
    CU_ASSERT_EQUAL(fc_response_printf(resp, "%s=%d;", "n", 42), 0);
    CU_ASSERT_EQUAL(fc_response_write(resp, "0123456789abcdefXYZ", 19), 0);
    CU_ASSERT_EQUAL(fc_response_flush(resp), 0);
    text = memstream_text(&k);
    CU_ASSERT_STRING_EQUAL(text, "Status: 201 Created\r\nX-Good: yes\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "n=42;0123456789abcdefXYZ");
    CU_ASSERT_PTR_NULL(strstr(text, "Injected"));
    CU_ASSERT_EQUAL(response_bytes(resp), 5 + 19);
    response_free(resp);
    memstream_free(&k);

    /* fc_response_json(): the object as plain JSON, slashes unescaped. */
    memstream_init(&k, MEMSTREAM_SMALL, -1);
    resp = response_new(&k.s, tok);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    o = json_object_new_object();
    json_object_object_add(o, "result",
        json_object_new_string("Work completed for a/b"));
    CU_ASSERT_EQUAL(fc_response_json(resp, 200, o), 0);
    json_object_put(o);
    CU_ASSERT_STRING_EQUAL(memstream_text(&k), "Status: 200 OK\r\n"
        "Content-Type: application/json\r\n\r\n"
        "{\"result\":\"Work completed for a/b\"}");
    response_free(resp);
    memstream_free(&k);
    token_unref(tok);
}

/* A failed write cancels the token with FC_WRITE_ERROR; later writes fail. */
static void
test_response_write_error(void)
{
    struct memstream  k;
    fc_token         *tok = token_new(NULL);
    fc_response      *resp;
    char              big[100];

    memstream_init(&k, MEMSTREAM_SMALL, -1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    resp = response_new(&k.s, tok);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL(fc_response_write(resp, "ok", 2), 0);
    memstream_break(&k);        /* the front end is gone */
    memset(big, 'z', sizeof big);
    CU_ASSERT_EQUAL(fc_response_write(resp, big, sizeof big), -1);
    CU_ASSERT_EQUAL(response_failed(resp), 1);
    CU_ASSERT_EQUAL(fc_token_cancelled(tok), 1);
    CU_ASSERT_EQUAL(fc_token_reason(tok), FC_WRITE_ERROR);
    CU_ASSERT_EQUAL(fc_response_write(resp, "x", 1), -1);
    CU_ASSERT_EQUAL(fc_response_printf(resp, "%d", 1), -1);
    CU_ASSERT_EQUAL(fc_response_flush(resp), -1);
    response_free(resp);
    memstream_free(&k);
    token_unref(tok);

    /*
     * A failure that FCGX_PutStr() does not report: the buffer is emptied
     * (failing), and the rest of the bytes fit in it, so it returns n.
     * Only FCGX_GetError() tells.
     */
    memstream_init(&k, MEMSTREAM_SMALL, -1);
    tok = token_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    resp = response_new(&k.s, tok);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL(fc_response_flush(resp), 0);    /* headers out, empty */
    memstream_break(&k);
    CU_ASSERT_EQUAL(fc_response_write(resp, big, MEMSTREAM_SMALL + 4), -1);
    CU_ASSERT_EQUAL(fc_token_reason(tok), FC_WRITE_ERROR);
    CU_ASSERT_EQUAL(response_failed(resp), 1);
    response_free(resp);
    memstream_free(&k);
    token_unref(tok);

    /* A failure seen only at the flush (libfcgi returns 0 from it later). */
    memstream_init(&k, MEMSTREAM_SMALL, -1);
    tok = token_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    resp = response_new(&k.s, tok);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    memstream_break(&k);
    CU_ASSERT_EQUAL(fc_response_flush(resp), -1);
    CU_ASSERT_EQUAL(fc_token_reason(tok), FC_WRITE_ERROR);
    CU_ASSERT_EQUAL(fc_response_flush(resp), -1);
    response_free(resp);
    memstream_free(&k);
    token_unref(tok);
}

/* ---- status --------------------------------------------------------- */

/* Return the integer at root.a (or root.a.b), or -12345 if absent. */
static int64_t
jget(json_object *root, const char *a, const char *b)
{
    json_object *o, *v;

    if (!json_object_object_get_ex(root, a, &o))
        return -12345;
    if (b == NULL)
        return json_object_is_type(o, json_type_int) ?
            json_object_get_int64(o) : -12345;
    if (!json_object_object_get_ex(o, b, &v) ||
        !json_object_is_type(v, json_type_int))
        return -12345;
    return json_object_get_int64(v);
}

/* The document has every documented key, as integers, zero after init. */
static void
test_status_keys(void)
{
    static const char *const requests[] = {
        "accepted", "completed", "cancelled", "failed"
    };
    static const char *const reasons[] = {
        "client_gone", "aborted", "write_error", "deadline", "shutdown"
    };
    json_object *root;
    size_t       i;

    stats_init(4);
    root = status_json();
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    for (i = 0; i < sizeof requests / sizeof requests[0]; i++)
        CU_ASSERT_EQUAL(jget(root, "requests", requests[i]), 0);
    for (i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", reasons[i]), 0);
    CU_ASSERT_EQUAL(jget(root, "in_flight", NULL), 0);
    CU_ASSERT_EQUAL(jget(root, "workers", "total"), 4);
    CU_ASSERT_EQUAL(jget(root, "workers", "busy"), 0);
    CU_ASSERT_EQUAL(jget(root, "uptime_s", NULL), 0);
    CU_ASSERT_EQUAL(jget(root, "cancel_latency", "samples"), 0);
    json_object_put(root);
}

/* stats_end() moves exactly the counters of the outcome and reason. */
static void
test_status_counters(void)
{
    json_object *root;
    int          i;

    stats_init(2);
    atomic_fetch_add(&stats.accepted, 9);
    atomic_fetch_add(&stats.in_flight, 3);
    atomic_fetch_add(&stats.busy, 2);
    stats_end(OUTCOME_COMPLETED, FC_REASON_NONE);
    stats_end(OUTCOME_COMPLETED, FC_DEADLINE);      /* reason ignored */
    stats_end(OUTCOME_FAILED, FC_REASON_NONE);
    for (i = 0; i < 3; i++)
        stats_end(OUTCOME_CANCELLED, FC_CLIENT_GONE);
    stats_end(OUTCOME_CANCELLED, FC_ABORTED);
    stats_end(OUTCOME_CANCELLED, FC_WRITE_ERROR);
    stats_end(OUTCOME_CANCELLED, FC_DEADLINE);
    stats_end(OUTCOME_CANCELLED, FC_DEADLINE);
    stats_end(OUTCOME_CANCELLED, FC_SHUTDOWN);
    stats_end(OUTCOME_CANCELLED, FC_REASON_NONE);   /* counted, no reason */
    stats_end(OUTCOME_CANCELLED, (enum fc_reason)77);
    stats_cancel_latency(2500000);
    stats_cancel_latency(500000);

    root = status_json();
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_EQUAL(jget(root, "requests", "accepted"), 9);
    CU_ASSERT_EQUAL(jget(root, "requests", "completed"), 2);
    CU_ASSERT_EQUAL(jget(root, "requests", "failed"), 1);
    CU_ASSERT_EQUAL(jget(root, "requests", "cancelled"), 10);
    CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", "client_gone"), 3);
    CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", "aborted"), 1);
    CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", "write_error"), 1);
    CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", "deadline"), 2);
    CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", "shutdown"), 1);
    CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", "none"), -12345);
    CU_ASSERT_EQUAL(jget(root, "in_flight", NULL), 3);
    CU_ASSERT_EQUAL(jget(root, "workers", "total"), 2);
    CU_ASSERT_EQUAL(jget(root, "workers", "busy"), 2);
    CU_ASSERT_EQUAL(jget(root, "cancel_latency", "samples"), 2);
    json_object_put(root);

    /* stats_init() starts again from zero. */
    stats_init(2);
    root = status_json();
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_EQUAL(jget(root, "requests", "cancelled"), 0);
    CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", "client_gone"), 0);
    CU_ASSERT_EQUAL(jget(root, "cancel_latency", "samples"), 0);
    json_object_put(root);
}

/* The /status handler answers the same document as JSON. */
static void
test_status_handler(void)
{
    struct memstream  k;
    fc_token         *tok = token_new(NULL);
    fc_response      *resp;
    json_object      *root;
    const char       *text, *body;

    stats_init(3);
    stats_end(OUTCOME_CANCELLED, FC_ABORTED);
    memstream_init(&k, MEMSTREAM_SMALL, -1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    resp = response_new(&k.s, tok);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL(status_handler(NULL, resp, tok, NULL), FC_OK);
    text = memstream_text(&k);
    CU_ASSERT(strncmp(text, "Status: 200 OK\r\n", 16) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "Content-Type: application/json"));
    body = strstr(text, "\r\n\r\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    root = json_tokener_parse(body + 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", "aborted"), 1);
    CU_ASSERT_EQUAL(jget(root, "workers", "total"), 3);
    json_object_put(root);
    response_free(resp);
    memstream_free(&k);
    token_unref(tok);
}

static CU_TestInfo query_tests[] = {
    { "empty and NULL", test_query_empty },
    { "a=1&b=2", test_query_pairs },
    { "+ and %XX", test_query_decoding },
    { "malformed escapes kept", test_query_malformed_escapes },
    { "key without =", test_query_key_without_value },
    { "empty pairs", test_query_empty_pairs },
    { "many args", test_query_many },
    { "1 MB query string", test_query_one_megabyte },
    { "fc_request_query: first duplicate wins", test_request_query_duplicates },
    { "request accessors", test_request_accessors },
    CU_TEST_INFO_NULL
};

static CU_TestInfo work_tests[] = {
    { "defaults", test_work_defaults },
    { "steps", test_work_steps },
    { "step_ms", test_work_step_ms },
    { "mode", test_work_mode },
    CU_TEST_INFO_NULL
};

static CU_TestInfo router_tests[] = {
    { "exact path", test_router_exact },
    { "prefix route", test_router_prefix },
    { "404 and 405", test_router_404_405 },
    { "first route wins", test_router_first_wins },
    { "methods and default routes", test_router_defaults },
    CU_TEST_INFO_NULL
};

static CU_TestInfo text_tests[] = {
    { "http_reason", test_http_reason },
    { "log_escape characters", test_log_escape_chars },
    { "log_escape: what fits is not cut", test_log_escape_fits },
    { "log_escape truncation, sizes 0..40", test_log_escape_truncation },
    CU_TEST_INFO_NULL
};

static CU_TestInfo response_tests[] = {
    { "fc_response_error", test_response_error },
    { "headers, body and JSON", test_response_headers_and_body },
    { "write error cancels the token", test_response_write_error },
    CU_TEST_INFO_NULL
};

static CU_TestInfo status_tests[] = {
    { "documented keys", test_status_keys },
    { "stats_end moves the right counters", test_status_counters },
    { "status handler", test_status_handler },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "query and request", NULL, NULL, NULL, NULL, query_tests },
    { "work_parse", NULL, NULL, NULL, NULL, work_tests },
    { "router", NULL, NULL, NULL, NULL, router_tests },
    { "reasons and log escaping", NULL, NULL, NULL, NULL, text_tests },
    { "response writer", NULL, NULL, NULL, NULL, response_tests },
    { "status", NULL, NULL, NULL, NULL, status_tests },
    CU_SUITE_INFO_NULL
};

int
main(void)
{
    return unit_run("test_request", suites, 60);
}
