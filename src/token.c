/* SPDX-License-Identifier: MIT */
/*
 * token.c - the cancel token shared by a job and the server.
 *
 * DESIGN
 * ------
 * A token is the one object through which every part of the server stops a
 * job: the watcher (client gone, FCGI_ABORT_REQUEST, deadline), the response
 * writer (a failed write) and the main thread (shutdown, through the server
 * token of which every request token is a child).  A job learns of the
 * cancel in the way that suits it:
 *
 *   - fc_token_cancelled(): one atomic load, cheap enough for a tight loop;
 *   - fc_token_wait(): a sleep on a futex on the token's reason, which the
 *     cancel wakes (no mutex: a job woken with thousands of others returns
 *     without taking a lock that another woken thread, preempted, holds);
 *   - fc_token_on_cancel(): a callback run once on the cancelling thread
 *     (kill a child, close a socket, call a database's cancel);
 *   - fc_token_fd(): an eventfd, created on first use, that the cancel makes
 *     readable, to poll() beside the job's own descriptors.
 *
 * The first cancel wins: its reason and time are recorded once, later
 * cancels change nothing.
 *
 * Locking: each token has one mutex, `mtx`, which protects everything but
 * `reason` and `refs` (atomics): the callback list, the running callback,
 * the eventfd, the cancel time and the list of children.  Lock order is
 * parent before child; no lock is held while a callback runs or while a
 * child is cancelled, so a callback may use any token.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "token.h"
#include "util.h"

struct hook {
    int              id;
    fc_cancel_cb     fn;
    void            *arg;
    struct hook     *next;
};

struct fc_token {
    /*
     * 0 until cancelled, then the reason.  Stored once, under mtx, with
     * release order after cancel_ns, so that a reader that sees it with
     * acquire order also sees the cancel time.  Also the futex word that
     * fc_token_wait() sleeps on (an _Atomic int is a plain int in memory).
     */
    _Atomic int      reason;
    _Atomic int      refs;
    _Atomic int      waiters;       /* threads in fc_token_wait() */

    pthread_mutex_t  mtx;
    pthread_cond_t   cond;          /* broadcast when a hook is done */
    uint64_t         cancel_ns;     /* protected by mtx (see reason) */
    struct hook     *hooks;         /* protected by mtx: pending callbacks */
    int              next_id;       /* protected by mtx */
    int              running_id;    /* protected by mtx: hook running now */
    pthread_t        runner;        /* protected by mtx: thread running it */
    int              efd;           /* protected by mtx: -1 until asked */

    fc_token        *parent;
    fc_token        *children;      /* protected by mtx */
    fc_token        *prev, *next;   /* protected by parent->mtx */
};

static const char *const reason_names[FC_REASON__MAX] = {
    [FC_REASON_NONE] = "none",
    [FC_CLIENT_GONE] = "client_gone",
    [FC_ABORTED] = "aborted",
    [FC_WRITE_ERROR] = "write_error",
    [FC_DEADLINE] = "deadline",
    [FC_SHUTDOWN] = "shutdown",
};

fc_token *
token_new(fc_token *parent)
{
    fc_token           *tok;
    pthread_condattr_t  ca;
    int                 inherited = 0;

    if ((tok = calloc(1, sizeof *tok)) == NULL)
        return NULL;
    atomic_init(&tok->reason, FC_REASON_NONE);
    atomic_init(&tok->refs, 1);
    atomic_init(&tok->waiters, 0);
    xmutex_init(&tok->mtx);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&tok->cond, &ca);
    pthread_condattr_destroy(&ca);
    tok->efd = -1;
    tok->next_id = 1;

    if (parent != NULL) {
        token_ref(parent);
        tok->parent = parent;
        xmutex_lock(&parent->mtx);
        tok->next = parent->children;
        if (parent->children != NULL)
            parent->children->prev = tok;
        parent->children = tok;
        /* Read under the parent's lock: a cancel either saw us or set it. */
        inherited = atomic_load_explicit(&parent->reason,
            memory_order_relaxed);
        xmutex_unlock(&parent->mtx);
        if (inherited != FC_REASON_NONE)
            token_cancel(tok, (enum fc_reason)inherited);
    }
    return tok;
}

