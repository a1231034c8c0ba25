/* SPDX-License-Identifier: MIT */
/*
 * pool.c - the worker pool.
 *
 * DESIGN
 * ------
 * A connection holds no worker while it is idle.  All idle workers wait in
 * epoll_wait() on one epoll set (the kernel wakes one waiter per event) that
 * holds the listening socket and every idle connection, each registered
 * EPOLLONESHOT so that exactly one worker takes it:
 *
 *   listener readable -> the worker accepts one connection, re-arms the
 *       listener for the others, and serves the connection at once if bytes
 *       are already waiting (nginx writes its request right after connect);
 *   idle connection readable -> the worker serves its next request.
 *
 * Serving a request: libfcgi reads the params and the body (bounded by
 * max_body_bytes and, per read, by SO_RCVTIMEO = read_timeout_ms), the
 * route is matched, a request token is made as a child of the server token,
 * the watcher's slot of this worker is armed, the handler runs on this
 * thread, the slot is disarmed, FCGX_Finish_r() ends the request, and the
 * outcome is counted.  A connection the front end keeps (FCGI_KEEP_CONN) is
 * then served again if its next request is already there, or goes back to
 * the epoll set; so with nginx's upstream keepalive, more kept connections
 * than workers cost nothing but descriptors.
 *
 * libfcgi owns one connection at a time per FCGX_Request: conn_io() hands
 * it our descriptor before FCGX_Accept_r() (which then reads from it
 * instead of accepting) and takes it back after FCGX_Finish_r().  It is the
 * one function that touches FCGX_Request's private fields.
 *
 * Locking: `mtx` protects the list of idle connections, `draining` and
 * `accepting` (the workers inside pool_accept(), which pool_drain() waits
 * out so that the caller may close the listening socket).  A connection
 * belongs to exactly one of: a worker (serving it), the idle list (in the
 * epoll set), nobody (closed).  Only its owner closes it.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <fcgiapp.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include <fastcgi.h>

#include "log.h"
#include "pool.h"
#include "request.h"
#include "router.h"
#include "status.h"
#include "token.h"
#include "util.h"
#include "watcher.h"

struct conn {
    int              fd;
    int              in_epoll;      /* registered in p->epfd */
    int              idle;          /* on the idle list */
    struct conn     *prev, *next;   /* protected by p->mtx */
};

struct worker {
    struct pool     *pool;
    int              slot;
    pthread_t        thread;
    FCGX_Request     rq;
};

/* An allowed TCP client address (IPv4 kept as IPv4-mapped IPv6). */
struct allow {
    struct in6_addr      addr;
};

struct pool {
    struct allow        *allow;     /* NULL: any client */
    size_t               nallow;
    int                  epfd;
    int                  lfd;
    int                  quitfd;
    struct pool_config   cfg;
    const struct router *router;
    fc_token            *server_tok;
    struct watcher      *watcher;
    struct worker       *workers;
    int                  started;
    _Atomic uint64_t     next_id;
    _Atomic int          busy;
    _Atomic int          quit;

    pthread_mutex_t      mtx;
    pthread_cond_t       drained;   /* signalled when accepting drops to 0 */
    struct conn         *idle;      /* protected by mtx */
    _Atomic int          draining;  /* written under mtx; read anywhere */
    int                  accepting; /* protected by mtx: workers using lfd */
};

enum conn_op {
    CONN_ATTACH,        /* give fd to the request before FCGX_Accept_r() */
    CONN_DETACH,        /* take the fd back after FCGX_Finish_r() */
    CONN_CLOSE_AFTER    /* make FCGX_Finish_r() close the connection */
};

/*
 * The one function that touches FCGX_Request's private fields (ipcFd,
 * keepConnection).  CONN_DETACH returns the descriptor if libfcgi left the
 * connection open, else -1 (libfcgi closed it).
 */
