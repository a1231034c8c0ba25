/* SPDX-License-Identifier: MIT */
/*
 * watcher.c - one thread that notices when the client of a running job is
 * gone, and cancels the job's token.
 *
 * DESIGN
 * ------
 * The pool reads a connection only until its request is whole (proto.c), so
 * on its own a worker learns of a gone client only when a write fails, if
 * it ever writes.  The watcher fills that gap.  Each worker owns one slot;
 * after it has read a request's body it arms its slot (serve.c) with the
 * connection, the request id, the token and the deadline, and it disarms
 * the slot before it finishes the request.  A connection goes into the
 * watcher's epoll set, edge-triggered, at the first arm of its life and
 * stays there until it is closed (closing it takes it out), so that a
 * kept connection costs no epoll_ctl() per request (a caller without a
 * connection number, struct watch's conn 0, gets the connection added at
 * arm and removed at disarm instead).
 *
 * It is registered for hang-ups (EPOLLRDHUP; EPOLLHUP and EPOLLERR come
 * anyway), and for bytes (EPOLLIN) only when nobody else sees them.  A
 * pooled connection (struct watch), one the pool's epoll set holds since
 * its first wait, has a worker waiting for its bytes whenever a worker is
 * free: the poller that gets them while a job runs on it (the connection
 * table says "owned") calls watcher_poke(), which peeks as this thread
 * would, on the poller's thread.  So the next request on a kept connection
 * does not wake this thread as well as a poller (it did, for one request
 * in five, a fifth of the server's CPU on small requests).  When every
 * slot is armed no worker waits for events, so the arm that takes the
 * last slot adds EPOLLIN to the armed pooled connections
 * (watcher_exhausted()); they keep it until their next arm with a worker
 * free.  A connection's first request (not yet pooled), a connection the
 * front end does not keep, and conn 0 are registered with EPOLLIN.  Its
 * events, while a slot is armed with it:
 *
 *   - EPOLLHUP, EPOLLERR, EPOLLRDHUP, or a peek that reads 0 bytes or fails
 *     (ECONNRESET): the front end closed or half-closed the connection ->
 *     cancel(FC_CLIENT_GONE).  nginx does this 0.2-2 ms after its client
 *     leaves; lighttpd with "tcp-fin-propagate" forwards a FIN as a
 *     half-close.
 *   - readable: peek at the bytes.  A whole FCGI_ABORT_REQUEST record for
 *     the request's id is consumed (so a kept connection stays in step) and
 *     cancels with FC_ABORTED; the worker's proto_out_end() then answers it
 *     with FCGI_END_REQUEST.  Anything else is left for the pool to read
 *     later and never cancels; being edge-triggered, stray bytes wake the
 *     thread once per arrival instead of spinning it.
 *   - deadlines: one timerfd set to the earliest deadline (or probe tick)
 *     of the armed slots; when it fires, every slot past its deadline is
 *     cancelled with FC_DEADLINE.
 *   - probes (routes with probe_ms): at each tick the response is probed
 *     (response_probe(): one space if the job was silent since the last
 *     tick), so that a front end that notices a gone client only when it
 *     writes to it (Apache, lighttpd without tcp-fin-propagate) finds out
 *     and closes the connection; a failed probe cancels with
 *     FC_WRITE_ERROR.  A probe never waits: the response's lock is taken by
 *     trylock and the write does not block (a full socket skips the tick).
 *   - the slow instant (slow_ms, serve.c): the same timer; a job still
 *     armed past it gets one warn line and a count in stats.slow.  The
 *     line is formatted under mtx (the route, method and client strings
 *     are the request's, valid only while the slot is armed) and written
 *     after mtx is let go.
 *
 * While no slot is armed with it (the connection is idle, or a worker is
 * reading its next request) its events are dropped, but a hang-up is
 * remembered, so a front end that left before the arm is seen at the arm;
 * so are bytes (an event, or a poke), which the arm peeks at once: an
 * abort that came after the worker's last read and before the arm is not
 * missed (the worker cancels a request whose abort it read itself).
 *
 * The watcher never does socket I/O under its lock, and so never makes a
 * worker wait for a peer: it marks the slot busy under the lock, peeks,
 * consumes or probes without it, and clears busy under it again;
 * watcher_disarm() waits for busy to clear (a non-blocking call's time),
 * so the connection and the response stay valid while the watcher uses
 * them.  The cancel itself (which runs the token's callbacks) happens
 * without the lock too, holding a reference to the token.
 *
 * Epoll events carry the descriptor and its registration's generation,
 * bumped whenever the descriptor is registered anew, so an event that was
 * already queued for a previous connection on the same number is
 * recognised and dropped.
 *
 * Locking: `mtx` protects the slots, the descriptor table and
 * `timer_next`.  It is taken by the workers (arm, disarm), by the watcher
 * thread, and by watcher_jobs() for /status (whose callback copies what
 * it lists, and blocks on nothing); nothing else is locked while it is held except by
 * token_ref().  `idle` is signalled under it when a busy slot is released.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "proto.h"
#include "request.h"
#include "status.h"
#include "token.h"
#include "util.h"
#include "watcher.h"

#define WATCH_WAKE      UINT64_MAX          /* epoll data of the eventfd */
#define WATCH_TIMER     (UINT64_MAX - 1)    /* epoll data of the timerfd */
#define WATCH_SLOW_LINE 320                 /* bytes of one slow line */
#define WATCH_BATCH     64                  /* epoll events taken at once */

