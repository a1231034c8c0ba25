/* SPDX-License-Identifier: MIT */
/*
 * proto.c - the FastCGI records fcgi-cancel reads and writes itself.
 *
 * DESIGN
 * ------
 * Why not libfcgi's reader: FCGX_Accept_r() reads a request with blocking
 * reads, so a connection that sends half a request holds its thread until
 * the read times out, and its record handling falls over on records that
 * any process able to reach the socket can send (libfcgi 2.4.2 in Debian
 * 12: an FCGI_GET_VALUES naming a variable four times overruns a stack
 * buffer; a param declaring 1 GiB + 1 GiB aborts in its allocator; every
 * unknown management record leaks memory).  Here the pool reads each
 * connection without blocking and feeds the bytes to proto_feed(), which
 * keeps no state but the request being assembled:
 *
 *   - only version 1 records; anything else closes the connection (it is
 *     not FastCGI, or not in step);
 *   - management records (id 0): FCGI_GET_VALUES is answered with the real
 *     limits (each variable once, however often it is asked for), any other
 *     type with FCGI_UNKNOWN_TYPE; nothing is kept;
 *   - FCGI_BEGIN_REQUEST: role RESPONDER starts the request; another role is
 *     answered FCGI_UNKNOWN_ROLE; a second id while one is being read gets
 *     FCGI_CANT_MPX_CONN (one request per connection at a time);
 *   - FCGI_PARAMS and FCGI_STDIN are collected up to max_params and
 *     max_body; past a limit the request is marked rejected and handed on
 *     at once, so the worker answers 431 or 413 without reading the rest;
 *   - FCGI_ABORT_REQUEST for the request being read ends it (answered with
 *     FCGI_END_REQUEST); records for ids not being read are ignored.
 *
 * Once a request is whole and runs, the bytes that arrive behind it are not
 * fed here but looked at with proto_classify(): the watcher peeks at them
 * (and the pool at what it read together with the request) to find an
 * FCGI_ABORT_REQUEST for the request; anything else waits, unread, for
 * proto_feed() after the response.
 *
 * The name-value pairs are decoded only when the params are whole, with
 * every length checked against what is there, into one allocation: the
 * pointer array followed by the "NAME=value" strings.  A name that is empty
 * or holds '=' or NUL is left out (it cannot be looked up by name).
 *
 * Writing: a proto_out is an FCGX_Stream (libfcgi's stream type, whose
 * emptyBuffProc is the extension point) over a buffer that leaves room for
 * the record header in front of the content and for the closing records
 * behind it, so the end of a small response is one write.  How a handler's
 * bytes reach proto_out_empty() and how a failed write there becomes a
 * cancel with FC_WRITE_ERROR is told in serve.c's DESIGN comment.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <fastcgi.h>

#include "proto.h"

/* Fill an 8-byte record header. */
static void
proto_header(unsigned char *h, int type, unsigned id, size_t len, size_t pad)
{
    h[0] = FCGI_VERSION_1;
    h[1] = (unsigned char)type;
    h[2] = (unsigned char)(id >> 8);
    h[3] = (unsigned char)id;
    h[4] = (unsigned char)(len >> 8);
    h[5] = (unsigned char)len;
    h[6] = (unsigned char)pad;
    h[7] = 0;
}

/* Append a whole record (len <= FCGI_MAX_LENGTH, no padding). */
static int
proto_record(struct buf *b, int type, unsigned id, const void *p,
    size_t len)
{
    unsigned char h[FCGI_HEADER_LEN];

    proto_header(h, type, id, len, 0);
    if (buf_add(b, h, sizeof h) != 0)
        return -1;
    return len > 0 ? buf_add(b, p, len) : 0;
}

int
proto_end_request(struct buf *b, unsigned id, int protocol_status)
{
    unsigned char body[8] = { 0, 0, 0, 0, (unsigned char)protocol_status };

    return proto_record(b, FCGI_END_REQUEST, id, body, sizeof body);
}

void
proto_reset(struct proto_req *r)
{
    buf_free(&r->params);
    buf_free(&r->body);
    free(r->envp);
    r->envp = NULL;
    r->state = PROTO_BEGIN;
    r->id = 0;
    r->keep_conn = 0;
    r->reject = PROTO_OK;
    r->error = NULL;
}

void
proto_free(struct proto_req *r)
{
    proto_reset(r);
    buf_free(&r->reply);
}

