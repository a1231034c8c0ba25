/* SPDX-License-Identifier: MIT */
/*
 * handler.h - the row of the handler registry, as agreed for the handlers
 * written before the registry landed.  GLUE UNTIL THE REGISTRY LANDS: the
 * registry's own header replaces this file at the merge.
 *
 * A route's handler is a row: its name, its key table (struct config_key,
 * config.h) and the size of the options struct that the table fills.  The
 * registry callocs opts_size bytes, stores the keys' defaults, then the
 * route's members (an unknown key is an error), then calls build() for
 * the checks no single key can make and for runtime state.  handler() is
 * called with data = opts.  fini() frees what build() added (also after
 * a failed build); the registry then config_keys_free()s and frees opts.
 */
#ifndef HANDLER_H
#define HANDLER_H

#include <stddef.h>

#include <json-c/json.h>

#include "config.h"
#include "fcgi_cancel.h"

/* handler_ctx.flags: check the keys only, connect and open nothing (-t). */
#define HANDLER_CHECK_ONLY  0x1u

struct handler_ctx {
    const char     *where;          /* "routes[2]" */
    unsigned        flags;
};

struct handler_def {
    const char                 *name;
    const struct config_key    *keys;
    size_t                      nkeys;
    size_t                      opts_size;
    /* 0, or -1 with *cause "WHERE.KEY: what is wrong" (caller frees) */
    int                       (*build)(void *opts, json_object *route_obj,
                                  const struct handler_ctx *ctx,
                                  char **cause);
    fc_handler_cb               handler;
    void                      (*fini)(void *opts);
    const char *const          *default_routes;     /* NULL */
};

#endif /* HANDLER_H */
