/* SPDX-License-Identifier: MIT */
/*
 * test_proto.c - unit tests of proto.c, the FastCGI records fcgi-cancel
 * reads and writes itself.
 *
 * Reading: proto_feed() is given byte streams built here record by record,
 * as nginx writes them (padded to 8 bytes, params cut anywhere, the body in
 * pieces), and the tests check what it assembles (result, envp, body,
 * keep_conn, the bytes it consumes), what it answers in `reply` (exact
 * bytes), that feeding one byte more at a time as pool.c does gives what
 * feeding everything at once gives, and how it meets limits, protocol
 * errors and hostile lengths (no huge allocation: malloc, calloc and
 * realloc are wrapped at link time, see Makefile.am, and the largest size
 * asked for is watched).
 *
 * Writing: a proto_out stream over a SOCK_SEQPACKET socketpair, so that
 * each write() of proto.c arrives as one message: the records and their
 * grouping into writes are checked, then failures on a closed peer, then
 * proto_send() on a full socket.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <fastcgi.h>
#include <fcgiapp.h>

#include "proto.h"
#include "util.h"
#include "unit.h"

#define ID          1
#define MAX_REQS    16

static const struct proto_limits lim = {
    .max_params = 4096, .max_body = 65536, .max_reqs = MAX_REQS
};

/* ---- allocation watch (the wrappers of -Wl,--wrap) ----------------- */

void   *__real_malloc(size_t n);
void   *__real_calloc(size_t n, size_t m);
void   *__real_realloc(void *p, size_t n);
void   *__wrap_malloc(size_t n);
void   *__wrap_calloc(size_t n, size_t m);
void   *__wrap_realloc(void *p, size_t n);

static int      alloc_watch;        /* record sizes while set */
static size_t   alloc_max;          /* the largest size asked for */

static void
alloc_note(size_t n)
{
    if (alloc_watch && n > alloc_max)
        alloc_max = n;
}

void *
__wrap_malloc(size_t n)
{
    alloc_note(n);
    return __real_malloc(n);
}

void *
__wrap_calloc(size_t n, size_t m)
{
    alloc_note(m != 0 && n > SIZE_MAX / m ? SIZE_MAX : n * m);
    return __real_calloc(n, m);
}

void *
__wrap_realloc(void *p, size_t n)
{
    alloc_note(n);
    return __real_realloc(p, n);
}

/* ---- building streams ---------------------------------------------- */

/* Append n bytes of p to b (the test stops if there is no memory). */
static void
add(struct buf *b, const void *p, size_t n)
{
    CU_ASSERT_FATAL(buf_add(b, p, n) == 0);
}

static void
add_str(struct buf *b, const char *s)
{
    add(b, s, strlen(s));
}

/* Append a record with pad bytes of padding. */
static void
rec_pad(struct buf *b, int type, unsigned id, const void *p, size_t n,
    size_t pad)
{
    static const unsigned char zeros[255];
    unsigned char              h[FCGI_HEADER_LEN] = {
        FCGI_VERSION_1, (unsigned char)type, (unsigned char)(id >> 8),
        (unsigned char)id, (unsigned char)(n >> 8), (unsigned char)n,
        (unsigned char)pad, 0
    };

    add(b, h, sizeof h);
    if (n > 0)
        add(b, p, n);
    if (pad > 0)
        add(b, zeros, pad);
}

/* Append a record padded to a multiple of 8 bytes, as nginx sends them. */
static void
rec(struct buf *b, int type, unsigned id, const void *p, size_t n)
{
    rec_pad(b, type, id, p, n, (8 - n % 8) % 8);
}

/* Append FCGI_BEGIN_REQUEST. */
static void
begin(struct buf *b, unsigned id, int role, int flags)
{
    unsigned char body[8] = {
        (unsigned char)(role >> 8), (unsigned char)role,
        (unsigned char)flags
    };

    rec(b, FCGI_BEGIN_REQUEST, id, body, sizeof body);
}

/* Append a name-value length: 1 byte, or 4 if n > 127 or `four`. */
static void
nv_len(struct buf *b, size_t n, int four)
{
    unsigned char l[4] = {
        (unsigned char)(0x80 | (n >> 24)), (unsigned char)(n >> 16),
        (unsigned char)(n >> 8), (unsigned char)n
    };

    if (n < 128 && !four)
        add(b, l + 3, 1);
    else
        add(b, l, 4);
}

/* Append a name-value pair of nl and vl bytes. */
static void
nv_raw(struct buf *b, const void *name, size_t nl, const void *value,
    size_t vl)
{
    nv_len(b, nl, 0);
    nv_len(b, vl, 0);
    add(b, name, nl);
    add(b, value, vl);
}

static void
nv(struct buf *b, const char *name, const char *value)
{
    nv_raw(b, name, strlen(name), value, strlen(value));
}

/* Append params as FCGI_PARAMS records cut at cuts[0..ncut) (offsets in
 * params), then the empty FCGI_PARAMS. */
static void
params_cut(struct buf *b, unsigned id, const struct buf *params,
    const size_t *cuts, size_t ncut)
{
    size_t i, from = 0, to;

    for (i = 0; i <= ncut; i++) {
        to = i < ncut ? cuts[i] : params->len;
        if (to > from)
            rec(b, FCGI_PARAMS, id, params->data + from, to - from);
        from = to;
    }
    rec(b, FCGI_PARAMS, id, NULL, 0);
}

/* Append body as FCGI_STDIN records of at most piece bytes, then the empty
 * FCGI_STDIN. */
static void
stdin_pieces(struct buf *b, unsigned id, const void *body, size_t len,
    size_t piece)
{
    const char *p = body;
    size_t      off, n;

    for (off = 0; off < len; off += n) {
        n = len - off < piece ? len - off : piece;
        rec(b, FCGI_STDIN, id, p + off, n);
    }
    rec(b, FCGI_STDIN, id, NULL, 0);
}

/* Append a whole small request: BEGIN RESPONDER, params in one record,
 * the body in one record. */
static void
request(struct buf *b, unsigned id, int flags, const struct buf *params,
    const char *body)
{
    begin(b, id, FCGI_RESPONDER, flags);
    params_cut(b, id, params, NULL, 0);
    stdin_pieces(b, id, body, strlen(body), 65535);
}

/* ---- checking ------------------------------------------------------ */

/* Is e "name=value"? */
static int
env_is(const char *e, const char *name, const char *value)
{
    size_t n = strlen(name);

    return e != NULL && strncmp(e, name, n) == 0 && e[n] == '=' &&
        strcmp(e + n + 1, value) == 0;
}

/* Number of entries of envp (NULL-terminated); (size_t)-1 if NULL. */
static size_t
env_count(char **envp)
{
    size_t n = 0;

    if (envp == NULL)
        return (size_t)-1;
    while (envp[n] != NULL)
        n++;
    return n;
}

/* Is b exactly the n bytes of p? */
static int
buf_is(const struct buf *b, const void *p, size_t n)
{
    return b->len == n && (n == 0 || memcmp(b->data, p, n) == 0);
}

/* The FCGI_END_REQUEST record of id with protocol_status. */
static void
end_request_bytes(unsigned char *out, unsigned id, int status)
{
    static const unsigned char tmpl[16] = {
        1, FCGI_END_REQUEST, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    };

    memcpy(out, tmpl, sizeof tmpl);
    out[2] = (unsigned char)(id >> 8);
    out[3] = (unsigned char)id;
    out[12] = (unsigned char)status;
}

/* Feed all of s once. */
static enum proto_result
feed(struct proto_req *r, const struct proto_limits *l, const struct buf *s,
    size_t *used)
{
    *used = (size_t)-1;
    return proto_feed(r, l, (const unsigned char *)s->data, s->len, used);
}

/* ---- a connection driven as pool.c drives it ----------------------- */

/* What a connection yields: the events, the reply bytes, the requests. */
struct run {
    struct buf  ev;         /* one line per request or close */
    struct buf  out;        /* every reply byte, in order */
    int         nready;
    int         closed;
};

static void
run_free(struct run *run)
{
    buf_free(&run->ev);
    buf_free(&run->out);
}

