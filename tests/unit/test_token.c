/* SPDX-License-Identifier: MIT */
/*
 * test_token.c - unit tests of the cancel token (token.c), the object that
 * every part of the server shares to stop a job.  Every call of its API is
 * exercised: the flag and the reason (first cancel wins), the reason names,
 * fc_token_wait() (times out, returns at once, wakes promptly), the eventfd,
 * the callbacks (exactly once, on the cancelling thread, removable, and
 * fc_token_off_cancel() waiting for a callback that runs elsewhere), the
 * children (inherit, propagate, unref in any order) and races between
 * threads that cancel, register, create children and drop references at
 * once.  Meant to be run under ASan/UBSan and TSan as well: assertions are
 * made on the main thread only (CUnit is not thread-safe), and every token
 * created is unref'd so that LeakSanitizer stays quiet.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "fcgi_cancel.h"
#include "token.h"
#include "util.h"
#include "unit.h"

#define MS                  1000000ull      /* nanoseconds in a millisecond */
#define RACE_ROUNDS         200
#define RACE_THREADS        8
#define RACE_CALLBACKS      5
#define NCHILDREN           100

/* Milliseconds elapsed since t0 (now_ns() nanoseconds). */
static double
ms_since(uint64_t t0)
{
    return (double)(now_ns() - t0) / 1e6;
}

/* Sleep ms milliseconds; used to let another thread block, never as a check. */
static void
nap_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Poll the atomic flag until it is non-zero or ms pass; return the flag. */
static int
wait_flag(_Atomic int *flag, long ms)
{
    uint64_t end = now_ns() + (uint64_t)ms * MS;

    while (atomic_load(flag) == 0 && now_ns() < end)
        nap_ms(1);
    return atomic_load(flag);
}

/* Return the poll() revents of fd with a zero timeout (0 if not ready). */
static int
poll_now(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    if (poll(&pfd, 1, 0) < 0)
        return -1;
    return pfd.revents;
}

/* What a callback saw: how often it ran, with what, and on which thread. */
struct hit {
    _Atomic int      calls;
    _Atomic int      reason;
    fc_token        *tok;           /* the token the callback was given */
    void            *arg;           /* the arg the callback was given */
    pthread_t        thread;        /* read only after a join */
};

/* A callback that records its call in the struct hit it is given. */
static void
hit_cb(fc_token *tok, enum fc_reason reason, void *arg)
{
    struct hit *h = arg;

    h->tok = tok;
    h->arg = arg;
    h->thread = pthread_self();
    atomic_store(&h->reason, (int)reason);
    atomic_fetch_add(&h->calls, 1);
}

/* ---- flag, reason, names ------------------------------------------- */

/* The flag and the reason before and after a cancel; the cancel time. */
static void
test_cancelled_and_reason(void)
{
    fc_token *tok = token_new(NULL);
    uint64_t  before, at;

    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    CU_ASSERT_EQUAL(fc_token_cancelled(tok), 0);
    CU_ASSERT_EQUAL(fc_token_reason(tok), FC_REASON_NONE);
    CU_ASSERT_EQUAL(token_cancel_ns(tok), 0);

    before = now_ns();
    CU_ASSERT_EQUAL(token_cancel(tok, FC_CLIENT_GONE), 1);
    at = token_cancel_ns(tok);
    CU_ASSERT_EQUAL(fc_token_cancelled(tok), 1);
    CU_ASSERT_EQUAL(fc_token_reason(tok), FC_CLIENT_GONE);
    CU_ASSERT(at >= before && at <= now_ns());
    token_unref(tok);
}

/* Every reason is kept as given by the first cancel. */
static void
test_every_reason(void)
{
    int r;

    for (r = FC_REASON_NONE + 1; r < FC_REASON__MAX; r++) {
        fc_token *tok = token_new(NULL);

        CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
        CU_ASSERT_EQUAL(token_cancel(tok, (enum fc_reason)r), 1);
        CU_ASSERT_EQUAL(fc_token_reason(tok), r);
        CU_ASSERT_EQUAL(fc_token_cancelled(tok), 1);
        token_unref(tok);
    }
}

/* A second cancel returns 0 and changes neither the reason nor the time. */
static void
test_first_cancel_wins(void)
{
    fc_token *tok = token_new(NULL);
    uint64_t  at;

    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    CU_ASSERT_EQUAL(token_cancel(tok, FC_DEADLINE), 1);
    at = token_cancel_ns(tok);
    CU_ASSERT_EQUAL(token_cancel(tok, FC_SHUTDOWN), 0);
    CU_ASSERT_EQUAL(token_cancel(tok, FC_DEADLINE), 0);
    CU_ASSERT_EQUAL(token_cancel(tok, FC_CLIENT_GONE), 0);
    CU_ASSERT_EQUAL(fc_token_reason(tok), FC_DEADLINE);
    CU_ASSERT_EQUAL(token_cancel_ns(tok), at);
    token_unref(tok);
}

