/* SPDX-License-Identifier: MIT */
/*
 * pool.c - the worker pool; its arriving connections (read deadlines and
 * bounds) are arrive.c's.
 *
 * DESIGN
 * ------
 * A connection holds no worker while it is idle, nor while its request is
 * arriving.  All idle workers wait in epoll_wait() on one epoll set (the
 * kernel wakes one waiter per event) that holds the listening socket and
 * a timerfd for read deadlines (both EPOLLONESHOT: one worker takes each
 * event and re-arms), and every connection that has waited once for
 * bytes (or for room to send).  A connection is registered edge-triggered
 * at its first wait and stays so until it is closed; the worker that
 * receives its event claims it in the connection table (conntab.c: one
 * compare-and-swap), so exactly one worker owns it, an event that comes
 * while another owns it tells that owner to read again, and an event of
 * a closed connection is dropped.  A kept connection thus goes back to
 * wait for its next request without a system call.  Bytes that come while
 * a job runs on it may be an FCGI_ABORT_REQUEST: the worker that gets
 * their event hands them to the watcher (watcher_poke()), which watches a
 * pooled connection for hang-ups only while a worker is free to do so:
 *
 *   listener readable -> the worker accepts one connection, re-arms the
 *       listener for the others, and reads the connection at once (nginx
 *       writes its request right after connect);
 *   connection readable -> the worker reads what is there without blocking
 *       and feeds it to proto_feed() (proto.c).  If the request is still
 *       incomplete, the connection goes back to the set and the worker to
 *       epoll_wait(); once it is whole, the same worker serves it
 *       (serve.c);
 *   timer -> connections whose request began more than read_timeout_ms ago
 *       and is not whole are shut down (arrive.c); whoever owns one then
 *       reads EOF and closes it.
 *
 * At accept, a TCP peer not in allowed_clients is closed (allow.c), and
 * SO_SNDTIMEO = write_timeout_ms bounds each blocking write of a response.
 * Those two, the size limits and read_timeout_ms are the current
 * configuration generation's (generation.c), so a reload applies to them
 * at once: a worker takes a reference to it while it accepts, and another
 * while it reads a connection (from taking it until it gives it back or
 * closes it, renewed after each request if a reload came meanwhile, so
 * that a busy kept connection does not keep an old generation alive); a
 * read deadline is set with that generation's read_timeout_ms.
 * On TCP, keepalive and TCP_USER_TIMEOUT (peer_timeout_ms) make the
 * kernel fail the connection of a front-end host that vanished without a
 * FIN: whoever waits on it sees the error (the watcher cancels the job).
 * Serving a whole request (route, token, watcher, handler, the end of the
 * response, accounting) is serve.c's, on the worker's thread, with the
 * worker's watcher slot and output stream; it returns a verdict on the
 * connection: keep, close, or discard (a refused request whose sender may
 * still be writing: half-close, read and drop until EOF).  A connection
 * the front end keeps (FCGI_KEEP_CONN) is then read again, and goes back to
 * the epoll set when nothing is there; so with nginx's upstream keepalive,
 * more kept connections than workers cost nothing but descriptors.
 *
 * Pollers: at most pollers_max workers (one per CPU, two at least) wait
 * in epoll_wait() at a time; the others wait at a gate (gate_cv) for a
 * place.  The kernel wakes a sleeping epoll waiter for each event, so
 * with every idle worker in epoll_wait() each request cost a wake-up and
 * two context switches, most of the server's CPU on a small request;
 * with few pollers, a request that comes while they are all busy waits
 * in the kernel's ready list and is taken by the next one back, without
 * sleeping.  A poller that leaves epoll_wait() to serve and was the last
 * one lets a waiting worker in first (pool_gate_wake()), so as long as
 * a worker is free one waits for events: a long job never holds up the
 * requests behind it.
 *
 * Arriving connections (arrive.c): those whose request has begun and
 * waited at least once are on the deadline list, oldest first (unless
 * read_timeout_ms is 0).  The timer shuts down those past
 * read_timeout_ms, and max_connections and max_arriving_bytes drop the
 * oldest of them (idle kept connections and those being served are never
 * dropped).  pool.c calls arrive.c as it accepts (arrive_admit()), reads
 * (arrive_charge()), gives a connection back (arrive_add()) and serves or
 * closes it (arrive_clear(), arrive_uncharge(), arrive_leave()), and keeps
 * the count of arriving connections itself (`arriving`: conn_wait(),
 * conn_take()); arrive.c's DESIGN comment tells the rest.
 *
 * Locking: `mtx` protects the count of arriving connections, the deadline
 * list and the timer; `gate_mtx`, taken alone, the gate's waiters (the
 * fields say which, in pool_int.h).  `accepting` (workers inside
 * pool_accept()) and `draining` are atomics paired Dekker-style (both
 * sequentially consistent): a worker counts itself in, then checks
 * draining; the drainer sets draining, then waits for accepting to fall
 * to 0, so after pool_drain() no worker touches the listening socket.  A
 * connection belongs to exactly one of: a worker (reading or serving it),
 * the epoll set (waiting: idle in the connection table), nobody (closed).
 * Only its owner closes it; the timer and the bounds (arrive.c) only shut
 * it down, under mtx, while it is on the deadline list.  pool_drain()
 * claims each idle connection in the table and closes it; a worker that
 * gives one back then checks draining (the give-back and the flag are
 * sequentially consistent, Dekker-style again) and, if it is set, claims
 * it back to close it, so no idle connection outlives the drain.
 *
 * The split: every part here (accept, the reads, the gate, the workers,
 * the drain) moves a struct conn between its three owners under the one
 * rule above; arrive.c keeps the deadline list and the bounds that shed
 * from it, which only shut a connection down.  Both need fields of struct
 * pool and struct conn that must stay private to keep that rule
 * checkable: they are in pool_int.h, which no other file includes.
 * Serving a request (serve.c) and allowed_clients (allow.c), which need
 * none of them, are out.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <fcntl.h>

#include "allow.h"
#include "arrive.h"
#include "conntab.h"
#include "generation.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "pool_int.h"
#include "proto.h"
#include "serve.h"
#include "status.h"
#include "util.h"
#include "watcher.h"

/* Bytes a worker reads from a connection at a time: at first READ_MIN
 * (room for a whole small request), up to READ_CHUNK as a request grows.
 * They are read straight into the connection's buffer of pending bytes,
 * given up whenever it is empty, so an idle or running connection holds
 * none; a worker keeps at most one first buffer spare (read_spare). */