/* Take n bytes off the front of b. */
static void
consume(struct buf *b, size_t n)
{
    if (n == 0)
        return;
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

/* "Send" r's reply: into run->out. */
static void
send_reply(struct run *run, struct proto_req *r)
{
    if (r->reply.len > 0)
        add(&run->out, r->reply.data, r->reply.len);
    buf_free(&r->reply);
}

/*
 * Feed data[0..len) step bytes at a time (the last step shorter), keeping
 * what proto_feed() leaves in a pending buffer as worker_serve() does;
 * serve each request read (record it), go on after it with the bytes left.
 */
static void
drive(const void *data, size_t len, size_t step,
    const struct proto_limits *l, struct run *run)
{
    const char        *d = data;
    struct proto_req   r;
    struct buf         pending = { 0 };
    enum proto_result  res;
    size_t             off = 0, n, used, i;

    memset(&r, 0, sizeof r);
    memset(run, 0, sizeof *run);
    while (off < len && !run->closed) {
        n = len - off < step ? len - off : step;
        add(&pending, d + off, n);
        off += n;
        for (;;) {
            send_reply(run, &r);
            if (pending.len == 0)
                break;
            res = proto_feed(&r, l, (const unsigned char *)pending.data,
                pending.len, &used);
            CU_ASSERT_FATAL(used <= pending.len);
            consume(&pending, used);
            if (res == PROTO_READY) {
                send_reply(run, &r);
                run->nready++;
                CU_ASSERT_FATAL(buf_printf(&run->ev,
                    "READY id=%u keep=%d reject=%d at=%zu body=%zu\n", r.id,
                    r.keep_conn, (int)r.reject, run->out.len,
                    r.body.len) == 0);
                add(&run->ev, r.body.data != NULL ? r.body.data : "",
                    r.body.len);
                CU_ASSERT_PTR_NOT_NULL_FATAL(r.envp);
                for (i = 0; r.envp[i] != NULL; i++)
                    CU_ASSERT_FATAL(buf_printf(&run->ev, "\n%s",
                        r.envp[i]) == 0);
                add_str(&run->ev, "\n");
                proto_reset(&r);
                continue;
            }
            if (res == PROTO_CLOSE) {
                send_reply(run, &r);
                run->closed = 1;
                CU_ASSERT_FATAL(buf_printf(&run->ev, "CLOSE at=%zu %s\n",
                    run->out.len, r.error != NULL ? r.error : "(null)") == 0);
                break;
            }
            if (r.reply.len == 0)
                break;          /* a partial record: read more */
        }
    }
    proto_free(&r);
    buf_free(&pending);
}

/* ---- a request as nginx sends it ----------------------------------- */

static char cookie[301];
static char body3000[3001];

static const char *const nginx_params[][2] = {
    { "SCRIPT_FILENAME", "/srv/www/jobs/run" },
    { "QUERY_STRING", "steps=3&name=a%20b" },
    { "REQUEST_METHOD", "POST" },
    { "CONTENT_TYPE", "application/x-www-form-urlencoded" },
    { "CONTENT_LENGTH", "3000" },
    { "SCRIPT_NAME", "/jobs/run" },
    { "REQUEST_URI", "/jobs/run?steps=3&name=a%20b" },
    { "DOCUMENT_URI", "/jobs/run" },
    { "DOCUMENT_ROOT", "/srv/www" },
    { "SERVER_PROTOCOL", "HTTP/1.1" },
    { "REQUEST_SCHEME", "http" },
    { "GATEWAY_INTERFACE", "CGI/1.1" },
    { "SERVER_SOFTWARE", "nginx/1.22.1" },
    { "REMOTE_ADDR", "127.0.0.1" },
    { "REMOTE_PORT", "51234" },
    { "SERVER_ADDR", "127.0.0.1" },
    { "SERVER_PORT", "8080" },
    { "SERVER_NAME", "localhost" },
    { "REDIRECT_STATUS", "200" },
    { "HTTP_HOST", "localhost:8080" },
    { "HTTP_COOKIE", cookie },              /* 300 bytes: 4-byte length */
    { "HTTP_USER_AGENT", "curl/7.88.1" },
    { "HTTP_EMPTY", "" },
};
#define NGINX_NPARAMS   (sizeof nginx_params / sizeof nginx_params[0])

static void
fill_data(void)
{
    size_t i;

    for (i = 0; i < sizeof cookie - 1; i++)
        cookie[i] = (char)('a' + i % 26);
    for (i = 0; i < sizeof body3000 - 1; i++)
        body3000[i] = (char)(' ' + i % 95);
}

/*
 * Append nginx's request id with flags: the params in four records, cut
 * inside a name, inside a value, and between the second and third byte of
 * HTTP_COOKIE's 4-byte value length; the 3000-byte body in pieces of 1000,
 * 1000, 999 and 1 (nginx cuts where its buffers end).
 */
static void
nginx_request(struct buf *b, unsigned id, int flags)
{
    struct buf params = { 0 };
    size_t     cuts[3], i, cookie_at = 0;

    fill_data();
    for (i = 0; i < NGINX_NPARAMS; i++) {
        if (strcmp(nginx_params[i][0], "HTTP_COOKIE") == 0)
            cookie_at = params.len;
        nv(&params, nginx_params[i][0], nginx_params[i][1]);
    }
    cuts[0] = 5 + 2;                /* "SCRIPT_F|ILENAME" */
    cuts[1] = 2 + 15 + 5;           /* "/srv/|www/jobs/run" */
    cuts[2] = cookie_at + 1 + 2;    /* 0x80 0x00 | 0x01 0x2c */
    begin(b, id, FCGI_RESPONDER, flags);
    params_cut(b, id, &params, cuts, 3);
    rec(b, FCGI_STDIN, id, body3000, 1000);
    rec(b, FCGI_STDIN, id, body3000 + 1000, 1000);
    rec(b, FCGI_STDIN, id, body3000 + 2000, 999);
    rec(b, FCGI_STDIN, id, body3000 + 2999, 1);
    rec(b, FCGI_STDIN, id, NULL, 0);
    buf_free(&params);
}

/* Check the request nginx_request() sent, read whole into r. */
static void
check_nginx_request(struct proto_req *r)
{
    size_t i;

    CU_ASSERT_EQUAL(r->state, PROTO_DONE);
    CU_ASSERT_EQUAL(r->reject, PROTO_OK);
    CU_ASSERT_PTR_NULL(r->error);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->envp);
    CU_ASSERT_EQUAL(env_count(r->envp), NGINX_NPARAMS);
    for (i = 0; i < NGINX_NPARAMS && r->envp[i] != NULL; i++) {
        if (!env_is(r->envp[i], nginx_params[i][0], nginx_params[i][1]))
            CU_FAIL("envp entry differs");
    }
    CU_ASSERT_TRUE(buf_is(&r->body, body3000, 3000));
}

/* ---- proto_feed: requests ------------------------------------------ */

/* A whole request without FCGI_KEEP_CONN, followed by the next request:
 * everything read, the next request's bytes left. */
static void
test_request_whole(void)
{
    struct proto_req  r;
    struct buf        s = { 0 }, p2 = { 0 };
    size_t            used, first;

    memset(&r, 0, sizeof r);
    nginx_request(&s, ID, 0);
    first = s.len;
    nv(&p2, "REQUEST_METHOD", "GET");
    request(&s, 2, FCGI_KEEP_CONN, &p2, "");

    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_READY);
    CU_ASSERT_EQUAL(used, first);
    CU_ASSERT_EQUAL(r.id, ID);
    CU_ASSERT_EQUAL(r.keep_conn, 0);
    CU_ASSERT_EQUAL(r.reply.len, 0);
    check_nginx_request(&r);

    /* What was left is the next request, whole. */
    proto_reset(&r);
    CU_ASSERT_EQUAL(r.state, PROTO_BEGIN);
    CU_ASSERT_PTR_NULL(r.envp);
    CU_ASSERT_EQUAL(proto_feed(&r, &lim, (const unsigned char *)s.data + used,
        s.len - used, &used), PROTO_READY);
    CU_ASSERT_EQUAL(used, s.len - first);
    CU_ASSERT_EQUAL(r.id, 2);
    CU_ASSERT_EQUAL(r.keep_conn, 1);
    CU_ASSERT_EQUAL_FATAL(env_count(r.envp), 1);
    CU_ASSERT_TRUE(env_is(r.envp[0], "REQUEST_METHOD", "GET"));
    CU_ASSERT_EQUAL(r.body.len, 0);
    proto_free(&r);
    buf_free(&s);
    buf_free(&p2);
}