/* fc_reason_name() for every reason, and out of range. */
static void
test_reason_names(void)
{
    CU_ASSERT_STRING_EQUAL(fc_reason_name(FC_REASON_NONE), "none");
    CU_ASSERT_STRING_EQUAL(fc_reason_name(FC_CLIENT_GONE), "client_gone");
    CU_ASSERT_STRING_EQUAL(fc_reason_name(FC_ABORTED), "aborted");
    CU_ASSERT_STRING_EQUAL(fc_reason_name(FC_WRITE_ERROR), "write_error");
    CU_ASSERT_STRING_EQUAL(fc_reason_name(FC_DEADLINE), "deadline");
    CU_ASSERT_STRING_EQUAL(fc_reason_name(FC_SHUTDOWN), "shutdown");
    CU_ASSERT_STRING_EQUAL(fc_reason_name(FC_REASON__MAX), "unknown");
    CU_ASSERT_STRING_EQUAL(fc_reason_name((enum fc_reason)(FC_REASON__MAX + 7)),
        "unknown");
    CU_ASSERT_STRING_EQUAL(fc_reason_name((enum fc_reason)-1), "unknown");
    CU_ASSERT_STRING_EQUAL(fc_reason_name((enum fc_reason)1000000), "unknown");
}

/* ---- wait ----------------------------------------------------------- */

/* Not cancelled: the wait returns 0 after the time, not much later. */
static void
test_wait_times_out(void)
{
    fc_token *tok = token_new(NULL);
    uint64_t  t0;
    double    ms;

    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    t0 = now_ns();
    CU_ASSERT_EQUAL(fc_token_wait(tok, 0), 0);
    CU_ASSERT(ms_since(t0) < 100.0);

    t0 = now_ns();
    CU_ASSERT_EQUAL(fc_token_wait(tok, 100), 0);
    ms = ms_since(t0);
    printf("\n    wait(100) took %.3f ms ", ms);
    CU_ASSERT(ms >= 100.0);
    CU_ASSERT(ms < 1100.0);

    /* A wait of more than a second (the tv_sec part of the deadline). */
    t0 = now_ns();
    CU_ASSERT_EQUAL(fc_token_wait(tok, 1010), 0);
    ms = ms_since(t0);
    CU_ASSERT(ms >= 1010.0);
    CU_ASSERT(ms < 2010.0);
    CU_ASSERT_EQUAL(fc_token_cancelled(tok), 0);
    token_unref(tok);
}

/* Already cancelled: every wait, even without limit, returns 1 at once. */
static void
test_wait_cancelled_returns_at_once(void)
{
    fc_token *tok = token_new(NULL);
    uint64_t  t0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    token_cancel(tok, FC_ABORTED);
    t0 = now_ns();
    CU_ASSERT_EQUAL(fc_token_wait(tok, 0), 1);
    CU_ASSERT_EQUAL(fc_token_wait(tok, 10000), 1);
    CU_ASSERT_EQUAL(fc_token_wait(tok, -1), 1);
    CU_ASSERT(ms_since(t0) < 100.0);
    token_unref(tok);
}

/* A thread that waits on a token and notes when and how it returned. */
struct waiter {
    fc_token        *tok;
    long             ms;
    _Atomic int      entered;
    int              rc;            /* read only after the join */
    uint64_t         returned_ns;   /* read only after the join */
};

/* Thread body: wait on w->tok for w->ms. */
static void *
waiter_main(void *arg)
{
    struct waiter *w = arg;

    atomic_store(&w->entered, 1);
    w->rc = fc_token_wait(w->tok, w->ms);
    w->returned_ns = now_ns();
    return NULL;
}

/* Cancel tok while a thread waits on it with timeout ms; return latency. */
static double
wake_latency(long ms, int *rc)
{
    struct waiter w = { .ms = ms };
    pthread_t     t;
    double        lat = -1;

    w.tok = token_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w.tok);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, waiter_main, &w), 0);
    CU_ASSERT(wait_flag(&w.entered, 5000));
    nap_ms(20);                 /* let it block in the wait */
    CU_ASSERT_EQUAL(token_cancel(w.tok, FC_CLIENT_GONE), 1);
    pthread_join(t, NULL);
    *rc = w.rc;
    if (w.returned_ns >= token_cancel_ns(w.tok))
        lat = (double)(w.returned_ns - token_cancel_ns(w.tok)) / 1e6;
    else
        lat = 0;                /* returned before the cancel: rc says */
    token_unref(w.tok);
    return lat;
}

/* A 10 s wait wakes promptly when another thread cancels the token. */
static void
test_wait_wakes_on_cancel(void)
{
    double lat;
    int    rc = -1;

    lat = wake_latency(10000, &rc);
    printf("\n    wait(10000) woke %.3f ms after the cancel ", lat);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT(lat >= 0 && lat < 200.0);

    /* The same without a time limit. */
    lat = wake_latency(-1, &rc);
    printf("\n    wait(-1) woke %.3f ms after the cancel ", lat);
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT(lat >= 0 && lat < 200.0);
}

/* A thread that cancels a token with a reason, after delay_ms. */
struct canceller {
    fc_token        *tok;
    enum fc_reason   reason;
    long             delay_ms;
    int              rc;            /* read only after the join */
};