#define READ_MIN            4096
#define READ_CHUNK          65536

/* A worker's spare first buffer: the one a connection gave back when it
 * went idle, for the next connection this worker reads, so that a small
 * request costs no malloc() and free() of READ_MIN bytes (a large-bin
 * size, which also makes malloc consolidate its fast bins).  Freed when
 * the worker ends. */
static _Thread_local char  *read_spare;

/* Busy workers above which a worker keeps no spare while its job runs:
 * with thousands of (sleeping) jobs in flight, READ_MIN bytes each would
 * add 4 KiB to every job's memory; the malloc() saved matters only to a
 * pool that serves short requests, which keeps few workers busy. */
#define SPARE_BUSY_MAX      256

/* Give c's empty buffer of pending bytes up: kept as the worker's spare
 * if it is a first buffer, the worker has none and keep is set, else
 * freed. */
static void
conn_pending_drop(struct conn *c, int keep)
{
    if (keep && c->pending.data != NULL && c->pending.size == READ_MIN &&
        read_spare == NULL) {
        read_spare = c->pending.data;
        c->pending = (struct buf){ NULL, 0, 0 };
        return;
    }
    buf_free(&c->pending);
}

/* ---- the gate (see Pollers) ---------------------------------------- */

/* Take a poller's place if one is free (any: even if none is, to quit).
 * Return 1 if taken. */
static int
pool_gate_try(struct pool *p, int any)
{
    int n = atomic_load(&p->pollers);

    /* Sequentially consistent, as the decrement in worker_main(): a
     * worker that leaves the last place sees a waiter, or the waiter sees
     * the free place. */
    while (n < p->pollers_max || any)
        if (atomic_compare_exchange_weak(&p->pollers, &n, n + 1))
            return 1;
    return 0;
}

/* Wait for a poller's place, then take it. */
static void
pool_gate_enter(struct pool *p)
{
    if (pool_gate_try(p, 0))
        return;
    xmutex_lock(&p->gate_mtx);
    while (!pool_gate_try(p, atomic_load(&p->quit))) {
        p->gate_waiting++;
        pthread_cond_wait(&p->gate_cv, &p->gate_mtx);
        p->gate_waiting--;
    }
    xmutex_unlock(&p->gate_mtx);
}

/* The last poller leaves epoll_wait() to serve: let a waiting worker in. */
static void
pool_gate_wake(struct pool *p)
{
    int waiting;

    /* A waiter counted here is inside pthread_cond_wait() already (it
     * counts itself and waits under gate_mtx), so the signal reaches it
     * after the unlock too, and it does not wake into a held mutex. */
    xmutex_lock(&p->gate_mtx);
    waiting = p->gate_waiting;
    xmutex_unlock(&p->gate_mtx);
    if (waiting > 0)
        pthread_cond_signal(&p->gate_cv);
}

