/* SPDX-License-Identifier: MIT */
/*
 * router.h - the ordered table of routes: a path (exact, or a prefix ending
 * in "/" followed by "*"), the methods allowed, the handler and its options.
 *
 * A route is built from a JSON route object (router_add_json()): the keys
 * every route has are read here, the rest by the handler the route names,
 * through the registry (handlers/handlers.h).  The file's routes and the
 * default ones are built by that same code.
 */
#ifndef ROUTER_H
#define ROUTER_H

#include <json-c/json.h>

#include "fcgi_cancel.h"

/* Method bits for route.methods; 0 means any method. */
#define METHOD_GET      0x01u
#define METHOD_HEAD     0x02u
#define METHOD_POST     0x04u
#define METHOD_PUT      0x08u
#define METHOD_DELETE   0x10u
#define METHOD_PATCH    0x20u
#define METHOD_OPTIONS  0x40u

struct handler_def;

struct route {
    char           *path;           /* "/x", or "/prefix/" when prefix */
    char           *name;           /* the path as written (a prefix with
                                       its star): the route in metric
                                       labels, /status?full, slow lines */
    int             prefix;
    unsigned        methods;
    const char     *handler_name;   /* "work", "status", ... */
    fc_handler_cb   fn;
    void           *data;           /* handler options, owned by the route */
    void          (*data_free)(void *);
    const struct handler_def *def;  /* built by router_add_json(): data is
                                       freed with handler_opts_free() */
    long            deadline_ms;    /* 0: none */
    long            probe_ms;       /* 0: no probes */
    long            slow_ms;        /* 0: no slow line; -1: the server's
                                       slow_ms */
    int             metrics_id;     /* its label in /metrics: name's
                                       metrics_route_id() */
};

struct router {
    struct route   *routes;
    size_t          n;
};

/* Return the method bit for name, or 0 if unknown. */
unsigned            router_method_bit(const char *name);

/*
 * Append a route; path is copied (a path ending in "/" and "*" makes a
 * prefix route); data is the route's from now on, freed with data_free
 * (NULL: not freed).  Return the route, or NULL on allocation failure.
 */
struct route       *router_add(struct router *r, const char *path,
                        unsigned methods, const char *handler_name,
                        fc_handler_cb fn, void *data,
                        void (*data_free)(void *));

/*
 * Append the route that obj, a JSON route object, describes: its common
 * keys ("path", "methods", "handler", "deadline_ms", "probe_ms",
 * "slow_ms") read here,
 * the others by its handler (handler_opts_new()).  where is the route's
 * place in the file, "routes[2]"; flags are HANDLER_* flags for the
 * handler's build().  Return 0, or -1 with *cause set (caller frees) to
 * "WHERE.KEY: what is wrong" or "WHERE: what is wrong", and r unchanged.
 */
int                 router_add_json(struct router *r, json_object *obj,
                        const char *where, unsigned flags, char **cause);

/* Return 1 if name is one of the common route keys, else 0. */
int                 router_common_key(const char *name);

/*
 * Return the first route matching path and method, or NULL with *status set
 * to 404 (no path matches) or 405 (the path matches, not the method).
 */
const struct route *router_match(const struct router *r, const char *path,
                        const char *method, int *status);

/*
 * Append the default routes: each handler's default_routes, in the
 * registry's order (the recipe's three, /status, /ping).  Return 0, or -1
 * if memory ran out (logged).
 */
int                 router_defaults(struct router *r);

/* Free every route. */
void                router_free(struct router *r);

#endif /* ROUTER_H */