/* Thread body: wait c->delay_ms, then cancel c->tok. */
static void *
canceller_main(void *arg)
{
    struct canceller *c = arg;

    if (c->delay_ms > 0)
        nap_ms(c->delay_ms);
    c->rc = token_cancel(c->tok, c->reason);
    return NULL;
}

/* ---- fd ------------------------------------------------------------- */

/* The descriptor is readable only after the cancel, and stays the same. */
static void
test_fd_readable_on_cancel(void)
{
    fc_token *tok = token_new(NULL);
    int       fd;

    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    fd = fc_token_fd(tok);
    CU_ASSERT(fd >= 0);
    CU_ASSERT_EQUAL(fc_token_fd(tok), fd);
    CU_ASSERT_EQUAL(poll_now(fd), 0);
    token_cancel(tok, FC_SHUTDOWN);
    CU_ASSERT(poll_now(fd) & POLLIN);
    CU_ASSERT(poll_now(fd) & POLLIN);   /* level: stays readable */
    CU_ASSERT_EQUAL(fc_token_fd(tok), fd);
    token_unref(tok);
}

/* A descriptor asked for after the cancel is readable at once. */
static void
test_fd_created_after_cancel(void)
{
    fc_token *tok = token_new(NULL);
    int       fd;

    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    token_cancel(tok, FC_WRITE_ERROR);
    fd = fc_token_fd(tok);
    CU_ASSERT(fd >= 0);
    CU_ASSERT(poll_now(fd) & POLLIN);
    token_unref(tok);
}

/* A poll() blocked on the descriptor wakes when another thread cancels. */
static void
test_fd_wakes_poll(void)
{
    struct canceller c = { .reason = FC_DEADLINE, .delay_ms = 30 };
    struct pollfd    pfd;
    pthread_t        t;
    uint64_t         t0;
    double           ms;
    int              n;

    c.tok = token_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.tok);
    pfd.fd = fc_token_fd(c.tok);
    pfd.events = POLLIN;
    CU_ASSERT_FATAL(pfd.fd >= 0);
    t0 = now_ns();
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, canceller_main, &c), 0);
    n = poll(&pfd, 1, 10000);
    ms = ms_since(t0);
    pthread_join(t, NULL);
    printf("\n    poll on the fd returned after %.3f ms (cancel at 30 ms) ",
        ms);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT(pfd.revents & POLLIN);
    CU_ASSERT_EQUAL(c.rc, 1);
    CU_ASSERT(ms < 30.0 + 1000.0);
    token_unref(c.tok);
}

/* ---- callbacks ------------------------------------------------------ */


/* The callback runs once, with the reason and arg, on the cancelling thread. */
static void
test_on_cancel_runs_once_on_canceller(void)
{
    struct canceller c = { .reason = FC_ABORTED };
    struct hit       h = { 0 };
    pthread_t        t;
    int              handle;

    c.tok = token_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.tok);
    handle = fc_token_on_cancel(c.tok, hit_cb, &h);
    CU_ASSERT(handle > 0);
    CU_ASSERT_EQUAL(atomic_load(&h.calls), 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, canceller_main, &c), 0);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(c.rc, 1);
    CU_ASSERT_EQUAL(atomic_load(&h.calls), 1);
    CU_ASSERT_EQUAL(atomic_load(&h.reason), FC_ABORTED);
    CU_ASSERT_PTR_EQUAL(h.tok, c.tok);
    CU_ASSERT_PTR_EQUAL(h.arg, &h);
    CU_ASSERT(pthread_equal(h.thread, t));

    /* Later cancels run nothing again. */
    CU_ASSERT_EQUAL(token_cancel(c.tok, FC_SHUTDOWN), 0);
    CU_ASSERT_EQUAL(atomic_load(&h.calls), 1);
    CU_ASSERT_EQUAL(fc_token_off_cancel(c.tok, handle), 1);
    token_unref(c.tok);
}

/* Several callbacks each run exactly once; handles are distinct. */
static void
test_on_cancel_several(void)
{
    fc_token   *tok = token_new(NULL);
    struct hit  h[4] = { { 0 } };
    int         handle[4], i, j;

    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    for (i = 0; i < 4; i++) {
        handle[i] = fc_token_on_cancel(tok, hit_cb, &h[i]);
        CU_ASSERT(handle[i] > 0);
        for (j = 0; j < i; j++)
            CU_ASSERT_NOT_EQUAL(handle[i], handle[j]);
    }
    token_cancel(tok, FC_DEADLINE);
    for (i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(atomic_load(&h[i].calls), 1);
        CU_ASSERT_EQUAL(atomic_load(&h[i].reason), FC_DEADLINE);
        CU_ASSERT_PTR_EQUAL(h[i].arg, &h[i]);
    }
    token_unref(tok);
}

/* On a cancelled token the callback runs at once, here, and 0 is returned. */
static void
test_on_cancel_after_cancel(void)
{
    fc_token   *tok = token_new(NULL);
    struct hit  h = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    token_cancel(tok, FC_WRITE_ERROR);
    CU_ASSERT_EQUAL(fc_token_on_cancel(tok, hit_cb, &h), 0);
    CU_ASSERT_EQUAL(atomic_load(&h.calls), 1);
    CU_ASSERT_EQUAL(atomic_load(&h.reason), FC_WRITE_ERROR);
    CU_ASSERT_PTR_EQUAL(h.tok, tok);
    CU_ASSERT(pthread_equal(h.thread, pthread_self()));
    CU_ASSERT_EQUAL(fc_token_off_cancel(tok, 0), 1);
    token_unref(tok);
}

