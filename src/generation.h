/* SPDX-License-Identifier: MIT */
/*
 * generation.h - configuration generations: what the server serves with
 * (routes, limits, log settings, the modules its routes loaded), fixed once
 * made and counted by reference, so that a reload (SIGHUP) can put a new
 * one in place while requests that began under the old one finish with it.
 */
#ifndef GENERATION_H
#define GENERATION_H

#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "proto.h"

struct allow;

/*
 * One generation.  Nothing in it changes after gen_new() but refs (and
 * number, set once by gen_publish() before any other thread can see it).
 */
struct generation {
    uint64_t            number;     /* 1 at start-up, then one per reload */
    struct config       cfg;        /* owned: routes (and their modules),
                                       limits, log settings */
    struct allow       *allow;      /* owned: cfg.allowed_clients, parsed */
    struct proto_limits limits;     /* from cfg's *_bytes and workers */
    _Atomic long        refs;       /* see generation.c's DESIGN */
};

/*
 * Make a generation of the configuration cfg, whose contents it takes (cfg
 * is left empty, config_free() on it is a no-op); it holds one reference,
 * the caller's.  Return it, or NULL with *cause set (caller frees; cfg
 * then keeps its contents) if an allowed client is not an IP address or
 * memory ran out.
 */
struct generation  *gen_new(struct config *cfg, char **cause);

/*
 * Make g, which gen_new() returned, the current generation, numbered one
 * more than the one before; the caller's reference to g becomes the
 * current one's.  The previous generation loses its reference as the
 * current one, and is freed when its last request ends (now, if none is
 * running).  Return g's number.  One thread at a time (main.c's).
 */
uint64_t            gen_publish(struct generation *g);

/*
 * Return a new reference to the current generation, for as long as the
 * caller uses what it holds; drop it with gen_put().  NULL if none was
 * published (or after gen_shutdown()).  Any thread; lock-free.
 */
struct generation  *gen_get(void);

/*
 * Drop a reference that gen_get() or gen_new() gave (NULL is a no-op):
 * the last one frees g (its routes' modules are finalized and unloaded).
 */
void                gen_put(struct generation *g);

/* Return the current generation's number; 0 if none. */
uint64_t            gen_number(void);

/*
 * Leave no generation current and drop the current one's reference, once
 * no request uses it (at exit, after the pool stopped).
 */
void                gen_shutdown(void);

#endif /* GENERATION_H */