struct slot {
    int              armed;
    int              busy;          /* the watcher uses fd or resp now */
    int              fd;
    int              reqid;
    uint64_t         id;
    uint64_t         conn;          /* 0: fd registered for this request */
    fc_token        *tok;
    uint64_t         deadline_ns;   /* 0: none (or already fired) */
    fc_response     *resp;
    uint64_t         probe_ns;      /* interval; 0: no probes */
    uint64_t         next_probe;
    const char      *route;         /* the arm's; see struct watch */
    const char      *method;
    const char      *client;
    uint64_t         start_ns;
    uint64_t         slow_ns;       /* 0: none (or already written) */
};

/* A descriptor in the epoll set, indexed by its number. */
struct wfd {
    uint64_t         conn;          /* the connection registered; 0: none */
    uint32_t         gen;           /* of the registration, in events */
    int              slot;          /* armed with it; -1: none */
    int              gone;          /* hung up while no slot was armed */
    int              bytes;         /* bytes came while no slot was armed:
                                       peek at the next arm */
    uint32_t         events;        /* of the registration */
};

/* A cancel decided under the lock, carried out without it. */
struct due {
    fc_token        *tok;
    enum fc_reason   reason;
};

struct watcher {
    int              epfd;
    int              wakefd;
    int              timerfd;
    pthread_t        thread;
    _Atomic int      stop;

    pthread_mutex_t  mtx;
    pthread_cond_t   idle;          /* a busy slot was released */
    struct slot     *slots;         /* protected by mtx */
    int              nslots;
    int              narmed;        /* slots armed; mtx */
    struct wfd      *fds;           /* protected by mtx */
    int              nfds;          /* entries in fds */
    uint64_t         timer_next;    /* protected by mtx: 0 = timer off */
    struct due      *due;           /* scratch for the timer, watcher only */
    char           (*slow)[WATCH_SLOW_LINE];   /* the same, slow lines */
    int             *probe;         /* scratch for the timer: slots */
};

/* Return the earliest instant the timer must wake for on s, 0: none. */
static uint64_t
slot_next(const struct slot *s)
{
    uint64_t next = s->deadline_ns;

    if (s->probe_ns != 0 && (next == 0 || s->next_probe < next))
        next = s->next_probe;
    if (s->slow_ns != 0 && (next == 0 || s->slow_ns < next))
        next = s->slow_ns;
    return next;
}