/* Removed before the cancel: off_cancel returns 0 and it never runs. */
static void
test_off_cancel_before(void)
{
    fc_token   *tok = token_new(NULL);
    struct hit  a = { 0 }, b = { 0 }, c = { 0 };
    int         ha, hb, hc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    ha = fc_token_on_cancel(tok, hit_cb, &a);
    hb = fc_token_on_cancel(tok, hit_cb, &b);
    hc = fc_token_on_cancel(tok, hit_cb, &c);
    CU_ASSERT(ha > 0 && hb > 0 && hc > 0);
    /* Remove the middle one, then the others stay registered. */
    CU_ASSERT_EQUAL(fc_token_off_cancel(tok, hb), 0);
    CU_ASSERT_EQUAL(fc_token_off_cancel(tok, hb), 1);  /* not there now */
    token_cancel(tok, FC_CLIENT_GONE);
    CU_ASSERT_EQUAL(atomic_load(&a.calls), 1);
    CU_ASSERT_EQUAL(atomic_load(&b.calls), 0);
    CU_ASSERT_EQUAL(atomic_load(&c.calls), 1);
    /* After it ran: 1. */
    CU_ASSERT_EQUAL(fc_token_off_cancel(tok, ha), 1);
    CU_ASSERT_EQUAL(fc_token_off_cancel(tok, hc), 1);
    CU_ASSERT_EQUAL(fc_token_off_cancel(tok, 0), 1);
    token_unref(tok);
}

/* A token freed with a callback still registered never runs it. */
static void
test_unref_with_pending_callback(void)
{
    fc_token   *tok = token_new(NULL);
    struct hit  h = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    CU_ASSERT(fc_token_on_cancel(tok, hit_cb, &h) > 0);
    token_unref(tok);
    CU_ASSERT_EQUAL(atomic_load(&h.calls), 0);
}

/* What a callback that calls the token API from inside itself saw. */
struct reentrant {
    fc_token        *other;
    struct hit       inner;
    int              self_handle;
    int              off_rc;
    int              on_rc;
    int              cancel_other_rc;
};

/* A callback that removes itself, registers another and cancels a token. */
static void
reentrant_cb(fc_token *tok, enum fc_reason reason, void *arg)
{
    struct reentrant *r = arg;

    (void)reason;
    r->off_rc = fc_token_off_cancel(tok, r->self_handle);
    r->on_rc = fc_token_on_cancel(tok, hit_cb, &r->inner);
    r->cancel_other_rc = token_cancel(r->other, FC_SHUTDOWN);
}

/* A callback may use any token API, on its own token too, without a hang. */
static void
test_callback_reentrant(void)
{
    fc_token         *tok = token_new(NULL);
    struct reentrant  r = { .off_rc = -9, .on_rc = -9 };

    r.other = token_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.other);
    r.self_handle = fc_token_on_cancel(tok, reentrant_cb, &r);
    CU_ASSERT(r.self_handle > 0);
    CU_ASSERT_EQUAL(token_cancel(tok, FC_ABORTED), 1);
    CU_ASSERT_EQUAL(r.off_rc, 1);       /* running on this very thread */
    CU_ASSERT_EQUAL(r.on_rc, 0);        /* ran at once */
    CU_ASSERT_EQUAL(atomic_load(&r.inner.calls), 1);
    CU_ASSERT_EQUAL(atomic_load(&r.inner.reason), FC_ABORTED);
    CU_ASSERT_EQUAL(r.cancel_other_rc, 1);
    CU_ASSERT_EQUAL(fc_token_reason(r.other), FC_SHUTDOWN);
    token_unref(r.other);
    token_unref(tok);
}

/* A callback that takes 50 ms and says when it starts and ends. */
struct slow {
    _Atomic int      started;
    _Atomic int      done;
};

/* Sleep 50 ms between the two flags. */
static void
slow_cb(fc_token *tok, enum fc_reason reason, void *arg)
{
    struct slow *s = arg;

    (void)tok;
    (void)reason;
    atomic_store(&s->started, 1);
    nap_ms(50);
    atomic_store(&s->done, 1);
}

/* off_cancel while the callback runs on another thread waits for its end. */
static void
test_off_cancel_waits_for_running(void)
{
    struct canceller c = { .reason = FC_CLIENT_GONE };
    struct slow      s = { 0 };
    pthread_t        t;
    uint64_t         t0;
    int              handle, rc, done;

    c.tok = token_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.tok);
    handle = fc_token_on_cancel(c.tok, slow_cb, &s);
    CU_ASSERT_FATAL(handle > 0);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, canceller_main, &c), 0);
    CU_ASSERT(wait_flag(&s.started, 5000));
    t0 = now_ns();
    rc = fc_token_off_cancel(c.tok, handle);
    done = atomic_load(&s.done);
    printf("\n    off_cancel waited %.3f ms for the running callback ",
        ms_since(t0));
    CU_ASSERT_EQUAL(rc, 1);
    CU_ASSERT_EQUAL(done, 1);
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(c.rc, 1);
    token_unref(c.tok);
}