void
token_ref(fc_token *tok)
{
    /* Relaxed: a new reference is taken from an existing one. */
    atomic_fetch_add_explicit(&tok->refs, 1, memory_order_relaxed);
}

/*
 * Take a reference unless the last one is already gone (the token is being
 * freed by another thread, which waits for our lock to unlink it).  Return
 * 1 if a reference was taken.
 */
static int
token_tryref(fc_token *tok)
{
    int refs = atomic_load_explicit(&tok->refs, memory_order_relaxed);

    while (refs > 0) {
        /* Relaxed: as token_ref(); the CAS only guards against 0 -> 1. */
        if (atomic_compare_exchange_weak_explicit(&tok->refs, &refs,
            refs + 1, memory_order_relaxed, memory_order_relaxed))
            return 1;
    }
    return 0;
}

void
token_unref(fc_token *tok)
{
    fc_token    *parent;
    struct hook *h;

    if (tok == NULL)
        return;
    /* Acq_rel: the freeing thread must see every other owner's writes. */
    if (atomic_fetch_sub_explicit(&tok->refs, 1, memory_order_acq_rel) != 1)
        return;

    if ((parent = tok->parent) != NULL) {
        xmutex_lock(&parent->mtx);
        if (tok->prev != NULL)
            tok->prev->next = tok->next;
        else
            parent->children = tok->next;
        if (tok->next != NULL)
            tok->next->prev = tok->prev;
        xmutex_unlock(&parent->mtx);
        token_unref(parent);
    }
    while ((h = tok->hooks) != NULL) {
        tok->hooks = h->next;
        free(h);
    }
    if (tok->efd >= 0)
        close(tok->efd);
    pthread_cond_destroy(&tok->cond);
    xmutex_destroy(&tok->mtx);
    free(tok);
}

int
token_cancel(fc_token *tok, enum fc_reason reason)
{
    struct hook *h;
    fc_token    *c;
    uint64_t     one = 1;
    int          more;

    if (reason <= FC_REASON_NONE || reason >= FC_REASON__MAX)
        reason = FC_SHUTDOWN;

    xmutex_lock(&tok->mtx);
    if (atomic_load_explicit(&tok->reason, memory_order_relaxed) != 0) {
        xmutex_unlock(&tok->mtx);
        return 0;
    }
    tok->cancel_ns = now_ns();
    /* Release: publishes cancel_ns to fc_token_cancelled()'s acquire. */
    atomic_store_explicit(&tok->reason, (int)reason, memory_order_release);
    if (tok->efd >= 0 && write(tok->efd, &one, sizeof one) < 0) {
        /* An eventfd write fails only on overflow: it is readable. */
    }
    more = tok->hooks != NULL || tok->children != NULL;
    xmutex_unlock(&tok->mtx);
    /*
     * Wake fc_token_wait()'s sleepers, if any.  The fence orders the store
     * of reason before the load of waiters, as a waiter's increment is
     * ordered before its load of reason: either it sees the reason, or we
     * see it and wake it (and the futex itself fails to sleep on a reason
     * that is no longer 0).
     */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&tok->waiters, memory_order_relaxed) > 0)
        syscall(SYS_futex, (int *)&tok->reason, FUTEX_WAKE_PRIVATE, INT_MAX,
            NULL, NULL, 0);
    /*
     * Nothing more to do: return without taking mtx again.  None can
     * come: fc_token_on_cancel() runs a callback at once on a cancelled
     * token, and a child created from now on inherits the reason in
     * token_new().
     */
    if (!more)
        return 1;
    xmutex_lock(&tok->mtx);

    /* Callbacks run once each, without the lock, on this thread. */
    tok->runner = pthread_self();
    while ((h = tok->hooks) != NULL) {
        tok->hooks = h->next;
        tok->running_id = h->id;
        xmutex_unlock(&tok->mtx);
        h->fn(tok, reason, h->arg);
        free(h);
        xmutex_lock(&tok->mtx);
        tok->running_id = 0;
        pthread_cond_broadcast(&tok->cond);
    }

    /*
     * Children: hold a reference to each while cancelling it without our
     * lock; start over after each, since the list may change meanwhile.  A
     * child created from now on inherits the reason in token_new().  A
     * child whose last reference is gone is being freed: skip it (taking a
     * reference would bring it back from the dead).
     */
    for (;;) {
        for (c = tok->children; c != NULL; c = c->next) {
            if (atomic_load_explicit(&c->reason, memory_order_relaxed) == 0 &&
                token_tryref(c))
                break;
        }
        if (c == NULL)
            break;
        xmutex_unlock(&tok->mtx);
        token_cancel(c, reason);
        token_unref(c);
        xmutex_lock(&tok->mtx);
    }
    xmutex_unlock(&tok->mtx);
    return 1;
}

