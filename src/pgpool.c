/* SPDX-License-Identifier: MIT */
/*
 * pgpool.c - the PostgreSQL connection pool of an sql route.
 *
 * DESIGN
 *
 * A pool holds up to `size` libpq connections to one conninfo.  Workers
 * take one per request with pgpool_get() and give it back with
 * pgpool_put(); nothing is connected before the first request, so a
 * database that is down at start-up does not stop the server (its
 * requests get 503 until it is back).  Idle connections are a stack: the
 * most recently used one is reused first (warm caches, and the tests can
 * tell reuse by the backend's pid).
 *
 * Connecting is asynchronous (PQconnectStartParams / PQconnectPoll) and
 * polled beside the request's token, so a client that leaves while the
 * server connects stops the wait, and connect_timeout_ms bounds it.  A
 * worker that finds every connection taken sleeps on `cond`; a cancel
 * callback registered on its token broadcasts `cond`, so it wakes when the
 * request is cancelled as well as when a connection comes back.
 *
 * A connection taken again is checked first: its status, its transaction
 * status (idle), and whether the server wrote something while it sat idle
 * (a terminated backend sends an error and closes): such a connection is
 * closed and the next one tried.  The handler closes (pgpool_put with ok
 * 0) a connection that failed or that it could not bring back to idle.
 *
 * Locking: `mtx` protects `idle`, `nidle`, `open` and `in_use`; it is
 * held only to move connections in and out, never across libpq calls
 * that do I/O.  The cancel callback (pgpool_wake, on the cancelling
 * thread) takes `mtx` alone.  Counters are relaxed atomics (figures for
 * /status).  Lock order: sql.c's route list, then `mtx`.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgpool.h"
#include "util.h"

#define PGPOOL_KEYS_EXTRA   3       /* encoding, application, options */

struct pgpool {
    pthread_mutex_t     mtx;
    pthread_cond_t      cond;           /* a connection came back, or a
                                           waiter's token was cancelled */
    PGconn            **idle;           /* protected by mtx; a stack */
    int                 nidle;          /* protected by mtx */
    int                 open;           /* protected by mtx; <= size */
    int                 in_use;         /* protected by mtx */
    int                 size;
    long                connect_timeout_ms;
    char              **keys;           /* for PQconnectStartParams */
    char              **values;
    char               *safe;           /* conninfo without password */
    _Atomic uint64_t    connects;
    _Atomic uint64_t    connect_failures;
    _Atomic uint64_t    dropped;
};

char *
pgpool_strip_password(const char *conninfo, char *dst, size_t size)
{
    PQconninfoOption   *opts, *o;
    struct buf          b = { 0 };
    char               *err = NULL;

    if ((opts = PQconninfoParse(conninfo, &err)) == NULL) {
        PQfreemem(err);
        snprintf(dst, size, "(invalid)");
        return dst;
    }
    for (o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || strcmp(o->keyword, "password") == 0)
            continue;
        if (buf_printf(&b, "%s%s=%s", b.len > 0 ? " " : "", o->keyword,
            o->val) != 0)
            break;
    }
    PQconninfoFree(opts);
    snprintf(dst, size, "%s", b.data != NULL ? b.data : "(PG* environment)");
    buf_free(&b);
    return dst;
}

/*
 * Fill p->keys and p->values from conninfo plus our options.  Return 0,
 * or -1 with *cause set.
 */
static int
pgpool_params(struct pgpool *p, const char *conninfo, int read_only,
    char **cause)
{
    PQconninfoOption   *opts, *o;
    char               *err = NULL, *options = NULL;
    const char         *ro = "-c default_transaction_read_only=on";
    size_t              n = 0, i = 0;
    int                 app = 0;

    if ((opts = PQconninfoParse(conninfo, &err)) == NULL) {
        /* libpq's message may quote the string: keep it out. */
        PQfreemem(err);
        *cause = strdup("is not a valid libpq connection string");
        return -1;
    }
    for (o = opts; o->keyword != NULL; o++)
        n += o->val != NULL;
    if ((p->keys = calloc(n + PGPOOL_KEYS_EXTRA + 1, sizeof *p->keys)) ==
        NULL || (p->values = calloc(n + PGPOOL_KEYS_EXTRA + 1,
        sizeof *p->values)) == NULL)
        goto nomem;
    for (o = opts; o->keyword != NULL; o++) {
        if (o->val == NULL || strcmp(o->keyword, "client_encoding") == 0)
            continue;
        if (strcmp(o->keyword, "options") == 0) {
            if (asprintf(&options, "%s%s%s", o->val, read_only ? " " : "",
                read_only ? ro : "") < 0) {
                options = NULL;
                goto nomem;
            }
            continue;
        }
        app |= strcmp(o->keyword, "fallback_application_name") == 0;
        if ((p->keys[i] = strdup(o->keyword)) == NULL ||
            (p->values[i++] = strdup(o->val)) == NULL)
            goto nomem;
    }
    if (options == NULL && read_only && (options = strdup(ro)) == NULL)
        goto nomem;
    if (options != NULL) {
        if ((p->keys[i] = strdup("options")) == NULL)
            goto nomem;
        p->values[i++] = options;
        options = NULL;
    }
    if ((p->keys[i] = strdup("client_encoding")) == NULL ||
        (p->values[i++] = strdup("UTF8")) == NULL)
        goto nomem;
    if (!app && ((p->keys[i] = strdup("fallback_application_name")) ==
        NULL || (p->values[i++] = strdup("fcgi-cancel")) == NULL))
        goto nomem;
    PQconninfoFree(opts);
    return 0;
nomem:
    free(options);
    PQconninfoFree(opts);
    *cause = strdup("out of memory");
    return -1;
}