/* Is the pool draining?  A lock-free read on every request's path. */
static int
pool_draining(struct pool *p)
{
    return atomic_load(&p->draining);
}

/*
 * Let the kernel find a vanished TCP peer within ms: keepalive probes
 * after ms/2 of silence, every ms/6, and TCP_USER_TIMEOUT = ms for what it
 * sent (data or probes) and is not acknowledged.
 */
static void
conn_peer_timeout(int fd, long ms)
{
    unsigned    uto = (unsigned)ms;
    int         on = 1, cnt = 3;
    int         idle = ms / 2000 < 1 ? 1 : ms / 2000 > 32767 ? 32767 :
                    (int)(ms / 2000);
    int         intvl = ms / 6000 < 1 ? 1 : ms / 6000 > 32767 ? 32767 :
                    (int)(ms / 6000);

    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl,
        sizeof intvl) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof uto) != 0)
        log_warn("pool: cannot set peer_timeout_ms on a connection");
}

/* Free a connection nobody else can reach. */
static void
conn_destroy(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    proto_free(&c->rq);
    buf_free(&c->pending);
    free(c);
}

/* Close a connection that this worker owns. */
static void
conn_close(struct pool *p, struct conn *c)
{
    if (c->reg != 0)
        conntab_close(p->tab, c->fd);
    arrive_clear(p, c);
    arrive_uncharge(p, c);
    arrive_leave(p);
    if (atomic_load(&c->expired) && !c->discard) {
        atomic_fetch_add_explicit(&stats.read_timeouts, 1,
            memory_order_relaxed);
        log_info("pool: connection closed: request not read whole within "
            "read_timeout_ms (%ld ms)", c->read_timeout_ms);
    }
    conn_destroy(c);
}

/* Take a connection whose event this worker claimed off the count of
 * arriving ones. */
static void
conn_take(struct pool *p, struct conn *c)
{
    if (!c->counted)
        return;
    xmutex_lock(&p->mtx);
    c->counted = 0;
    p->arriving--;
    atomic_fetch_sub_explicit(&stats.arriving, 1, memory_order_relaxed);
    xmutex_unlock(&p->mtx);
}

/*
 * Give a connection this worker owns back to the epoll set, to wait for
 * bytes (and for room to send too, with EPOLLOUT, while replies are
 * queued).  It is registered at its first wait, edge-triggered, and stays
 * so until it is closed: an idle kept connection goes back with one
 * compare-and-swap (conntab.c), no system call.  A request that has
 * begun gets its read deadline now and is counted as arriving.  Return 1
 * if the connection is no longer this worker's (given back, or closed),
 * 0 if bytes came meanwhile: it is still this worker's, to read again.
 */
static int
conn_wait(struct pool *p, struct conn *c, uint32_t events)
{
    struct epoll_event ev;
    uint64_t           reg;
    uint32_t           want = EPOLLIN | EPOLLRDHUP | EPOLLET |
                           (events & EPOLLOUT);
    int                hold = c->mid && !c->discard;
    void              *again;

    if (c->pending.len == 0)
        conn_pending_drop(c, 1);        /* idle: no buffer kept */
    if (pool_draining(p) && !hold) {
        conn_close(p, c);
        return 1;
    }
    /* The deadline list is also the list of arriving connections that
     * max_connections and max_arriving_bytes shed, oldest first; with
     * read_timeout_ms 0 a connection is in neither. */
    if (c->mid) {
        xmutex_lock(&p->mtx);
        if (c->deadline == 0 && c->read_timeout_ms > 0)
            arrive_add(p, c);
        if (hold && !c->counted) {
            c->counted = 1;
            p->arriving++;
            atomic_fetch_add_explicit(&stats.arriving, 1,
                memory_order_relaxed);
        }
        xmutex_unlock(&p->mtx);
    }
    if (c->reg == 0 || c->events != want) {
        if (c->reg == 0 &&
            (c->reg = conntab_register(p->tab, c->fd, c)) == 0) {
            log_warnx("pool: descriptor %d above the limit seen at "
                "start-up, connection closed", c->fd);
            conn_close(p, c);
            return 1;
        }
        ev.events = want;
        ev.data.u64 = c->reg;
        if (epoll_ctl(p->epfd, c->events == 0 ? EPOLL_CTL_ADD :
            EPOLL_CTL_MOD, c->fd, &ev) != 0) {
            log_warn("pool: cannot wait on connection");
            conn_close(p, c);
            return 1;
        }
        c->events = want;
    }
    reg = c->reg;
    if (!conntab_release(p->tab, c->fd, hold)) {
        conn_take(p, c);        /* bytes came: read them now */
        return 0;
    }
    /* c may be another worker's from here.  See Locking: either
     * pool_drain() finds it idle, or this sees draining and takes it back
     * to close it (unless another worker was first). */
    if (!hold && pool_draining(p) &&
        conntab_claim(p->tab, reg, &again) == CONNTAB_CLAIMED)
        conn_close(p, again);
    return 1;
}

