/* SPDX-License-Identifier: MIT */
/*
 * fuzz_fcgi.c - libFuzzer target for proto_feed() (proto.c), which reads
 * the FastCGI records a client sends on its connection: bytes from anyone
 * who can reach the socket.
 *
 * Input: the bytes the client sends, as they are (so the seeds are plain
 * FastCGI streams).  A hash of the input picks how they arrive: one time
 * in 16 the stream is the input repeated 8 times (a reply of more than
 * PROTO_REPLY_MAX needs more bytes than max_len allows), and the chunks
 * are drawn from a generator seeded by the hash: one byte at a time, up
 * to 8, up to 64, or sizes of every class mixed, up to 4096.
 *
 * The stream is fed twice as pool.c's worker_serve() feeds it: whole
 * (from an exactly sized copy, so that ASan sees any read past the end),
 * then chunk by chunk into a pending buffer of which proto_feed()'s *used
 * bytes are taken off.  Before each feed the reply is "sent" (appended to
 * a transcript, then dropped); on PROTO_READY the request is checked, its
 * params given to request_new() and its body to request_set_body() as
 * serve_request() does, then proto_reset() and feeding goes on with what
 * is left; on PROTO_CLOSE the connection ends.  Checked: the contract of
 * proto.h for each result (*used within what was given, a partial record
 * only left over by PROTO_MORE, `error` with PROTO_CLOSE only, the reply
 * bounded near PROTO_REPLY_MAX), every request read (envp NULL-terminated,
 * every entry "NAME=value" with a name, params within max_params, body
 * within max_body, a declared CONTENT_LENGTH over max_body rejected, a
 * rejected request empty), and that both feedings give the same
 * transcript: the same replies, the same requests, at the same points.
 * Small limits (max_params 4096, max_body 8192) so that inputs reach them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fastcgi.h>

#include "proto.h"
#include "request.h"
#include "util.h"

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz_fcgi: %s:%d: check failed: %s\n", \
        __FILE__, __LINE__, #cond); abort(); } } while (0)

#define MAX_PARAMS  4096
#define MAX_BODY    8192
#define REPEAT      8
/* The largest record one input record makes proto_feed() add to a reply
 * (a GET_VALUES_RESULT of the three variables is 8 + 71 bytes). */
#define REPLY_RECORD_MAX    (8 + 128)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct proto_limits lim = {
    .max_params = MAX_PARAMS, .max_body = MAX_BODY, .max_reqs = 16
};

/* What one feeding of the connection yields. */
struct run {
    struct buf  ev;         /* a line per request read and per close */
    struct buf  out;        /* every reply byte, in order */
};

/* FNV-1a. */
static uint32_t
hash(const uint8_t *d, size_t n)
{
    uint32_t h = 2166136261u;
    size_t   i;

    for (i = 0; i < n; i++)
        h = (h ^ d[i]) * 16777619u;
    return h;
}

/* xorshift32 (never seeded with 0). */
static uint32_t
next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static void
add(struct buf *b, const void *p, size_t n)
{
    CHECK(buf_add(b, p, n) == 0);
}

/* Send r's reply: into run->out. */
static void
send_reply(struct run *run, struct proto_req *r)
{
    if (r->reply.len > 0)
        add(&run->out, r->reply.data, r->reply.len);
    buf_free(&r->reply);
}

/* The value of the first "name=" entry of envp, or NULL. */
static const char *
param(char **envp, const char *name)
{
    size_t n = strlen(name);

    for (; *envp != NULL; envp++) {
        if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
            return *envp + n + 1;
    }
    return NULL;
}

/* Check the request r read, record it in run, serve it as pool.c does. */
static void
ready(struct run *run, struct proto_req *r)
{
    fc_request *req;
    const char *cl, *eq;
    size_t      i, bytes = 0;
    uint64_t    n = 0;

    CHECK(r->state == PROTO_DONE);
    CHECK(r->error == NULL);
    CHECK(r->id > 0 && r->id <= 0xffff);
    CHECK(r->keep_conn == 0 || r->keep_conn == 1);
    CHECK(r->reject == PROTO_OK || r->reject == PROTO_BODY_TOO_LARGE ||
        r->reject == PROTO_PARAMS_TOO_LARGE);
    CHECK(r->envp != NULL);
    CHECK(r->body.len <= MAX_BODY);
    for (i = 0; r->envp[i] != NULL; i++) {
        CHECK(i < MAX_PARAMS / 2);
        eq = strchr(r->envp[i], '=');
        CHECK(eq != NULL && eq != r->envp[i]);
        bytes += strlen(r->envp[i]) + 1;
        CHECK(bytes <= MAX_PARAMS);
    }
    if (r->reject != PROTO_OK)
        CHECK(r->body.len == 0);
    if (r->reject == PROTO_PARAMS_TOO_LARGE)
        CHECK(r->envp[0] == NULL);
    if (r->reject == PROTO_OK &&
        (cl = param(r->envp, "CONTENT_LENGTH")) != NULL &&
        cl[0] != '\0' && strspn(cl, "0123456789") == strlen(cl)) {
        for (; *cl != '\0' && n <= MAX_BODY; cl++)
            n = n * 10 + (uint64_t)(*cl - '0');
        CHECK(n <= MAX_BODY);
    }

    CHECK(buf_printf(&run->ev, "READY id=%u keep=%d reject=%d at=%zu "
        "body=%zu\n", r->id, r->keep_conn, (int)r->reject, run->out.len,
        r->body.len) == 0);
    add(&run->ev, r->body.data != NULL ? r->body.data : "", r->body.len);
    for (i = 0; r->envp[i] != NULL; i++)
        CHECK(buf_printf(&run->ev, "\n%s", r->envp[i]) == 0);
    add(&run->ev, "\n", 1);

    /* serve_request(): the params and the body go to the request. */
    CHECK((req = request_new(1, r->envp)) != NULL);
    CHECK(fc_request_path(req)[0] == '/');
    CHECK(fc_request_method(req) != NULL);
    if (r->reject == PROTO_OK) {
        request_set_body(req, r->body.data, r->body.len);
        r->body.data = NULL;
        r->body.len = r->body.size = 0;
    }
    request_free(req);
}

