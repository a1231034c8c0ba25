/* SPDX-License-Identifier: MIT */
/*
 * fuzz_query.c - libFuzzer target for what the server decodes from the
 * FastCGI params of a request: query_parse() (the query string),
 * request_new() (method and path from DOCUMENT_URI, SCRIPT_NAME +
 * PATH_INFO or REQUEST_URI), fc_request_query(), and log_escape(), which
 * every client-supplied string goes through before it reaches a log.
 *
 * Input: the bytes up to the first NUL are a query string, checked on its
 * own against a reference decoder written from request.h ('+' is a space,
 * %XX a byte, a malformed escape stays as it is; empty segments are
 * skipped), whose bytes then go through utf8_sanitize() (test_request.c
 * checks its replacements, fuzz_work its output; here: the decoded
 * values are UTF-8, their NULs and lengths kept).  The whole input, split at NUL bytes, is also the params of a
 * request ("NAME=VALUE" each, as libfcgi builds them), whose path and
 * method are then routed through the default routes plus a prefix route.  The first byte
 * also gives log_escape()'s buffer size.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "request.h"
#include "router.h"
#include "utf8.h"

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz_query: %s:%d: check failed: %s\n", \
        __FILE__, __LINE__, #cond); abort(); } } while (0)

#define MAX_PARAMS  64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* One reference argument: bytes, which may hold NULs. */
struct ref_arg {
    char   *name, *value;
    size_t  nlen, vlen;
};

static int
ref_hex(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decode len bytes of s into a new UTF-8 buffer; its length in *olen. */
static char *
ref_decode(const char *s, size_t len, size_t *olen)
{
    char       *out = malloc(len + 1);
    size_t      i, o = 0;
    struct buf  b = { 0 };

    CHECK(out != NULL);
    for (i = 0; i < len; i++) {
        if (s[i] == '+')
            out[o++] = ' ';
        else if (s[i] == '%' && len - i >= 3 && ref_hex(s[i + 1]) >= 0 &&
            ref_hex(s[i + 2]) >= 0) {
            out[o++] = (char)(ref_hex(s[i + 1]) << 4 | ref_hex(s[i + 2]));
            i += 2;
        } else
            out[o++] = s[i];
    }
    CHECK(utf8_sanitize(&b, out, o) == 0);
    free(out);
    *olen = b.len;
    return b.data;
}

/* Split qs into its arguments; return how many. */
static size_t
ref_parse(const char *qs, struct ref_arg **out)
{
    struct ref_arg *a = NULL;
    size_t          n = 0, seg;
    const char     *p = qs, *eq;

    while (*p != '\0') {
        seg = strcspn(p, "&");
        if (seg > 0) {
            a = realloc(a, (n + 1) * sizeof *a);
            CHECK(a != NULL);
            eq = memchr(p, '=', seg);
            a[n].name = ref_decode(p, eq ? (size_t)(eq - p) : seg,
                &a[n].nlen);
            a[n].value = eq ? ref_decode(eq + 1, seg - (size_t)(eq - p) - 1,
                &a[n].vlen) : ref_decode("", 0, &a[n].vlen);
            n++;
        }
        p += seg;
        if (*p == '&')
            p++;
    }
    *out = a;
    return n;
}

static void
ref_free(struct ref_arg *a, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(a[i].name);
        free(a[i].value);
    }
    free(a);
}

/* query_parse() must agree with the reference, byte for byte. */
static void
check_query(const char *qs)
{
    struct query_arg *args;
    struct ref_arg   *ref;
    size_t            n, nref, i;

    CHECK(query_parse(qs, &args, &n) == 0);
    nref = ref_parse(qs, &ref);
    CHECK(n == nref);
    CHECK((n == 0) == (args == NULL));
    for (i = 0; i < n; i++) {
        CHECK(args[i].name != NULL && args[i].value != NULL);
        CHECK(args[i].name_len == ref[i].nlen);
        CHECK(args[i].value_len == ref[i].vlen);
        CHECK(memcmp(args[i].name, ref[i].name, ref[i].nlen + 1) == 0);
        CHECK(memcmp(args[i].value, ref[i].value, ref[i].vlen + 1) == 0);
        CHECK(utf8_valid(args[i].name, args[i].name_len));
        CHECK(utf8_valid(args[i].value, args[i].value_len));
    }
    query_free(args, n);
    ref_free(ref, nref);

    /* NULL is the empty string. */
    CHECK(query_parse(NULL, &args, &n) == 0 && n == 0 && args == NULL);
}