/* With FCGI_KEEP_CONN, a two-byte id, an empty FCGI_STDIN only. */
static void
test_request_keep_conn_empty_stdin(void)
{
    struct proto_req  r;
    struct buf        s = { 0 }, p = { 0 };
    size_t            used;

    memset(&r, 0, sizeof r);
    nv(&p, "REQUEST_METHOD", "GET");
    nv(&p, "DOCUMENT_URI", "/status");
    begin(&s, 0x1234, FCGI_RESPONDER, FCGI_KEEP_CONN);
    params_cut(&s, 0x1234, &p, NULL, 0);
    rec(&s, FCGI_STDIN, 0x1234, NULL, 0);

    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_READY);
    CU_ASSERT_EQUAL(used, s.len);
    CU_ASSERT_EQUAL(r.id, 0x1234);
    CU_ASSERT_EQUAL(r.keep_conn, 1);
    CU_ASSERT_EQUAL(r.reject, PROTO_OK);
    CU_ASSERT_EQUAL(r.body.len, 0);
    CU_ASSERT_EQUAL_FATAL(env_count(r.envp), 2);
    CU_ASSERT_TRUE(env_is(r.envp[0], "REQUEST_METHOD", "GET"));
    CU_ASSERT_TRUE(env_is(r.envp[1], "DOCUMENT_URI", "/status"));
    proto_free(&r);
    buf_free(&s);
    buf_free(&p);
}

/* Cut anywhere, nothing is consumed but whole records, and the request is
 * only ready with its last byte. */
static void
test_request_partial(void)
{
    struct proto_req  r;
    struct buf        s = { 0 };
    size_t            len, used, bad = 0;

    nginx_request(&s, ID, FCGI_KEEP_CONN);
    for (len = 0; len < s.len; len++) {
        memset(&r, 0, sizeof r);
        if (proto_feed(&r, &lim, (const unsigned char *)s.data, len,
            &used) != PROTO_MORE || used > len)
            bad++;
        proto_free(&r);
    }
    CU_ASSERT_EQUAL(bad, 0);
    buf_free(&s);
}

/* A connection's bytes: management records, a refused id, two requests,
 * a partial record at the end. */
static void
connection_stream(struct buf *s)
{
    struct buf p = { 0 }, gv = { 0 };

    nv(&gv, FCGI_MAX_CONNS, "");
    nv(&gv, FCGI_MPXS_CONNS, "");
    rec(s, FCGI_GET_VALUES, 0, gv.data, gv.len);
    nginx_request(s, ID, FCGI_KEEP_CONN);
    rec(s, 42, 0, "xyz", 3);                        /* unknown type */
    begin(s, 3, FCGI_RESPONDER, FCGI_KEEP_CONN);
    nv(&p, "REQUEST_METHOD", "PUT");
    rec(s, FCGI_PARAMS, 3, p.data, p.len);
    begin(s, 4, FCGI_RESPONDER, 0);                 /* CANT_MPX_CONN */
    rec(s, FCGI_PARAMS, 3, NULL, 0);
    stdin_pieces(s, 3, "hello", 5, 2);
    begin(s, 5, FCGI_AUTHORIZER, FCGI_KEEP_CONN);   /* UNKNOWN_ROLE */
    begin(s, 6, FCGI_RESPONDER, 0);
    add(s, "\x01\x04\x00\x06\x00", 5);              /* partial */
    buf_free(&p);
    buf_free(&gv);
}

/* Fed one byte more at a time (and in other steps), as pool.c keeps the
 * bytes proto_feed() leaves: the same requests, replies and order as fed
 * whole. */
static void
test_request_bytewise(void)
{
    static const size_t steps[] = { 1, 2, 3, 7, 8, 9, 64, 1000 };
    struct buf          s = { 0 };
    struct run          whole, piece;
    size_t              i;

    connection_stream(&s);
    drive(s.data, s.len, s.len, &lim, &whole);
    CU_ASSERT_EQUAL(whole.nready, 2);
    CU_ASSERT_EQUAL(whole.closed, 0);
    /* GET_VALUES_RESULT (8 + 18 + 18), UNKNOWN_TYPE, CANT_MPX_CONN,
     * UNKNOWN_ROLE */
    CU_ASSERT_EQUAL(whole.out.len, 44 + 16 + 16 + 16);
    CU_ASSERT_PTR_NOT_NULL(strstr(whole.ev.data, "READY id=1 keep=1"));
    CU_ASSERT_PTR_NOT_NULL(strstr(whole.ev.data,
        "READY id=3 keep=1 reject=0 at=76 body=5\nhello\n"
        "REQUEST_METHOD=PUT\n"));
    for (i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        drive(s.data, s.len, steps[i], &lim, &piece);
        CU_ASSERT_EQUAL(piece.nready, whole.nready);
        CU_ASSERT_TRUE(buf_is(&piece.ev, whole.ev.data, whole.ev.len));
        CU_ASSERT_TRUE(buf_is(&piece.out, whole.out.data, whole.out.len));
        run_free(&piece);
    }
    run_free(&whole);
    buf_free(&s);
}

/* Names that are empty or hold '=' or NUL are left out; values may hold
 * '=' and be empty. */
static void
test_params_skipped_names(void)
{
    struct proto_req  r;
    struct buf        s = { 0 }, p = { 0 };
    size_t            used;

    memset(&r, 0, sizeof r);
    nv(&p, "A=B", "x");
    nv(&p, "", "nameless");
    nv_raw(&p, "NU\0L", 4, "v", 1);
    nv(&p, "GOOD", "a=b=c");
    nv(&p, "=", "");
    nv(&p, "EMPTY", "");
    nv_raw(&p, "LONG", 4, "1", 1);
    begin(&s, ID, FCGI_RESPONDER, 0);
    params_cut(&s, ID, &p, NULL, 0);
    rec(&s, FCGI_STDIN, ID, NULL, 0);

    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_READY);
    CU_ASSERT_EQUAL_FATAL(env_count(r.envp), 3);
    CU_ASSERT_STRING_EQUAL(r.envp[0], "GOOD=a=b=c");
    CU_ASSERT_STRING_EQUAL(r.envp[1], "EMPTY=");
    CU_ASSERT_STRING_EQUAL(r.envp[2], "LONG=1");
    proto_free(&r);
    buf_free(&s);
    buf_free(&p);
}

/* ---- proto_feed: management records, roles, ids -------------------- */

/* A first byte that is not version 1: close, at once or mid-request. */
static void
test_version_not_1(void)
{
    struct proto_req  r;
    struct buf        s = { 0 }, p = { 0 };
    size_t            used, at;

    memset(&r, 0, sizeof r);
    rec(&s, FCGI_GET_VALUES, 0, NULL, 0);
    s.data[0] = 2;
    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_CLOSE);
    CU_ASSERT_PTR_NOT_NULL(r.error);
    CU_ASSERT_EQUAL(r.reply.len, 0);
    proto_free(&r);
    buf_free(&s);

    /* "GET / HTTP/1.0": not FastCGI at all */
    memset(&r, 0, sizeof r);
    add_str(&s, "GET / HTTP/1.0\r\n\r\n");
    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_CLOSE);
    CU_ASSERT_PTR_NOT_NULL(r.error);
    proto_free(&r);
    buf_free(&s);

    /* A version 0 record in the middle of the params. */
    memset(&r, 0, sizeof r);
    nv(&p, "REQUEST_METHOD", "GET");
    begin(&s, ID, FCGI_RESPONDER, FCGI_KEEP_CONN);
    rec(&s, FCGI_PARAMS, ID, p.data, p.len);
    at = s.len;
    rec(&s, FCGI_PARAMS, ID, NULL, 0);
    rec(&s, FCGI_STDIN, ID, NULL, 0);
    s.data[at] = 0;
    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_CLOSE);
    CU_ASSERT_PTR_NOT_NULL(r.error);
    CU_ASSERT_TRUE(used <= at);
    proto_free(&r);
    buf_free(&s);
    buf_free(&p);
}

/* Feed the GET_VALUES record of pairs, expect exactly the answer want. */
static void
check_get_values(const struct buf *pairs, const void *want, size_t wlen)
{
    struct proto_req  r;
    struct buf        s = { 0 };
    size_t            used;

    memset(&r, 0, sizeof r);
    rec(&s, FCGI_GET_VALUES, 0, pairs->data, pairs->len);
    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_MORE);
    CU_ASSERT_EQUAL(used, s.len);
    CU_ASSERT_EQUAL(r.state, PROTO_BEGIN);
    CU_ASSERT_TRUE(buf_is(&r.reply, want, wlen));
    proto_free(&r);
    buf_free(&s);
}

#define GVR_CONNS   "\x01\x0a\x00\x00\x00\x12\x00\x00" "\x0e\x02" \
    "FCGI_MAX_CONNS" "16"
