/* SPDX-License-Identifier: MIT */
/*
 * serve.h - serving one request that a worker has read whole: route it,
 * run its handler under a cancel token watched by the watcher, end the
 * response, count and log how it ended.  The pool (pool.c) owns the
 * connection before and after; serve_request() tells it what to do with
 * the connection next.
 */
#ifndef SERVE_H
#define SERVE_H

#include <stdint.h>

#include "fcgi_cancel.h"
#include "proto.h"

struct watcher;
struct serve;

/* What the pool does with the connection after serve_request(). */
enum serve_verdict {
    SERVE_KEEP = 0,     /* in step and kept (FCGI_KEEP_CONN): read on */
    SERVE_CLOSE,        /* close it */
    SERVE_DISCARD       /* refused before it was read whole, answer sent:
                           half-close, read and drop until EOF */
};

/*
 * Return the server-wide state of serving: requests are routed by the
 * current configuration generation (generation.h; one must be published
 * before the first request), their tokens are children of server_tok, and
 * they are watched by watcher (the caller keeps both alive until
 * serve_free()).  NULL if out of memory.
 */
struct serve       *serve_new(fc_token *server_tok, struct watcher *watcher);

/* Free what serve_new() returned; NULL is a no-op. */
void                serve_free(struct serve *sv);

/*
 * Serve the request read whole in pr (proto_feed() said PROTO_READY) on
 * connection fd, whose number in the process is conn (the watcher keeps
 * it registered between requests; 0: not kept so; pooled: the pool's
 * epoll set holds it, see struct watch), on the worker that owns watcher
 * slot `slot` and output stream out.  pending holds the bytes read behind the request: an
 * FCGI_ABORT_REQUEST for it at their front is consumed (the request is
 * then cancelled at once), the rest is left for the next request.  pr is
 * reset on return (its reply kept).  Return the verdict on the connection.
 */
enum serve_verdict  serve_request(struct serve *sv, int slot,
                        struct proto_out *out, int fd, uint64_t conn,
                        int pooled, struct proto_req *pr,
                        struct buf *pending);

#endif /* SERVE_H */