/*
 * Read a name-value length at p[*off] (1 byte, or 4 with the top bit set);
 * 0, or -1 if the bytes are not there.
 */
static int
nv_len(const unsigned char *p, size_t n, size_t *off, size_t *out)
{
    size_t o = *off;

    if (o >= n)
        return -1;
    if ((p[o] & 0x80) == 0) {
        *out = p[o];
        *off = o + 1;
        return 0;
    }
    if (n - o < 4)
        return -1;
    *out = ((size_t)(p[o] & 0x7f) << 24) | ((size_t)p[o + 1] << 16) |
        ((size_t)p[o + 2] << 8) | p[o + 3];
    *off = o + 4;
    return 0;
}

/*
 * Walk the pairs of p[0..n).  With envp NULL, count the pairs kept and the
 * bytes of their strings; else fill envp and the strings at s.  Return 0,
 * or -1 if a length points past the end.
 */
static int
nv_walk(const unsigned char *p, size_t n, size_t *count, size_t *bytes,
    char **envp, char *s)
{
    size_t off = 0, nl, vl;

    *count = *bytes = 0;
    while (off < n) {
        if (nv_len(p, n, &off, &nl) != 0 || nv_len(p, n, &off, &vl) != 0 ||
            nl > n - off || vl > n - off - nl)
            return -1;
        if (nl > 0 && memchr(p + off, '=', nl) == NULL &&
            memchr(p + off, '\0', nl) == NULL) {
            if (envp != NULL) {
                envp[*count] = s;
                memcpy(s, p + off, nl);
                s[nl] = '=';
                memcpy(s + nl + 1, p + off + nl, vl);
                s[nl + 1 + vl] = '\0';
                s += nl + vl + 2;
            }
            (*count)++;
            *bytes += nl + vl + 2;
        }
        off += nl + vl;
    }
    return 0;
}

/* Decode the params into r->envp; 0, or -1 (malformed or no memory). */
static int
proto_decode_params(struct proto_req *r)
{
    const unsigned char *p = (const unsigned char *)r->params.data;
    size_t               count, bytes, c2, b2;
    char               **envp;

    if (nv_walk(p, r->params.len, &count, &bytes, NULL, NULL) != 0) {
        r->error = "malformed FCGI_PARAMS";
        return -1;
    }
    if ((envp = malloc((count + 1) * sizeof *envp + bytes)) == NULL) {
        r->error = "out of memory";
        return -1;
    }
    nv_walk(p, r->params.len, &c2, &b2, envp, (char *)(envp + count + 1));
    envp[count] = NULL;
    r->envp = envp;
    buf_free(&r->params);
    return 0;
}

/* Is CONTENT_LENGTH, if given, over max?  (Malformed: the body decides.) */
static int
proto_declared_too_large(char **envp, size_t max)
{
    const char         *v = FCGX_GetParam("CONTENT_LENGTH", envp);
    unsigned long long  n = 0;

    if (v == NULL || *v == '\0')
        return 0;
    for (; *v != '\0'; v++) {
        if (*v < '0' || *v > '9')
            return 0;
        if (n <= max)           /* stops growing once past max */
            n = n * 10 + (unsigned)(*v - '0');
    }
    return n > max;
}

/* Answer FCGI_GET_VALUES: each known variable asked for, once. */
static int
proto_get_values(struct proto_req *r, const struct proto_limits *lim,
    const unsigned char *p, size_t n)
{
    static const char *names[] = {
        FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS
    };
    unsigned char      out[128];
    char               value[16];
    size_t             off = 0, nl, vl, o = 0, i, k;
    int                asked[3] = { 0, 0, 0 };

    while (off < n) {
        if (nv_len(p, n, &off, &nl) != 0 || nv_len(p, n, &off, &vl) != 0 ||
            nl > n - off || vl > n - off - nl)
            break;              /* answer what could be read */
        for (i = 0; i < nitems(names); i++) {
            if (nl == strlen(names[i]) && memcmp(p + off, names[i], nl) == 0)
                asked[i] = 1;
        }
        off += nl + vl;
    }
    for (i = 0; i < nitems(names); i++) {
        if (!asked[i])
            continue;
        k = (size_t)snprintf(value, sizeof value, "%d",
            i == 2 ? 0 : lim->max_reqs);
        out[o++] = (unsigned char)strlen(names[i]);
        out[o++] = (unsigned char)k;
        memcpy(out + o, names[i], strlen(names[i]));
        o += strlen(names[i]);
        memcpy(out + o, value, k);
        o += k;
    }
    return proto_record(&r->reply, FCGI_GET_VALUES_RESULT, 0, out, o);
}