#define GVR_REQS    "\x01\x0a\x00\x00\x00\x11\x00\x00" "\x0d\x02" \
    "FCGI_MAX_REQS" "16"
#define GVR_MPXS    "\x01\x0a\x00\x00\x00\x12\x00\x00" "\x0f\x01" \
    "FCGI_MPXS_CONNS" "0"

/* Each variable: answered with the real limits, exact bytes. */
static void
test_get_values_each(void)
{
    struct buf p = { 0 };

    nv(&p, FCGI_MAX_CONNS, "");
    check_get_values(&p, GVR_CONNS, sizeof GVR_CONNS - 1);
    buf_free(&p);
    nv(&p, FCGI_MAX_REQS, "");
    check_get_values(&p, GVR_REQS, sizeof GVR_REQS - 1);
    buf_free(&p);
    nv(&p, FCGI_MPXS_CONNS, "");
    check_get_values(&p, GVR_MPXS, sizeof GVR_MPXS - 1);
    buf_free(&p);
}

/* All three, one asked four times, unknown names and prefixes ignored. */
static void
test_get_values_repeated_unknown(void)
{
    static const char want[] =
        "\x01\x0a\x00\x00\x00\x35\x00\x00"
        "\x0e\x02" "FCGI_MAX_CONNS" "16"
        "\x0d\x02" "FCGI_MAX_REQS" "16"
        "\x0f\x01" "FCGI_MPXS_CONNS" "0";
    struct buf        p = { 0 };
    int               i;

    for (i = 0; i < 4; i++)
        nv(&p, FCGI_MAX_CONNS, "");
    nv(&p, "FCGI_MAX_CONN", "");
    nv(&p, "FCGI_MAX_CONNSX", "");
    nv(&p, "NOT_A_VARIABLE", "");
    nv(&p, FCGI_MAX_REQS, "");
    nv(&p, FCGI_MPXS_CONNS, "");
    nv(&p, FCGI_MAX_REQS, "");
    check_get_values(&p, want, sizeof want - 1);
    buf_free(&p);

    /* Only unknown names: an empty answer. */
    nv(&p, "FOO", "");
    check_get_values(&p, "\x01\x0a\x00\x00\x00\x00\x00\x00", 8);
    buf_free(&p);
}

/* Any other management type: FCGI_UNKNOWN_TYPE naming it; nothing kept. */
static void
test_unknown_management_type(void)
{
    static const unsigned char want[] = {
        1, FCGI_UNKNOWN_TYPE, 0, 0, 0, 8, 0, 0, 42, 0, 0, 0, 0, 0, 0, 0,
        1, FCGI_UNKNOWN_TYPE, 0, 0, 0, 8, 0, 0, 0xff, 0, 0, 0, 0, 0, 0, 0,
        1, FCGI_UNKNOWN_TYPE, 0, 0, 0, 8, 0, 0, FCGI_BEGIN_REQUEST, 0, 0, 0,
        0, 0, 0, 0
    };
    struct proto_req  r;
    struct buf        s = { 0 };
    size_t            used;

    memset(&r, 0, sizeof r);
    rec(&s, 42, 0, "abc", 3);
    rec_pad(&s, 0xff, 0, NULL, 0, 0);
    begin(&s, 0, FCGI_RESPONDER, 0);            /* id 0: management */
    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_MORE);
    CU_ASSERT_EQUAL(used, s.len);
    CU_ASSERT_EQUAL(r.state, PROTO_BEGIN);
    CU_ASSERT_TRUE(buf_is(&r.reply, want, sizeof want));
    proto_free(&r);
    buf_free(&s);
}

/* Role AUTHORIZER: FCGI_UNKNOWN_ROLE; the connection is closed, unless
 * kept, in which case the next request is read. */
static void
test_role_authorizer(void)
{
    unsigned char     want[16];
    struct proto_req  r;
    struct buf        s = { 0 }, p = { 0 };
    size_t            used;

    end_request_bytes(want, ID, FCGI_UNKNOWN_ROLE);
    memset(&r, 0, sizeof r);
    begin(&s, ID, FCGI_AUTHORIZER, 0);
    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_CLOSE);
    CU_ASSERT_PTR_NOT_NULL(r.error);
    CU_ASSERT_TRUE(buf_is(&r.reply, want, sizeof want));
    proto_free(&r);
    buf_free(&s);

    memset(&r, 0, sizeof r);
    begin(&s, ID, FCGI_AUTHORIZER, FCGI_KEEP_CONN);
    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_MORE);
    CU_ASSERT_EQUAL(used, s.len);
    CU_ASSERT_EQUAL(r.state, PROTO_BEGIN);
    CU_ASSERT_PTR_NULL(r.error);
    CU_ASSERT_TRUE(buf_is(&r.reply, want, sizeof want));
    buf_free(&r.reply);
    /* Its params are ignored; the next request is read. */
    nv(&p, "ROLE", "authorizer");
    rec(&s, FCGI_PARAMS, ID, p.data, p.len);
    buf_free(&p);
    nv(&p, "ROLE", "responder");
    request(&s, 2, 0, &p, "x");
    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_READY);
    CU_ASSERT_EQUAL(r.id, 2);
    CU_ASSERT_EQUAL_FATAL(env_count(r.envp), 1);
    CU_ASSERT_STRING_EQUAL(r.envp[0], "ROLE=responder");
    /* the UNKNOWN_ROLE again: the BEGIN was fed twice */
    CU_ASSERT_TRUE(buf_is(&r.reply, want, sizeof want));
    proto_free(&r);
    buf_free(&s);
    buf_free(&p);
}

/* Another id while a request is read: FCGI_CANT_MPX_CONN for it, its
 * records ignored, the first request read whole. */
static void
test_cant_mpx_conn(void)
{
    unsigned char     want[16];
    struct proto_req  r;
    struct buf        s = { 0 }, p = { 0 }, evil = { 0 };
    size_t            used;

    memset(&r, 0, sizeof r);
    end_request_bytes(want, 0x0102, FCGI_CANT_MPX_CONN);
    nv(&p, "REQUEST_METHOD", "POST");
    nv(&evil, "EVIL", "1");
    begin(&s, ID, FCGI_RESPONDER, 0);
    rec(&s, FCGI_PARAMS, ID, p.data, p.len);
    begin(&s, 0x0102, FCGI_RESPONDER, FCGI_KEEP_CONN);
    rec(&s, FCGI_PARAMS, 0x0102, evil.data, evil.len);
    rec(&s, FCGI_PARAMS, 0x0102, NULL, 0);
    rec(&s, FCGI_PARAMS, ID, NULL, 0);
    rec(&s, FCGI_STDIN, 0x0102, "evil", 4);
    rec(&s, FCGI_STDIN, ID, "body", 4);
    rec(&s, FCGI_DATA, ID, "data", 4);          /* not for a responder */
    rec(&s, FCGI_STDIN, 0x0102, NULL, 0);
    rec(&s, FCGI_STDIN, ID, NULL, 0);

    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_READY);
    CU_ASSERT_EQUAL(used, s.len);
    CU_ASSERT_EQUAL(r.id, ID);
    CU_ASSERT_EQUAL(r.keep_conn, 0);
    CU_ASSERT_TRUE(buf_is(&r.reply, want, sizeof want));
    CU_ASSERT_EQUAL_FATAL(env_count(r.envp), 1);
    CU_ASSERT_STRING_EQUAL(r.envp[0], "REQUEST_METHOD=POST");
    CU_ASSERT_TRUE(buf_is(&r.body, "body", 4));
    /* proto_reset() keeps the reply (not sent yet); proto_free() not. */
    proto_reset(&r);
    CU_ASSERT_TRUE(buf_is(&r.reply, want, sizeof want));
    proto_free(&r);
    CU_ASSERT_PTR_NULL(r.reply.data);
    CU_ASSERT_EQUAL(r.reply.len, 0);
    buf_free(&s);
    buf_free(&p);
    buf_free(&evil);
}

/* FCGI_ABORT_REQUEST while the params are read: FCGI_END_REQUEST; close
 * without FCGI_KEEP_CONN, with it forget the request and read the next. */
