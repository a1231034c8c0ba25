/* SPDX-License-Identifier: MIT */
/*
 * pool.h - the worker pool: N threads that accept FastCGI connections, read
 * requests without blocking (proto.c) and serve each whole request on the
 * thread that read it (serve.c: the route's handler under a cancel token
 * watched by the watcher).
 */
#ifndef POOL_H
#define POOL_H

#include <stddef.h>

#include "fcgi_cancel.h"

/*
 * What is fixed for the pool's life.  The rest (allowed_clients, the size
 * limits, the read and write timeouts, the routes) is the current
 * configuration generation's (generation.h), read as each connection is
 * accepted and read, and may change with a reload.
 */
struct pool_config {
    int         workers;            /* threads */
    size_t      stack_size;         /* worker stack, bytes */
    long        max_connections;    /* open connections; beyond, the
                                       oldest arriving one is dropped, or
                                       the new one refused */
    size_t      max_arriving_bytes; /* buffers of requests not yet whole,
                                       in total; beyond, the oldest
                                       arriving ones are dropped; 0: none */
    long        peer_timeout_ms;    /* TCP keepalive and TCP_USER_TIMEOUT
                                       on accepted TCP connections; 0: off */
};

struct pool;

/*
 * Start the pool on listening socket lfd (made non-blocking; the pool does
 * not close it), with a configuration generation published (gen_publish())
 * before.  Request tokens are children of server_tok.  Return the pool, or
 * NULL with *cause set (caller frees).
 */
struct pool *pool_new(int lfd, const struct pool_config *cfg,
                 fc_token *server_tok, char **cause);

/*
 * Stop taking new connections and requests: the listening socket leaves the
 * pool (once this returns no worker uses it: the caller may close it), idle
 * kept connections are shut down, and connections are closed after their
 * current request.
 */
void         pool_drain(struct pool *p);

/* Return the number of workers busy with a connection now. */
int          pool_busy(struct pool *p);

/*
 * Return the number of connections waiting for the rest of a request that
 * has begun (they hold no worker; pool_drain() lets them finish).
 */
int          pool_arriving(struct pool *p);

/*
 * Log what max_connections and max_arriving_bytes did that is not logged
 * yet (at most one line a second); call it about once a second.
 */
void         pool_tick(struct pool *p);

/* Stop every worker (they must be idle or about to be) and free the pool. */
void         pool_free(struct pool *p);

#endif /* POOL_H */
