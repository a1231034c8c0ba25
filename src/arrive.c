/* SPDX-License-Identifier: MIT */
/*
 * arrive.c - the pool's arriving connections: those whose request has
 * begun and is not whole yet, waiting in the epoll set for the rest
 * (pool.c).  Their read deadlines and the timer that enforces them, and
 * the bounds max_connections and max_arriving_bytes, which shed the
 * oldest of them.  Internal to the pool (arrive.h; the structs are
 * pool_int.h's): pool.c calls it as it accepts, reads, gives back and
 * closes connections.
 *
 * DESIGN
 * ------
 * Deadlines: the deadline list is the list of arriving connections (those
 * whose request has begun and waited at least once), oldest first; with
 * read_timeout_ms 0 a connection is not on it.  A connection goes on it
 * when it first waits (arrive_add(), from pool.c's conn_wait()), with its
 * deadline read_timeout_ms after the first byte of the request, and comes
 * off when the timer or a bound shuts it down, or when its owner stops
 * waiting for the request (it is whole, the connection idle again, or
 * closed: arrive_clear()).  The pool's timerfd, in the epoll set, is set
 * to the earliest deadline; when it fires, the worker that takes its
 * event shuts down the connections past theirs (arrive_expire()); whoever
 * owns one then reads EOF and closes it.  A worker that reads a peer
 * sending without pause checks the deadline itself (the timer only sees
 * connections that wait).  Its log lines say "pool:", as the rest of
 * the pool's do.
 *
 * Bounds: open connections are bounded by max_connections: past it,
 * accepting one drops the oldest arriving connection (a slow or stalled
 * sender; idle kept connections and those being served are never
 * dropped), or, with none arriving, closes the new one at once
 * (arrive_admit()).  The buffers of arriving requests (pending bytes,
 * params, body: their allocated sizes) are charged to `held` before each
 * read (arrive_charge()); past max_arriving_bytes, the oldest arriving
 * connections that hold some are dropped until the total is back within
 * the bound.  Dropping is what the read deadline does: off the list and
 * shut down under mtx, its bytes uncharged at once; the owner reads EOF
 * and closes it.  Both are counted (status.c) and logged at most once a
 * second (arrive_note()).  `nconns` and `held` are atomics, changed
 * without mtx (relaxed where they only count: nothing else is published
 * through them); a connection's `held` goes back to 0 by an exchange, by
 * its owner or by arrive_shed() under mtx, so each byte is uncharged once.
 *
 * Locking: the pool's `mtx` protects the deadline list and the timer
 * (pool_int.h; pool.c's DESIGN comment, Locking, has the whole rule).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "arrive.h"
#include "log.h"
#include "pool_int.h"
#include "status.h"
#include "util.h"

/* What a bound did (see Bounds), for the counters and the log. */
enum bound_event {
    BOUND_REFUSED,      /* a new connection closed at accept */
    BOUND_DROP_CONNS,   /* an arriving one dropped for max_connections */
    BOUND_DROP_BYTES,   /* one dropped for max_arriving_bytes */
    BOUND__MAX
};

/* Set the timer to the earliest read deadline (mtx held). */
static void
arrive_timer_set(struct pool *p)
{
    struct itimerspec its = { 0 };

    if (p->deadlines != NULL) {
        its.it_value.tv_sec = (time_t)(p->deadlines->deadline / 1000000000u);
        its.it_value.tv_nsec = (long)(p->deadlines->deadline % 1000000000u);
    }
    if (timerfd_settime(p->timerfd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
        log_warn("pool: timerfd_settime");
}

/* Take c off the deadline list (mtx held). */
static void
arrive_unlink(struct pool *p, struct conn *c)
{
    if (!c->on_deadlines)
        return;
    if (c->dprev != NULL)
        c->dprev->dnext = c->dnext;
    else
        p->deadlines = c->dnext;
    if (c->dnext != NULL)
        c->dnext->dprev = c->dprev;
    else
        p->deadlines_tail = c->dprev;
    c->on_deadlines = 0;
}

void
arrive_add(struct pool *p, struct conn *c)
{
    c->deadline = c->t_first + (uint64_t)c->read_timeout_ms * 1000000u;
    c->dnext = NULL;
    c->dprev = p->deadlines_tail;
    if (p->deadlines_tail != NULL)
        p->deadlines_tail->dnext = c;
    else
        p->deadlines = c;
    p->deadlines_tail = c;
    c->on_deadlines = 1;
    if (p->deadlines == c)
        arrive_timer_set(p);
}

void
arrive_clear(struct pool *p, struct conn *c)
{
    if (c->deadline == 0)
        return;
    xmutex_lock(&p->mtx);
    arrive_unlink(p, c);
    xmutex_unlock(&p->mtx);
    c->deadline = 0;
}

/* Deadlines are read_timeout_ms after the first byte, so the list is in
 * order and only its head can be due. */
void
arrive_expire(struct pool *p)
{
    struct epoll_event ev;
    struct conn       *c;
    uint64_t           expirations, now = now_ns();

    if (read(p->timerfd, &expirations, sizeof expirations) < 0 &&
        errno != EAGAIN)
        log_warn("pool: reading the timer");
    xmutex_lock(&p->mtx);
    while ((c = p->deadlines) != NULL && c->deadline <= now) {
        arrive_unlink(p, c);
        atomic_store(&c->expired, 1);
        shutdown(c->fd, SHUT_RDWR);
    }
    arrive_timer_set(p);
    xmutex_unlock(&p->mtx);
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u64 = EV_TIMER;
    if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, p->timerfd, &ev) != 0)
        log_warn("pool: cannot re-arm the timer");
}