/* Rounds of a race of RACE_THREADS cancels of one token with callbacks. */
struct race {
    fc_token            *tok;           /* set by main between rounds */
    pthread_barrier_t    start, end;    /* RACE_THREADS + main */
    _Atomic int          stop;
    _Atomic int          wins;
    _Atomic int          win_reason;
    struct hit           hits[RACE_CALLBACKS];
};

/* One thread of the cancel race, with the reason it cancels with. */
struct racer {
    struct race     *race;
    enum fc_reason   reason;
};

/* Thread body: each round, cancel between the two barriers. */
static void *
racer_main(void *arg)
{
    struct racer *r = arg;
    struct race  *race = r->race;

    for (;;) {
        pthread_barrier_wait(&race->start);
        if (atomic_load(&race->stop))
            return NULL;
        if (token_cancel(race->tok, r->reason) == 1) {
            atomic_fetch_add(&race->wins, 1);
            atomic_store(&race->win_reason, (int)r->reason);
        }
        pthread_barrier_wait(&race->end);
    }
}

/* 8 threads cancel at once: one wins, each callback runs exactly once. */
static void
test_cancel_race(void)
{
    struct race  race;
    struct racer racers[RACE_THREADS];
    pthread_t    t[RACE_THREADS];
    int          round, i, bad_wins = 0, bad_calls = 0, bad_reason = 0;
    int          bad_handle = 0;

    memset(&race, 0, sizeof race);
    pthread_barrier_init(&race.start, NULL, RACE_THREADS + 1);
    pthread_barrier_init(&race.end, NULL, RACE_THREADS + 1);
    for (i = 0; i < RACE_THREADS; i++) {
        racers[i].race = &race;
        racers[i].reason = (enum fc_reason)(FC_CLIENT_GONE +
            i % (FC_REASON__MAX - 1));
        if (pthread_create(&t[i], NULL, racer_main, &racers[i]) != 0)
            abort();            /* the others would wait forever */
    }
    for (round = 0; round < RACE_ROUNDS; round++) {
        /* The racers wait on the start barrier: nothing touches these. */
        if ((race.tok = token_new(NULL)) == NULL)
            abort();
        atomic_store(&race.wins, 0);
        atomic_store(&race.win_reason, 0);
        for (i = 0; i < RACE_CALLBACKS; i++) {
            memset(&race.hits[i], 0, sizeof race.hits[i]);
            if (fc_token_on_cancel(race.tok, hit_cb, &race.hits[i]) <= 0)
                bad_handle++;
        }
        pthread_barrier_wait(&race.start);
        pthread_barrier_wait(&race.end);

        if (atomic_load(&race.wins) != 1)
            bad_wins++;
        for (i = 0; i < RACE_CALLBACKS; i++) {
            if (atomic_load(&race.hits[i].calls) != 1)
                bad_calls++;
            if (atomic_load(&race.hits[i].reason) !=
                atomic_load(&race.win_reason))
                bad_reason++;
        }
        if ((int)fc_token_reason(race.tok) != atomic_load(&race.win_reason))
            bad_reason++;
        token_unref(race.tok);
    }
    atomic_store(&race.stop, 1);
    pthread_barrier_wait(&race.start);
    for (i = 0; i < RACE_THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&race.start);
    pthread_barrier_destroy(&race.end);
    CU_ASSERT_EQUAL(bad_handle, 0);
    CU_ASSERT_EQUAL(bad_wins, 0);
    CU_ASSERT_EQUAL(bad_calls, 0);
    CU_ASSERT_EQUAL(bad_reason, 0);
}

/* A thread that registers callbacks while others cancel. */
struct registrar {
    fc_token            *tok;
    pthread_barrier_t   *bar;
    struct hit           hits[64];
    int                  handles[64];
};

/* Thread body: register 64 callbacks, removing every third at once. */
static void *
registrar_main(void *arg)
{
    struct registrar *g = arg;
    int               i;

    pthread_barrier_wait(g->bar);
    for (i = 0; i < 64; i++) {
        g->handles[i] = fc_token_on_cancel(g->tok, hit_cb, &g->hits[i]);
        if (i % 3 == 0)
            g->handles[i] = fc_token_off_cancel(g->tok, g->handles[i]) == 0 ?
                -2 : g->handles[i];
    }
    return NULL;
}

