/* SPDX-License-Identifier: MIT */
/*
 * sql_glue.c - GLUE UNTIL THE REGISTRY LANDS: builds an "sql" route from
 * handler_sql (a registry row, handler.h) the way the registry will, for
 * config.c's handler table of today.  Drop it at the merge.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "handlers/sql.h"
#include "handlers/sql_glue.h"
#include "router.h"

/* Free the route's options: the row's fini(), the keys, the struct. */
static void
sql_glue_free(void *opts)
{
    if (opts == NULL)
        return;
    handler_sql.fini(opts);
    config_keys_free(handler_sql.keys, handler_sql.nkeys, opts);
    free(opts);
}

int
sql_glue_route_build(struct route *rt, json_object *route_obj,
    const char *where, char **cause)
{
    const struct handler_ctx    ctx = { .where = where, .flags = 0 };
    void                       *opts;

    if ((opts = calloc(1, handler_sql.opts_size)) == NULL ||
        config_keys_defaults(handler_sql.keys, handler_sql.nkeys,
        opts) != 0) {
        free(opts);
        *cause = strdup("out of memory");
        return -1;
    }
    rt->fn = handler_sql.handler;
    rt->data = opts;
    rt->data_free = sql_glue_free;
    if (config_route_options(handler_sql.keys, handler_sql.nkeys, opts,
        route_obj, where, cause) != 0)
        return -1;
    return handler_sql.build(opts, route_obj, &ctx, cause);
}