static void
test_abort_during_params(void)
{
    unsigned char     want[16];
    struct proto_req  r;
    struct buf        s = { 0 }, p = { 0 }, p2 = { 0 };
    size_t            used;

    end_request_bytes(want, ID, FCGI_REQUEST_COMPLETE);
    nv(&p, "REQUEST_METHOD", "GET");
    nv(&p2, "NEXT", "yes");

    memset(&r, 0, sizeof r);
    begin(&s, ID, FCGI_RESPONDER, 0);
    rec(&s, FCGI_PARAMS, ID, p.data, p.len);
    rec(&s, FCGI_ABORT_REQUEST, 7, NULL, 0);    /* another id: ignored */
    rec(&s, FCGI_ABORT_REQUEST, ID, NULL, 0);
    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_CLOSE);
    CU_ASSERT_PTR_NOT_NULL(r.error);
    CU_ASSERT_TRUE(buf_is(&r.reply, want, sizeof want));
    proto_free(&r);
    buf_free(&s);

    memset(&r, 0, sizeof r);
    begin(&s, ID, FCGI_RESPONDER, FCGI_KEEP_CONN);
    rec(&s, FCGI_PARAMS, ID, p.data, p.len);
    rec(&s, FCGI_ABORT_REQUEST, ID, NULL, 0);
    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_MORE);
    CU_ASSERT_EQUAL(used, s.len);
    CU_ASSERT_EQUAL(r.state, PROTO_BEGIN);
    CU_ASSERT_EQUAL(r.params.len, 0);
    CU_ASSERT_TRUE(buf_is(&r.reply, want, sizeof want));
    /* The next request on the connection: only its own params. */
    buf_free(&r.reply);
    buf_free(&s);
    request(&s, ID, FCGI_KEEP_CONN, &p2, "");
    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_READY);
    CU_ASSERT_EQUAL_FATAL(env_count(r.envp), 1);
    CU_ASSERT_STRING_EQUAL(r.envp[0], "NEXT=yes");
    CU_ASSERT_EQUAL(r.reply.len, 0);
    proto_free(&r);
    buf_free(&s);

    /* During the body, kept: the body is forgotten too. */
    memset(&r, 0, sizeof r);
    begin(&s, ID, FCGI_RESPONDER, FCGI_KEEP_CONN);
    params_cut(&s, ID, &p, NULL, 0);
    rec(&s, FCGI_STDIN, ID, "part", 4);
    rec(&s, FCGI_ABORT_REQUEST, ID, NULL, 0);
    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_MORE);
    CU_ASSERT_EQUAL(r.state, PROTO_BEGIN);
    CU_ASSERT_EQUAL(r.body.len, 0);
    CU_ASSERT_PTR_NULL(r.envp);
    CU_ASSERT_TRUE(buf_is(&r.reply, want, sizeof want));
    proto_free(&r);
    buf_free(&s);
    buf_free(&p);
    buf_free(&p2);
}

/* Records out of order: close. */
static void
test_protocol_errors(void)
{
    struct proto_req  r;
    struct buf        s = { 0 }, p = { 0 };
    size_t            used;

    nv(&p, "A", "1");

    /* FCGI_STDIN before the end of the params */
    memset(&r, 0, sizeof r);
    begin(&s, ID, FCGI_RESPONDER, 0);
    rec(&s, FCGI_PARAMS, ID, p.data, p.len);
    rec(&s, FCGI_STDIN, ID, "x", 1);
    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_CLOSE);
    CU_ASSERT_PTR_NOT_NULL(r.error);
    proto_free(&r);
    buf_free(&s);

    /* a second FCGI_BEGIN_REQUEST for the request being read */
    memset(&r, 0, sizeof r);
    begin(&s, ID, FCGI_RESPONDER, 0);
    begin(&s, ID, FCGI_RESPONDER, 0);
    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_CLOSE);
    CU_ASSERT_PTR_NOT_NULL(r.error);
    proto_free(&r);
    buf_free(&s);

    /* an FCGI_BEGIN_REQUEST body that is not 8 bytes */
    memset(&r, 0, sizeof r);
    rec(&s, FCGI_BEGIN_REQUEST, ID, "\x00\x01\x00", 3);
    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_CLOSE);
    CU_ASSERT_PTR_NOT_NULL(r.error);
    proto_free(&r);
    buf_free(&s);
    buf_free(&p);
}

/* ---- proto_feed: limits and hostile lengths ------------------------ */

/* Params over max_params: ready at once, rejected, with an empty envp;
 * exactly max_params is taken. */
static void
test_params_too_large(void)
{
    struct proto_limits l = lim;
    struct proto_req    r;
    struct buf          s = { 0 }, p = { 0 };
    char                v[300];
    size_t              used, at, i;

    memset(v, 'v', sizeof v);
    for (i = 0; i < 3; i++)
        nv_raw(&p, "N", 1, v, sizeof v);   /* 3 pairs of 306 bytes: 918 */
    l.max_params = p.len;

    memset(&r, 0, sizeof r);
    begin(&s, ID, FCGI_RESPONDER, 0);
    rec(&s, FCGI_PARAMS, ID, p.data, 500);
    rec(&s, FCGI_PARAMS, ID, p.data + 500, p.len - 500);
    rec(&s, FCGI_PARAMS, ID, NULL, 0);
    rec(&s, FCGI_STDIN, ID, NULL, 0);
    CU_ASSERT_EQUAL(feed(&r, &l, &s, &used), PROTO_READY);
    CU_ASSERT_EQUAL(r.reject, PROTO_OK);
    CU_ASSERT_EQUAL(env_count(r.envp), 3);
    proto_free(&r);
    buf_free(&s);

    /* One byte more, in the second record. */
    l.max_params = p.len - 1;
    memset(&r, 0, sizeof r);
    begin(&s, ID, FCGI_RESPONDER, 0);
    rec(&s, FCGI_PARAMS, ID, p.data, 500);
    rec(&s, FCGI_PARAMS, ID, p.data + 500, p.len - 500);
    at = s.len;
    rec(&s, FCGI_PARAMS, ID, NULL, 0);
    rec(&s, FCGI_STDIN, ID, NULL, 0);
    CU_ASSERT_EQUAL(feed(&r, &l, &s, &used), PROTO_READY);
    CU_ASSERT_EQUAL(used, at);
    CU_ASSERT_EQUAL(r.reject, PROTO_PARAMS_TOO_LARGE);
    CU_ASSERT_EQUAL(r.state, PROTO_DONE);
    CU_ASSERT_EQUAL(r.params.len, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.envp);
    CU_ASSERT_PTR_NULL(r.envp[0]);
    proto_free(&r);
    buf_free(&s);
    buf_free(&p);
}

/* Request with CONTENT_LENGTH cl and a body of blen bytes of 'b'. */
static void
body_request(struct buf *s, const char *cl, size_t blen, size_t *params_end)
{
    struct buf  p = { 0 };
    char       *body = calloc(1, blen + 1);

    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    memset(body, 'b', blen);
    nv(&p, "REQUEST_METHOD", "POST");
    if (cl != NULL)
        nv(&p, "CONTENT_LENGTH", cl);
    begin(s, ID, FCGI_RESPONDER, 0);
    params_cut(s, ID, &p, NULL, 0);
    *params_end = s->len;
    stdin_pieces(s, ID, body, blen, 600);
    free(body);
    buf_free(&p);
}

/* CONTENT_LENGTH over max_body: rejected as soon as the params end. */
static void
test_content_length_too_large(void)
{
    static const char *const over[] = {
        "1001", "99999999999999999999999999999", "0001001"
    };
    struct proto_limits l = lim;
    struct proto_req    r;
    struct buf          s = { 0 };
    size_t              used, pend, i;

    l.max_body = 1000;
    for (i = 0; i < sizeof over / sizeof over[0]; i++) {
        memset(&r, 0, sizeof r);
        body_request(&s, over[i], 10, &pend);
        CU_ASSERT_EQUAL(feed(&r, &l, &s, &used), PROTO_READY);
        CU_ASSERT_EQUAL(used, pend);
        CU_ASSERT_EQUAL(r.reject, PROTO_BODY_TOO_LARGE);
        CU_ASSERT_EQUAL(r.body.len, 0);
        CU_ASSERT_PTR_NOT_NULL(r.envp);
        proto_free(&r);
        buf_free(&s);
    }
    /* Exactly max_body, or not a number: read on. */
    memset(&r, 0, sizeof r);
    body_request(&s, "1000", 1000, &pend);
    CU_ASSERT_EQUAL(feed(&r, &l, &s, &used), PROTO_READY);
    CU_ASSERT_EQUAL(used, s.len);
    CU_ASSERT_EQUAL(r.reject, PROTO_OK);
    CU_ASSERT_EQUAL(r.body.len, 1000);
    proto_free(&r);
    buf_free(&s);
    memset(&r, 0, sizeof r);
    body_request(&s, "12x", 3, &pend);
    CU_ASSERT_EQUAL(feed(&r, &l, &s, &used), PROTO_READY);
    CU_ASSERT_EQUAL(r.reject, PROTO_OK);
    CU_ASSERT_EQUAL(r.body.len, 3);
    proto_free(&r);
    buf_free(&s);
}

