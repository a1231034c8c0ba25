/* SPDX-License-Identifier: MIT */
/*
 * proto.h - the FastCGI records fcgi-cancel reads and writes itself.
 *
 * Reading: proto_feed() takes the bytes of one connection as they come and
 * assembles one request (FCGI_BEGIN_REQUEST, FCGI_PARAMS, FCGI_STDIN) in
 * memory, within limits; it answers management records and the requests
 * it cannot take (another id on the same connection, another role) by
 * adding records to `reply`, which the caller sends before anything else.
 * It never blocks and never reads: the pool feeds it from a non-blocking
 * connection, so a connection holds no worker until its request is whole.
 *
 * Writing: proto_out is a libfcgi FCGX_Stream whose buffer empties into
 * FCGI_STDOUT records on the connection, so the response code writes with
 * FCGX_PutStr() and FCGX_FFlush() as before; proto_out_end() sends the rest,
 * the empty FCGI_STDOUT record and FCGI_END_REQUEST in one write.
 */
#ifndef PROTO_H
#define PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <fcgiapp.h>

#include "util.h"

enum proto_state {
    PROTO_BEGIN = 0,    /* waiting for FCGI_BEGIN_REQUEST */
    PROTO_PARAMS,       /* reading FCGI_PARAMS */
    PROTO_STDIN,        /* reading FCGI_STDIN */
    PROTO_DONE          /* read whole (or rejected): serve it */
};

enum proto_result {
    PROTO_MORE = 0,     /* every whole record consumed: feed more bytes */
    PROTO_READY,        /* the request is read (see `reject`): serve it */
    PROTO_CLOSE         /* send `reply`, then close: `error` says why */
};

enum proto_reject {
    PROTO_OK = 0,
    PROTO_BODY_TOO_LARGE,   /* body (or CONTENT_LENGTH) over max_body: 413 */
    PROTO_PARAMS_TOO_LARGE  /* params over max_params: 431 */
};

struct proto_limits {
    size_t      max_params;     /* bytes of FCGI_PARAMS content */
    size_t      max_body;       /* bytes of FCGI_STDIN content */
    int         max_reqs;       /* FCGI_MAX_CONNS/_REQS in GET_VALUES */
};

/* Stop consuming records while this much reply is waiting to be sent. */
#define PROTO_REPLY_MAX     65536

struct proto_req {
    enum proto_state    state;
    unsigned            id;         /* the request's id (state > BEGIN) */
    int                 keep_conn;  /* FCGI_KEEP_CONN was set */
    enum proto_reject   reject;     /* with PROTO_READY */
    struct buf          params;     /* raw name-value pairs */
    struct buf          body;
    char              **envp;       /* "NAME=value", NULL-terminated */
    struct buf          reply;      /* records to send first */
    const char         *error;      /* with PROTO_CLOSE; static string */
};

/* Free what r holds, reply included, and make it empty. */
void                proto_free(struct proto_req *r);

/* Forget the request (after it was served); keep what `reply` holds. */
void                proto_reset(struct proto_req *r);

/*
 * Consume whole records from data[0..len) and set *used to the bytes
 * consumed: all but a partial record at the end, unless the result is
 * PROTO_READY (the bytes after the request's last record are left, for the
 * next request) or `reply` grew past PROTO_REPLY_MAX (send it, then feed
 * the rest).  After PROTO_READY or PROTO_CLOSE, call proto_reset() or
 * proto_free() before feeding more.
 */
enum proto_result   proto_feed(struct proto_req *r,
                        const struct proto_limits *lim,
                        const unsigned char *data, size_t len, size_t *used);

/* What the bytes waiting on a connection whose request is being served are. */
enum proto_class {
    PROTO_CLASS_MORE = 0,   /* a record has begun; wait for the rest */
    PROTO_CLASS_ABORT,      /* FCGI_ABORT_REQUEST for the request served */
    PROTO_CLASS_STRAY       /* anything else: ignored, never cancels */
};

/*
 * Classify the len bytes buf that wait on a connection serving request id
 * reqid (the watcher peeks at them; the pool looks at what it read behind
 * the request).  For PROTO_CLASS_ABORT, *consume is the length of the whole
 * record; else 0.
 */
enum proto_class    proto_classify(const unsigned char *buf, size_t len,
                        int reqid, size_t *consume);

/* Append an FCGI_END_REQUEST record for id; 0, or -1 if out of memory. */
int                 proto_end_request(struct buf *b, unsigned id,
                        int protocol_status);

/* Content bytes an output record carries at most (libfcgi's default). */
#define PROTO_OUT_SIZE      8192

/* The bytes of a proto_out's buffer: header, content, padding, the empty
 * FCGI_STDOUT, FCGI_END_REQUEST. */
#define PROTO_OUT_BUF       (8 + PROTO_OUT_SIZE + 7 + 8 + 16)

struct proto_out {
    FCGX_Stream         s;
    int                 fd;
    unsigned            id;
    size_t              owed_off;   /* a record proto_out_try() could not */
    size_t              owed_len;   /* send whole: buf[off..off+len) */
    unsigned char      *buf;        /* PROTO_OUT_BUF bytes, the owner's: set
                                       before proto_out_open(); apart, so
                                       that an unused one is never touched */
};

/* Start the FCGI_STDOUT stream of request id on fd; return the stream. */
FCGX_Stream        *proto_out_open(struct proto_out *o, int fd, unsigned id);

/*
 * End the request: what is buffered, the empty FCGI_STDOUT record and an
 * FCGI_END_REQUEST (FCGI_REQUEST_COMPLETE), in one write.  Return 0, or -1
 * (errno set) if a write failed now or before.
 */
int                 proto_out_end(struct proto_out *o);

/*
 * Send what stream s holds without blocking: the content buffered as one
 * FCGI_STDOUT record, or what is left of the record a previous call could
 * not send whole.  What the socket does not take stays owed (nothing more
 * goes into the stream until then) and goes first, blocking, with the
 * stream's next write or its end.  A stream that is not a proto_out is
 * flushed (FCGX_FFlush()).  Return 1 if nothing is left, 0 if bytes are
 * owed (the socket is full), -1 if a write failed (the stream is failed).
 */
int                 proto_out_try(FCGX_Stream *s);

/* Has every write of the stream succeeded so far? */
int                 proto_out_ok(const struct proto_out *o);

/*
 * Send b on fd and drop what was sent: all of it (wait: blocking, bounded
 * by SO_SNDTIMEO), or what the socket takes now.  Return 1 if all went, 0
 * if some is left (the socket is full; only without wait), -1 on error.
 */
int                 proto_send(int fd, struct buf *b, int wait);

#endif /* PROTO_H */
