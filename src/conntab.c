/* SPDX-License-Identifier: MIT */
/*
 * conntab.c - who owns a kept connection registered in the pool's
 * edge-triggered epoll set (see conntab.h).
 *
 * DESIGN
 * ------
 * Registered EPOLLONESHOT, a connection costs an epoll_ctl(EPOLL_CTL_MOD)
 * each time it goes back to wait for its next request.  Registered
 * edge-triggered, it stays armed from its first wait to its close, and
 * the kernel reports each arrival of bytes once; but then an event can
 * reach a worker while another worker still owns the connection (the
 * front end sent the next request before the owner gave it back), or
 * after the owner closed it.  Each descriptor's entry here settles that
 * with one 64-bit word changed by compare-and-swap:
 *
 *   generation (bits 3..34)  bumped at each registration of the number;
 *                            an event carries the generation it was
 *                            registered with, so an event of a closed
 *                            connection whose number was reused is dropped
 *   hold (bit 2)             given back while a request is arriving
 *   state (bits 0..1)        IDLE     in the set, nobody owns it
 *                            OWNED    a thread reads or serves it
 *                            NOTED    OWNED, and an event came meanwhile
 *                            CLOSED   its owner closed it
 *
 * A worker that receives an event claims IDLE -> OWNED, or turns OWNED
 * into NOTED and forgets the event; the owner gives it back with OWNED ->
 * IDLE, which fails on NOTED: the owner then reads again (the bytes the
 * event announced are there) instead of losing them.  Bytes that arrive
 * after the give-back raise a new edge, hence a new event.  The pointer
 * of an entry is written only by the owner that registers it, before the
 * word publishes it (release), and read only by a thread whose claim
 * succeeded (acquire), so it is never read after its connection is freed.
 *
 * The closed connection's registration is not taken out of the set:
 * close() removes it, or, if a forked child still holds the descriptor
 * until its exec, its stray events carry an old generation and are
 * dropped.  The table is sized once, for the descriptor limit, and its
 * pages are touched only for the numbers in use.
 */
#include <stdatomic.h>
#include <stdlib.h>

#include "conntab.h"

#define ST_IDLE     0u
#define ST_OWNED    1u
#define ST_NOTED    2u
#define ST_CLOSED   3u
#define ST_MASK     3u
#define HOLD        4u
#define GEN_SHIFT   3
#define GEN_MAX     0xffffffefu     /* keeps data <= CONNTAB_DATA_MAX */

struct entry {
    _Atomic uint64_t word;
    void            *ptr;           /* see DESIGN: owner-published */
};

struct conntab {
    size_t           size;
    _Atomic int      high;          /* 1 + the largest number registered */
    struct entry    *e;
};

#define WORD(gen, bits) (((uint64_t)(gen) << GEN_SHIFT) | (bits))
#define GEN(word)       ((uint32_t)((word) >> GEN_SHIFT))

struct conntab *
conntab_new(size_t size)
{
    struct conntab *t;

    if ((t = calloc(1, sizeof *t)) == NULL)
        return NULL;
    if ((t->e = calloc(size > 0 ? size : 1, sizeof *t->e)) == NULL) {
        free(t);
        return NULL;
    }
    t->size = size;
    return t;
}

void
conntab_free(struct conntab *t)
{
    if (t == NULL)
        return;
    free(t->e);
    free(t);
}

uint64_t
conntab_register(struct conntab *t, int fd, void *ptr)
{
    struct entry *e;
    uint32_t      gen;
    int           high;

    if (fd < 0 || (size_t)fd >= t->size)
        return 0;
    e = &t->e[fd];
    /* Relaxed: only stale events read the word now, and they fail. */
    gen = GEN(atomic_load_explicit(&e->word, memory_order_relaxed)) + 1;
    if (gen > GEN_MAX)
        gen = 1;
    e->ptr = ptr;
    /* Release: a claim that sees this generation sees ptr. */
    atomic_store_explicit(&e->word, WORD(gen, ST_OWNED),
        memory_order_release);
    high = atomic_load_explicit(&t->high, memory_order_relaxed);
    while (fd >= high && !atomic_compare_exchange_weak(&t->high, &high,
        fd + 1))
        ;
    return ((uint64_t)gen << 32) | (uint32_t)fd;
}

enum conntab_claim
conntab_claim(struct conntab *t, uint64_t data, void **ptr)
{
    uint32_t      fd = (uint32_t)data, gen = (uint32_t)(data >> 32);
    struct entry *e;
    uint64_t      w;

    if (fd >= t->size)
        return CONNTAB_STALE;
    e = &t->e[fd];
    w = atomic_load_explicit(&e->word, memory_order_acquire);
    for (;;) {
        if (GEN(w) != gen)
            return CONNTAB_STALE;
        switch (w & ST_MASK) {
        case ST_IDLE:
            /* Acquire on success: the owner's writes, and ptr. */
            if (atomic_compare_exchange_weak_explicit(&e->word, &w,
                WORD(gen, ST_OWNED), memory_order_acquire,
                memory_order_acquire)) {
                *ptr = e->ptr;
                return CONNTAB_CLAIMED;
            }
            break;
        case ST_OWNED:
            /* Acquire (as the load above, for a failure's next round):
             * the owner learns only that it must read again. */
            if (atomic_compare_exchange_weak_explicit(&e->word, &w,
                WORD(gen, ST_NOTED), memory_order_acquire,
                memory_order_acquire))
                return CONNTAB_NOTED;
            break;
        default:
            return (w & ST_MASK) == ST_NOTED ? CONNTAB_NOTED :
                CONNTAB_STALE;
        }
    }
}

int
conntab_release(struct conntab *t, int fd, int hold)
{
    struct entry *e = &t->e[fd];
    uint64_t      w = atomic_load_explicit(&e->word, memory_order_relaxed);
    uint32_t      gen = GEN(w);

    /* Sequentially consistent on success: it pairs with the drainer's
     * flag (see pool.c, Locking) and releases the owner's writes to the
     * next claimer.  On NOTED the caller keeps it, as OWNED again. */
    w = WORD(gen, ST_OWNED);
    if (atomic_compare_exchange_strong(&e->word, &w,
        WORD(gen, ST_IDLE | (hold ? HOLD : 0))))
        return 1;
    atomic_store_explicit(&e->word, WORD(gen, ST_OWNED),
        memory_order_relaxed);
    return 0;
}

void
conntab_close(struct conntab *t, int fd)
{
    struct entry *e = &t->e[fd];
    uint64_t      w = atomic_load_explicit(&e->word, memory_order_relaxed);

    /* Release: nothing of the closed connection is read after this. */
    atomic_store_explicit(&e->word, WORD(GEN(w), ST_CLOSED),
        memory_order_release);
}

void
conntab_each(struct conntab *t, int skip_held, conntab_cb cb, void *arg)
{
    int           fd, high = atomic_load(&t->high);
    struct entry *e;
    uint64_t      w;

    for (fd = 0; fd < high; fd++) {
        e = &t->e[fd];
        w = atomic_load(&e->word);
        if (GEN(w) == 0 || (w & ST_MASK) != ST_IDLE ||
            (skip_held && (w & HOLD) != 0))
            continue;
        if (atomic_compare_exchange_strong(&e->word, &w,
            WORD(GEN(w), ST_OWNED)))
            cb(arg, e->ptr);
    }
}