/*
 * Check one proto_feed() of len bytes at p that returned res with *used;
 * the reply was empty before it.
 */
static void
check_feed(const struct proto_req *r, enum proto_result res,
    const unsigned char *p, size_t len, size_t used)
{
    const unsigned char *rest = p + used;
    size_t               left = len - used;

    CHECK(used <= len);
    CHECK(r->reply.len < PROTO_REPLY_MAX + REPLY_RECORD_MAX);
    if (res == PROTO_CLOSE) {
        CHECK(r->error != NULL);
        return;
    }
    CHECK(res == PROTO_MORE || res == PROTO_READY);
    CHECK(r->error == NULL);
    if (res == PROTO_MORE && r->reply.len < PROTO_REPLY_MAX) {
        /* all but a partial record consumed (and a partial one is of
         * version 1, or it would have closed) */
        CHECK(left < FCGI_HEADER_LEN ||
            (rest[0] == FCGI_VERSION_1 &&
            left < FCGI_HEADER_LEN + (((size_t)rest[4] << 8) | rest[5]) +
            rest[6]));
        CHECK(r->state != PROTO_DONE);
    }
}

/* Feed all of d[0..len) at once, going on after each request. */
static void
feed_whole(const unsigned char *d, size_t len, struct run *run)
{
    struct proto_req  r;
    enum proto_result res;
    size_t            off = 0, used;

    memset(&r, 0, sizeof r);
    for (;;) {
        send_reply(run, &r);
        res = proto_feed(&r, &lim, d + off, len - off, &used);
        check_feed(&r, res, d + off, len - off, used);
        off += used;
        if (res == PROTO_READY) {
            send_reply(run, &r);
            ready(run, &r);
            proto_reset(&r);
            continue;
        }
        if (res == PROTO_CLOSE) {
            send_reply(run, &r);
            CHECK(buf_printf(&run->ev, "CLOSE at=%zu %s\n", run->out.len,
                r.error) == 0);
            break;
        }
        if (r.reply.len == 0)
            break;              /* a partial record, or nothing, is left */
    }
    proto_free(&r);
}

/* Size of the next chunk of at most left bytes. */
static size_t
chunk(uint32_t *rng, int mode, size_t left)
{
    uint32_t x = next(rng);
    size_t   n;

    switch (mode == 3 ? (int)(x & 3) : mode) {
    case 0:
        n = 1;
        break;
    case 1:
        n = 1 + (x >> 8) % 8;
        break;
    case 2:
        n = 1 + (x >> 8) % 64;
        break;
    default:
        n = 1 + (x >> 8) % 4096;
        break;
    }
    return n < left ? n : left;
}

/* Feed d[0..len) in chunks into a pending buffer, as worker_serve(). */
static void
feed_chunks(const unsigned char *d, size_t len, uint32_t seed, struct run *run)
{
    struct proto_req  r;
    struct buf        pending = { 0 };
    enum proto_result res;
    uint32_t          rng = seed | 1;
    size_t            off = 0, n, used;
    int               mode = (int)(seed >> 4) & 3, closed = 0;

    memset(&r, 0, sizeof r);
    while (off < len && !closed) {
        n = chunk(&rng, mode, len - off);
        add(&pending, d + off, n);
        off += n;
        for (;;) {
            send_reply(run, &r);
            if (pending.len == 0)
                break;
            res = proto_feed(&r, &lim, (const unsigned char *)pending.data,
                pending.len, &used);
            check_feed(&r, res, (const unsigned char *)pending.data,
                pending.len, used);
            buf_consume(&pending, used);    /* as pool.c does */
            if (res == PROTO_READY) {
                send_reply(run, &r);
                ready(run, &r);
                proto_reset(&r);
                continue;
            }
            if (res == PROTO_CLOSE) {
                send_reply(run, &r);
                CHECK(buf_printf(&run->ev, "CLOSE at=%zu %s\n",
                    run->out.len, r.error) == 0);
                closed = 1;
                break;
            }
            if (r.reply.len == 0)
                break;          /* a partial record: read more */
        }
    }
    proto_free(&r);
    buf_free(&pending);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run     whole = { { 0 }, { 0 } }, pieces = { { 0 }, { 0 } };
    unsigned char *stream;
    uint32_t       h = hash(data, size);
    size_t         len = size, i;

    if ((h >> 28) == 0 && size > 0)
        len = size * REPEAT;
    /* an exact copy: a read past the end is a heap overflow */
    CHECK((stream = malloc(len > 0 ? len : 1)) != NULL);
    for (i = 0; i < len; i += size)
        memcpy(stream + i, data, size);

    feed_whole(stream, len, &whole);
    feed_chunks(stream, len, h, &pieces);
    CHECK(whole.ev.len == pieces.ev.len &&
        (whole.ev.len == 0 ||
        memcmp(whole.ev.data, pieces.ev.data, whole.ev.len) == 0));
    CHECK(whole.out.len == pieces.out.len &&
        (whole.out.len == 0 ||
        memcmp(whole.out.data, pieces.out.data, whole.out.len) == 0));

    buf_free(&whole.ev);
    buf_free(&whole.out);
    buf_free(&pieces.ev);
    buf_free(&pieces.out);
    free(stream);
    return 0;
}
