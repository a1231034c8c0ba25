/* SPDX-License-Identifier: MIT */
/*
 * test_generation.c - unit tests of configuration generations
 * (generation.c): gen_new() takes the configuration, gen_publish() numbers
 * and swaps, a generation outlives its replacement while a reference is
 * held and is freed (its routes' data with it) by the last gen_put(); and
 * readers taking and dropping references on four threads while the main
 * thread publishes never see a freed generation (run it under TSan/ASan).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "config.h"
#include "generation.h"
#include "router.h"
#include "unit.h"

#define MAGIC       0x6e656700u     /* what a live route's data holds */
#define READERS     4
#define PUBLISHES   300

static _Atomic int  freed;          /* route data freed */

/* A route's data: MAGIC while alive. */
struct mark {
    unsigned magic;
};

static void
mark_free(void *p)
{
    struct mark *m = p;

    m->magic = 0;
    free(m);
    atomic_fetch_add(&freed, 1);
}

static int
noop_handler(fc_request *req, fc_response *resp, fc_token *tok, void *data)
{
    return FC_OK;
}

/* Return a generation with one route, /x, whose data is a mark. */
static struct generation *
make_gen(void)
{
    struct generation *g;
    struct config      c;
    struct mark       *m;
    char              *cause = NULL;

    config_init(&c);
    m = malloc(sizeof *m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    m->magic = MAGIC;
    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&c.routes, "/x", 0, "test",
        noop_handler, m, mark_free));
    g = gen_new(&c, &cause);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_PTR_NULL(cause);
    CU_ASSERT_EQUAL(c.routes.n, 0);     /* taken */
    config_free(&c);
    return g;
}

/* Numbering, references, and the free of a replaced generation. */
static void
test_gen_refs(void)
{
    struct generation *g1, *g2, *r;

    atomic_store(&freed, 0);
    CU_ASSERT_PTR_NULL(gen_get());
    CU_ASSERT_EQUAL(gen_number(), 0);
    g1 = make_gen();
    CU_ASSERT_EQUAL(gen_publish(g1), 1);
    CU_ASSERT_EQUAL(gen_number(), 1);
    r = gen_get();
    CU_ASSERT_PTR_EQUAL(r, g1);
    CU_ASSERT_EQUAL(atomic_load(&r->refs), 2);

    /* Replaced while r is held: g1 lives on, with its route. */
    g2 = make_gen();
    CU_ASSERT_EQUAL(gen_publish(g2), 2);
    CU_ASSERT_EQUAL(gen_number(), 2);
    CU_ASSERT_EQUAL(atomic_load(&freed), 0);
    CU_ASSERT_EQUAL(((struct mark *)r->cfg.routes.routes[0].data)->magic,
        MAGIC);
    gen_put(r);                         /* the last reference to g1 */
    CU_ASSERT_EQUAL(atomic_load(&freed), 1);

    /* Replaced with no reference held: freed at once. */
    CU_ASSERT_EQUAL(gen_publish(make_gen()), 3);
    CU_ASSERT_EQUAL(atomic_load(&freed), 2);
    gen_shutdown();
    CU_ASSERT_EQUAL(atomic_load(&freed), 3);
    CU_ASSERT_PTR_NULL(gen_get());
    CU_ASSERT_EQUAL(gen_number(), 0);
    gen_put(NULL);
}

/* A bad allowed client: NULL, a cause, the configuration kept. */
static void
test_gen_bad_allow(void)
{
    static char    *list[] = { "not-an-address", NULL };
    struct config   c;
    char           *cause = NULL;

    config_init(&c);
    CU_ASSERT_EQUAL_FATAL(router_defaults(&c.routes), 0);
    c.allowed_clients = list;
    CU_ASSERT_PTR_NULL(gen_new(&c, &cause));
    CU_ASSERT_PTR_NOT_NULL(cause);
    CU_ASSERT(c.routes.n > 0);
    free(cause);
    c.allowed_clients = NULL;
    config_free(&c);
}

static _Atomic int stop;

/* A reader: take the current generation, check it is alive, drop it. */
static void *
reader(void *arg)
{
    struct generation *g;
    uint64_t           last = 0;
    long               bad = 0;

    while (!atomic_load(&stop)) {
        if ((g = gen_get()) == NULL)
            continue;
        if (((struct mark *)g->cfg.routes.routes[0].data)->magic != MAGIC ||
            g->number < last)
            bad++;
        last = g->number;
        gen_put(g);
    }
    *(long *)arg = bad;
    return NULL;
}

/* Readers on four threads while the main thread publishes 300 times. */
static void
test_gen_concurrent(void)
{
    pthread_t   t[READERS];
    long        bad[READERS];
    int         i;

    atomic_store(&freed, 0);
    atomic_store(&stop, 0);
    gen_publish(make_gen());
    for (i = 0; i < READERS; i++)
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, reader, &bad[i]),
            0);
    for (i = 0; i < PUBLISHES; i++)
        gen_publish(make_gen());
    atomic_store(&stop, 1);
    for (i = 0; i < READERS; i++) {
        pthread_join(t[i], NULL);
        CU_ASSERT_EQUAL(bad[i], 0);
    }
    /* Every replaced generation is freed; the last one at shutdown. */
    CU_ASSERT_EQUAL(atomic_load(&freed), PUBLISHES);
    gen_shutdown();
    CU_ASSERT_EQUAL(atomic_load(&freed), PUBLISHES + 1);
}

static CU_TestInfo gen_tests[] = {
    { "numbers, references, free of the replaced", test_gen_refs },
    { "bad allowed_clients", test_gen_bad_allow },
    { "readers while publishing", test_gen_concurrent },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "generation", NULL, NULL, NULL, NULL, gen_tests },
    CU_SUITE_INFO_NULL
};

int
main(void)
{
    return unit_run("test_generation", suites, 60);
}