static int
conn_io(FCGX_Request *rq, enum conn_op op, int fd)
{
    switch (op) {
    case CONN_ATTACH:
        /* keepConnection = 1: the FCGX_Finish_r() at the start of
         * FCGX_Accept_r() must not close what we just attached. */
        rq->ipcFd = fd;
        rq->keepConnection = 1;
        return fd;
    case CONN_DETACH:
        fd = rq->ipcFd;
        rq->ipcFd = -1;
        return fd;
    case CONN_CLOSE_AFTER:
        rq->keepConnection = 0;
        return rq->ipcFd;
    }
    return -1;
}

/* Is the pool draining?  A lock-free read on every request's path. */
static int
pool_draining(struct pool *p)
{
    /* Acquire: pairs with the store in pool_drain(). */
    return atomic_load_explicit(&p->draining, memory_order_acquire);
}

/* Close a connection that this worker owns. */
static void
conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

/* Put a connection this worker owns back into the epoll set, idle. */
static void
conn_idle(struct pool *p, struct conn *c)
{
    struct epoll_event ev;

    xmutex_lock(&p->mtx);
    if (p->draining) {
        xmutex_unlock(&p->mtx);
        conn_close(c);
        return;
    }
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
    ev.data.ptr = c;
    if (epoll_ctl(p->epfd, c->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
        c->fd, &ev) != 0) {
        xmutex_unlock(&p->mtx);
        log_warn("pool: cannot wait on connection");
        conn_close(c);
        return;
    }
    c->in_epoll = 1;
    c->idle = 1;
    c->prev = NULL;
    c->next = p->idle;
    if (p->idle != NULL)
        p->idle->prev = c;
    p->idle = c;
    xmutex_unlock(&p->mtx);
}

/* Take an idle connection whose event this worker received. */
static void
conn_take(struct pool *p, struct conn *c)
{
    xmutex_lock(&p->mtx);
    if (c->idle) {
        if (c->prev != NULL)
            c->prev->next = c->next;
        else
            p->idle = c->next;
        if (c->next != NULL)
            c->next->prev = c->prev;
        c->idle = 0;
    }
    xmutex_unlock(&p->mtx);
}

/* Store sa's address as IPv6 (IPv4 mapped) in a6; 0, or -1 if not IP. */
static int
peer_in6(const struct sockaddr_storage *sa, struct in6_addr *a6)
{
    if (sa->ss_family == AF_INET6) {
        *a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr;
        return 0;
    }
    if (sa->ss_family == AF_INET) {
        memset(a6, 0, sizeof *a6);
        a6->s6_addr[10] = a6->s6_addr[11] = 0xff;
        memcpy(&a6->s6_addr[12], &((const struct sockaddr_in *)sa)->sin_addr,
            4);
        return 0;
    }
    return -1;
}

/* May this peer connect?  Unix-socket peers always may. */
static int
pool_allowed(struct pool *p, const struct sockaddr_storage *sa)
{
    static _Atomic uint64_t last_warn;
    struct in6_addr         a6;
    char                    text[INET6_ADDRSTRLEN];
    uint64_t                now;
    size_t                  i;

    if (p->allow == NULL || peer_in6(sa, &a6) != 0)
        return 1;
    for (i = 0; i < p->nallow; i++) {
        if (memcmp(&a6, &p->allow[i].addr, sizeof a6) == 0)
            return 1;
    }
    now = token_now_ns();
    if (now - atomic_load(&last_warn) > 1000000000u) {
        atomic_store(&last_warn, now);
        inet_ntop(AF_INET6, &a6, text, sizeof text);
        log_warnx("pool: connection from %s refused: not in allowed_clients",
            text);
    }
    return 0;
}

