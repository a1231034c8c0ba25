/* SPDX-License-Identifier: MIT */
/*
 * test_request.c - unit tests of request.c: the decoding of query strings,
 * the request accessors, the HTTP reason phrases, and the response writer
 * driven through an in-memory FCGX_Stream (the CGI header block, the JSON
 * bodies, and a failed write turning into cancel(FC_WRITE_ERROR)).  No
 * threads and no sockets: everything here is synchronous.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <json-c/json.h>

#include "fcgi_cancel.h"
#include "memstream.h"
#include "request.h"
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
    CU_ASSERT_EQUAL(args[0].value_len, 5);
    CU_ASSERT_EQUAL(args[0].name_len, 10);
    query_free(args, n);
}

/*
 * Bytes that are not UTF-8 become U+FFFD, one per maximal ill-formed
 * part (as Python's errors="replace", FastAPI's decoding, does); NUL
 * bytes are kept, with the length.
 */
static void
test_query_utf8(void)
{
    static const struct {
        const char *qs, *value;
        size_t      len;
    } t[] = {
        { "v=%FF%FE", "\xef\xbf\xbd\xef\xbf\xbd", 6 },
        { "v=a%00b", "a\0b", 3 },
        { "v=%00", "\0", 1 },
        { "v=%E2%82", "\xef\xbf\xbd", 3 },         /* truncated */
        { "v=%E2%82%AC", "\xe2\x82\xac", 3 },      /* the euro sign */
        { "v=%C0%AF", "\xef\xbf\xbd\xef\xbf\xbd", 6 },   /* overlong */
        { "v=%ED%A0%80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9 },
        { "v=x%80y", "x\xef\xbf\xbdy", 5 },
        { "v=\xff", "\xef\xbf\xbd", 3 },          /* raw, not escaped */
    };
    struct query_arg *args;
    size_t            i, n;

    for (i = 0; i < sizeof t / sizeof t[0]; i++) {
        n = parse_ok(t[i].qs, &args);
        CU_ASSERT_EQUAL_FATAL(n, 1);
        CU_ASSERT_EQUAL(args[0].value_len, t[i].len);
        CU_ASSERT(memcmp(args[0].value, t[i].value, t[i].len + 1) == 0);
        query_free(args, n);
    }
    n = parse_ok("%FF=1", &args);                   /* names too */
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(args[0].name, "\xef\xbf\xbd");
    CU_ASSERT_EQUAL(args[0].name_len, 3);
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

/* fc_request_query(): the last of duplicate keys wins (FastAPI's rule);
 * absent is NULL. */
static void
test_request_query_duplicates(void)
{
    char        *envp[] = {
        "REQUEST_METHOD=GET", "QUERY_STRING=a=1&b=x+y&a=2&steps=%33",
        "DOCUMENT_URI=/cancel_tg", NULL
    };
    fc_request  *req = request_new(42, envp);

    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    CU_ASSERT_STRING_EQUAL(fc_request_query(req, "a"), "2");
    CU_ASSERT_STRING_EQUAL(fc_request_query(req, "b"), "x y");
    CU_ASSERT_STRING_EQUAL(fc_request_query(req, "steps"), "3");
    CU_ASSERT_PTR_NULL(fc_request_query(req, "missing"));
    CU_ASSERT_PTR_NULL(fc_request_query(req, ""));
    CU_ASSERT_STRING_EQUAL(fc_request_query(req, "a"), "2");  /* again */
    CU_ASSERT_EQUAL(fc_request_id(req), 42);
    request_free(req);
}

/* fc_request_query_len(): the whole value, NULs included; 0 if absent. */
static void
test_request_query_len(void)
{
    char        *envp[] = {
        "QUERY_STRING=t=a%00b&u=&w&t2=%FF%FE&t=x%00", NULL
    };
    fc_request  *req = request_new(1, envp);
    const char  *v;
    size_t       len = 99;

    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    v = fc_request_query_len(req, "t", &len);       /* the last t */
    CU_ASSERT_EQUAL(len, 2);
    CU_ASSERT(v != NULL && memcmp(v, "x\0", 3) == 0);
    v = fc_request_query_len(req, "t2", &len);
    CU_ASSERT_EQUAL(len, 6);
    CU_ASSERT(v != NULL && strcmp(v, "\xef\xbf\xbd\xef\xbf\xbd") == 0);
    CU_ASSERT(fc_request_query_len(req, "u", &len) != NULL && len == 0);
    CU_ASSERT(fc_request_query_len(req, "w", &len) != NULL && len == 0);
    len = 99;
    CU_ASSERT_PTR_NULL(fc_request_query_len(req, "absent", &len));
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_STRING_EQUAL(fc_request_query_len(req, "t", NULL), "x");
    CU_ASSERT_STRING_EQUAL(fc_request_query(req, "t"), "x");  /* cut */
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

/*
 * fc_response_json(): a string that is not UTF-8 comes out with U+FFFD,
 * a NUL as \u0000; the body parses with a strict UTF-8 JSON parser.
 */
static void
test_response_json_utf8(void)
{
    struct memstream    k;
    fc_token           *tok = token_new(NULL);
    fc_response        *resp;
    json_object        *o;
    const char         *body;

    memstream_init(&k, MEMSTREAM_SMALL, -1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    resp = response_new(&k.s, tok);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    o = json_object_new_object();
    json_object_object_add(o, "s", json_object_new_string_len("a\xff" "b", 3));
    json_object_object_add(o, "n", json_object_new_string_len("x\0y", 3));
    CU_ASSERT_EQUAL(fc_response_json(resp, 200, o), 0);
    json_object_put(o);
    body = strstr(memstream_text(&k), "\r\n\r\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    body += 4;
    CU_ASSERT_STRING_EQUAL(body,
        "{\"s\":\"a\xef\xbf\xbd" "b\",\"n\":\"x\\u0000y\"}");
    CU_ASSERT_PTR_NOT_NULL(o = memstream_json_strict(body));
    json_object_put(o);
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

static CU_TestInfo query_tests[] = {
    { "empty and NULL", test_query_empty },
    { "a=1&b=2", test_query_pairs },
    { "+ and %XX", test_query_decoding },
    { "UTF-8: U+FFFD for ill-formed bytes, NULs kept", test_query_utf8 },
    { "malformed escapes kept", test_query_malformed_escapes },
    { "key without =", test_query_key_without_value },
    { "empty pairs", test_query_empty_pairs },
    { "many args", test_query_many },
    { "1 MB query string", test_query_one_megabyte },
    { "fc_request_query: the last duplicate wins", test_request_query_duplicates },
    { "fc_request_query_len: NULs and lengths", test_request_query_len },
    { "request accessors", test_request_accessors },
    CU_TEST_INFO_NULL
};

static CU_TestInfo reason_tests[] = {
    { "http_reason", test_http_reason },
    CU_TEST_INFO_NULL
};

static CU_TestInfo response_tests[] = {
    { "fc_response_error", test_response_error },
    { "headers, body and JSON", test_response_headers_and_body },
    { "JSON bodies are UTF-8", test_response_json_utf8 },
    { "write error cancels the token", test_response_write_error },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "query and request", NULL, NULL, NULL, NULL, query_tests },
    { "reasons", NULL, NULL, NULL, NULL, reason_tests },
    { "response writer", NULL, NULL, NULL, NULL, response_tests },
    CU_SUITE_INFO_NULL
};

int
main(void)
{
    return unit_run("test_request", suites, 60);
}