/* Program the timer for the earliest armed deadline; mtx held. */
static void
watcher_timer_update(struct watcher *w)
{
    struct itimerspec its;
    uint64_t          next = 0, t;
    int               i;

    for (i = 0; i < w->nslots; i++) {
        if (w->slots[i].armed && (t = slot_next(&w->slots[i])) != 0 &&
            (next == 0 || t < next))
            next = t;
    }
    if (next == w->timer_next)
        return;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = (time_t)(next / 1000000000u);
    its.it_value.tv_nsec = (long)(next % 1000000000u);
    if (timerfd_settime(w->timerfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
        log_warn("watcher: timerfd_settime");
    w->timer_next = next;
}

/* Format the slow line of s into line; mtx held. */
static void
watcher_slow_line(const struct slot *s, uint64_t now, char *line)
{
    char client[64];

    snprintf(line, WATCH_SLOW_LINE, "req=%llu slow route=%s client=%s "
        "elapsed_ms=%llu", (unsigned long long)s->id,
        s->route != NULL ? s->route : "none", s->client != NULL ?
        log_escape(client, sizeof client, s->client) : "-",
        (unsigned long long)((now - s->start_ns) / 1000000u));
}

/*
 * Cancel every slot past its deadline; probe the slots due for it; write
 * the slow lines due.
 */
/* Release a slot the watcher marked busy; mtx held. */
static void
watcher_release(struct watcher *w, struct slot *s)
{
    s->busy = 0;
    pthread_cond_broadcast(&w->idle);
}

/* Note a cancel of s's token for after the lock; mtx held. */
static void
watcher_due(struct watcher *w, int *n, struct slot *s, enum fc_reason reason)
{
    token_ref(s->tok);
    w->due[*n].tok = s->tok;
    w->due[(*n)++].reason = reason;
}

/* Cancel every slot past its deadline; probe the slots due for it. */
static void
watcher_timers(struct watcher *w)
{
    uint64_t    now, expirations;
    int         i, n = 0, np = 0, nslow = 0;

    if (read(w->timerfd, &expirations, sizeof expirations) < 0) {
        /* EAGAIN: a reprogrammed timer; the scan below is harmless */
    }
    now = now_ns();
    xmutex_lock(&w->mtx);
    for (i = 0; i < w->nslots; i++) {
        struct slot *s = &w->slots[i];

        if (!s->armed)
            continue;
        if (s->slow_ns != 0 && s->slow_ns <= now) {
            s->slow_ns = 0;
            watcher_slow_line(s, now, w->slow[nslow++]);
        }
        if (s->deadline_ns != 0 && s->deadline_ns <= now) {
            s->deadline_ns = 0;
            s->probe_ns = 0;
            watcher_due(w, &n, s, FC_DEADLINE);
        } else if (s->probe_ns != 0 && s->next_probe <= now) {
            s->next_probe = now + s->probe_ns;
            s->busy = 1;
            w->probe[np++] = i;
        }
    }
    xmutex_unlock(&w->mtx);
    /* The probes, without the lock: busy keeps each slot's response
     * alive (watcher_disarm() waits), and none of them blocks. */
    for (i = 0; i < np; i++) {
        struct slot *s = &w->slots[w->probe[i]];
        int          rc = response_probe(s->resp);

        xmutex_lock(&w->mtx);
        if (rc != 0 && s->probe_ns != 0) {
            s->probe_ns = 0;
            watcher_due(w, &n, s, FC_WRITE_ERROR);
        }
        watcher_release(w, s);
        xmutex_unlock(&w->mtx);
    }
    xmutex_lock(&w->mtx);
    w->timer_next = UINT64_MAX;     /* force a reprogram */
    watcher_timer_update(w);
    xmutex_unlock(&w->mtx);
    for (i = 0; i < nslow; i++) {
        /* Relaxed: a count, read by scrapes only. */
        atomic_fetch_add_explicit(&stats.slow, 1, memory_order_relaxed);
        log_warnx("%s", w->slow[i]);
    }
    for (i = 0; i < n; i++) {
        token_cancel(w->due[i].tok, w->due[i].reason);
        token_unref(w->due[i].tok);
    }
}

/*
 * Peek at what arrived on fd behind request reqid, without blocking;
 * consume a whole FCGI_ABORT_REQUEST for it.  Return the reason to
 * cancel, FC_REASON_NONE for none.
 */
static enum fc_reason
watcher_peek(int fd, int reqid)
{
    unsigned char       buf[64];
    enum proto_class    v;
    size_t              consume;
    ssize_t             r;

    r = recv(fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
        return FC_CLIENT_GONE;
    if (r < 0)
        return FC_REASON_NONE;
    v = proto_classify(buf, (size_t)r, reqid, &consume);
    if (v == PROTO_CLASS_ABORT) {
        if (recv(fd, buf, consume, MSG_DONTWAIT) < 0)
            log_debug("watcher: consuming ABORT_REQUEST failed");
        return FC_ABORTED;
    }
    if (v == PROTO_CLASS_STRAY)
        log_debug("watcher: fd %d: stray bytes ignored", fd);
    return FC_REASON_NONE;
}

/* A connection of a batch whose bytes are peeked at without the lock. */
struct peek {
    struct slot     *s;             /* busy: stays armed with fd */
    int              fd;
    int              reqid;
    int              hup;           /* half-closed as well */
};

/*
 * Decide what the event of a registered connection means (mtx held):
 * return the reason to cancel its slot's token, or FC_REASON_NONE; with
 * bytes to look at, mark the slot busy and add it to pk instead.
 */
static enum fc_reason
watcher_event(struct watcher *w, uint64_t data, uint32_t events,
    struct slot **sp, struct peek *pk, int *npk)
{
    struct slot *s;
    struct wfd  *f;
    int          fd = (int)(data & 0x7fffffffu);
    int          hup = (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0;

    if (fd >= w->nfds || w->fds[fd].gen != (uint32_t)(data >> 32) ||
        w->fds[fd].conn == 0)
        return FC_REASON_NONE;
    f = &w->fds[fd];
    if (f->slot < 0) {
        /* Idle or being read: remember a hang-up, or bytes that the
         * worker may not have read, for the next arm. */
        if (hup)
            f->gone = 1;
        if (events & EPOLLIN)
            f->bytes = 1;
        return FC_REASON_NONE;
    }
    s = *sp = &w->slots[f->slot];
    if (s->tok == NULL || fc_token_cancelled(s->tok) || s->busy)
        return FC_REASON_NONE;
    /* Closed or reset: gone, whatever it sent before (no peek: when many
     * connections close at once, each peek delays the next cancel). */
    if ((events & (EPOLLHUP | EPOLLERR)) != 0 ||
        (hup && (events & EPOLLIN) == 0)) {
        f->gone = 1;
        return FC_CLIENT_GONE;
    }
    if (events & EPOLLIN) {
        s->busy = 1;
        pk[*npk] = (struct peek){ .s = s, .fd = fd,
            .reqid = s->reqid, .hup = hup };
        (*npk)++;
    }
    return FC_REASON_NONE;
}

/*
 * Handle a batch of epoll events: decide under the lock, once, what each
 * means; peek without it at the connections that sent bytes; cancel
 * after.  Return 1 if the timer fired among them.
 */
static int
watcher_events(struct watcher *w, const struct epoll_event *evs, int n)
{
    struct peek      pk[WATCH_BATCH];
    struct due       due[WATCH_BATCH];
    enum fc_reason   reason[WATCH_BATCH];
    struct slot     *s;
    int              i, npk = 0, ndue = 0, timer = 0;

    xmutex_lock(&w->mtx);
    for (i = 0; i < n; i++) {
        enum fc_reason r;

        if (evs[i].data.u64 == WATCH_WAKE)
            continue;       /* stop is checked by the loop */
        if (evs[i].data.u64 == WATCH_TIMER) {
            timer = 1;
            continue;
        }
        s = NULL;
        r = watcher_event(w, evs[i].data.u64, evs[i].events, &s, pk, &npk);
        if (r != FC_REASON_NONE) {
            token_ref(s->tok);
            due[ndue].tok = s->tok;
            due[ndue++].reason = r;
        }
    }
    xmutex_unlock(&w->mtx);
    for (i = 0; i < npk; i++)
        reason[i] = watcher_peek(pk[i].fd, pk[i].reqid);
    if (npk > 0) {
        xmutex_lock(&w->mtx);
        for (i = 0; i < npk; i++) {
            s = pk[i].s;
            watcher_release(w, s);
            if (reason[i] == FC_REASON_NONE && pk[i].hup)
                reason[i] = FC_CLIENT_GONE;
            if (reason[i] == FC_REASON_NONE)
                continue;
            /* By index: the table may have grown meanwhile. */
            if (reason[i] == FC_CLIENT_GONE)
                w->fds[pk[i].fd].gone = 1;
            token_ref(s->tok);
            due[ndue].tok = s->tok;
            due[ndue++].reason = reason[i];
        }
        xmutex_unlock(&w->mtx);
    }
    for (i = 0; i < ndue; i++) {
        token_cancel(due[i].tok, due[i].reason);
        token_unref(due[i].tok);
    }
    return timer;
}

/*
 * The watcher thread.  Its part of a request's path through the files:
 * serve.c arms the worker's slot (watcher_arm()) just before the handler
 * runs; the connection waits in this thread's epoll set; a hang-up or
 * bytes wake watcher_event(), which peeks and lets proto.c's
 * proto_classify() say whether the bytes are an FCGI_ABORT_REQUEST; a
 * deadline or probe tick wakes watcher_timers(), whose probes write
 * through request.c's response_probe(); token_cancel() (token.c) then
 * runs the job's callbacks on this thread and wakes the job, which
 * returns to serve.c; serve.c disarms the slot (watcher_disarm()) and
 * ends the response.
 */
static void *
watcher_main(void *arg)
{
    struct watcher     *w = arg;
    struct epoll_event  evs[WATCH_BATCH];
    int                 n;

    while (!atomic_load_explicit(&w->stop, memory_order_acquire)) {
        n = epoll_wait(w->epfd, evs, WATCH_BATCH, -1);
        if (n < 0) {
            if (errno != EINTR)
                log_warn("watcher: epoll_wait");
            continue;
        }
        if (watcher_events(w, evs, n))
            watcher_timers(w);
    }
    return NULL;
}

struct watcher *
watcher_new(int nslots, char **cause)
{
    struct watcher     *w;
    struct epoll_event  ev;

    if ((w = calloc(1, sizeof *w)) == NULL ||
        (w->slots = calloc((size_t)nslots, sizeof *w->slots)) == NULL ||
        (w->due = calloc((size_t)nslots, sizeof *w->due)) == NULL ||
        (w->slow = calloc((size_t)nslots, sizeof *w->slow)) == NULL ||
        (w->probe = calloc((size_t)nslots, sizeof *w->probe)) == NULL) {
        *cause = strdup("watcher: out of memory");
        goto fail;
    }
    w->nslots = nslots;
    w->epfd = w->wakefd = w->timerfd = -1;
    xmutex_init(&w->mtx);
    pthread_cond_init(&w->idle, NULL);
    if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (w->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
        (w->timerfd = timerfd_create(CLOCK_MONOTONIC,
        TFD_CLOEXEC | TFD_NONBLOCK)) < 0) {
        *cause = strdup("watcher: cannot create epoll, eventfd or timerfd");
        goto fail;
    }
    ev.events = EPOLLIN;
    ev.data.u64 = WATCH_WAKE;
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wakefd, &ev);
    ev.data.u64 = WATCH_TIMER;
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->timerfd, &ev);
    if (pthread_create(&w->thread, NULL, watcher_main, w) != 0) {
        *cause = strdup("watcher: cannot create thread");
        goto fail;
    }
    return w;
fail:
    if (w != NULL) {
        if (w->epfd >= 0)
            close(w->epfd);
        if (w->wakefd >= 0)
            close(w->wakefd);
        if (w->timerfd >= 0)
            close(w->timerfd);
        if (w->slots != NULL && w->due != NULL && w->probe != NULL) {
            pthread_cond_destroy(&w->idle);
            xmutex_destroy(&w->mtx);
        }
        free(w->slots);
        free(w->due);
        free(w->slow);
        free(w->probe);
        free(w);
    }
    return NULL;
}

void
watcher_free(struct watcher *w)
{
    uint64_t one = 1;

    if (w == NULL)
        return;
    atomic_store_explicit(&w->stop, 1, memory_order_release);
    if (write(w->wakefd, &one, sizeof one) < 0)
        log_warn("watcher: wake");
    pthread_join(w->thread, NULL);
    close(w->epfd);
    close(w->wakefd);
    close(w->timerfd);
    pthread_cond_destroy(&w->idle);
    xmutex_destroy(&w->mtx);
    free(w->slots);
    free(w->due);
    free(w->slow);
    free(w->probe);
    free(w->fds);
    free(w);
}

/* Return the table entry of fd, growing the table; NULL if out of memory
 * (mtx held). */
static struct wfd *
watcher_fd(struct watcher *w, int fd)
{
    struct wfd *t;
    int         n, i;

    if (fd >= w->nfds) {
        n = w->nfds > 0 ? w->nfds : 64;
        while (n <= fd)
            n *= 2;
        if ((t = realloc(w->fds, (size_t)n * sizeof *t)) == NULL)
            return NULL;
        for (i = w->nfds; i < n; i++)
            t[i] = (struct wfd){ .slot = -1 };
        w->fds = t;
        w->nfds = n;
    }
    return &w->fds[fd];
}

/*
 * The events to register fd for (mtx held).  Without EPOLLIN, bytes that
 * arrive (an abort, or the next request on a kept connection) do not wake
 * the thread; a hang-up still does (EPOLLRDHUP, and EPOLLHUP and EPOLLERR,
 * always reported).  EPOLLIN is left out for a pooled connection (the
 * pool's epoll set sees its bytes, and the poller that gets them calls
 * watcher_poke()) unless every slot is armed: then no worker waits for
 * events, and this thread must see them.
 */
static uint32_t
watcher_want(const struct watcher *w, int pooled)
{
    return EPOLLRDHUP | EPOLLET |
        (!pooled || w->narmed >= w->nslots ? EPOLLIN : 0);
}

/* The epoll data of fd's registration in entry f (mtx held): its
 * generation and the descriptor, as watcher_event() reads them. */
static uint64_t
watcher_data(const struct wfd *f, int fd)
{
    return ((uint64_t)f->gen << 32) | (uint32_t)fd;
}

/* (Re-)register fd of entry f for events (mtx held).  Return 0, or -1
 * (logged). */
static int
watcher_ctl(struct watcher *w, int fd, struct wfd *f, uint32_t events, int op)
{
    struct epoll_event ev;

    ev.events = events;
    ev.data.u64 = watcher_data(f, fd);
    /* EEXIST: the number's previous connection is still open somewhere
     * (a child between fork and exec); take the registration over. */
    if (epoll_ctl(w->epfd, op, fd, &ev) != 0 && (op != EPOLL_CTL_ADD ||
        errno != EEXIST || epoll_ctl(w->epfd, EPOLL_CTL_MOD, fd, &ev) != 0)) {
        log_warn("watcher: cannot watch fd %d", fd);
        return -1;
    }
    f->events = events;
    return 0;
}

/*
 * Put fd into the epoll set for connection conn unless it is there
 * already, for the events watcher_want() says (mtx held).  Return 0, or
 * -1 (logged).
 */
static int
watcher_register(struct watcher *w, int slot, int fd, uint64_t conn,
    int pooled)
{
    struct wfd *f;
    uint32_t    want = watcher_want(w, conn != 0 && pooled);

    if ((f = watcher_fd(w, fd)) == NULL) {
        log_warnx("watcher: out of memory, fd %d not watched", fd);
        return -1;
    }
    if (conn != 0 && f->conn == conn) {
        f->slot = slot;
        /* A MOD reports what is there already: nothing is missed. */
        if (f->events != want &&
            watcher_ctl(w, fd, f, want, EPOLL_CTL_MOD) != 0) {
            f->slot = -1;
            return -1;
        }
        return 0;
    }
    f->gen++;
    f->conn = conn != 0 ? conn : UINT64_MAX;
    f->gone = 0;
    /* Without EPOLLIN the ADD reports no bytes that came before it (the
     * pokes meanwhile found no entry of this connection): peek once. */
    f->bytes = (want & EPOLLIN) == 0;
    f->slot = slot;
    if (watcher_ctl(w, fd, f, want, EPOLL_CTL_ADD) != 0) {
        f->conn = 0;
        f->slot = -1;
        return -1;
    }
    return 0;
}

/*
 * Every slot is armed now, so no worker waits for events: watch the
 * armed pooled connections for bytes too (mtx held).  They keep EPOLLIN
 * until their next arm with a worker free.
 */
static void
watcher_exhausted(struct watcher *w)
{
    struct wfd *f;
    int         i;

    for (i = 0; i < w->nslots; i++) {
        struct slot *s = &w->slots[i];

        if (!s->armed || s->fd < 0 || s->fd >= w->nfds)
            continue;
        f = &w->fds[s->fd];
        if (f->slot == i && (f->events & EPOLLIN) == 0)
            (void)watcher_ctl(w, s->fd, f, f->events | EPOLLIN,
                EPOLL_CTL_MOD);
    }
}

/* Peek, on this thread, as an EPOLLIN event with data (watcher_data(),
 * taken under mtx, which is not held now) would make the thread do. */
static void
watcher_peek_now(struct watcher *w, uint64_t data)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = data };

    (void)watcher_events(w, &ev, 1);
}