/* ---- bounds (see Bounds) ------------------------------------------- */

_Static_assert(BOUND__MAX == nitems(((struct pool *)0)->noted),
    "one noted[] counter per bound_event");

void
arrive_log(struct pool *p)
{
    uint64_t now = now_ns(), last, c[BOUND__MAX], any = 0;
    int      i;

    for (i = 0; i < BOUND__MAX; i++)
        any |= atomic_load_explicit(&p->noted[i], memory_order_relaxed);
    last = atomic_load(&p->noted_ns);
    if (any == 0 || (last != 0 && now - last < 1000000000u) ||
        !atomic_compare_exchange_strong(&p->noted_ns, &last, now))
        return;         /* nothing, too soon, or another thread logs */
    for (i = 0; i < BOUND__MAX; i++)
        c[i] = atomic_exchange(&p->noted[i], 0);
    log_warnx("pool: bounds: %llu new connections refused and %llu arriving "
        "requests dropped (max_connections %ld), %llu dropped "
        "(max_arriving_bytes %zu)", (unsigned long long)c[BOUND_REFUSED],
        (unsigned long long)c[BOUND_DROP_CONNS], p->cfg.max_connections,
        (unsigned long long)c[BOUND_DROP_BYTES], p->cfg.max_arriving_bytes);
}

/*
 * Count n events of kind ev (status.c's counters) and log them: the first
 * at once, then at most one line a second (the rest waits for the next
 * event or pool_tick()).
 */
static void
arrive_note(struct pool *p, enum bound_event ev, uint64_t n)
{
    static _Atomic uint64_t *const counters[BOUND__MAX] = {
        &stats.refused_connections, &stats.dropped_max_connections,
        &stats.dropped_max_arriving_bytes
    };

    atomic_fetch_add_explicit(counters[ev], n, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->noted[ev], n, memory_order_relaxed);
    arrive_log(p);
}

void
arrive_uncharge(struct pool *p, struct conn *c)
{
    size_t n = atomic_exchange(&c->held, 0);

    if (n == 0)
        return;
    atomic_fetch_sub_explicit(&p->held, n, memory_order_relaxed);
    atomic_fetch_sub_explicit(&stats.arriving_bytes, (int64_t)n,
        memory_order_relaxed);
}

/*
 * Drop arriving connections, oldest first (mtx held): for
 * BOUND_DROP_CONNS the oldest one, for BOUND_DROP_BYTES as many of those
 * holding bytes as it takes to bring `held` within max_arriving_bytes.
 * Return how many were dropped.
 */
static int
arrive_shed(struct pool *p, enum bound_event ev)
{
    struct conn *c, *next;
    int          n = 0;

    for (c = p->deadlines; c != NULL; c = next) {
        next = c->dnext;
        if (ev == BOUND_DROP_BYTES) {
            if (atomic_load(&p->held) <= p->cfg.max_arriving_bytes)
                break;
            if (atomic_load(&c->held) == 0)
                continue;
        }
        arrive_unlink(p, c);
        atomic_store(&c->dropped, 1);
        arrive_uncharge(p, c);
        shutdown(c->fd, SHUT_RDWR);
        n++;
        if (ev == BOUND_DROP_CONNS)
            break;
    }
    return n;
}

int
arrive_admit(struct pool *p)
{
    int n;

    if (atomic_fetch_add(&p->nconns, 1) < p->cfg.max_connections) {
        atomic_fetch_add_explicit(&stats.open_connections, 1,
            memory_order_relaxed);
        return 1;
    }
    xmutex_lock(&p->mtx);
    n = arrive_shed(p, BOUND_DROP_CONNS);
    xmutex_unlock(&p->mtx);
    if (n > 0) {
        atomic_fetch_add_explicit(&stats.open_connections, 1,
            memory_order_relaxed);
        arrive_note(p, BOUND_DROP_CONNS, 1);
        return 1;
    }
    atomic_fetch_sub(&p->nconns, 1);
    arrive_note(p, BOUND_REFUSED, 1);
    return 0;
}

void
arrive_leave(struct pool *p)
{
    atomic_fetch_sub(&p->nconns, 1);
    atomic_fetch_sub_explicit(&stats.open_connections, 1,
        memory_order_relaxed);
}

void
arrive_charge(struct pool *p, struct conn *c)
{
    size_t size = c->pending.size + c->rq.params.size + c->rq.body.size;
    size_t held = atomic_load(&c->held);
    int    n;

    if (size <= held)
        return;
    atomic_fetch_add_explicit(&p->held, size - held, memory_order_relaxed);
    atomic_fetch_add_explicit(&stats.arriving_bytes, (int64_t)(size - held),
        memory_order_relaxed);
    atomic_fetch_add(&c->held, size - held);
    if (p->cfg.max_arriving_bytes == 0 ||
        atomic_load(&p->held) <= p->cfg.max_arriving_bytes)
        return;
    xmutex_lock(&p->mtx);
    n = arrive_shed(p, BOUND_DROP_BYTES);
    xmutex_unlock(&p->mtx);
    if (n > 0)
        arrive_note(p, BOUND_DROP_BYTES, (uint64_t)n);
}