/* Handle a management record (id 0). */
static int
proto_management(struct proto_req *r, const struct proto_limits *lim,
    int type, const unsigned char *p, size_t n)
{
    unsigned char body[8] = { (unsigned char)type };

    if (type == FCGI_GET_VALUES)
        return proto_get_values(r, lim, p, n);
    return proto_record(&r->reply, FCGI_UNKNOWN_TYPE, 0, body, sizeof body);
}

/* Handle FCGI_BEGIN_REQUEST; PROTO_MORE or PROTO_CLOSE. */
static enum proto_result
proto_begin(struct proto_req *r, unsigned id, const unsigned char *p,
    size_t n)
{
    int role, flags;

    if (n != 8) {
        r->error = "malformed FCGI_BEGIN_REQUEST";
        return PROTO_CLOSE;
    }
    role = (p[0] << 8) | p[1];
    flags = p[2];
    if (r->state != PROTO_BEGIN) {
        if (id == r->id) {
            r->error = "FCGI_BEGIN_REQUEST for the request being read";
            return PROTO_CLOSE;
        }
        if (proto_end_request(&r->reply, id, FCGI_CANT_MPX_CONN) != 0)
            goto nomem;
        return PROTO_MORE;
    }
    if (role != FCGI_RESPONDER) {
        if (proto_end_request(&r->reply, id, FCGI_UNKNOWN_ROLE) != 0)
            goto nomem;
        if (flags & FCGI_KEEP_CONN)
            return PROTO_MORE;
        r->error = "role not RESPONDER";
        return PROTO_CLOSE;
    }
    r->state = PROTO_PARAMS;
    r->id = id;
    r->keep_conn = (flags & FCGI_KEEP_CONN) != 0;
    return PROTO_MORE;

nomem:
    r->error = "out of memory";
    return PROTO_CLOSE;
}

/* Handle a record of the request being read; any result. */
static enum proto_result
proto_request_record(struct proto_req *r, const struct proto_limits *lim,
    int type, const unsigned char *p, size_t n)
{
    switch (type) {
    case FCGI_ABORT_REQUEST:
        if (proto_end_request(&r->reply, r->id, FCGI_REQUEST_COMPLETE) != 0) {
            r->error = "out of memory";
            return PROTO_CLOSE;
        }
        if (!r->keep_conn) {
            r->error = "aborted before it was read";
            return PROTO_CLOSE;
        }
        proto_reset(r);
        return PROTO_MORE;
    case FCGI_PARAMS:
        if (r->state != PROTO_PARAMS)
            break;
        if (n == 0) {
            if (proto_decode_params(r) != 0)
                return PROTO_CLOSE;
            r->state = PROTO_STDIN;
            if (proto_declared_too_large(r->envp, lim->max_body)) {
                r->reject = PROTO_BODY_TOO_LARGE;
                r->state = PROTO_DONE;
                return PROTO_READY;
            }
            return PROTO_MORE;
        }
        /* params.len <= max_params: only what fits is added. */
        if (n > lim->max_params - r->params.len) {
            buf_free(&r->params);
            if ((r->envp = calloc(1, sizeof *r->envp)) == NULL) {
                r->error = "out of memory";
                return PROTO_CLOSE;
            }
            r->reject = PROTO_PARAMS_TOO_LARGE;
            r->state = PROTO_DONE;
            return PROTO_READY;
        }
        if (buf_add(&r->params, p, n) != 0) {
            r->error = "out of memory";
            return PROTO_CLOSE;
        }
        return PROTO_MORE;
    case FCGI_STDIN:
        if (r->state != PROTO_STDIN) {
            r->error = "FCGI_STDIN before the end of FCGI_PARAMS";
            return PROTO_CLOSE;
        }
        if (n == 0) {
            r->state = PROTO_DONE;
            return PROTO_READY;
        }
        if (n > lim->max_body - r->body.len) {     /* as for params */
            buf_free(&r->body);
            r->reject = PROTO_BODY_TOO_LARGE;
            r->state = PROTO_DONE;
            return PROTO_READY;
        }
        if (buf_add(&r->body, p, n) != 0) {
            r->error = "out of memory";
            return PROTO_CLOSE;
        }
        return PROTO_MORE;
    default:
        break;                  /* FCGI_DATA and others: not for us */
    }
    return PROTO_MORE;
}