/* Parse the allowed_clients strings (checked by the config). */
static int
pool_allow_parse(struct pool *p, char **list)
{
    struct sockaddr_storage ss;
    size_t                  n;

    for (n = 0; list != NULL && list[n] != NULL; n++)
        ;
    if (n == 0)
        return 0;
    if ((p->allow = calloc(n, sizeof *p->allow)) == NULL)
        return -1;
    for (p->nallow = 0; p->nallow < n; p->nallow++) {
        memset(&ss, 0, sizeof ss);
        if (inet_pton(AF_INET, list[p->nallow],
            &((struct sockaddr_in *)&ss)->sin_addr) == 1)
            ss.ss_family = AF_INET;
        else if (inet_pton(AF_INET6, list[p->nallow],
            &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
            ss.ss_family = AF_INET6;
        else
            return -1;
        peer_in6(&ss, &p->allow[p->nallow].addr);
    }
    return 0;
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
    struct conn            *c;
    int                     fd, err, one = 1;
    uint64_t                now;

    xmutex_lock(&p->mtx);
    if (p->draining) {
        xmutex_unlock(&p->mtx);
        return NULL;
    }
    p->accepting++;
    xmutex_unlock(&p->mtx);

    sa.ss_family = AF_UNSPEC;
    fd = accept4(p->lfd, (struct sockaddr *)&sa, &salen, SOCK_CLOEXEC);
    err = errno;
    if (fd < 0 && (err == EMFILE || err == ENFILE || err == ENOBUFS ||
        err == ENOMEM)) {
        /* Out of descriptors: say so once a second, back off 10 ms. */
        now = token_now_ns();
        if (now - atomic_load(&last_warn) > 1000000000u) {
            atomic_store(&last_warn, now);
            errno = err;
            log_warn("pool: accept (backing off)");
        }
        usleep(10000);
    }
    xmutex_lock(&p->mtx);
    if (!p->draining) {
        ev.events = EPOLLIN | EPOLLONESHOT;
        ev.data.ptr = &p->lfd;
        if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, p->lfd, &ev) != 0)
            log_warn("pool: cannot re-arm the listener");
    }
    if (--p->accepting == 0 && p->draining)
        pthread_cond_broadcast(&p->drained);
    xmutex_unlock(&p->mtx);
    if (fd < 0) {
        if (err != EAGAIN && err != EINTR && err != ECONNABORTED &&
            err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
            errno = err;
            log_warn("pool: accept");
        }
        return NULL;
    }
    if (!pool_allowed(p, &sa)) {
        close(fd);
        return NULL;
    }
    if (p->cfg.read_timeout_ms > 0) {
        tv.tv_sec = p->cfg.read_timeout_ms / 1000;
        tv.tv_usec = (p->cfg.read_timeout_ms % 1000) * 1000;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    if (sa.ss_family == AF_INET || sa.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if ((c = calloc(1, sizeof *c)) == NULL) {
        log_warnx("pool: out of memory, connection dropped");
        close(fd);
        return NULL;
    }
    c->fd = fd;
    atomic_fetch_add_explicit(&stats.connections, 1, memory_order_relaxed);
    return c;
}

/* Read the request body, at most max + 1 bytes; -1 if stdin failed. */
static int
read_body(FCGX_Request *rq, size_t max, char **body, size_t *len,
    int *too_large)
{
    struct buf  b = { 0 };
    char        chunk[16384];
    const char *cl = FCGX_GetParam("CONTENT_LENGTH", rq->envp);
    long        declared;
    int         n;

    *body = NULL;
    *len = 0;
    *too_large = 0;
    if (cl != NULL && parse_long(cl, 0, LONG_MAX, &declared) == 0 &&
        (unsigned long)declared > max) {
        *too_large = 1;
        return 0;
    }
    while ((n = FCGX_GetStr(chunk, sizeof chunk, rq->in)) > 0) {
        if (b.len + (size_t)n > max) {
            *too_large = 1;
            buf_free(&b);
            return 0;
        }
        if (buf_add(&b, chunk, (size_t)n) != 0) {
            buf_free(&b);
            return -1;
        }
    }
    if (FCGX_GetError(rq->in) != 0) {
        buf_free(&b);
        return -1;
    }
    *body = b.data;
    *len = b.len;
    return 0;
}

/*
 * Return the CLOCK_MONOTONIC deadline of a request that started at t0: the
 * route's deadline_ms, shortened (or set) by the FastCGI param
 * FCGI_CANCEL_DEADLINE_MS that a front end may pass; 0 for none.  A
 * malformed param is ignored (logged at debug level).
 */
static uint64_t
request_deadline(const struct route *rt, char **envp, uint64_t t0)
{
    const char *p = FCGX_GetParam("FCGI_CANCEL_DEADLINE_MS", envp);
    long        ms = rt->deadline_ms, v;

    if (p != NULL) {
        if (parse_long(p, 1, 86400000L, &v) != 0)
            log_debug("FCGI_CANCEL_DEADLINE_MS ignored: not 1..86400000");
        else if (ms == 0 || v < ms)
            ms = v;
    }
    return ms > 0 ? t0 + (uint64_t)ms * 1000000u : 0;
}

/*
 * Answer with an error status and JSON body if the handler sent no body:
 * before the headers went out, as the status; after probes sent them (200),
 * in the body, after the probes' whitespace.  Return the status sent.
 */
static int
finish_error(fc_response *resp, int status, const char *message)
{
    if (!fc_response_committed(resp)) {
        fc_response_error(resp, status, message);
        return status;
    }
    if (response_bytes(resp) == 0)
        fc_response_error(resp, status, message);
    return response_get_status(resp);
}

/*
 * End the response of a request that did not complete; return the status
 * for the access log (499 if the client is gone: nothing is written).
 */
static int
finish_cancelled(fc_response *resp, enum fc_reason reason)
{
    switch (reason) {
    case FC_DEADLINE:
        return finish_error(resp, 504, "deadline exceeded");
    case FC_SHUTDOWN:
        return finish_error(resp, 503, "server shutting down");
    default:
        return 499;
    }
}

/*
 * Serve one request on c.  Return 1 if the connection is still open and
 * ours, 0 if it was closed (c is then freed).
 */
static int
worker_request(struct worker *wk, struct conn *c)
{
    struct pool        *p = wk->pool;
    FCGX_Request       *rq = &wk->rq;
    const struct route *rt = NULL;
    fc_request         *req = NULL;
    fc_response        *resp = NULL;
    fc_token           *tok = NULL;
    enum fc_reason      reason;
    enum outcome        outcome;
    char               *body;
    char                epath[512], eq[512];
    size_t              blen;
    uint64_t            id, t0, t1;
    int                 too_large, status, result = FC_OK, keep = 1, fd;

    conn_io(rq, CONN_ATTACH, c->fd);
    if (FCGX_Accept_r(rq) < 0) {
        /* libfcgi closed the connection (EOF, timeout, bad record). */
        if ((fd = conn_io(rq, CONN_DETACH, -1)) >= 0)
            close(fd);
        c->fd = -1;
        conn_close(c);
        return 0;
    }
    t0 = token_now_ns();
    id = atomic_fetch_add_explicit(&p->next_id, 1, memory_order_relaxed) + 1;
    atomic_fetch_add_explicit(&stats.accepted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&stats.in_flight, 1, memory_order_relaxed);

    if ((tok = token_new(p->server_tok)) == NULL ||
        (req = request_new(id, rq->envp)) == NULL ||
        (resp = response_new(rq->out, tok)) == NULL) {
        log_errorx("req=%llu out of memory", (unsigned long long)id);
        outcome = OUTCOME_FAILED;
        status = 500;
        keep = 0;
        goto done;
    }

    if (read_body(rq, p->cfg.max_body_bytes, &body, &blen, &too_large) != 0) {
        /* The stream broke while reading: gone, or aborted (libfcgi says
         * FCGX_PROTOCOL_ERROR when an ABORT_REQUEST replaces stdin). */
        token_cancel(tok, FCGX_GetError(rq->in) == FCGX_PROTOCOL_ERROR ?
            FC_ABORTED : FC_CLIENT_GONE);
        result = FC_CANCELLED;
        keep = 0;
    } else if (too_large) {
        fc_response_error(resp, 413, "request body too large");
        keep = 0;
    } else {
        request_set_body(req, body, blen);
        if ((rt = router_match(p->router, fc_request_path(req),
            fc_request_method(req), &status)) == NULL) {
            fc_response_error(resp, status, status == 404 ? "not found" :
                "method not allowed");
        } else {
            struct watch wa = {
                .fd = c->fd, .reqid = rq->requestId, .id = id, .tok = tok,
                .deadline_ns = request_deadline(rt, rq->envp, t0),
                .resp = resp, .probe_ms = rt->probe_ms
            };

            watcher_arm(p->watcher, wk->slot, &wa);
            result = rt->fn(req, resp, tok, rt->data);
            watcher_disarm(p->watcher, wk->slot);
        }
    }

    reason = fc_token_reason(tok);
    if ((result == FC_CANCELLED || response_failed(resp)) &&
        reason != FC_REASON_NONE) {
        outcome = OUTCOME_CANCELLED;
        status = finish_cancelled(resp, reason);
        t1 = token_now_ns();
        stats_cancel_latency(t1 - token_cancel_ns(tok));
        log_info("req=%llu job cancelled reason=%s returned_after_ms=%.3f",
            (unsigned long long)id, fc_reason_name(reason),
            (double)(t1 - token_cancel_ns(tok)) / 1e6);
        if (reason != FC_ABORTED)
            keep = 0;
    } else if (result != FC_OK) {
        outcome = OUTCOME_FAILED;
        status = finish_error(resp, 500, "internal error");
    } else {
        outcome = OUTCOME_COMPLETED;
        if (!fc_response_committed(resp))
            fc_response_flush(resp);
        status = response_get_status(resp);
    }

done:
    /* Params die in FCGX_Finish_r(): log first. */
    stats_end(outcome, tok != NULL ? fc_token_reason(tok) : FC_REASON_NONE);
    atomic_fetch_sub_explicit(&stats.in_flight, 1, memory_order_relaxed);
    if (req != NULL) {
        const char *q = fc_request_param(req, "QUERY_STRING");

        t1 = token_now_ns();
        log_access("req=%llu %s \"%s%s%s\" %d %.3fms%s%s",
            (unsigned long long)id, fc_request_method(req),
            log_escape(epath, sizeof epath, fc_request_path(req)),
            q != NULL && *q != '\0' ? "?" : "",
            log_escape(eq, sizeof eq, q != NULL ? q : ""), status,
            (double)(t1 - t0) / 1e6,
            outcome == OUTCOME_CANCELLED ? " reason=" : "",
            outcome == OUTCOME_CANCELLED ?
            fc_reason_name(fc_token_reason(tok)) : "");
    }
    if (!keep || pool_draining(p))
        conn_io(rq, CONN_CLOSE_AFTER, -1);
    FCGX_Finish_r(rq);
    fd = conn_io(rq, CONN_DETACH, -1);
    response_free(resp);
    request_free(req);
    token_unref(tok);

    if (fd < 0) {
        c->fd = -1;
        conn_close(c);
        return 0;
    }
    return 1;
}

/* Serve the requests of connection c while they are there. */
static void
worker_serve(struct worker *wk, struct conn *c)
{
    struct pool *p = wk->pool;
    ssize_t      r;
    char         b;

    for (;;) {
        r = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            conn_idle(p, c);
            return;
        }
        if (r <= 0) {
            conn_close(c);          /* the front end closed it */
            return;
        }
        if (!worker_request(wk, c))
            return;
        if (pool_draining(p)) {
            conn_close(c);
            return;
        }
    }
}

static void *
worker_main(void *arg)
{
    struct worker      *wk = arg;
    struct pool        *p = wk->pool;
    struct epoll_event  ev;
    struct conn        *c;
    int                 n;

    FCGX_InitRequest(&wk->rq, -1, 0);
    for (;;) {
        n = epoll_wait(p->epfd, &ev, 1, -1);
        if (n < 0) {
            if (errno != EINTR)
                log_warn("pool: epoll_wait");
            continue;
        }
        if (n == 0)
            continue;
        if (ev.data.ptr == &p->quitfd)
            break;
        if (ev.data.ptr == &p->lfd) {
            if ((c = pool_accept(p)) == NULL)
                continue;
        } else {
            c = ev.data.ptr;
            conn_take(p, c);
        }
        atomic_fetch_add_explicit(&p->busy, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&stats.busy, 1, memory_order_relaxed);
        worker_serve(wk, c);
        atomic_fetch_sub_explicit(&stats.busy, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&p->busy, 1, memory_order_release);
    }
    return NULL;
}

struct pool *
pool_new(int lfd, const struct pool_config *cfg, const struct router *router,
    fc_token *server_tok, char **cause)
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
    p->router = router;
    p->server_tok = server_tok;
    p->epfd = p->quitfd = -1;
    p->cfg.allowed_clients = NULL;      /* parsed below; not kept */
    xmutex_init(&p->mtx);
    pthread_cond_init(&p->drained, NULL);
    stats_init(cfg->workers);

    if (pool_allow_parse(p, cfg->allowed_clients) != 0) {
        snprintf(msg, sizeof msg, "allowed_clients: not IP addresses");
        goto fail;
    }
    if ((flags = fcntl(lfd, F_GETFL)) < 0 ||
        fcntl(lfd, F_SETFL, flags | O_NONBLOCK) < 0) {
        snprintf(msg, sizeof msg, "listening socket: %s", strerror(errno));
        goto fail;
    }
    if ((p->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
        (p->quitfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
        snprintf(msg, sizeof msg, "epoll: %s", strerror(errno));
        goto fail;
    }
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.ptr = &p->lfd;
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, lfd, &ev) != 0) {
        snprintf(msg, sizeof msg, "listening socket: %s", strerror(errno));
        goto fail;
    }
    ev.events = EPOLLIN;    /* level-triggered: wakes every worker */
    ev.data.ptr = &p->quitfd;
    epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->quitfd, &ev);

    if ((p->watcher = watcher_new(cfg->workers, cause)) == NULL)
        goto fail_cause;
    stats_set_watcher(p->watcher);
    if ((p->workers = calloc((size_t)cfg->workers, sizeof *p->workers)) ==
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

void
pool_drain(struct pool *p)
{
    struct conn *c;

    xmutex_lock(&p->mtx);
    if (p->draining) {
        xmutex_unlock(&p->mtx);
        return;
    }
    atomic_store_explicit(&p->draining, 1, memory_order_release);
    if (epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->lfd, NULL) != 0)
        log_warn("pool: removing the listener");
    /* After this, no worker touches the listening socket again. */
    while (p->accepting > 0)
        pthread_cond_wait(&p->drained, &p->mtx);
    /* Idle kept connections: the worker that gets the EOF closes them. */
    for (c = p->idle; c != NULL; c = c->next)
        shutdown(c->fd, SHUT_RDWR);
    xmutex_unlock(&p->mtx);
}

int
pool_busy(struct pool *p)
{
    return atomic_load_explicit(&p->busy, memory_order_acquire);
}

void
pool_free(struct pool *p)
{
    struct conn *c;
    uint64_t     one = 1;
    int          i;

    if (p == NULL)
        return;
    atomic_store(&p->quit, 1);
    if (p->quitfd >= 0 && write(p->quitfd, &one, sizeof one) < 0)
        log_warn("pool: waking workers");
    for (i = 0; i < p->started; i++)
        pthread_join(p->workers[i].thread, NULL);
    free(p->workers);
    stats_set_watcher(NULL);
    watcher_free(p->watcher);
    while ((c = p->idle) != NULL) {
        p->idle = c->next;
        conn_close(c);
    }
    if (p->epfd >= 0)
        close(p->epfd);
    if (p->quitfd >= 0)
        close(p->quitfd);
    pthread_cond_destroy(&p->drained);
    xmutex_destroy(&p->mtx);
    free(p->allow);
    free(p);
}
