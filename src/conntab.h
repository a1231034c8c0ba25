/* SPDX-License-Identifier: MIT */
/*
 * conntab.h - who owns a kept connection that sits in a shared,
 * edge-triggered epoll set: a table indexed by descriptor number whose
 * entries the workers claim and give back with one compare-and-swap each,
 * so that a connection stays registered from its first wait to its close
 * (no epoll_ctl() per request) and an event never reaches a connection
 * that is already closed.  See conntab.c.
 */
#ifndef CONNTAB_H
#define CONNTAB_H

#include <stdint.h>

struct conntab;

/* What conntab_claim() found. */
enum conntab_claim {
    CONNTAB_CLAIMED,    /* idle: the caller owns it now */
    CONNTAB_NOTED,      /* owned by another thread: it will read again */
    CONNTAB_STALE,      /* an event of a closed registration: drop it */
};

/* Called by conntab_each() with each claimed entry's pointer. */
typedef void (*conntab_cb)(void *arg, void *ptr);

/*
 * Return a table for descriptors 0 .. size - 1, or NULL if out of memory.
 * Its pages are untouched until used.  Free it with conntab_free().
 */
struct conntab  *conntab_new(size_t size);

/* Free the table (not what its entries point to); NULL is a no-op. */
void             conntab_free(struct conntab *t);

/*
 * Register descriptor fd, owned by the caller, with ptr: a new generation
 * of its entry, owned.  Return the 64-bit epoll data that names this
 * registration (never one of the values above CONNTAB_DATA_MAX), or 0 if
 * fd does not fit the table.
 */
uint64_t         conntab_register(struct conntab *t, int fd, void *ptr);

/* The descriptor that data of conntab_register() names. */
static inline int
conntab_fd(uint64_t data)
{
    return (int)(uint32_t)data;
}

/* The largest data conntab_register() returns; above it, callers' tags. */
#define CONNTAB_DATA_MAX    (UINT64_MAX - 16)

/*
 * An event with data arrived: take the entry if it is idle (*ptr set),
 * note it for its owner if it is owned (the owner's conntab_release()
 * then fails, and the owner reads again), or drop it if its registration
 * was closed.
 */
enum conntab_claim conntab_claim(struct conntab *t, uint64_t data,
                     void **ptr);

/*
 * Give the entry of fd, owned by the caller, back: idle, waiting for its
 * next event.  hold: the owner wants conntab_each(..., 1, ...) to pass it
 * over (a request is arriving on it).  Return 1 if given back, 0 if an
 * event came while the caller owned it: the caller still owns it and must
 * read it again before giving it back.
 */
int              conntab_release(struct conntab *t, int fd, int hold);

/* The owner closes fd: events of its registration are dropped from now. */
void             conntab_close(struct conntab *t, int fd);

/*
 * Claim every idle entry (with skip_held, not those given back with hold)
 * and call cb(arg, ptr) with each; the callback owns it and must close
 * it.  Entries owned meanwhile are left to their owners.
 */
void             conntab_each(struct conntab *t, int skip_held,
                     conntab_cb cb, void *arg);

#endif /* CONNTAB_H */
