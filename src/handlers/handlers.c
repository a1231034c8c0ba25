/* SPDX-License-Identifier: MIT */
/*
 * handlers.c - the handler registry (see handlers.h): the table of every
 * handler a route may name, and the glue that builds a route's options
 * from its struct handler_def.  router.c reads the route's common keys,
 * finds the handler here and calls handler_opts_new() for the rest; the
 * default routes (router_defaults()) go the same way, from each row's
 * default_routes.
 *
 * Adding a handler is one new file, one table row, one line in
 * Makefile.am:
 *   1. src/handlers/NAME.c: its options struct and config_key table,
 *      build() and fini() if it needs them, its fc_handler_cb, and
 *        const struct handler_def handler_NAME = {
 *            .name = "NAME", .keys = NAME_keys,
 *            .nkeys = nitems(NAME_keys),
 *            .opts_size = sizeof(struct NAME_opts),
 *            .build = NAME_build, .handler = NAME_handler,
 *            .fini = NAME_fini,
 *        };
 *   2. &handler_NAME in handlers[] below, and its extern in handlers.h;
 *   3. src/handlers/NAME.c in src_libfcgicancel_a_SOURCES (Makefile.am).
 * The file's routes can then say "handler": "NAME", and the man page
 * fcgi-cancel.json(5) says what its keys mean.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/handlers.h"
#include "util.h"

/* In the order that "must be work, exec, ..." lists them. */
const struct handler_def *const handlers[] = {
    &handler_work,
    &handler_exec,
    &handler_status,
    &handler_ping,
    &handler_metrics,
    &handler_module,
    &handler_sql,
    NULL
};

const struct handler_def *
handler_find(const char *name)
{
    size_t i;

    for (i = 0; handlers[i] != NULL; i++) {
        if (strcmp(handlers[i]->name, name) == 0)
            return handlers[i];
    }
    return NULL;
}

int
handler_check_name(const char *s, char **why)
{
    const char *names[nitems(handlers)];
    char       *list;
    size_t      i;

    if (handler_find(s) != NULL)
        return 0;
    for (i = 0; handlers[i] != NULL; i++)
        names[i] = handlers[i]->name;
    names[i] = NULL;
    *why = NULL;
    if ((list = config_keys_names(names)) != NULL) {
        if (asprintf(why, "must be %s", list) < 0)
            *why = NULL;
        free(list);
    }
    return -1;
}

int
handler_opts_new(const struct handler_def *h, json_object *route_obj,
    const struct handler_ctx *ctx, config_skip_cb common, void **opts,
    char **cause)
{
    void *o = NULL;

    *opts = NULL;
    *cause = NULL;
    if (h->opts_size > 0 && ((o = calloc(1, h->opts_size)) == NULL ||
        config_keys_defaults(h->keys, h->nkeys, o) != 0)) {
        handler_opts_free(h, o);
        *cause = strdup("out of memory");
        return -1;
    }
    if (config_keys_read(h->keys, h->nkeys, o, route_obj, ctx->where,
        common, cause) != 0 ||
        (h->build != NULL && h->build(o, route_obj, ctx, cause) != 0)) {
        handler_opts_free(h, o);
        return -1;
    }
    *opts = o;
    return 0;
}

void
handler_opts_free(const struct handler_def *h, void *opts)
{
    if (opts == NULL)
        return;
    if (h->fini != NULL)
        h->fini(opts);
    config_keys_free(h->keys, h->nkeys, opts);
    free(opts);
}
