/* SPDX-License-Identifier: MIT */
/*
 * pool_int.h - internal to the pool: not for handlers.  The shapes of a
 * connection, a worker and the pool, shared by pool.c (accept, the reads,
 * the workers, the gate, the drain) and arrive.c (the read deadlines and
 * the bounds on arriving connections); no other file includes it.
 *
 * Locking: each field says what protects it.  `mtx` protects the count
 * of arriving connections, the deadline list and the timer's setting (the
 * fields marked mtx); `gate_mtx`, taken alone, the gate's waiters.  The
 * atomics are paired as pool.c's DESIGN comment (Locking) and arrive.c's
 * (Bounds) say.
 */
#ifndef POOL_INT_H
#define POOL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "pool.h"
#include "proto.h"
#include "util.h"

/* Epoll data of the pool's own descriptors; a connection's is its
 * registration's (conntab_register(), at most CONNTAB_DATA_MAX). */
#define EV_LISTENER         (UINT64_MAX - 0)
#define EV_QUIT             (UINT64_MAX - 1)
#define EV_TIMER            (UINT64_MAX - 2)

struct conn {
    int              fd;
    uint64_t         id;            /* unique in the process (watcher.c) */
    uint64_t         reg;           /* its registration in p->epfd
                                       (conntab.c); 0: not registered */
    uint32_t         events;        /* registered for these */
    int              mid;           /* a request has begun (mtx to read
                                       from another thread) */
    int              on_deadlines;  /* on p->deadlines (mtx) */
    int              counted;       /* counted in p->arriving (mtx) */
    int              discard;       /* refused: read and drop until EOF */
    _Atomic int      expired;       /* shut down by its read deadline */
    _Atomic int      dropped;       /* shut down by a bound (see Bounds
                                       in arrive.c) */
    _Atomic size_t   held;          /* bytes charged to p->held */
    uint64_t         t_first;       /* first byte of the request */
    uint64_t         deadline;      /* of the read; owner only */
    long             read_timeout_ms;/* of the generation its owner holds
                                       (owner only) */
    struct conn     *dprev, *dnext; /* p->deadlines (mtx) */
    struct proto_req rq;            /* the request being read */
    struct buf       pending;       /* bytes read, not yet consumed */
};

struct worker {
    struct pool     *pool;
    int              slot;
    pthread_t        thread;
    struct generation *gen;         /* held while it reads a connection */
    struct proto_out out;
};

struct pool {
    int                  epfd;
    int                  lfd;
    int                  quitfd;
    int                  timerfd;
    struct pool_config   cfg;
    struct watcher      *watcher;
    struct serve        *serve;
    struct worker       *workers;
    unsigned char       *outbufs;   /* the workers' output buffers, one
                                       calloc: pages untouched until used */
    int                  started;
    _Atomic int          busy;
    _Atomic int          quit;
    _Atomic uint64_t     next_conn; /* the last connection number given */

    pthread_mutex_t      mtx;
    pthread_cond_t       drained;   /* accepting fell to 0 while draining */
    struct conntab      *tab;       /* who owns each registered connection */
    int                  arriving;  /* mtx: waiting, request begun */
    struct conn         *deadlines, *deadlines_tail;  /* mtx; by deadline */
    _Atomic int          draining;  /* see Locking in pool.c */
    _Atomic int          accepting; /* see Locking in pool.c */
    _Atomic long         nconns;    /* open connections (see Bounds in
                                       arrive.c) */
    _Atomic size_t       held;      /* bytes charged by arriving requests */
    _Atomic uint64_t     noted_ns;  /* when arrive_log() last logged */
    _Atomic uint64_t     noted[3];  /* arrive.c's BOUND_* events since
                                       then */

    /* The gate (see Pollers in pool.c). */
    _Atomic int          pollers;   /* workers in or entering epoll_wait */
    int                  pollers_max;
    pthread_mutex_t      gate_mtx;
    pthread_cond_t       gate_cv;   /* a poller's place is free */
    int                  gate_waiting;  /* gate_mtx: workers waiting */
};

#endif /* POOL_INT_H */