struct pgpool *
pgpool_new(const char *conninfo, int size, int read_only,
    long connect_timeout_ms, char **cause)
{
    struct pgpool   *p;
    char             safe[1024];

    *cause = NULL;
    if ((p = calloc(1, sizeof *p)) == NULL) {
        *cause = strdup("out of memory");
        return NULL;
    }
    xmutex_init(&p->mtx);
    pthread_cond_init(&p->cond, NULL);
    p->size = size;
    p->connect_timeout_ms = connect_timeout_ms;
    if (pgpool_params(p, conninfo, read_only, cause) != 0 ||
        (p->idle = calloc((size_t)size, sizeof(PGconn *))) == NULL ||
        (p->safe = strdup(pgpool_strip_password(conninfo, safe,
        sizeof safe))) == NULL) {
        if (*cause == NULL)
            *cause = strdup("out of memory");
        pgpool_free(p);
        return NULL;
    }
    return p;
}

void
pgpool_free(struct pgpool *p)
{
    int i;

    if (p == NULL)
        return;
    for (i = 0; p->idle != NULL && i < p->nidle; i++)
        PQfinish(p->idle[i]);
    free(p->idle);
    strv_free(p->keys);
    strv_free(p->values);
    free(p->safe);
    pthread_cond_destroy(&p->cond);
    xmutex_destroy(&p->mtx);
    free(p);
}

const char *
pgpool_safe_conninfo(const struct pgpool *p)
{
    return p->safe;
}

enum pgpool_status
pgpool_wait(PGconn *conn, fc_token *tok, int want_write, long timeout_ms)
{
    struct pollfd   pfd[2];
    uint64_t        end = 0, now;
    long            slice;
    int             tfd = tok != NULL ? fc_token_fd(tok) : -1, n;

    if (timeout_ms >= 0)
        end = now_ns() + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        if (tok != NULL && fc_token_cancelled(tok))
            return PGPOOL_CANCELLED;
        slice = -1;
        if (timeout_ms >= 0) {
            if ((now = now_ns()) >= end)
                return PGPOOL_TIMEOUT;
            slice = (long)((end - now + 999999u) / 1000000u);
        }
        /* Without the token's descriptor, look at the token often. */
        if (tok != NULL && tfd < 0 && (slice < 0 || slice > 50))
            slice = 50;
        pfd[0].fd = PQsocket(conn);
        pfd[0].events = want_write ? POLLOUT : POLLIN;
        pfd[0].revents = 0;
        pfd[1].fd = tfd;
        pfd[1].events = POLLIN;
        pfd[1].revents = 0;
        if (pfd[0].fd < 0)
            return PGPOOL_DOWN;
        n = poll(pfd, tfd >= 0 ? 2 : 1, (int)slice);
        if (n < 0 && errno != EINTR)
            return PGPOOL_DOWN;
        if (n > 0 && pfd[1].revents != 0)
            return PGPOOL_CANCELLED;
        if (n > 0 && pfd[0].revents != 0)
            return PGPOOL_OK;
    }
}

/*
 * Open a connection within the pool's connect timeout, cancellable by
 * tok.  Return PGPOOL_OK with *conn set, PGPOOL_CANCELLED, or PGPOOL_DOWN
 * with *err set (libpq's message, or "timeout").
 */
static enum pgpool_status
pgpool_connect(struct pgpool *p, fc_token *tok, PGconn **conn, char **err)
{
    PostgresPollingStatusType   st = PGRES_POLLING_WRITING;
    enum pgpool_status          ws;
    uint64_t                    end, now;
    PGconn                     *c;

    end = now_ns() + (uint64_t)p->connect_timeout_ms * 1000000u;
    c = PQconnectStartParams((const char *const *)p->keys,
        (const char *const *)p->values, 0);
    if (c == NULL) {
        *err = strdup("out of memory");
        return PGPOOL_DOWN;
    }
    while (PQstatus(c) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
        st != PGRES_POLLING_FAILED) {
        now = now_ns();
        ws = now >= end ? PGPOOL_TIMEOUT : pgpool_wait(c, tok,
            st == PGRES_POLLING_WRITING, (long)((end - now) / 1000000u));
        if (ws == PGPOOL_CANCELLED) {
            PQfinish(c);
            return PGPOOL_CANCELLED;
        }
        if (ws == PGPOOL_TIMEOUT) {
            PQfinish(c);
            if (asprintf(err, "no connection within connect_timeout_ms "
                "(%ld ms)", p->connect_timeout_ms) < 0)
                *err = NULL;
            return PGPOOL_DOWN;
        }
        st = PQconnectPoll(c);
    }
    if (PQstatus(c) != CONNECTION_OK) {
        *err = strdup(PQerrorMessage(c));
        PQfinish(c);
        return PGPOOL_DOWN;
    }
    if (PQsetnonblocking(c, 1) != 0) {
        *err = strdup(PQerrorMessage(c));
        PQfinish(c);
        return PGPOOL_DOWN;
    }
    *conn = c;
    return PGPOOL_OK;
}