/* Registering and removing while another thread cancels: never lost, never twice. */
static void
test_register_vs_cancel_race(void)
{
    struct registrar  g;
    pthread_barrier_t bar;
    pthread_t         t;
    int               round, i, bad = 0;

    for (round = 0; round < 100; round++) {
        memset(&g, 0, sizeof g);
        g.tok = token_new(NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(g.tok);
        g.bar = &bar;
        pthread_barrier_init(&bar, NULL, 2);
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, registrar_main, &g), 0);
        pthread_barrier_wait(&bar);
        token_cancel(g.tok, FC_SHUTDOWN);
        pthread_join(t, NULL);
        pthread_barrier_destroy(&bar);
        for (i = 0; i < 64; i++) {
            int calls = atomic_load(&g.hits[i].calls);

            /* -2: removed before the cancel, so it must never have run. */
            if (g.handles[i] == -2 ? calls != 0 : calls != 1)
                bad++;
        }
        token_unref(g.tok);
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* ---- children ------------------------------------------------------- */

/* A child of a cancelled parent is born cancelled with the parent's reason. */
static void
test_child_of_cancelled_parent(void)
{
    fc_token   *parent = token_new(NULL), *child;
    struct hit  h = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(parent);
    token_cancel(parent, FC_SHUTDOWN);
    child = token_new(parent);
    CU_ASSERT_PTR_NOT_NULL_FATAL(child);
    CU_ASSERT_EQUAL(fc_token_cancelled(child), 1);
    CU_ASSERT_EQUAL(fc_token_reason(child), FC_SHUTDOWN);
    CU_ASSERT(poll_now(fc_token_fd(child)) & POLLIN);
    CU_ASSERT_EQUAL(fc_token_wait(child, 10000), 1);
    CU_ASSERT_EQUAL(fc_token_on_cancel(child, hit_cb, &h), 0);
    CU_ASSERT_EQUAL(atomic_load(&h.reason), FC_SHUTDOWN);
    token_unref(child);
    token_unref(parent);
}

/* Cancelling a parent cancels its 100 children and runs their callbacks. */
static void
test_parent_cancels_children(void)
{
    fc_token   *parent = token_new(NULL), *kids[NCHILDREN];
    struct hit  hits[NCHILDREN];
    int         i, bad = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(parent);
    memset(hits, 0, sizeof hits);
    for (i = 0; i < NCHILDREN; i++) {
        kids[i] = token_new(parent);
        CU_ASSERT_PTR_NOT_NULL_FATAL(kids[i]);
        CU_ASSERT(fc_token_on_cancel(kids[i], hit_cb, &hits[i]) > 0);
        CU_ASSERT_EQUAL(fc_token_cancelled(kids[i]), 0);
    }
    CU_ASSERT_EQUAL(token_cancel(parent, FC_DEADLINE), 1);
    for (i = 0; i < NCHILDREN; i++) {
        if (fc_token_reason(kids[i]) != FC_DEADLINE ||
            atomic_load(&hits[i].calls) != 1 ||
            atomic_load(&hits[i].reason) != FC_DEADLINE ||
            hits[i].tok != kids[i] ||
            !pthread_equal(hits[i].thread, pthread_self()))
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (i = 0; i < NCHILDREN; i++)
        token_unref(kids[i]);
    token_unref(parent);
}

/* Cancelling a child leaves its parent and its siblings alone. */
static void
test_child_cancel_is_local(void)
{
    fc_token   *parent = token_new(NULL), *a, *b, *c;
    struct hit  hp = { 0 }, hb = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(parent);
    a = token_new(parent);
    b = token_new(parent);
    c = token_new(a);           /* a grandchild under a */
    CU_ASSERT_FATAL(a != NULL && b != NULL && c != NULL);
    CU_ASSERT(fc_token_on_cancel(parent, hit_cb, &hp) > 0);
    CU_ASSERT(fc_token_on_cancel(b, hit_cb, &hb) > 0);

    CU_ASSERT_EQUAL(token_cancel(a, FC_CLIENT_GONE), 1);
    CU_ASSERT_EQUAL(fc_token_reason(a), FC_CLIENT_GONE);
    CU_ASSERT_EQUAL(fc_token_reason(c), FC_CLIENT_GONE);
    CU_ASSERT_EQUAL(fc_token_cancelled(parent), 0);
    CU_ASSERT_EQUAL(fc_token_cancelled(b), 0);
    CU_ASSERT_EQUAL(atomic_load(&hp.calls), 0);
    CU_ASSERT_EQUAL(atomic_load(&hb.calls), 0);

    /* Then the parent: b gets the parent's reason, a keeps its own. */
    CU_ASSERT_EQUAL(token_cancel(parent, FC_SHUTDOWN), 1);
    CU_ASSERT_EQUAL(fc_token_reason(b), FC_SHUTDOWN);
    CU_ASSERT_EQUAL(atomic_load(&hb.calls), 1);
    CU_ASSERT_EQUAL(fc_token_reason(a), FC_CLIENT_GONE);
    CU_ASSERT_EQUAL(fc_token_reason(c), FC_CLIENT_GONE);
    token_unref(c);
    token_unref(b);
    token_unref(a);
    token_unref(parent);
}

/* Grandchildren are reached through their parent; the fd of each wakes. */
static void
test_grandchildren(void)
{
    fc_token *root = token_new(NULL), *mid[4], *leaf[4][4];
    int       i, j, bad = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    for (i = 0; i < 4; i++) {
        mid[i] = token_new(root);
        CU_ASSERT_PTR_NOT_NULL_FATAL(mid[i]);
        for (j = 0; j < 4; j++) {
            leaf[i][j] = token_new(mid[i]);
            CU_ASSERT_PTR_NOT_NULL_FATAL(leaf[i][j]);
            CU_ASSERT(fc_token_fd(leaf[i][j]) >= 0);
        }
    }
    token_cancel(root, FC_SHUTDOWN);
    for (i = 0; i < 4; i++) {
        if (fc_token_reason(mid[i]) != FC_SHUTDOWN)
            bad++;
        for (j = 0; j < 4; j++) {
            if (fc_token_reason(leaf[i][j]) != FC_SHUTDOWN ||
                !(poll_now(fc_token_fd(leaf[i][j])) & POLLIN))
                bad++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* Drop the middle first: the leaves keep it (and root) alive. */
    token_unref(root);
    for (i = 0; i < 4; i++)
        token_unref(mid[i]);
    for (i = 0; i < 4; i++)
        for (j = 0; j < 4; j++)
            token_unref(leaf[i][j]);
}

/* The parent's last external reference goes first, then the children. */
static void
test_unref_parent_first(void)
{
    fc_token *parent = token_new(NULL), *kids[8];
    int       i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(parent);
    for (i = 0; i < 8; i++) {
        kids[i] = token_new(parent);
        CU_ASSERT_PTR_NOT_NULL_FATAL(kids[i]);
    }
    token_unref(parent);        /* still alive: the children hold it */
    /* A child can still be cancelled and keeps working on its own. */
    CU_ASSERT_EQUAL(token_cancel(kids[3], FC_ABORTED), 1);
    CU_ASSERT_EQUAL(fc_token_cancelled(kids[4]), 0);
    for (i = 0; i < 8; i++)
        token_unref(kids[i]);   /* the last one frees the parent */
}

/* The children go first, in mixed order, then the parent. */
static void
test_unref_children_first(void)
{
    fc_token *parent = token_new(NULL), *kids[10];
    int       i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(parent);
    for (i = 0; i < 10; i++) {
        kids[i] = token_new(parent);
        CU_ASSERT_PTR_NOT_NULL_FATAL(kids[i]);
    }
    /* Unlink from the head, the tail and the middle of the list. */
    token_unref(kids[9]);
    token_unref(kids[0]);
    token_unref(kids[5]);
    token_unref(kids[1]);
    /* The list is intact: a cancel reaches exactly the ones left. */
    token_cancel(parent, FC_CLIENT_GONE);
    CU_ASSERT_EQUAL(fc_token_reason(kids[2]), FC_CLIENT_GONE);
    CU_ASSERT_EQUAL(fc_token_reason(kids[3]), FC_CLIENT_GONE);
    CU_ASSERT_EQUAL(fc_token_reason(kids[4]), FC_CLIENT_GONE);
    CU_ASSERT_EQUAL(fc_token_reason(kids[6]), FC_CLIENT_GONE);
    CU_ASSERT_EQUAL(fc_token_reason(kids[7]), FC_CLIENT_GONE);
    CU_ASSERT_EQUAL(fc_token_reason(kids[8]), FC_CLIENT_GONE);
    for (i = 2; i < 9; i++) {
        if (i != 5)
            token_unref(kids[i]);
    }
    /* A new child after all that is born cancelled. */
    kids[0] = token_new(parent);
    CU_ASSERT_PTR_NOT_NULL_FATAL(kids[0]);
    CU_ASSERT_EQUAL(fc_token_reason(kids[0]), FC_CLIENT_GONE);
    token_unref(kids[0]);
    token_unref(parent);
}

/* Extra references keep a token alive until the last unref. */
static void
test_ref_unref(void)
{
    fc_token *tok = token_new(NULL);

    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    token_ref(tok);
    token_ref(tok);
    token_unref(tok);
    token_unref(tok);
    CU_ASSERT_EQUAL(token_cancel(tok, FC_ABORTED), 1);  /* still alive */
    CU_ASSERT(fc_token_fd(tok) >= 0);
    token_unref(tok);
    token_unref(NULL);          /* harmless */
}

/* ---- races between children and their parent ---------------------- */

/* A thread that creates children of a parent while it is cancelled. */
struct spawner {
    fc_token            *parent;
    pthread_barrier_t   *bar;
    fc_token            *kids[50];
};

/* Thread body: create 50 children after the barrier. */
static void *
spawner_main(void *arg)
{
    struct spawner *s = arg;
    int             i;

    pthread_barrier_wait(s->bar);
    for (i = 0; i < 50; i++)
        s->kids[i] = token_new(s->parent);
    return NULL;
}

/* Children created during the parent's cancel all end up cancelled. */
static void
test_new_child_vs_cancel_race(void)
{
    struct spawner    s[3];
    pthread_barrier_t bar;
    pthread_t         t[3];
    fc_token         *parent;
    int               round, i, k, bad = 0, nulls = 0;

    for (round = 0; round < 50; round++) {
        parent = token_new(NULL);
        CU_ASSERT_PTR_NOT_NULL_FATAL(parent);
        pthread_barrier_init(&bar, NULL, 4);
        for (i = 0; i < 3; i++) {
            s[i].parent = parent;
            s[i].bar = &bar;
            CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, spawner_main,
                &s[i]), 0);
        }
        pthread_barrier_wait(&bar);
        token_cancel(parent, FC_DEADLINE);
        for (i = 0; i < 3; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&bar);
        for (i = 0; i < 3; i++) {
            for (k = 0; k < 50; k++) {
                if (s[i].kids[k] == NULL) {
                    nulls++;
                    continue;
                }
                if (fc_token_reason(s[i].kids[k]) != FC_DEADLINE)
                    bad++;
                token_unref(s[i].kids[k]);
            }
        }
        token_unref(parent);
    }
    CU_ASSERT_EQUAL(nulls, 0);
    CU_ASSERT_EQUAL(bad, 0);
}

/* A thread that drops the last reference of children, round after round. */
struct dropper {
    fc_token           **kids;
    int                  n;
    pthread_barrier_t    start, end;
    _Atomic int          stop;
};

/* Thread body: each round, unref every child between the two barriers. */
static void *
dropper_main(void *arg)
{
    struct dropper *d = arg;
    int             i;

    for (;;) {
        pthread_barrier_wait(&d->start);
        if (atomic_load(&d->stop))
            return NULL;
        /* The newest child heads the parent's list, where its cancel starts. */
        for (i = d->n - 1; i >= 0; i--)
            token_unref(d->kids[i]);
        pthread_barrier_wait(&d->end);
    }
}

/*
 * A worker drops its request token (a child of the server token) while the
 * main thread cancels the server token for shutdown: no child may be used
 * after its last reference is gone (ASan: use-after-free, double free).
 */
static void
test_child_unref_vs_parent_cancel_race(void)
{
    fc_token          *parent, *kids[32];
    struct dropper     d = { .kids = kids, .n = 32 };
    pthread_t          t;
    uint64_t           end = now_ns() + 3000 * MS;
    int                round, i, wins = 0;

    pthread_barrier_init(&d.start, NULL, 2);
    pthread_barrier_init(&d.end, NULL, 2);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, dropper_main, &d), 0);
    for (round = 0; round < 20000 && now_ns() < end; round++) {
        if ((parent = token_new(NULL)) == NULL)
            abort();            /* no CUnit jump out with the thread waiting */
        for (i = 0; i < 32; i++) {
            if ((kids[i] = token_new(parent)) == NULL)
                abort();
        }
        pthread_barrier_wait(&d.start);
        wins += token_cancel(parent, FC_SHUTDOWN);
        pthread_barrier_wait(&d.end);
        token_unref(parent);
    }
    atomic_store(&d.stop, 1);
    pthread_barrier_wait(&d.start);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&d.start);
    pthread_barrier_destroy(&d.end);
    printf("\n    %d rounds ", round);
    CU_ASSERT(round > 0);
    CU_ASSERT_EQUAL(wins, round);
}