void
watcher_poke(struct watcher *w, int fd)
{
    struct wfd *f;
    uint64_t    data;

    xmutex_lock(&w->mtx);
    if (fd < 0 || fd >= w->nfds) {
        xmutex_unlock(&w->mtx);
        return;     /* never armed: the arm's ADD peeks */
    }
    f = &w->fds[fd];
    if (f->slot < 0 || (f->events & EPOLLIN) != 0) {
        /* Nothing running on it (its next arm peeks if the worker may
         * not have read them), or this thread sees them itself. */
        if (f->slot < 0 && f->conn != 0)
            f->bytes = 1;
        xmutex_unlock(&w->mtx);
        return;
    }
    data = watcher_data(f, fd);
    xmutex_unlock(&w->mtx);
    watcher_peek_now(w, data);
}

int
watcher_arm(struct watcher *w, int slot, const struct watch *wa)
{
    struct slot        *s = &w->slots[slot];
    uint64_t            next;
    fc_token           *gone = NULL;
    uint64_t            data = 0;       /* to peek with */
    int                 rc = 0, peek = 0;

    xmutex_lock(&w->mtx);
    if (!s->armed)
        w->narmed++;
    s->armed = 1;
    s->fd = wa->fd;
    s->reqid = wa->reqid;
    s->id = wa->id;
    s->conn = wa->conn;
    s->tok = wa->tok;
    s->deadline_ns = wa->deadline_ns;
    s->resp = wa->resp;
    s->probe_ns = wa->resp != NULL && wa->probe_ms > 0 ?
        (uint64_t)wa->probe_ms * 1000000u : 0;
    s->next_probe = s->probe_ns != 0 ? now_ns() + s->probe_ns : 0;
    s->route = wa->route;
    s->method = wa->method;
    s->client = wa->client;
    s->start_ns = wa->start_ns;
    s->slow_ns = wa->slow_ns;
    if (wa->fd >= 0) {
        rc = watcher_register(w, slot, wa->fd, wa->conn, wa->pooled);
        if (rc == 0 && w->fds[wa->fd].gone) {
            gone = wa->tok;     /* it hung up before the arm */
            token_ref(gone);
        } else if (rc == 0 && w->fds[wa->fd].bytes) {
            /* Bytes came while no slot was armed (the request's own, or
             * an abort behind it that the worker has not read). */
            w->fds[wa->fd].bytes = 0;
            data = watcher_data(&w->fds[wa->fd], wa->fd);
            peek = 1;
        }
    }
    if (w->narmed == w->nslots)
        watcher_exhausted(w);
    if ((next = slot_next(s)) != 0 &&
        (w->timer_next == 0 || next < w->timer_next))
        watcher_timer_update(w);
    xmutex_unlock(&w->mtx);
    if (gone != NULL) {
        token_cancel(gone, FC_CLIENT_GONE);
        token_unref(gone);
    }
    if (peek)
        watcher_peek_now(w, data);
    return rc;
}

