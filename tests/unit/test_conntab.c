/* SPDX-License-Identifier: MIT */
/*
 * test_conntab.c - unit tests of the connection table (conntab.c), which
 * decides who owns a kept connection in the pool's edge-triggered epoll
 * set.  The single-threaded tests walk its states (claim, note, give
 * back, close, a reused number); the threaded one runs its protocol as
 * the pool does, with real sockets and workers on one shared
 * edge-triggered epoll set, and checks that no request is lost or
 * answered twice when the next one arrives before the owner gives the
 * connection back.  Meant to run under TSan too: assertions are made on
 * the main thread only.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "conntab.h"
#include "unit.h"

#define PAIRS       8           /* connections */
#define WORKERS     4           /* threads on the shared epoll set */
#define ROUNDS      2000        /* requests per connection */
#define STOP        UINT64_MAX  /* epoll data that stops the workers */

/* A claim of data: its result, and the pointer if claimed. */
static enum conntab_claim
claim(struct conntab *t, uint64_t data, void **ptr)
{
    *ptr = NULL;
    return conntab_claim(t, data, ptr);
}

/* The states of one entry, one step at a time. */
static void
test_states(void)
{
    struct conntab *t = conntab_new(64);
    int             a, b;
    uint64_t        d1, d2;
    void           *ptr;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    d1 = conntab_register(t, 5, &a);
    CU_ASSERT_NOT_EQUAL(d1, 0);
    CU_ASSERT(d1 <= CONNTAB_DATA_MAX);
    /* Owned by its registrar: an event is noted, not claimed. */
    CU_ASSERT_EQUAL(claim(t, d1, &ptr), CONNTAB_NOTED);
    CU_ASSERT_PTR_NULL(ptr);
    CU_ASSERT_EQUAL(claim(t, d1, &ptr), CONNTAB_NOTED);
    /* So the give-back fails once: the owner reads again. */
    CU_ASSERT_EQUAL(conntab_release(t, 5, 0), 0);
    CU_ASSERT_EQUAL(conntab_release(t, 5, 0), 1);
    /* Idle: the next event claims it, once. */
    CU_ASSERT_EQUAL(claim(t, d1, &ptr), CONNTAB_CLAIMED);
    CU_ASSERT_PTR_EQUAL(ptr, &a);
    CU_ASSERT_EQUAL(claim(t, d1, &ptr), CONNTAB_NOTED);
    CU_ASSERT_EQUAL(conntab_release(t, 5, 0), 0);
    /* Closed: its events are dropped, and those of a new connection on
     * the same number do not reach the old one, nor the reverse. */
    conntab_close(t, 5);
    CU_ASSERT_EQUAL(claim(t, d1, &ptr), CONNTAB_STALE);
    d2 = conntab_register(t, 5, &b);
    CU_ASSERT_NOT_EQUAL(d2, d1);
    CU_ASSERT_EQUAL(conntab_release(t, 5, 0), 1);
    CU_ASSERT_EQUAL(claim(t, d1, &ptr), CONNTAB_STALE);
    CU_ASSERT_EQUAL(claim(t, d2, &ptr), CONNTAB_CLAIMED);
    CU_ASSERT_PTR_EQUAL(ptr, &b);
    conntab_close(t, 5);
    /* Out of the table: refused, and such data never claims. */
    CU_ASSERT_EQUAL(conntab_register(t, 64, &a), 0);
    CU_ASSERT_EQUAL(conntab_register(t, -1, &a), 0);
    CU_ASSERT_EQUAL(claim(t, (1ull << 32) | 64, &ptr), CONNTAB_STALE);
    /* A number never registered: stale. */
    CU_ASSERT_EQUAL(claim(t, (1ull << 32) | 7, &ptr), CONNTAB_STALE);
    conntab_free(t);
    conntab_free(NULL);
}

/* conntab_each()'s callback: count and remember each pointer. */
static void
each_cb(void *arg, void *ptr)
{
    int *seen = arg;

    seen[*(int *)ptr]++;
}

/* conntab_each() takes idle entries only, those held if asked to. */
static void
test_each(void)
{
    struct conntab *t = conntab_new(16);
    int             id[4] = { 0, 1, 2, 3 }, seen[4] = { 0 };
    uint64_t        d[4];
    void           *ptr;
    int             i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    for (i = 0; i < 4; i++)
        d[i] = conntab_register(t, 3 + i, &id[i]);
    CU_ASSERT_EQUAL(conntab_release(t, 3, 0), 1);   /* 0: idle */
    CU_ASSERT_EQUAL(conntab_release(t, 4, 1), 1);   /* 1: idle, held */
    /* 2: stays owned; 3: closed */
    conntab_close(t, 6);
    conntab_each(t, 1, each_cb, seen);
    CU_ASSERT_EQUAL(seen[0], 1);
    CU_ASSERT_EQUAL(seen[1], 0);
    CU_ASSERT_EQUAL(seen[2], 0);
    CU_ASSERT_EQUAL(seen[3], 0);
    /* What each() took is the callback's: an event only notes it. */
    CU_ASSERT_EQUAL(claim(t, d[0], &ptr), CONNTAB_NOTED);
    conntab_each(t, 0, each_cb, seen);
    CU_ASSERT_EQUAL(seen[0], 1);
    CU_ASSERT_EQUAL(seen[1], 1);
    CU_ASSERT_EQUAL(seen[2], 0);
    CU_ASSERT_EQUAL(claim(t, d[3], &ptr), CONNTAB_STALE);
    conntab_free(t);
}