/*
 * After answering a request refused before it was read whole (413, 431):
 * half-close, then read and drop what the peer still sends until it
 * closes, so that unread bytes do not turn the close into a reset that
 * destroys the answer on its way.  The connection waits in the epoll set
 * meanwhile (it holds no worker), bounded by read_timeout_ms.
 */
static void
conn_discard(struct conn *c)
{
    shutdown(c->fd, SHUT_WR);
    c->discard = 1;
    c->mid = 1;
    c->t_first = now_ns();
    proto_free(&c->rq);
    buf_free(&c->pending);
}

/* A worker leaves the listening socket; pool_drain() may be waiting. */
static void
accept_leave(struct pool *p)
{
    if (atomic_fetch_sub(&p->accepting, 1) == 1 && atomic_load(&p->draining)) {
        xmutex_lock(&p->mtx);
        pthread_cond_broadcast(&p->drained);
        xmutex_unlock(&p->mtx);
    }
}

/* Accept one connection; NULL if none (or on error, logged). */
static struct conn *
pool_accept(struct pool *p)
{
    static _Atomic uint64_t last_warn;
    struct epoll_event      ev;
    struct sockaddr_storage sa;
    socklen_t               salen = sizeof sa;
    struct timeval          tv;
    struct generation      *g;
    struct conn            *c;
    int                     fd, err, one = 1, allowed;
    long                    wto;
    uint64_t                now;

    /* See Locking: either pool_drain() sees us and waits, or we see it. */
    atomic_fetch_add(&p->accepting, 1);
    if (atomic_load(&p->draining)) {
        accept_leave(p);
        return NULL;
    }
    sa.ss_family = AF_UNSPEC;
    fd = accept4(p->lfd, (struct sockaddr *)&sa, &salen, SOCK_CLOEXEC);
    err = errno;
    if (fd < 0 && (err == EMFILE || err == ENFILE || err == ENOBUFS ||
        err == ENOMEM)) {
        /* Out of descriptors: say so once a second, back off 10 ms. */
        now = now_ns();
        if (now - atomic_load(&last_warn) > 1000000000u) {
            atomic_store(&last_warn, now);
            errno = err;
            log_warn("pool: accept (backing off)");
        }
        usleep(10000);
    }
    /* Re-arm the listener for the next worker, without a lock: the MOD
     * wakes that worker at once.  ENOENT: pool_drain() removed it. */
    if (!atomic_load(&p->draining)) {
        ev.events = EPOLLIN | EPOLLONESHOT;
        ev.data.u64 = EV_LISTENER;
        if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, p->lfd, &ev) != 0 &&
            errno != ENOENT)
            log_warn("pool: cannot re-arm the listener");
    }
    accept_leave(p);
    if (fd < 0) {
        if (err != EAGAIN && err != EINTR && err != ECONNABORTED &&
            err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
            errno = err;
            log_warn("pool: accept");
        }
        return NULL;
    }
    g = gen_get();
    allowed = allow_check(g->allow, &sa);
    wto = g->cfg.write_timeout_ms;
    gen_put(g);
    if (!allowed || !arrive_admit(p)) {
        close(fd);
        return NULL;
    }
    /* Reads never block (MSG_DONTWAIT); writes block, this long at most. */
    if (wto > 0) {
        tv.tv_sec = wto / 1000;
        tv.tv_usec = (wto % 1000) * 1000;
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    if (sa.ss_family == AF_INET || sa.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if ((sa.ss_family == AF_INET || sa.ss_family == AF_INET6) &&
        p->cfg.peer_timeout_ms > 0)
        conn_peer_timeout(fd, p->cfg.peer_timeout_ms);
    if ((c = calloc(1, sizeof *c)) == NULL) {
        log_warnx("pool: out of memory, connection dropped");
        arrive_leave(p);
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->id = atomic_fetch_add_explicit(&p->next_conn, 1,
        memory_order_relaxed) + 1;
    atomic_fetch_add_explicit(&stats.connections, 1, memory_order_relaxed);
    return c;
}

/*
 * Read what is there on c into c->pending, without blocking.  Return the
 * bytes read, 0 at end of file, or -1 with errno set (ENOMEM: no room).
 */
static ssize_t
conn_read(struct conn *c)
{
    /* A first buffer of exactly READ_MIN bytes (the NUL included): what
     * an arriving request holds is its pages, counted by arrive_charge(). */
    size_t  room = c->pending.len + 1 < READ_MIN ?
        READ_MIN - 1 - c->pending.len : c->pending.len;
    ssize_t n;

    if (room > READ_CHUNK)
        room = READ_CHUNK;
    if (c->pending.data == NULL && read_spare != NULL) {
        c->pending = (struct buf){ read_spare, 0, READ_MIN };
        c->pending.data[0] = '\0';
        read_spare = NULL;
    }
    if (c->pending.size > c->pending.len + 1 + room)
        room = c->pending.size - c->pending.len - 1;
    if (buf_reserve(&c->pending, room) != 0) {
        errno = ENOMEM;
        return -1;
    }
    room = c->pending.size - c->pending.len - 1;
    n = recv(c->fd, c->pending.data + c->pending.len, room, MSG_DONTWAIT);
    if (n > 0) {
        c->pending.len += (size_t)n;
        c->pending.data[c->pending.len] = '\0';
    }
    return n;
}

/*
 * Serve the request read whole on c (serve.c) and do with c what the
 * verdict says.  Return 1 if the connection is still open and ours, 0 if
 * it was closed (c is then freed).
 */
static int
worker_request(struct worker *wk, struct conn *c)
{
    struct pool        *p = wk->pool;
    enum serve_verdict  verdict;

    arrive_clear(p, c);
    /* Off the arriving list now, so no bound drops it from here on. */
    if (atomic_load(&c->dropped)) {
        conn_close(p, c);
        return 0;
    }
    arrive_uncharge(p, c);
    /* Answers to records that came with the request (FCGI_CANT_MPX_CONN
     * for another id, management records) go first. */
    if (c->rq.reply.len > 0 && proto_send(c->fd, &c->rq.reply, 1) < 0) {
        conn_close(p, c);
        return 0;
    }
    if (c->pending.len == 0)            /* not held while the job runs */
        conn_pending_drop(c, pool_busy(p) <= SPARE_BUSY_MAX);
    verdict = serve_request(p->serve, wk->slot, &wk->out, c->fd, c->id,
        c->reg != 0, &c->rq, &c->pending);
    if (wk->gen->number != gen_number()) {
        gen_put(wk->gen);               /* the next request reads with */
        wk->gen = gen_get();            /* the limits of a reload */
        c->read_timeout_ms = wk->gen->cfg.read_timeout_ms;
    }
    /* Bytes already read belong to the next request. */
    c->mid = c->pending.len > 0;
    c->t_first = now_ns();
    if (verdict == SERVE_DISCARD) {
        conn_discard(c);
        return 1;
    }
    if (verdict == SERVE_CLOSE || pool_draining(p)) {
        conn_close(p, c);
        return 0;
    }
    return 1;
}

/*
 * Read connection c, which this worker owns, without blocking, and serve
 * the requests that are whole, with the limits of the worker's generation;
 * give it back to the epoll set when it has nothing more to read (or no
 * room for the replies), or close it.
 */
static void
worker_read(struct worker *wk, struct conn *c)
{
    struct pool      *p = wk->pool;
    enum proto_result res;
    size_t            used;
    ssize_t           n;
    int               sent;

    for (;;) {
        /* The read deadline, also for a peer that sends without pause
         * (the timer only sees connections that wait). */
        if (c->mid && c->read_timeout_ms > 0 && now_ns() -
            c->t_first > (uint64_t)c->read_timeout_ms * 1000000u) {
            atomic_store(&c->expired, 1);
            conn_close(p, c);
            return;
        }
        if (c->discard) {
            n = conn_read(c);
            c->pending.len = 0;
            if (n > 0 || (n < 0 && errno == EINTR))
                continue;
            if (n < 0 && errno == EAGAIN) {
                if (conn_wait(p, c, EPOLLIN))
                    return;
                continue;
            }
            conn_close(p, c);
            return;
        }
        if (c->rq.reply.len > 0) {
            if ((sent = proto_send(c->fd, &c->rq.reply, 0)) < 0) {
                conn_close(p, c);
                return;
            }
            if (sent == 0) {
                if (conn_wait(p, c, EPOLLOUT))
                    return;
                continue;
            }
        }
        if (c->pending.len > 0) {
            res = proto_feed(&c->rq, &wk->gen->limits,
                (const unsigned char *)c->pending.data, c->pending.len, &used);
            buf_consume(&c->pending, used);
            if (res == PROTO_READY) {
                if (!worker_request(wk, c))
                    return;
                if (pool_draining(p) && !c->discard) {
                    conn_close(p, c);
                    return;
                }
                /* Nothing left over: wait for the next request at once,
                 * not after a read that would find nothing (the front end
                 * sends it only after this answer; bytes that came
                 * meanwhile make conn_wait() say "read again"). */
                if (!c->discard && c->pending.len == 0 &&
                    c->rq.reply.len == 0) {
                    if (conn_wait(p, c, EPOLLIN))
                        return;
                    continue;
                }
                continue;
            }
            if (res == PROTO_CLOSE) {
                log_debug("pool: connection closed: %s", c->rq.error);
                if (c->rq.reply.len > 0)
                    proto_send(c->fd, &c->rq.reply, 0);
                conn_close(p, c);
                return;
            }
            if (c->rq.reply.len > 0)
                continue;       /* send the answers before reading on */
        }
        arrive_charge(p, c);
        n = conn_read(c);
        if (n > 0)
            arrive_charge(p, c);    /* what the read added to pending */
        if (n > 0) {
            if (!c->mid) {
                c->mid = 1;
                c->t_first = now_ns();
            }
            continue;
        }
        if (n < 0 && errno == ENOMEM) {
            log_warnx("pool: out of memory, connection closed");
            conn_close(p, c);
            return;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            /* Nothing begun and nothing owed (management records only):
             * the connection is idle again, with no read deadline. */
            if (c->pending.len == 0 && c->rq.state == PROTO_BEGIN &&
                c->rq.reply.len == 0) {
                c->mid = 0;
                arrive_clear(p, c);
            }
            if (conn_wait(p, c, EPOLLIN))
                return;
            continue;
        }
        /* End of file, reset, or shut down by the read deadline. */
        if (c->mid && !atomic_load(&c->expired))
            log_debug("pool: connection closed in the middle of a request");
        conn_close(p, c);
        return;
    }
}

/*
 * worker_read() under a reference to the current generation, held until
 * the connection is given back or closed.
 */
static void
worker_serve(struct worker *wk, struct conn *c)
{
    wk->gen = gen_get();
    c->read_timeout_ms = wk->gen->cfg.read_timeout_ms;
    worker_read(wk, c);
    gen_put(wk->gen);
    wk->gen = NULL;
}

/*
 * A worker thread.  The path of a request through the files, for a reader
 * who starts here:
 *
 *   listen.c      the listening socket (opened by main.c, which starts
 *                 the pool);
 *   pool.c        a worker takes the listener's event, accepts
 *                 (pool_accept(); allow.c checks allowed_clients), and
 *                 reads without blocking (worker_serve());
 *   proto.c       proto_feed() assembles the records into a request; while
 *                 it is not whole the connection waits in the epoll set;
 *   serve.c       serve_request(): a token (token.c), the route
 *                 (router.c), the watcher's slot armed (watcher.c), the
 *                 handler (src/handlers/, status.c, or a module) run with
 *                 request.c's fc_request and fc_response;
 *   request.c     the response, written through proto.c's FCGX_Stream
 *                 (the write path is told in serve.c's DESIGN comment);
 *   watcher.c     meanwhile, its thread cancels the token if the front end
 *                 hangs up, aborts, or the deadline passes;
 *   serve.c       the slot disarmed, proto_out_end(), the counters
 *                 (status.c) and the access log (log.c), and a verdict;
 *   pool.c        worker_request() keeps, closes or discards the
 *                 connection, and reads the next request or waits again.
 */
static void *
worker_main(void *arg)
{
    struct worker      *wk = arg;
    struct pool        *p = wk->pool;
    struct epoll_event  ev;
    struct conn        *c;
    void               *ptr;
    enum conntab_claim  claim;
    int                 n, left;

    for (;;) {
        pool_gate_enter(p);
        n = epoll_wait(p->epfd, &ev, 1, -1);
        left = atomic_fetch_sub(&p->pollers, 1) - 1;
        if (n < 0) {
            if (errno != EINTR)
                log_warn("pool: epoll_wait");
            continue;
        }
        if (n == 0)
            continue;
        if (ev.data.u64 == EV_QUIT)
            break;
        if (ev.data.u64 == EV_TIMER) {
            arrive_expire(p);
            continue;
        }
        if (ev.data.u64 == EV_LISTENER) {
            if (left == 0)
                pool_gate_wake(p);      /* before a backing-off accept */
            if ((c = pool_accept(p)) == NULL)
                continue;
        } else {
            /* Another worker's (it reads again), or closed: not ours.
             * Bytes on another's: its job may be running, and they may
             * be an abort record for it. */
            claim = conntab_claim(p->tab, ev.data.u64, &ptr);
            if (claim == CONNTAB_NOTED && (ev.events & (EPOLLIN |
                EPOLLRDHUP | EPOLLHUP | EPOLLERR)) == EPOLLIN) {
                if (left == 0)
                    pool_gate_wake(p);  /* a cancel may take a while */
                watcher_poke(p->watcher, conntab_fd(ev.data.u64));
            }
            if (claim != CONNTAB_CLAIMED)
                continue;
            if (left == 0)
                pool_gate_wake(p);
            c = ptr;
            conn_take(p, c);
        }
        atomic_fetch_add_explicit(&p->busy, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&stats.busy, 1, memory_order_relaxed);
        worker_serve(wk, c);
        atomic_fetch_sub_explicit(&stats.busy, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&p->busy, 1, memory_order_release);
    }
    free(read_spare);
    read_spare = NULL;
    return NULL;
}

/*
 * Make room for max_connections descriptors beside those of the jobs
 * (pipes, files: 64 + 8 per worker kept for them, at most a quarter of
 * the limit) within RLIMIT_NOFILE
 * (which oslimits_check() raised to the hard limit at start-up): lower
 * max_connections, saying so, when the limit is too low.
 */
static void
pool_fd_limit(struct pool *p)
{
    struct rlimit   rl;
    rlim_t          keep, want;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return;
    /* 8 per worker, but never more than a quarter of the limit: 10,000
     * workers of sleeping jobs need their connections, not 80,000
     * descriptors kept aside. */
    keep = 8 * (rlim_t)p->cfg.workers;
    if (keep > rl.rlim_cur / 4)
        keep = rl.rlim_cur / 4;
    keep += 64;
    want = (rlim_t)p->cfg.max_connections + keep;
    if (rl.rlim_cur >= want)
        return;
    p->cfg.max_connections = rl.rlim_cur > keep + 16 ?
        (long)(rl.rlim_cur - keep) : 16;
    log_warnx("pool: max_connections lowered to %ld: the descriptor limit "
        "is %llu, of which %llu are kept for the jobs", p->cfg.max_connections,
        (unsigned long long)rl.rlim_cur, (unsigned long long)keep);
}

/* Descriptor numbers the connection table covers: the descriptor limit
 * (oslimits_check() raised it at start-up), 1 << 24 at most. */
static size_t
pool_fd_table_size(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 24) ?
        (size_t)1 << 24 : (size_t)rl.rlim_cur;
}

/* How many workers wait in epoll_wait() at most: one per CPU, two at
 * least (with one, every request would hand the place over), and no more
 * than the workers. */
static int
pool_pollers(int workers)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int  n = ncpu < 2 ? 2 : ncpu > 4096 ? 4096 : (int)ncpu;

    return n < workers ? n : workers;
}

