/* SPDX-License-Identifier: MIT */
/*
 * handlers.h - the handler registry: what a route's "handler" may name,
 * and for each name one const struct handler_def, defined in the
 * handler's own file, that says everything the server needs to know:
 * its route options (a key table on the config_keys engine), how to check
 * them and build its runtime state, the function that serves a request,
 * how to free what it built, and the routes it serves when the file has
 * none.
 *
 * Adding a handler is one new file, one table row, one line in
 * Makefile.am:
 *   1. src/handlers/NAME.c (and NAME.h if anything else needs it):
 *      the options struct, its config_key table, an optional build() and
 *      fini(), the fc_handler_cb, and
 *        const struct handler_def handler_NAME = { .name = "NAME", ... };
 *   2. a row &handler_NAME in the table in handlers.c (and its extern
 *      below);
 *   3. src/handlers/NAME.c in src_libfcgicancel_a_SOURCES in Makefile.am.
 * A handler with state worth watching (programs running, a database
 * pool) exports it on /metrics with an optional metrics() hook:
 *        static void
 *        NAME_metrics(struct expo *e, const struct handler_route *r,
 *            size_t n)
 *        {
 *            size_t i;
 *
 *            expo_family(e, "fcgi_cancel_NAME_things", EXPO_GAUGE,
 *                "Things of NAME routes in use now.");
 *            for (i = 0; i < n; i++) {
 *                struct NAME_opts *o = r[i].opts;
 *                const char *l[] = { "route", r[i].route, NULL };
 *
 *                expo_sample(e, l, (double)atomic_load_explicit(
 *                    &o->things, memory_order_relaxed));
 *            }
 *        }
 *    and .metrics = NAME_metrics in the row (expo.h has the writer; the
 *    names follow Prometheus' conventions: "fcgi_cancel_" first, the unit
 *    in the name, a counter's family named without "_total").
 * A handler includes this header, config_keys.h and fcgi_cancel.h; never
 * router.h nor config.h: routes, their common keys (path, methods, handler,
 * deadline_ms, probe_ms, slow_ms) and the file are the core's business.
 */
#ifndef HANDLERS_HANDLERS_H
#define HANDLERS_HANDLERS_H

#include <stddef.h>

#include <json-c/json.h>

#include "config_keys.h"
#include "fcgi_cancel.h"

/* handler_ctx.flags */
#define HANDLER_CHECK_ONLY  0x1u    /* check the keys, load or open
                                       nothing: the route is not meant to
                                       be served (it answers 500) */

struct expo;

/* One route of a handler, for its metrics() hook. */
struct handler_route {
    const char     *route;      /* its path as written: the "route" label */
    void           *opts;       /* what build() made of its options */
};

/* Where a route is being built, for build(). */
struct handler_ctx {
    const char     *where;      /* the route's place, "routes[2]" */
    const char     *path;       /* its "path", as written */
    unsigned        flags;      /* HANDLER_* */
};

/* One handler: a row of the registry. */
struct handler_def {
    const char              *name;      /* what "handler" says: "work" */
    const struct config_key *keys;      /* its route options; NULL: none */
    size_t                   nkeys;
    size_t                   opts_size; /* the struct that keys fill
                                           (calloc'ed by the registry, the
                                           defaults stored, then the
                                           route's members); 0: none */
    /*
     * NULL: nothing more to check.  Check what single keys cannot, and add
     * runtime state to opts (a loaded module, a db pool).  Return 0, or -1
     * with *cause set (caller frees) to "WHERE.KEY: what is wrong" or
     * "WHERE: what is wrong"; the registry then calls fini().
     */
    int                    (*build)(void *opts, json_object *route_obj,
                                const struct handler_ctx *ctx, char **cause);
    fc_handler_cb            handler;   /* called with data = opts */
    /* NULL: nothing.  Free what build() added to opts (also after a
     * build() that failed); the registry then frees the keys and opts. */
    void                   (*fini)(void *opts);
    /* NULL, or NULL-terminated JSON route objects (text) served when the
     * file has no "routes"; built as the file's routes are. */
    const char *const       *default_routes;
    /*
     * NULL: nothing.  Write the handler's own metric families to e
     * (expo.h), each begun once with expo_family() and followed by one
     * sample per route of routes[0 .. n - 1] (n >= 1: every route of the
     * file that names this handler), labelled route=routes[i].route.
     * Called at each scrape of /metrics, on the scraping worker's thread,
     * while other workers serve these routes: read what they change with
     * atomics or under the handler's own lock, and block on nothing.
     */
    void                   (*metrics)(struct expo *e,
                                const struct handler_route *routes,
                                size_t n);
};

/* The registry, in the order that messages list the names; NULL-ended. */
extern const struct handler_def *const handlers[];

/* The rows, each defined in its handler's file. */
extern const struct handler_def handler_work;       /* handlers/work.c */
extern const struct handler_def handler_exec;       /* handlers/exec.c */
extern const struct handler_def handler_status;     /* status.c */
extern const struct handler_def handler_ping;       /* status.c */
extern const struct handler_def handler_metrics;    /* metrics.c */
extern const struct handler_def handler_module;     /* handlers/module.c */
extern const struct handler_def handler_sql;        /* handlers/sql.c */

/* Return the handler called name, or NULL. */
const struct handler_def *handler_find(const char *name);

/*
 * A config_check_cb for a route's "handler": 0 if s names a handler, else
 * -1 with *why set (caller frees) to "must be work, exec, ... or module".
 */
int     handler_check_name(const char *s, char **why);

/*
 * Build a route's options for handler h: calloc h->opts_size, store the
 * defaults of h->keys, read the members of route_obj with them (members
 * that common says are the router's are left alone, any other is an
 * error), then h->build().  Return 0 with *opts set (NULL when
 * h->opts_size is 0; free it with handler_opts_free()), or -1 with *opts
 * NULL and *cause set (caller frees) to "WHERE.KEY: what is wrong", or
 * "out of memory".
 */
int     handler_opts_new(const struct handler_def *h, json_object *route_obj,
            const struct handler_ctx *ctx, config_skip_cb common,
            void **opts, char **cause);

/* Free what handler_opts_new() built (NULL is fine): h->fini(), the keys,
 * opts. */
void    handler_opts_free(const struct handler_def *h, void *opts);

#endif /* HANDLERS_HANDLERS_H */