/* The threaded test's shared state. */
struct race {
    struct conntab  *t;
    int              epfd;
    int              srv[PAIRS];        /* the workers' ends */
    int              cli[PAIRS];        /* the clients' ends */
    _Atomic long     answered;
    _Atomic long     noted;
    _Atomic int      errors;
};

/* Answer every byte on fd (each its own request) until it would block. */
static int
race_answer(struct race *r, int fd)
{
    unsigned char buf[64];
    ssize_t       n, i;

    for (;;) {
        n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0)
            return -1;
        for (i = 0; i < n; i++) {
            buf[i] ^= 0xff;
            if (send(fd, &buf[i], 1, MSG_NOSIGNAL) != 1)
                return -1;
            atomic_fetch_add(&r->answered, 1);
        }
    }
}

/* A worker: take events, claim, answer, give back (read again if told). */
static void *
race_worker(void *arg)
{
    struct race        *r = arg;
    struct epoll_event  ev;
    void               *ptr;
    int                 fd;

    for (;;) {
        if (epoll_wait(r->epfd, &ev, 1, -1) != 1)
            continue;
        if (ev.data.u64 == STOP)
            return NULL;
        if (conntab_claim(r->t, ev.data.u64, &ptr) != CONNTAB_CLAIMED)
            continue;
        fd = *(int *)ptr;
        for (;;) {
            if (race_answer(r, fd) != 0) {
                atomic_fetch_add(&r->errors, 1);
                break;
            }
            sched_yield();      /* widen the window for the next byte */
            if (conntab_release(r->t, fd, 0))
                break;
            atomic_fetch_add(&r->noted, 1);     /* read again */
        }
    }
}

/* A client: ROUNDS requests on one connection, each after the answer. */
static void *
race_client(void *arg)
{
    int           fd = *(int *)arg;
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    unsigned char c, got;
    long          i;

    for (i = 0; i < ROUNDS; i++) {
        c = (unsigned char)i;
        if (send(fd, &c, 1, MSG_NOSIGNAL) != 1)
            return (void *)1;
        /* A lost wake-up would leave the request unanswered. */
        if (poll(&pfd, 1, 5000) != 1 || recv(fd, &got, 1, 0) != 1 ||
            got != (unsigned char)(c ^ 0xff))
            return (void *)1;
    }
    return NULL;
}

/*
 * Many requests, each sent right after the previous answer, on
 * connections shared by workers on one edge-triggered epoll set: every
 * one is answered exactly once, and the "read again" path is taken.
 */
static void
test_race(void)
{
    struct race        r;
    struct epoll_event ev;
    pthread_t          wk[WORKERS], cl[PAIRS];
    void              *res;
    int                sv[2], i, failed = 0, stopfd[2];

    memset(&r, 0, sizeof r);
    r.t = conntab_new(4096);
    CU_ASSERT_PTR_NOT_NULL_FATAL(r.t);
    r.epfd = epoll_create1(EPOLL_CLOEXEC);
    CU_ASSERT_FATAL(r.epfd >= 0);
    for (i = 0; i < PAIRS; i++) {
        CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
        r.srv[i] = sv[0];
        r.cli[i] = sv[1];
        ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
        ev.data.u64 = conntab_register(r.t, sv[0], &r.srv[i]);
        CU_ASSERT_FATAL(ev.data.u64 != 0);
        CU_ASSERT_FATAL(epoll_ctl(r.epfd, EPOLL_CTL_ADD, sv[0], &ev) == 0);
        CU_ASSERT_FATAL(conntab_release(r.t, sv[0], 0) == 1);
    }
    for (i = 0; i < WORKERS; i++)
        CU_ASSERT_FATAL(pthread_create(&wk[i], NULL, race_worker, &r) == 0);
    for (i = 0; i < PAIRS; i++)
        CU_ASSERT_FATAL(pthread_create(&cl[i], NULL, race_client,
            &r.cli[i]) == 0);
    for (i = 0; i < PAIRS; i++) {
        pthread_join(cl[i], &res);
        failed += res != NULL;
    }
    /* Stop the workers: a level-triggered socket that stays readable. */
    CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, stopfd) == 0);
    ev.events = EPOLLIN;
    ev.data.u64 = STOP;
    CU_ASSERT_FATAL(epoll_ctl(r.epfd, EPOLL_CTL_ADD, stopfd[0], &ev) == 0);
    CU_ASSERT_FATAL(write(stopfd[1], "x", 1) == 1);
    for (i = 0; i < WORKERS; i++)
        pthread_join(wk[i], NULL);
    CU_ASSERT_EQUAL(failed, 0);
    CU_ASSERT_EQUAL(atomic_load(&r.errors), 0);
    CU_ASSERT_EQUAL(atomic_load(&r.answered), (long)PAIRS * ROUNDS);
    /* Informative: how often an owner was told to read again. */
    printf("\n    read again %ld times in %d requests ",
        atomic_load(&r.noted), PAIRS * ROUNDS);
    for (i = 0; i < PAIRS; i++) {
        conntab_close(r.t, r.srv[i]);
        close(r.srv[i]);
        close(r.cli[i]);
    }
    close(stopfd[0]);
    close(stopfd[1]);
    close(r.epfd);
    conntab_free(r.t);
}

static CU_TestInfo tests[] = {
    { "claim, note, give back, close, reuse", test_states },
    { "each idle entry", test_each },
    { "workers on one edge-triggered set lose nothing", test_race },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "conntab", NULL, NULL, NULL, NULL, tests },
    CU_SUITE_INFO_NULL
};

int
main(void)
{
    return unit_run("test_conntab", suites, 120);
}