int
watcher_jobs(struct watcher *w, int only_cancelled, watcher_job_cb cb,
    void *arg)
{
    struct watcher_job  j;
    uint64_t            now = now_ns(), at;
    int                 i, n = 0;

    xmutex_lock(&w->mtx);
    for (i = 0; i < w->nslots; i++) {
        struct slot *s = &w->slots[i];

        if (!s->armed || (only_cancelled && !fc_token_cancelled(s->tok)))
            continue;
        j = (struct watcher_job){
            .id = s->id, .route = s->route, .method = s->method,
            .client = s->client,
            .elapsed_ns = now > s->start_ns ? now - s->start_ns : 0,
            .reason = fc_token_reason(s->tok),
        };
        if (j.reason != FC_REASON_NONE) {
            at = token_cancel_ns(s->tok);
            j.since_cancel_ns = now > at ? now - at : 0;
        }
        if (cb != NULL)
            cb(arg, &j);
        n++;
    }
    xmutex_unlock(&w->mtx);
    return n;
}

/* The arguments of watcher_stragglers(), through watcher_jobs(). */
struct straggler_arg {
    watcher_straggler_cb cb;
    void                *arg;
};

/* Hand one cancelled job to a watcher_straggler_cb. */
static void
watcher_straggler(void *arg, const struct watcher_job *j)
{
    struct straggler_arg *sa = arg;

    sa->cb(sa->arg, j->id, j->reason, j->since_cancel_ns);
}