struct pool *
pool_new(int lfd, const struct pool_config *cfg, fc_token *server_tok,
    char **cause)
{
    struct pool        *p;
    struct epoll_event  ev;
    pthread_attr_t      attr;
    int                 i, rc, flags;
    char                msg[256];

    if ((p = calloc(1, sizeof *p)) == NULL) {
        *cause = strdup("out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    p->lfd = lfd;
    p->epfd = p->quitfd = p->timerfd = -1;
    xmutex_init(&p->mtx);
    pthread_cond_init(&p->drained, NULL);
    xmutex_init(&p->gate_mtx);
    pthread_cond_init(&p->gate_cv, NULL);
    p->pollers_max = pool_pollers(cfg->workers);
    stats_init(cfg->workers);
    if (metrics_init(cfg->workers) != 0) {
        snprintf(msg, sizeof msg, "out of memory");
        goto fail;
    }
    pool_fd_limit(p);
    if ((p->tab = conntab_new(pool_fd_table_size())) == NULL) {
        snprintf(msg, sizeof msg, "out of memory");
        goto fail;
    }

    if ((flags = fcntl(lfd, F_GETFL)) < 0 ||
        fcntl(lfd, F_SETFL, flags | O_NONBLOCK) < 0) {
        snprintf(msg, sizeof msg, "listening socket: %s", strerror(errno));
        goto fail;
    }
    if ((p->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (p->quitfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
        (p->timerfd = timerfd_create(CLOCK_MONOTONIC,
        TFD_CLOEXEC | TFD_NONBLOCK)) < 0) {
        snprintf(msg, sizeof msg, "epoll: %s", strerror(errno));
        goto fail;
    }
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u64 = EV_LISTENER;
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, lfd, &ev) != 0) {
        snprintf(msg, sizeof msg, "listening socket: %s", strerror(errno));
        goto fail;
    }
    ev.events = EPOLLIN;    /* level-triggered: wakes every worker */
    ev.data.u64 = EV_QUIT;
    epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->quitfd, &ev);
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u64 = EV_TIMER;
    epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->timerfd, &ev);

    if ((p->watcher = watcher_new(cfg->workers, cause)) == NULL)
        goto fail_cause;
    stats_set_watcher(p->watcher);
    if ((p->serve = serve_new(server_tok, p->watcher)) == NULL) {
        snprintf(msg, sizeof msg, "out of memory");
        goto fail;
    }
    if ((p->workers = calloc((size_t)cfg->workers, sizeof *p->workers)) ==
        NULL) {
        snprintf(msg, sizeof msg, "out of memory");
        goto fail;
    }
    if ((p->outbufs = calloc((size_t)cfg->workers, PROTO_OUT_BUF)) ==
        NULL) {
        snprintf(msg, sizeof msg, "out of memory");
        goto fail;
    }
    pthread_attr_init(&attr);
    if (cfg->stack_size > 0)
        pthread_attr_setstacksize(&attr, cfg->stack_size);
    for (i = 0; i < cfg->workers; i++) {
        p->workers[i].pool = p;
        p->workers[i].slot = i;
        p->workers[i].out.buf = p->outbufs + (size_t)i * PROTO_OUT_BUF;
        rc = pthread_create(&p->workers[i].thread, &attr, worker_main,
            &p->workers[i]);
        if (rc != 0) {
            pthread_attr_destroy(&attr);
            snprintf(msg, sizeof msg, "cannot start worker %d of %d: %s",
                i + 1, cfg->workers, strerror(rc));
            goto fail;
        }
        p->started++;
    }
    pthread_attr_destroy(&attr);
    return p;

fail:
    *cause = strdup(msg);
fail_cause:
    pool_free(p);
    return NULL;
}

