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
 * the slot before it finishes the request.  While armed, the connection
 * sits in the watcher's epoll set, edge-triggered, for EPOLLIN |
 * EPOLLRDHUP:
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
 *     FC_WRITE_ERROR.  The probe runs under mtx but only with the
 *     response's lock taken by trylock: the watcher never waits for a
 *     worker that is writing.
 *   - the slow instant (slow_ms, serve.c): the same timer; a job still
 *     armed past it gets one warn line and a count in stats.slow.  The
 *     line is formatted under mtx (the route, method and client strings
 *     are the request's, valid only while the slot is armed) and written
 *     after mtx is let go.
 *
 * The cancel itself (which runs the token's callbacks) happens without the
 * watcher's lock, holding a reference to the token.
 *
 * Epoll events carry the slot number and the slot's generation, bumped at
 * every arm, so an event that was already queued for a slot's previous
 * request is recognised and dropped.
 *
 * Locking: `mtx` protects the slots and `timer_next`.  It is taken by the
 * workers (arm, disarm), by the watcher thread, and by watcher_jobs() for
 * /status (whose callback copies what it lists, and blocks on nothing);
 * nothing else is locked while it is held except by token_ref() and the
 * probe's trylock.
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

struct slot {
    int              armed;
    uint32_t         gen;
    int              fd;
    int              reqid;
    uint64_t         id;
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
    struct slot     *slots;         /* protected by mtx */
    int              nslots;
    uint64_t         timer_next;    /* protected by mtx: 0 = timer off */
    struct due      *due;           /* scratch for the timer, watcher only */
    char           (*slow)[WATCH_SLOW_LINE];   /* the same, slow lines */
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
static void
watcher_timers(struct watcher *w)
{
    uint64_t    now, expirations;
    int         i, n = 0, nslow = 0;

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
            token_ref(s->tok);
            w->due[n].tok = s->tok;
            w->due[n++].reason = FC_DEADLINE;
        } else if (s->probe_ns != 0 && s->next_probe <= now) {
            s->next_probe = now + s->probe_ns;
            /* Lock order: mtx, then the response's lock, taken by
             * trylock (the watcher never waits for a writing worker). */
            if (response_probe(s->resp) != 0) {
                s->probe_ns = 0;
                token_ref(s->tok);
                w->due[n].tok = s->tok;
                w->due[n++].reason = FC_WRITE_ERROR;
            }
        }
    }
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

/* Handle an event of an armed connection. */
static void
watcher_event(struct watcher *w, uint64_t data, uint32_t events)
{
    unsigned char       buf[64];
    struct slot        *s;
    enum fc_reason      reason = FC_REASON_NONE;
    enum proto_class    v;
    fc_token           *tok = NULL;
    size_t              consume;
    ssize_t             r;
    int                 slot = (int)(data & 0xffffffffu);

    if (slot < 0 || slot >= w->nslots)
        return;
    xmutex_lock(&w->mtx);
    s = &w->slots[slot];
    if (!s->armed || s->gen != (uint32_t)(data >> 32) || s->tok == NULL) {
        xmutex_unlock(&w->mtx);
        return;
    }
    if (events & EPOLLIN) {
        r = recv(s->fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
            reason = FC_CLIENT_GONE;
        } else if (r > 0) {
            v = proto_classify(buf, (size_t)r, s->reqid, &consume);
            if (v == PROTO_CLASS_ABORT) {
                if (recv(s->fd, buf, consume, MSG_DONTWAIT) < 0)
                    log_debug("watcher: consuming ABORT_REQUEST failed");
                reason = FC_ABORTED;
            } else if (v == PROTO_CLASS_STRAY) {
                log_debug("watcher: slot %d: stray bytes ignored", slot);
            }
        }
    }
    if (reason == FC_REASON_NONE &&
        (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
        reason = FC_CLIENT_GONE;
    if (reason != FC_REASON_NONE) {
        tok = s->tok;
        token_ref(tok);
        /* Done with this connection: nothing more to learn from it. */
        if (epoll_ctl(w->epfd, EPOLL_CTL_DEL, s->fd, NULL) != 0)
            log_debug("watcher: EPOLL_CTL_DEL");
    }
    xmutex_unlock(&w->mtx);
    if (tok != NULL) {
        token_cancel(tok, reason);
        token_unref(tok);
    }
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
    struct epoll_event  evs[64];
    int                 i, n;

    while (!atomic_load_explicit(&w->stop, memory_order_acquire)) {
        n = epoll_wait(w->epfd, evs, (int)nitems(evs), -1);
        if (n < 0) {
            if (errno != EINTR)
                log_warn("watcher: epoll_wait");
            continue;
        }
        for (i = 0; i < n; i++) {
            if (evs[i].data.u64 == WATCH_WAKE)
                continue;       /* stop is checked by the loop */
            if (evs[i].data.u64 == WATCH_TIMER)
                watcher_timers(w);
            else
                watcher_event(w, evs[i].data.u64, evs[i].events);
        }
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
        (w->slow = calloc((size_t)nslots, sizeof *w->slow)) == NULL) {
        *cause = strdup("watcher: out of memory");
        goto fail;
    }
    w->nslots = nslots;
    w->epfd = w->wakefd = w->timerfd = -1;
    xmutex_init(&w->mtx);
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
        if (w->slots != NULL)
            xmutex_destroy(&w->mtx);
        free(w->slots);
        free(w->due);
        free(w->slow);
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
    xmutex_destroy(&w->mtx);
    free(w->slots);
    free(w->due);
    free(w->slow);
    free(w);
}

int
watcher_arm(struct watcher *w, int slot, const struct watch *wa)
{
    struct epoll_event  ev;
    struct slot        *s = &w->slots[slot];
    uint64_t            next;
    int                 rc = 0;

    xmutex_lock(&w->mtx);
    s->gen++;
    s->armed = 1;
    s->fd = wa->fd;
    s->reqid = wa->reqid;
    s->id = wa->id;
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
        ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
        ev.data.u64 = ((uint64_t)s->gen << 32) | (uint32_t)slot;
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, wa->fd, &ev) != 0) {
            log_warn("watcher: cannot watch fd %d", wa->fd);
            rc = -1;
        }
    }
    if ((next = slot_next(s)) != 0 &&
        (w->timer_next == 0 || next < w->timer_next))
        watcher_timer_update(w);
    xmutex_unlock(&w->mtx);
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

    xmutex_lock(&w->mtx);
    if (s->armed && s->fd >= 0 &&
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, s->fd, NULL) != 0 &&
        errno != ENOENT)
        log_warn("watcher: EPOLL_CTL_DEL fd %d", s->fd);
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