/* A body over max_body (none declared): rejected at the record that goes
 * over, the body dropped. */
static void
test_body_too_large(void)
{
    struct proto_limits l = lim;
    struct proto_req    r;
    struct buf          s = { 0 };
    size_t              used, pend, want_used;

    l.max_body = 1000;
    memset(&r, 0, sizeof r);
    body_request(&s, NULL, 1001, &pend);
    /* pieces of 600: the second (padded to 8: 608 + 8) goes over */
    want_used = pend + (8 + 600) + (8 + 401 + 7);
    CU_ASSERT_EQUAL(feed(&r, &l, &s, &used), PROTO_READY);
    CU_ASSERT_EQUAL(used, want_used);
    CU_ASSERT_EQUAL(r.reject, PROTO_BODY_TOO_LARGE);
    CU_ASSERT_EQUAL(r.state, PROTO_DONE);
    CU_ASSERT_EQUAL(r.body.len, 0);
    proto_free(&r);
    buf_free(&s);

    /* Declared small, sent large. */
    memset(&r, 0, sizeof r);
    body_request(&s, "10", 5000, &pend);
    CU_ASSERT_EQUAL(feed(&r, &l, &s, &used), PROTO_READY);
    CU_ASSERT_EQUAL(r.reject, PROTO_BODY_TOO_LARGE);
    CU_ASSERT_TRUE(used < s.len);
    proto_free(&r);
    buf_free(&s);
}

/* Feed params p (in records of at most 65535 bytes) and expect a close,
 * with no allocation over 1 MiB. */
static void
check_malformed_params(const struct buf *p)
{
    struct proto_limits l = lim;
    struct proto_req    r;
    struct buf          s = { 0 };
    size_t              used, off, n;

    l.max_params = 1 << 20;
    memset(&r, 0, sizeof r);
    begin(&s, ID, FCGI_RESPONDER, 0);
    for (off = 0; off < p->len; off += n) {
        n = p->len - off < 65535 ? p->len - off : 65535;
        rec(&s, FCGI_PARAMS, ID, p->data + off, n);
    }
    rec(&s, FCGI_PARAMS, ID, NULL, 0);
    rec(&s, FCGI_STDIN, ID, NULL, 0);
    alloc_max = 0;
    alloc_watch = 1;
    CU_ASSERT_EQUAL(feed(&r, &l, &s, &used), PROTO_CLOSE);
    alloc_watch = 0;
    CU_ASSERT_PTR_NOT_NULL(r.error);
    CU_ASSERT_PTR_NULL(r.envp);
    CU_ASSERT_TRUE(alloc_max > 0);          /* the wrappers are in use */
    CU_ASSERT_TRUE(alloc_max < (1u << 20));
    proto_free(&r);
    buf_free(&s);
}

/* Pair lengths past the end of the params: close, allocate nothing big. */
static void
test_malformed_pair_lengths(void)
{
    struct buf p = { 0 };

    /* a 4-byte value length pointing past the end */
    nv(&p, "OK", "1");
    nv_len(&p, 4, 0);
    nv_len(&p, 1000, 1);
    add_str(&p, "NAMEvalue");
    check_malformed_params(&p);
    buf_free(&p);

    /* 1 GiB of name and 1 GiB of value declared, 8 bytes there */
    nv_len(&p, 1u << 30, 1);
    nv_len(&p, 1u << 30, 1);
    check_malformed_params(&p);
    buf_free(&p);

    /* the largest lengths, a little data */
    nv_len(&p, 0x7fffffff, 1);
    nv_len(&p, 0x7fffffff, 1);
    add_str(&p, "abcdefgh");
    check_malformed_params(&p);
    buf_free(&p);

    /* a 4-byte length cut short */
    nv(&p, "OK", "1");
    add(&p, "\x80\x00", 2);
    check_malformed_params(&p);
    buf_free(&p);

    /* a name length and no value length */
    nv(&p, "OK", "1");
    add(&p, "\x03", 1);
    check_malformed_params(&p);
    buf_free(&p);
}

/* A reply past PROTO_REPLY_MAX stops the reading until it is sent. */
static void
test_reply_max(void)
{
    struct proto_req  r;
    struct buf        s = { 0 };
    size_t            used, n = 5000, i;

    memset(&r, 0, sizeof r);
    for (i = 0; i < n; i++)
        rec_pad(&s, 42, 0, NULL, 0, 0);     /* 8 bytes in, 16 out */
    CU_ASSERT_EQUAL(feed(&r, &lim, &s, &used), PROTO_MORE);
    CU_ASSERT_TRUE(used < s.len);
    CU_ASSERT_EQUAL(used, PROTO_REPLY_MAX / 16 * 8);
    CU_ASSERT_EQUAL(r.reply.len, PROTO_REPLY_MAX);
    /* Still full: nothing more is consumed. */
    CU_ASSERT_EQUAL(proto_feed(&r, &lim, (const unsigned char *)s.data +
        used, s.len - used, &i), PROTO_MORE);
    CU_ASSERT_EQUAL(i, 0);
    /* Sent: the rest is read. */
    buf_free(&r.reply);
    CU_ASSERT_EQUAL(proto_feed(&r, &lim, (const unsigned char *)s.data +
        used, s.len - used, &i), PROTO_MORE);
    CU_ASSERT_EQUAL(used + i, s.len);
    CU_ASSERT_EQUAL(r.reply.len, (n - PROTO_REPLY_MAX / 16) * 16);
    proto_free(&r);
    buf_free(&s);
}

/* proto_end_request(): the exact record. */
static void
test_end_request_bytes(void)
{
    unsigned char want[16];
    struct buf    b = { 0 };

    end_request_bytes(want, 0xabcd, FCGI_OVERLOADED);
    CU_ASSERT_EQUAL(proto_end_request(&b, 0xabcd, FCGI_OVERLOADED), 0);
    CU_ASSERT_TRUE(buf_is(&b, want, sizeof want));
    buf_free(&b);
}

/* ---- proto_out and proto_send -------------------------------------- */

/* A proto_out with its buffer, or NULL. */
static struct proto_out *
out_new(void)
{
    struct proto_out *o = calloc(1, sizeof *o);

    if (o != NULL && (o->buf = calloc(1, PROTO_OUT_BUF)) == NULL) {
        free(o);
        return NULL;
    }
    return o;
}

/* Free what out_new() returned. */
static void
out_free(struct proto_out *o)
{
    if (o != NULL)
        free(o->buf);
    free(o);
}

/* A SOCK_SEQPACKET socketpair: one message per write of proto.c. */
static void
seqpacket(int sv[2])
{
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
        sv) == 0);
}

/* Receive one message (without waiting: it was sent before); its length,
 * or -1 if there is none. */
static ssize_t
msg(int fd, unsigned char *p, size_t n)
{
    return recv(fd, p, n, MSG_DONTWAIT);
}

/*
 * Check that p[0..n) is whole records of id: FCGI_STDOUT records of at most
 * PROTO_OUT_SIZE content padded with zeros to 8, their content appended to
 * content; count the empty FCGI_STDOUT and the FCGI_END_REQUEST (status
 * 0, 0) records.  Return the number of records, or -1 if malformed.
 */
static int
parse_out(const unsigned char *p, size_t n, unsigned id, struct buf *content,
    int *empty, int *end)
{
    size_t off = 0, clen, pad, i;
    int    nrec = 0;

    while (off < n) {
        if (n - off < 8 || p[off] != 1 ||
            (((unsigned)p[off + 2] << 8) | p[off + 3]) != id)
            return -1;
        clen = ((size_t)p[off + 4] << 8) | p[off + 5];
        pad = p[off + 6];
        if (n - off < 8 + clen + pad)
            return -1;
        if (p[off + 1] == FCGI_STDOUT) {
            if (clen > PROTO_OUT_SIZE || pad != (8 - clen % 8) % 8 ||
                *end > 0)
                return -1;
            for (i = 0; i < pad; i++) {
                if (p[off + 8 + clen + i] != 0)
                    return -1;
            }
            if (clen == 0)
                (*empty)++;
            else if (*empty > 0)
                return -1;      /* content after the end of the stream */
            add(content, p + off + 8, clen);
        } else if (p[off + 1] == FCGI_END_REQUEST) {
            static const unsigned char zero[8];

            if (clen != 8 || memcmp(p + off + 8, zero, 8) != 0)
                return -1;
            (*end)++;
        } else {
            return -1;
        }
        off += 8 + clen + pad;
        nrec++;
    }
    return nrec;
}