uint64_t
token_cancel_ns(fc_token *tok)
{
    uint64_t ns;

    xmutex_lock(&tok->mtx);
    ns = tok->cancel_ns;
    xmutex_unlock(&tok->mtx);
    return ns;
}

int
fc_token_cancelled(const fc_token *tok)
{
    /* Acquire: pairs with the release store in token_cancel(). */
    return atomic_load_explicit(&tok->reason, memory_order_acquire) != 0;
}

enum fc_reason
fc_token_reason(const fc_token *tok)
{
    return (enum fc_reason)atomic_load_explicit(&tok->reason,
        memory_order_acquire);
}

const char *
fc_reason_name(enum fc_reason reason)
{
    if (reason < FC_REASON_NONE || reason >= FC_REASON__MAX)
        return "unknown";
    return reason_names[reason];
}

int
fc_token_wait(fc_token *tok, long ms)
{
    struct timespec ts;

    if (fc_token_cancelled(tok))
        return 1;
    if (ms == 0)
        return 0;
    if (ms > 0)
        timespec_after_ms(&ts, ms);     /* CLOCK_MONOTONIC, as the futex's */
    atomic_fetch_add(&tok->waiters, 1);         /* see token_cancel() */
    while (atomic_load(&tok->reason) == 0) {
        /* Sleeps only while reason is still 0; an absolute timeout. */
        if (syscall(SYS_futex, (int *)&tok->reason,
            FUTEX_WAIT_BITSET_PRIVATE, 0, ms < 0 ? NULL : &ts, NULL,
            FUTEX_BITSET_MATCH_ANY) != 0 && errno == ETIMEDOUT)
            break;
    }
    atomic_fetch_sub(&tok->waiters, 1);
    return fc_token_cancelled(tok);
}

int
fc_token_fd(fc_token *tok)
{
    uint64_t one = 1;
    int      fd;

    xmutex_lock(&tok->mtx);
    if (tok->efd < 0) {
        tok->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (tok->efd >= 0 &&
            atomic_load_explicit(&tok->reason, memory_order_relaxed) != 0 &&
            write(tok->efd, &one, sizeof one) < 0) {
            /* cannot overflow on a new eventfd */
        }
    }
    fd = tok->efd;
    xmutex_unlock(&tok->mtx);
    return fd;
}

int
fc_token_on_cancel(fc_token *tok, fc_cancel_cb fn, void *arg)
{
    struct hook *h;
    int          reason, id;

    xmutex_lock(&tok->mtx);
    reason = atomic_load_explicit(&tok->reason, memory_order_relaxed);
    if (reason != 0) {
        xmutex_unlock(&tok->mtx);
        fn(tok, (enum fc_reason)reason, arg);
        return 0;
    }
    if ((h = malloc(sizeof *h)) == NULL) {
        xmutex_unlock(&tok->mtx);
        return -1;
    }
    h->id = id = tok->next_id++;
    h->fn = fn;
    h->arg = arg;
    h->next = tok->hooks;
    tok->hooks = h;
    xmutex_unlock(&tok->mtx);
    return id;
}

int
fc_token_off_cancel(fc_token *tok, int handle)
{
    struct hook **hp, *h;

    if (handle <= 0)
        return 1;
    xmutex_lock(&tok->mtx);
    for (hp = &tok->hooks; (h = *hp) != NULL; hp = &h->next) {
        if (h->id == handle) {
            *hp = h->next;
            xmutex_unlock(&tok->mtx);
            free(h);
            return 0;
        }
    }
    while (tok->running_id == handle &&
        !pthread_equal(tok->runner, pthread_self()))
        pthread_cond_wait(&tok->cond, &tok->mtx);
    xmutex_unlock(&tok->mtx);
    return 1;
}