/* log_escape() into size bytes: terminated, in bounds, nothing raw. */
static void
check_escape(const char *s, size_t size)
{
    char   *dst = malloc(size > 0 ? size : 1), *p;
    size_t  len;

    CHECK(dst != NULL);
    CHECK(log_escape(dst, size, s) == dst);
    if (size > 0) {
        len = strlen(dst);
        CHECK(len < size);
        for (p = dst; *p != '\0'; p++) {
            CHECK(*p >= 0x20 && *p < 0x7f && *p != '"');
            if (*p == '\\') {
                CHECK(p[1] == 'x' && ref_hex(p[2]) >= 0 &&
                    ref_hex(p[3]) >= 0);
                p += 3;
            }
        }
    }
    free(dst);
}

/* Route path and method: a match is a real match, a miss says why. */
static void
check_route(const char *path, const char *method)
{
    static struct router    r;
    static int              ready;
    const struct route     *rt;
    int                     status = 0;
    size_t                  plen;

    if (!ready) {
        CHECK(router_defaults(&r) == 0);
        CHECK(router_add(&r, "/api/*", METHOD_POST, "test", NULL, NULL,
            NULL) != NULL);
        ready = 1;
    }
    if ((rt = router_match(&r, path, method, &status)) == NULL) {
        CHECK(status == 404 || status == 405);
        return;
    }
    CHECK(status == 0);
    CHECK(rt->methods == 0 || (rt->methods & router_method_bit(method)));
    if (!rt->prefix) {
        CHECK(strcmp(rt->path, path) == 0);
    } else {
        plen = strlen(rt->path);
        CHECK(strncmp(rt->path, path, plen) == 0 ||
            (strncmp(rt->path, path, plen - 1) == 0 && path[plen - 1] == 0));
    }
}

/* The params of a request, from the NUL-separated input. */
static void
check_request(const uint8_t *data, size_t size, size_t esize)
{
    char           *copy, *envp[MAX_PARAMS + 1], *p, *end;
    struct ref_arg *ref;
    fc_request     *req;
    const char     *qs, *v, *path;
    size_t          n = 0, nref, i, j, vlen;

    copy = malloc(size + 1);
    CHECK(copy != NULL);
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (p = copy, end = copy + size; p <= end && n < MAX_PARAMS;
        p += strlen(p) + 1)
        envp[n++] = p;
    envp[n] = NULL;

    req = request_new(42, envp);
    CHECK(req != NULL);
    CHECK(fc_request_id(req) == 42);
    CHECK(fc_request_method(req) != NULL && *fc_request_method(req) != '\0');
    path = fc_request_path(req);
    CHECK(path != NULL && path[0] == '/');
    check_escape(path, esize);
    check_escape(fc_request_method(req), esize);
    check_route(path, fc_request_method(req));

    /* Every name of the query (without a NUL) finds its last value,
     * whole (the first 64 names: the lookup is linear, the check
     * quadratic). */
    qs = fc_request_param(req, "QUERY_STRING");
    nref = ref_parse(qs != NULL ? qs : "", &ref);
    for (i = 0; i < nref && i < 64; i++) {
        if (strlen(ref[i].name) != ref[i].nlen)
            continue;
        for (j = nref - 1; ref[j].nlen != ref[i].nlen ||
            memcmp(ref[j].name, ref[i].name, ref[i].nlen) != 0; j--)
            ;
        v = fc_request_query_len(req, ref[i].name, &vlen);
        CHECK(v != NULL && vlen == ref[j].vlen &&
            memcmp(v, ref[j].value, vlen + 1) == 0);
        CHECK(fc_request_query(req, ref[i].name) == v);
    }
    if (nref == 0)
        CHECK(fc_request_query(req, "task_param") == NULL);
    ref_free(ref, nref);
    if (qs != NULL)
        check_escape(qs, esize);

    /* The body is taken over and freed by request_free(). */
    if ((p = malloc(size + 1)) != NULL) {
        memcpy(p, data, size);
        request_set_body(req, p, size);
        CHECK(fc_request_body(req, &i) == p && i == size);
    }
    request_free(req);
    free(copy);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char   *qs;
    size_t  esize = size > 0 ? data[0] : 0;

    qs = malloc(size + 1);
    CHECK(qs != NULL);
    memcpy(qs, data, size);
    qs[size] = '\0';
    check_query(qs);
    check_escape(qs, esize);
    check_escape(qs, 512);      /* what the access log uses */
    free(qs);

    check_request(data, size, esize);
    return 0;
}