/* A small response: nothing sent before the end, then one write of the
 * content record, the empty FCGI_STDOUT and FCGI_END_REQUEST. */
static void
test_out_small(void)
{
    static const unsigned char want[] = {
        1, FCGI_STDOUT, 0, 7, 0, 5, 3, 0, 'h', 'e', 'l', 'l', 'o', 0, 0, 0,
        1, FCGI_STDOUT, 0, 7, 0, 0, 0, 0,
        1, FCGI_END_REQUEST, 0, 7, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    };
    struct proto_out *o = out_new();
    unsigned char     m[1024];
    FCGX_Stream      *s;
    int               sv[2];

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    seqpacket(sv);
    s = proto_out_open(o, sv[0], 7);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(FCGX_PutStr("hel", 3, s), 3);
    CU_ASSERT_EQUAL(FCGX_PutStr("lo", 2, s), 2);
    CU_ASSERT_EQUAL(msg(sv[1], m, sizeof m), -1);   /* buffered */
    CU_ASSERT_EQUAL(proto_out_end(o), 0);
    CU_ASSERT_EQUAL(msg(sv[1], m, sizeof m), (ssize_t)sizeof want);
    CU_ASSERT_EQUAL(memcmp(m, want, sizeof want), 0);
    CU_ASSERT_EQUAL(msg(sv[1], m, sizeof m), -1);
    CU_ASSERT_EQUAL(FCGX_GetError(s), 0);
    CU_ASSERT_TRUE(proto_out_ok(o));

    /* Nothing written: the empty FCGI_STDOUT and the end only, sent
     * without touching the worker's buffer. */
    memset(o->buf, 0xa5, PROTO_OUT_BUF);
    s = proto_out_open(o, sv[0], 7);
    CU_ASSERT_EQUAL(FCGX_FFlush(s), 0);
    CU_ASSERT_EQUAL(msg(sv[1], m, sizeof m), -1);
    CU_ASSERT_EQUAL(proto_out_end(o), 0);
    CU_ASSERT_EQUAL(msg(sv[1], m, sizeof m), 24);
    CU_ASSERT_EQUAL(memcmp(m, want + 16, 24), 0);
    CU_ASSERT_EQUAL(o->buf[0], 0xa5);
    CU_ASSERT_EQUAL(o->buf[PROTO_OUT_BUF - 1], 0xa5);
    CU_ASSERT_EQUAL(memcmp(o->buf, o->buf + 1, PROTO_OUT_BUF - 1), 0);
    close(sv[0]);
    close(sv[1]);
    out_free(o);
}

/* A large response through FCGX_PutStr() and FCGX_FFlush(): full records
 * as the buffer fills, a record per flush, the rest with the end. */
static void
test_out_large(void)
{
    enum { TOTAL = 9003 + 11001 };
    struct proto_out *o = out_new();
    unsigned char    *m = malloc(65536);
    char             *data = malloc(TOTAL);
    struct buf        content = { 0 };
    FCGX_Stream      *s;
    ssize_t           n;
    int               sv[2], i, empty = 0, end = 0;

    CU_ASSERT_FATAL(o != NULL && m != NULL && data != NULL);
    for (i = 0; i < TOTAL; i++)
        data[i] = (char)(i * 7 + i / 251);
    seqpacket(sv);
    s = proto_out_open(o, sv[0], 300);
    for (i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(FCGX_PutStr(data + i * 3001, 3001, s), 3001);
    /* the buffer filled once: a full record */
    n = msg(sv[1], m, 65536);
    CU_ASSERT_EQUAL(n, 8 + PROTO_OUT_SIZE);
    CU_ASSERT_EQUAL(parse_out(m, (size_t)n, 300, &content, &empty, &end), 1);
    CU_ASSERT_EQUAL(msg(sv[1], m, 65536), -1);
    /* a flush: the 811 bytes buffered, padded with 5 */
    CU_ASSERT_EQUAL(FCGX_FFlush(s), 0);
    n = msg(sv[1], m, 65536);
    CU_ASSERT_EQUAL(n, 8 + 811 + 5);
    CU_ASSERT_EQUAL(parse_out(m, (size_t)n, 300, &content, &empty, &end), 1);
    CU_ASSERT_EQUAL(FCGX_FFlush(s), 0);             /* empty: no write */
    CU_ASSERT_EQUAL(msg(sv[1], m, 65536), -1);
    /* 11001 in one call: a full record now, 2809 with the end */
    CU_ASSERT_EQUAL(FCGX_PutStr(data + 9003, 11001, s), 11001);
    n = msg(sv[1], m, 65536);
    CU_ASSERT_EQUAL(n, 8 + PROTO_OUT_SIZE);
    CU_ASSERT_EQUAL(parse_out(m, (size_t)n, 300, &content, &empty, &end), 1);
    CU_ASSERT_EQUAL(proto_out_end(o), 0);
    n = msg(sv[1], m, 65536);
    CU_ASSERT_EQUAL(n, 8 + 2809 + 7 + 8 + 16);
    CU_ASSERT_EQUAL(parse_out(m, (size_t)n, 300, &content, &empty, &end), 3);
    CU_ASSERT_EQUAL(msg(sv[1], m, 65536), -1);
    CU_ASSERT_EQUAL(empty, 1);
    CU_ASSERT_EQUAL(end, 1);
    CU_ASSERT_TRUE(buf_is(&content, data, TOTAL));
    CU_ASSERT_TRUE(proto_out_ok(o));
    /* Ended: nothing more goes in. */
    CU_ASSERT_EQUAL(FCGX_PutStr("x", 1, s), -1);
    buf_free(&content);
    close(sv[0]);
    close(sv[1]);
    free(data);
    free(m);
    out_free(o);
}

/* A write to a closed peer: FCGX_GetError() says why, proto_out_ok()
 * turns false, the end fails with that errno. */
static void
test_out_closed_peer(void)
{
    struct proto_out *o = out_new();
    char             *big = calloc(1, 3 * PROTO_OUT_SIZE);
    FCGX_Stream      *s;
    int               sv[2];

    CU_ASSERT_FATAL(o != NULL && big != NULL);

    /* found by a flush */
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
        sv) == 0);
    close(sv[1]);
    s = proto_out_open(o, sv[0], ID);
    CU_ASSERT_EQUAL(FCGX_PutStr("Status: 200\r\n\r\n", 15, s), 15);
    CU_ASSERT_EQUAL(FCGX_GetError(s), 0);
    CU_ASSERT_TRUE(proto_out_ok(o));
    CU_ASSERT_EQUAL(FCGX_FFlush(s), -1);
    CU_ASSERT_EQUAL(FCGX_GetError(s), EPIPE);
    CU_ASSERT_FALSE(proto_out_ok(o));
    errno = 0;
    CU_ASSERT_EQUAL(proto_out_end(o), -1);
    CU_ASSERT_EQUAL(errno, EPIPE);

    /* found by a write larger than the buffer */
    s = proto_out_open(o, sv[0], ID);
    CU_ASSERT_EQUAL(FCGX_GetError(s), 0);
    CU_ASSERT_TRUE(proto_out_ok(o));
    (void)FCGX_PutStr(big, 3 * PROTO_OUT_SIZE, s);
    CU_ASSERT_EQUAL(FCGX_GetError(s), EPIPE);
    CU_ASSERT_FALSE(proto_out_ok(o));
    errno = 0;
    CU_ASSERT_EQUAL(proto_out_end(o), -1);
    CU_ASSERT_EQUAL(errno, EPIPE);

    /* found by the end itself */
    s = proto_out_open(o, sv[0], ID);
    CU_ASSERT_EQUAL(FCGX_PutStr("ok", 2, s), 2);
    errno = 0;
    CU_ASSERT_EQUAL(proto_out_end(o), -1);
    CU_ASSERT_EQUAL(errno, EPIPE);
    CU_ASSERT_EQUAL(FCGX_GetError(s), EPIPE);
    CU_ASSERT_FALSE(proto_out_ok(o));
    close(sv[0]);
    free(big);
    out_free(o);
}