/* pool_drain()'s callback: close an idle connection it claimed. */
static void
pool_drain_close(void *arg, void *ptr)
{
    conn_close(arg, ptr);
}

/* pool_free()'s callback: free a connection left in the set. */
static void
pool_free_conn(void *arg, void *ptr)
{
    (void)arg;
    conn_destroy(ptr);
}

void
pool_drain(struct pool *p)
{
    xmutex_lock(&p->mtx);
    if (p->draining) {
        xmutex_unlock(&p->mtx);
        return;
    }
    atomic_store(&p->draining, 1);      /* see Locking */
    if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->lfd, NULL) != 0)
        log_warn("pool: removing the listener");
    /* After this, no worker touches the listening socket again. */
    while (atomic_load(&p->accepting) > 0)
        pthread_cond_wait(&p->drained, &p->mtx);
    xmutex_unlock(&p->mtx);
    /* Idle connections are closed now.  Those whose request is arriving
     * are left to finish it (or time out); those being served are closed
     * by their workers, who see draining. */
    conntab_each(p->tab, 1, pool_drain_close, p);
}

int
pool_busy(struct pool *p)
{
    return atomic_load_explicit(&p->busy, memory_order_acquire);
}

void
pool_tick(struct pool *p)
{
    arrive_log(p);
}