enum proto_result
proto_feed(struct proto_req *r, const struct proto_limits *lim,
    const unsigned char *data, size_t len, size_t *used)
{
    enum proto_result res = PROTO_MORE;
    size_t            off = 0, clen, total;
    unsigned          id;
    int               type;

    while (res == PROTO_MORE && r->reply.len < PROTO_REPLY_MAX &&
        len - off >= FCGI_HEADER_LEN) {
        const unsigned char *h = data + off;

        if (h[0] != FCGI_VERSION_1) {
            r->error = "not FastCGI (record version is not 1)";
            res = PROTO_CLOSE;
            break;
        }
        type = h[1];
        id = ((unsigned)h[2] << 8) | h[3];
        clen = ((size_t)h[4] << 8) | h[5];
        total = FCGI_HEADER_LEN + clen + h[6];
        if (len - off < total)
            break;                              /* a partial record */
        off += total;
        if (id == FCGI_NULL_REQUEST_ID) {
            if (proto_management(r, lim, type, h + FCGI_HEADER_LEN,
                clen) != 0) {
                r->error = "out of memory";
                res = PROTO_CLOSE;
            }
        } else if (type == FCGI_BEGIN_REQUEST) {
            res = proto_begin(r, id, h + FCGI_HEADER_LEN, clen);
        } else if (r->state != PROTO_BEGIN && id == r->id) {
            res = proto_request_record(r, lim, type, h + FCGI_HEADER_LEN,
                clen);
        }
        /* else: a record for no request being read: ignored */
    }
    *used = off;
    return res;
}

enum proto_class
proto_classify(const unsigned char *buf, size_t len, int reqid,
    size_t *consume)
{
    const FCGI_Header *h = (const FCGI_Header *)buf;
    size_t             total;
    int                id;

    *consume = 0;
    if (len < 1)
        return PROTO_CLASS_MORE;
    if (buf[0] != FCGI_VERSION_1)
        return PROTO_CLASS_STRAY;
    if (len < sizeof *h)
        return PROTO_CLASS_MORE;
    id = (h->requestIdB1 << 8) | h->requestIdB0;
    if (h->type != FCGI_ABORT_REQUEST || id != reqid)
        return PROTO_CLASS_STRAY;
    total = sizeof *h + (size_t)((h->contentLengthB1 << 8) |
        h->contentLengthB0) + h->paddingLength;
    if (len < total)
        return PROTO_CLASS_MORE;
    *consume = total;
    return PROTO_CLASS_ABORT;
}

/*
 * Send p[0..len) on fd until all of it went: blocking (each send bounded
 * by SO_SNDTIMEO), or with MSG_DONTWAIT in flags until the socket is full.
 * Return the bytes sent, or -1 on error.
 */
static ssize_t
proto_write(int fd, const void *p, size_t len, int flags)
{
    ssize_t n;
    size_t  off = 0;

    while (off < len) {
        n = send(fd, (const char *)p + off, len - off, MSG_NOSIGNAL | flags);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN && (flags & MSG_DONTWAIT))
                break;
            return -1;
        }
        off += (size_t)n;
    }
    return (ssize_t)off;
}

/*
 * Close the current FCGI_STDOUT record in o->buf: its header in front,
 * padding to 8 bytes behind; return the bytes from o->buf to send (0 if
 * the record is empty).
 */
static size_t
proto_out_seal(struct proto_out *o)
{
    size_t len = (size_t)(o->s.wrNext - (o->buf + FCGI_HEADER_LEN));
    size_t pad = (8 - len % 8) % 8;

    if (len == 0)
        return 0;
    proto_header(o->buf, FCGI_STDOUT, o->id, len, pad);
    memset(o->buf + FCGI_HEADER_LEN + len, 0, pad);
    return FCGI_HEADER_LEN + len + pad;
}

/* Mark the stream failed with errno (FCGX_GetError() reports it). */
static void
proto_out_fail(struct proto_out *o)
{
    if (o->s.FCGI_errno == 0)
        o->s.FCGI_errno = errno != 0 ? errno : EIO;
    o->s.isClosed = 1;
}

/*
 * Send, blocking, the rest of a record that proto_out_try() could not send
 * whole, and open the buffer again; return 0, or -1 if the write failed.
 */
static int
proto_out_settle(struct proto_out *o)
{
    if (o->owed_len == 0)
        return 0;
    if (proto_write(o->fd, o->buf + o->owed_off, o->owed_len, 0) < 0)
        return -1;
    o->owed_len = 0;
    o->s.wrNext = o->buf + FCGI_HEADER_LEN;
    return 0;
}