/* Read what fd has now (without waiting) into got; bytes read. */
static size_t
drain(int fd, struct buf *got)
{
    char    chunk[16384];
    ssize_t n;
    size_t  total = 0;

    while ((n = recv(fd, chunk, sizeof chunk, MSG_DONTWAIT)) > 0) {
        add(got, chunk, (size_t)n);
        total += (size_t)n;
    }
    return total;
}

/*
 * proto_out_try() (the watcher's probes): on a full socket it sends what
 * fits of the record and keeps the rest owed; the stream's next write
 * sends the owed bytes first; nothing is lost or reordered, and the end
 * records follow.
 */
static void
test_out_try_full_socket(void)
{
    struct proto_out *o = out_new();
    struct buf        got = { 0 }, content = { 0 }, recs = { 0 };
    char              junk[4096];
    FCGX_Stream      *s;
    size_t            filled = 0, filled2 = 0, mark;
    ssize_t           n;
    int               sv[2], sz = 4096, empty = 0, end = 0, rounds = 0, rc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
        sv) == 0);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    memset(junk, 'j', sizeof junk);
    while ((n = send(sv[0], junk, sizeof junk, MSG_DONTWAIT)) > 0)
        filled += (size_t)n;
    CU_ASSERT_FATAL(filled > 0);

    s = proto_out_open(o, sv[0], ID);
    CU_ASSERT_EQUAL(FCGX_PutStr("probe ", 6, s), 6);
    /* Full: owed, and the next tries send nothing more. */
    CU_ASSERT_EQUAL(proto_out_try(s), 0);
    CU_ASSERT_TRUE(o->owed_len > 0);
    CU_ASSERT_EQUAL(proto_out_try(s), 0);
    CU_ASSERT_TRUE(proto_out_ok(o));
    /* The peer reads; a non-blocking try then sends the rest. */
    do {
        drain(sv[1], &got);
        rc = proto_out_try(s);
    } while (rc == 0 && ++rounds < 100000);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_EQUAL(o->owed_len, 0);
    drain(sv[1], &got);
    mark = got.len;
    /* Owed again, then a write of the handler: the owed bytes go first
     * (blocking), and the write is buffered behind them. */
    CU_ASSERT_EQUAL(FCGX_PutStr("x", 1, s), 1);
    while ((n = send(sv[0], junk, sizeof junk, MSG_DONTWAIT)) > 0)
        filled2 += (size_t)n;
    CU_ASSERT_EQUAL(proto_out_try(s), 0);
    drain(sv[1], &got);         /* room for the owed record */
    CU_ASSERT_EQUAL(FCGX_PutStr("body", 4, s), 4);
    CU_ASSERT_EQUAL(o->owed_len, 0);
    drain(sv[1], &got);
    CU_ASSERT_EQUAL(proto_out_end(o), 0);
    drain(sv[1], &got);

    /* Junk, a record, junk, the rest: without the junk, well-formed
     * records carrying "probe xbody". */
    CU_ASSERT_FATAL(got.len > mark + filled2 && mark > filled);
    add(&recs, got.data + filled, mark - filled);
    add(&recs, got.data + mark + filled2, got.len - mark - filled2);
    CU_ASSERT_EQUAL(parse_out((const unsigned char *)recs.data, recs.len,
        ID, &content, &empty, &end) > 0, 1);
    CU_ASSERT_TRUE(buf_is(&content, "probe xbody", 11));
    CU_ASSERT_EQUAL(empty, 1);
    CU_ASSERT_EQUAL(end, 1);
    close(sv[0]);
    close(sv[1]);
    buf_free(&got);
    buf_free(&content);
    buf_free(&recs);
    out_free(o);
}

/* proto_send() without waiting on a full socket: sends what fits, keeps
 * the rest; sends it all once the peer reads. */
static void
test_send_full_socket(void)
{
    enum { TOTAL = 1 << 20 };
    struct buf  b = { 0 }, got = { 0 };
    char       *data = malloc(TOTAL);
    int         sv[2], sz = 4096, rc, rounds = 0, i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    for (i = 0; i < TOTAL; i++)
        data[i] = (char)(i ^ (i >> 9));
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
        sv) == 0);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
    add(&b, data, TOTAL);

    CU_ASSERT_EQUAL(proto_send(sv[0], &b, 0), 0);
    CU_ASSERT_TRUE(b.len > 0 && b.len < TOTAL);
    CU_ASSERT_EQUAL(memcmp(b.data, data + (TOTAL - b.len), b.len), 0);
    /* Still full: nothing more goes, nothing is lost. */
    i = (int)b.len;
    CU_ASSERT_EQUAL(proto_send(sv[0], &b, 0), 0);
    CU_ASSERT_EQUAL((int)b.len, i);
    /* The peer reads: the rest goes, in as many rounds as it takes. */
    do {
        drain(sv[1], &got);
        rc = proto_send(sv[0], &b, 0);
    } while (rc == 0 && ++rounds < 100000);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_EQUAL(b.len, 0);
    drain(sv[1], &got);
    CU_ASSERT_TRUE(buf_is(&got, data, TOTAL));

    /* An empty buffer: all sent. */
    CU_ASSERT_EQUAL(proto_send(sv[0], &b, 0), 1);
    /* A closed peer: an error, waiting or not. */
    close(sv[1]);
    add(&b, "x", 1);
    CU_ASSERT_EQUAL(proto_send(sv[0], &b, 0), -1);
    CU_ASSERT_EQUAL(proto_send(sv[0], &b, 1), -1);
    close(sv[0]);
    buf_free(&b);
    buf_free(&got);
    free(data);
}

/* proto_send() waiting on a socket nobody reads: bounded by SO_SNDTIMEO. */
static void
test_send_wait_timeout(void)
{
    struct timeval tv = { 0, 50000 };
    struct buf     b = { 0 };
    char           chunk[65536];
    int            sv[2], i;

    memset(chunk, 'z', sizeof chunk);
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
        sv) == 0);
    CU_ASSERT_EQUAL(setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv,
        sizeof tv), 0);
    for (i = 0; i < 64; i++)
        add(&b, chunk, sizeof chunk);       /* 4 MiB: more than fits */
    CU_ASSERT_EQUAL(proto_send(sv[0], &b, 1), -1);
    close(sv[0]);
    close(sv[1]);
    buf_free(&b);
}

static CU_TestInfo request_tests[] = {
    { "whole request, then the next one", test_request_whole },
    { "KEEP_CONN, empty STDIN", test_request_keep_conn_empty_stdin },
    { "cut anywhere: not ready", test_request_partial },
    { "byte by byte as whole", test_request_bytewise },
    { "names empty or with '=' skipped", test_params_skipped_names },
    CU_TEST_INFO_NULL
};

static CU_TestInfo management_tests[] = {
    { "version not 1", test_version_not_1 },
    { "GET_VALUES: each variable", test_get_values_each },
    { "GET_VALUES: repeated, unknown", test_get_values_repeated_unknown },
    { "unknown management type", test_unknown_management_type },
    { "role AUTHORIZER", test_role_authorizer },
    { "another id: CANT_MPX_CONN", test_cant_mpx_conn },
    { "ABORT_REQUEST during the request", test_abort_during_params },
    { "records out of order", test_protocol_errors },
    { "END_REQUEST bytes", test_end_request_bytes },
    CU_TEST_INFO_NULL
};

static CU_TestInfo limit_tests[] = {
    { "params over max_params", test_params_too_large },
    { "CONTENT_LENGTH over max_body", test_content_length_too_large },
    { "body over max_body", test_body_too_large },
    { "malformed pair lengths", test_malformed_pair_lengths },
    { "reply over PROTO_REPLY_MAX", test_reply_max },
    CU_TEST_INFO_NULL
};

static CU_TestInfo out_tests[] = {
    { "small response, one write at the end", test_out_small },
    { "large response: records, flushes", test_out_large },
    { "closed peer", test_out_closed_peer },
    { "proto_out_try: full socket, owed bytes", test_out_try_full_socket },
    { "proto_send: full socket", test_send_full_socket },
    { "proto_send: wait bounded", test_send_wait_timeout },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "proto_feed requests", NULL, NULL, NULL, NULL, request_tests },
    { "proto_feed management and ids", NULL, NULL, NULL, NULL,
        management_tests },
    { "proto_feed limits", NULL, NULL, NULL, NULL, limit_tests },
    { "proto_out and proto_send", NULL, NULL, NULL, NULL, out_tests },
    CU_SUITE_INFO_NULL
};

int
main(void)
{
    return unit_run("test_proto", suites, 60);
}