int
pool_arriving(struct pool *p)
{
    int n;

    xmutex_lock(&p->mtx);
    n = p->arriving;
    xmutex_unlock(&p->mtx);
    return n;
}

void
pool_free(struct pool *p)
{
    uint64_t     one = 1;
    int          i;

    if (p == NULL)
        return;
    atomic_store(&p->quit, 1);
    if (p->quitfd >= 0 && write(p->quitfd, &one, sizeof one) < 0)
        log_warn("pool: waking workers");
    xmutex_lock(&p->gate_mtx);          /* and those at the gate */
    pthread_cond_broadcast(&p->gate_cv);
    xmutex_unlock(&p->gate_mtx);
    for (i = 0; i < p->started; i++)
        pthread_join(p->workers[i].thread, NULL);
    free(p->workers);
    free(p->outbufs);
    serve_free(p->serve);
    metrics_fini();
    stats_set_watcher(NULL);
    watcher_free(p->watcher);
    if (p->tab != NULL)
        conntab_each(p->tab, 0, pool_free_conn, NULL);
    conntab_free(p->tab);
    if (p->epfd >= 0)
        close(p->epfd);
    if (p->quitfd >= 0)
        close(p->quitfd);
    if (p->timerfd >= 0)
        close(p->timerfd);
    pthread_cond_destroy(&p->drained);
    xmutex_destroy(&p->mtx);
    pthread_cond_destroy(&p->gate_cv);
    xmutex_destroy(&p->gate_mtx);
    free(p);
}