int
watcher_stragglers(struct watcher *w, watcher_straggler_cb cb, void *arg)
{
    struct straggler_arg sa = { cb, arg };

    return watcher_jobs(w, 1, cb != NULL ? watcher_straggler : NULL, &sa);
}

void
watcher_disarm(struct watcher *w, int slot)
{
    struct slot *s = &w->slots[slot];
    struct wfd  *f;

    xmutex_lock(&w->mtx);
    /* The watcher is peeking or probing: a non-blocking call's time. */
    while (s->busy)
        pthread_cond_wait(&w->idle, &w->mtx);
    if (s->armed && s->fd >= 0 && s->fd < w->nfds) {
        f = &w->fds[s->fd];
        if (f->slot == slot)
            f->slot = -1;
        /* Registered for this request only: out of the set. */
        if (s->conn == 0 && f->conn != 0) {
            f->conn = 0;
            if (epoll_ctl(w->epfd, EPOLL_CTL_DEL, s->fd, NULL) != 0 &&
                errno != ENOENT)
                log_warn("watcher: EPOLL_CTL_DEL fd %d", s->fd);
        }
    }
    if (s->armed)
        w->narmed--;
    s->armed = 0;
    s->tok = NULL;
    s->fd = -1;
    s->deadline_ns = 0;
    s->resp = NULL;
    s->probe_ns = 0;
    s->route = s->method = s->client = NULL;
    s->slow_ns = 0;
    xmutex_unlock(&w->mtx);
}