/* Return 1 if an idle connection still looks usable, else 0. */
static int
pgpool_alive(PGconn *c)
{
    struct pollfd pfd;

    if (PQstatus(c) != CONNECTION_OK ||
        PQtransactionStatus(c) != PQTRANS_IDLE)
        return 0;
    pfd.fd = PQsocket(c);
    pfd.events = POLLIN;
    pfd.revents = 0;
    /* The server wrote while we were idle: a close, a fatal error, or a
     * harmless notice; libpq tells which. */
    if (poll(&pfd, 1, 0) > 0 && (!PQconsumeInput(c) ||
        PQstatus(c) != CONNECTION_OK || PQisBusy(c)))
        return 0;
    return 1;
}

/* The cancel callback of a waiting worker: wake the waiters (any thread). */
static void
pgpool_wake(fc_token *tok, enum fc_reason reason, void *arg)
{
    struct pgpool *p = arg;

    xmutex_lock(&p->mtx);
    pthread_cond_broadcast(&p->cond);
    xmutex_unlock(&p->mtx);
}

enum pgpool_status
pgpool_get(struct pgpool *p, fc_token *tok, PGconn **conn, int *fresh,
    char **err)
{
    enum pgpool_status  st = PGPOOL_CANCELLED;
    PGconn             *c;
    int                 handle = -1;

    *conn = NULL;
    *fresh = 0;
    *err = NULL;
    if (fc_token_cancelled(tok))
        return PGPOOL_CANCELLED;
    xmutex_lock(&p->mtx);
    for (;;) {
        if (p->nidle > 0) {
            c = p->idle[--p->nidle];
            p->in_use++;
            xmutex_unlock(&p->mtx);
            if (pgpool_alive(c)) {
                *conn = c;
                st = PGPOOL_OK;
                break;
            }
            PQfinish(c);
            atomic_fetch_add_explicit(&p->dropped, 1, memory_order_relaxed);
            xmutex_lock(&p->mtx);
            p->in_use--;
            p->open--;
            continue;
        }
        if (p->open < p->size) {
            p->open++;
            p->in_use++;
            xmutex_unlock(&p->mtx);
            st = pgpool_connect(p, tok, conn, err);
            if (st == PGPOOL_OK) {
                atomic_fetch_add_explicit(&p->connects, 1,
                    memory_order_relaxed);
                *fresh = 1;
                break;
            }
            if (st == PGPOOL_DOWN)
                atomic_fetch_add_explicit(&p->connect_failures, 1,
                    memory_order_relaxed);
            xmutex_lock(&p->mtx);
            p->open--;
            p->in_use--;
            pthread_cond_signal(&p->cond);
            xmutex_unlock(&p->mtx);
            break;
        }
        if (fc_token_cancelled(tok)) {
            xmutex_unlock(&p->mtx);
            break;
        }
        if (handle < 0) {
            /* Not under mtx: a token already cancelled runs the callback
             * at once, on this thread, and it takes mtx. */
            xmutex_unlock(&p->mtx);
            handle = fc_token_on_cancel(tok, pgpool_wake, p);
            xmutex_lock(&p->mtx);
            continue;
        }
        pthread_cond_wait(&p->cond, &p->mtx);
    }
    if (handle > 0)
        fc_token_off_cancel(tok, handle);
    return st;
}

void
pgpool_put(struct pgpool *p, PGconn *conn, int ok)
{
    if (ok && (PQstatus(conn) != CONNECTION_OK ||
        PQtransactionStatus(conn) != PQTRANS_IDLE))
        ok = 0;
    if (!ok) {
        PQfinish(conn);
        atomic_fetch_add_explicit(&p->dropped, 1, memory_order_relaxed);
    }
    xmutex_lock(&p->mtx);
    p->in_use--;
    if (ok)
        p->idle[p->nidle++] = conn;
    else
        p->open--;
    pthread_cond_signal(&p->cond);
    xmutex_unlock(&p->mtx);
}

void
pgpool_stats(struct pgpool *p, struct pgpool_stats *st)
{
    xmutex_lock(&p->mtx);
    st->size = p->size;
    st->open = p->open;
    st->in_use = p->in_use;
    xmutex_unlock(&p->mtx);
    st->connects = atomic_load_explicit(&p->connects, memory_order_relaxed);
    st->connect_failures = atomic_load_explicit(&p->connect_failures,
        memory_order_relaxed);
    st->dropped = atomic_load_explicit(&p->dropped, memory_order_relaxed);
}