/*
 * The FCGX_Stream's emptyBuffProc, called by libfcgi (FCGX_PutStr() when
 * the buffer is full, FCGX_FFlush()): send the buffered content.
 */
static void
proto_out_empty(FCGX_Stream *s, int do_close)
{
    struct proto_out *o = s->data;
    size_t            n;

    if (proto_out_settle(o) != 0) {
        proto_out_fail(o);
        s->wrNext = s->stop;
        return;
    }
    n = proto_out_seal(o);
    if (do_close) {
        proto_header(o->buf + n, FCGI_STDOUT, o->id, 0, 0);
        n += FCGI_HEADER_LEN;
    }
    if (n > 0 && proto_write(o->fd, o->buf, n, 0) < 0) {
        proto_out_fail(o);
        s->wrNext = s->stop;        /* FCGX_PutStr() then returns -1 */
        return;
    }
    s->wrNext = o->buf + FCGI_HEADER_LEN;
}

FCGX_Stream *
proto_out_open(struct proto_out *o, int fd, unsigned id)
{
    memset(&o->s, 0, sizeof o->s);
    o->fd = fd;
    o->id = id;
    o->owed_off = o->owed_len = 0;
    o->s.wrNext = o->s.rdNext = o->s.stopUnget = o->buf + FCGI_HEADER_LEN;
    o->s.stop = o->buf + FCGI_HEADER_LEN + PROTO_OUT_SIZE;
    o->s.emptyBuffProc = proto_out_empty;
    o->s.data = o;
    return &o->s;
}

/*
 * Nothing buffered (a cancelled job's 499, an empty answer), the two
 * closing records go out from the stack: a worker's buffer is then never
 * touched, and its pages never faulted in, until a response has a body.
 */
int
proto_out_end(struct proto_out *o)
{
    unsigned char end[8] = { 0 }, tail[2 * FCGI_HEADER_LEN + 8], *b;
    size_t        n;

    if (o->s.isClosed) {
        errno = o->s.FCGI_errno > 0 ? o->s.FCGI_errno : EIO;
        return -1;
    }
    if (proto_out_settle(o) != 0) {
        proto_out_fail(o);
        return -1;
    }
    n = proto_out_seal(o);
    b = n > 0 ? o->buf : tail;
    proto_header(b + n, FCGI_STDOUT, o->id, 0, 0);
    n += FCGI_HEADER_LEN;
    proto_header(b + n, FCGI_END_REQUEST, o->id, sizeof end, 0);
    memcpy(b + n + FCGI_HEADER_LEN, end, sizeof end);
    n += FCGI_HEADER_LEN + sizeof end;
    o->s.isClosed = o->s.wasFCloseCalled = 1;
    o->s.wrNext = o->s.stop;            /* nothing more goes in */
    if (proto_write(o->fd, b, n, 0) < 0) {
        proto_out_fail(o);
        return -1;
    }
    return 0;
}

int
proto_out_try(FCGX_Stream *s)
{
    struct proto_out *o = s->data;
    ssize_t           sent;

    if (s->emptyBuffProc != proto_out_empty)
        return FCGX_FFlush(s) == 0 && FCGX_GetError(s) == 0 ? 1 : -1;
    if (s->isClosed)
        return -1;
    if (o->owed_len == 0) {
        if ((o->owed_len = proto_out_seal(o)) == 0)
            return 1;
        o->owed_off = 0;
        s->wrNext = s->stop;    /* the next write settles the rest first */
    }
    sent = proto_write(o->fd, o->buf + o->owed_off, o->owed_len,
        MSG_DONTWAIT);
    if (sent < 0) {
        proto_out_fail(o);
        return -1;
    }
    o->owed_off += (size_t)sent;
    o->owed_len -= (size_t)sent;
    if (o->owed_len > 0)
        return 0;
    s->wrNext = o->buf + FCGI_HEADER_LEN;
    return 1;
}

int
proto_out_ok(const struct proto_out *o)
{
    return o->s.FCGI_errno == 0;
}

int
proto_send(int fd, struct buf *b, int wait)
{
    ssize_t sent = proto_write(fd, b->data, b->len, wait ? 0 : MSG_DONTWAIT);

    if (sent < 0)
        return -1;
    if ((size_t)sent == b->len) {
        buf_free(b);
        return 1;
    }
    buf_consume(b, (size_t)sent);
    return 0;
}