static CU_TestInfo basics_tests[] = {
    { "cancelled and reason", test_cancelled_and_reason },
    { "every reason", test_every_reason },
    { "first cancel wins", test_first_cancel_wins },
    { "reason names", test_reason_names },
    { "ref and unref", test_ref_unref },
    CU_TEST_INFO_NULL
};

static CU_TestInfo wait_tests[] = {
    { "wait times out", test_wait_times_out },
    { "wait on a cancelled token returns at once",
        test_wait_cancelled_returns_at_once },
    { "wait wakes promptly on cancel", test_wait_wakes_on_cancel },
    { "fd readable on cancel", test_fd_readable_on_cancel },
    { "fd created after cancel", test_fd_created_after_cancel },
    { "fd wakes poll", test_fd_wakes_poll },
    CU_TEST_INFO_NULL
};

static CU_TestInfo callback_tests[] = {
    { "runs once on the cancelling thread",
        test_on_cancel_runs_once_on_canceller },
    { "several callbacks", test_on_cancel_several },
    { "register on a cancelled token", test_on_cancel_after_cancel },
    { "off_cancel before the cancel", test_off_cancel_before },
    { "unref with a pending callback", test_unref_with_pending_callback },
    { "callback re-enters the API", test_callback_reentrant },
    { "off_cancel waits for a running callback",
        test_off_cancel_waits_for_running },
    { "8 threads cancel at once x200", test_cancel_race },
    { "register and remove during a cancel", test_register_vs_cancel_race },
    CU_TEST_INFO_NULL
};

static CU_TestInfo children_tests[] = {
    { "child of a cancelled parent", test_child_of_cancelled_parent },
    { "parent cancels 100 children", test_parent_cancels_children },
    { "child cancel is local", test_child_cancel_is_local },
    { "grandchildren", test_grandchildren },
    { "unref parent first", test_unref_parent_first },
    { "unref children first", test_unref_children_first },
    { "new children during the parent's cancel",
        test_new_child_vs_cancel_race },
    { "children unref'd during the parent's cancel",
        test_child_unref_vs_parent_cancel_race },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "token basics", NULL, NULL, NULL, NULL, basics_tests },
    { "token wait and fd", NULL, NULL, NULL, NULL, wait_tests },
    { "token callbacks", NULL, NULL, NULL, NULL, callback_tests },
    { "token children", NULL, NULL, NULL, NULL, children_tests },
    CU_SUITE_INFO_NULL
};

int
main(void)
{
    return unit_run("test_token", suites, 60);
}
