/* SPDX-License-Identifier: MIT */
/*
 * generation.c - configuration generations, and the one that is current.
 *
 * DESIGN
 * ------
 * Ownership.  A struct generation owns its struct config (the routes, and
 * through them the handlers' options and the modules they loaded), its
 * parsed allowed_clients and its limits; nothing in it changes once
 * gen_new() made it.  It is shared by reference: the current generation
 * holds one reference (that of `gen_current`), and so does every request
 * from the moment its route is matched (serve.c) until it has ended and
 * been logged, and every worker while it accepts or reads a connection
 * (pool.c: allowed_clients, the read and write timeouts, the size
 * limits).  Whoever drops the last reference frees it: config_free() runs
 * the routes' finalizers, a module route's fc_module_fini() and dlclose()
 * (handlers/module.c) among them, on that thread.  So after a reload
 * (main.c) a job that began under the old generation runs to its end with
 * the route, options and module code it began with, and the old
 * generation goes away with the last such job.
 *
 * Taking a reference.  Loading `gen_current` and then incrementing the
 * generation's refs is not atomic as a pair: between the two, a reload
 * may swap the pointer and drop the old generation's last reference, and
 * the increment would land in freed memory.  `gen_readers` closes that
 * window, Dekker-style (the same pattern as pool.c's accepting and
 * draining):
 *
 *   gen_get():     readers += 1 (seq_cst); g = current (seq_cst);
 *                  g->refs += 1 (relaxed); readers -= 1 (release)
 *   gen_publish(): old = exchange(current, new) (seq_cst);
 *                  wait until readers == 0 (seq_cst load);
 *                  gen_put(old)
 *
 * All four of the first accesses are sequentially consistent, so in their
 * single total order either the reader's load of `gen_current` comes after
 * the exchange (it got the new generation: nothing to fear), or the
 * publisher's load of `gen_readers` comes after the reader's increment
 * (the publisher sees it and waits).  The reader's decrement is a
 * release, paired with the publisher's load that sees the count fall to 0
 * (seq_cst includes acquire): the reader's increment of refs then happens
 * before the publisher's gen_put(old), so that put cannot be the one that
 * frees a generation a reader still holds.  While a reader is in its
 * window, old still has the current reference (the publisher has not
 * dropped it), so refs never climbs back from 0.  The window is four
 * instructions; the publisher yields while it waits, and only it waits
 * (readers never do).
 *
 * Reference counts.  An increment needs no order (the caller already
 * holds a reference, or is covered by `gen_readers` as above): relaxed.
 * A decrement is acquire-release: its release half makes everything the
 * dropping thread did with the generation happen before the free, its
 * acquire half (in the thread that takes refs to 0, which frees) pairs
 * with every other thread's release.  (The usual scheme is a release
 * decrement and an acquire fence before the free; ThreadSanitizer does
 * not model fences, so the acquire is on the decrement itself.)
 *
 * `gen_number_now` mirrors the current generation's number for /status
 * and the log (relaxed: a number, read on its own).
 *
 * Locking: no lock.  Only one thread publishes (main.c's, which owns the
 * signals); gen_get() and gen_put() may be called from any thread, and
 * never block.  The freeing of a generation runs the routes' finalizers
 * on whichever thread drops the last reference, with no lock held.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "allow.h"
#include "generation.h"
#include "log.h"

static _Atomic(struct generation *) gen_current;
static _Atomic long                 gen_readers;
static _Atomic uint64_t             gen_number_now;
static uint64_t                     gen_last;   /* the publisher's only */

struct generation *
gen_new(struct config *cfg, char **cause)
{
    struct generation *g;

    *cause = NULL;
    if ((g = calloc(1, sizeof *g)) == NULL) {
        *cause = strdup("out of memory");
        return NULL;
    }
    if ((g->allow = allow_new(cfg->allowed_clients, cause)) == NULL) {
        free(g);
        return NULL;
    }
    g->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    g->limits.max_params = (size_t)g->cfg.max_params_bytes;
    g->limits.max_body = (size_t)g->cfg.max_body_bytes;
    g->limits.max_reqs = (int)g->cfg.workers;
    atomic_init(&g->refs, 1);
    return g;
}

/* Free g, whose last reference is gone. */
static void
gen_free(struct generation *g)
{
    if (g->number > 0)
        log_info("generation %llu: freed (no request uses it any more)",
            (unsigned long long)g->number);
    config_free(&g->cfg);
    allow_free(g->allow);
    free(g);
}

void
gen_put(struct generation *g)
{
    if (g == NULL)
        return;
    if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1)
        gen_free(g);
}

struct generation *
gen_get(void)
{
    struct generation *g;

    atomic_fetch_add(&gen_readers, 1);
    g = atomic_load(&gen_current);
    if (g != NULL)
        atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&gen_readers, 1, memory_order_release);
    return g;
}

/* Put g in place of the current generation; drop the old one's ref. */
static void
gen_swap(struct generation *g)
{
    struct generation *old;

    old = atomic_exchange(&gen_current, g);
    /* See DESIGN: no reader can still be about to count itself on old. */
    while (atomic_load(&gen_readers) != 0)
        sched_yield();
    gen_put(old);
}

uint64_t
gen_publish(struct generation *g)
{
    g->number = ++gen_last;
    atomic_store_explicit(&gen_number_now, g->number, memory_order_relaxed);
    gen_swap(g);
    return g->number;
}

uint64_t
gen_number(void)
{
    return atomic_load_explicit(&gen_number_now, memory_order_relaxed);
}

void
gen_shutdown(void)
{
    atomic_store_explicit(&gen_number_now, 0, memory_order_relaxed);
    gen_swap(NULL);
}
