/* SPDX-License-Identifier: MIT */
/*
 * router.h - the ordered table of routes: a path (exact, or a prefix ending
 * in "/" followed by "*"), the methods allowed, the handler and its options.
 */
#ifndef ROUTER_H
#define ROUTER_H

#include "fcgi_cancel.h"

/* Method bits for route.methods; 0 means any method. */
#define METHOD_GET      0x01u
#define METHOD_HEAD     0x02u
#define METHOD_POST     0x04u
#define METHOD_PUT      0x08u
#define METHOD_DELETE   0x10u
#define METHOD_PATCH    0x20u
#define METHOD_OPTIONS  0x40u

struct route {
    char           *path;           /* "/x", or "/prefix/" when prefix */
    int             prefix;
    unsigned        methods;
    const char     *handler_name;   /* "work", "status", ... */
    fc_handler_cb   fn;
    void           *data;           /* handler options, owned by the route */
    void          (*data_free)(void *);
    long            deadline_ms;    /* 0: none */
    long            probe_ms;       /* 0: no probes */
};

struct router {
    struct route   *routes;
    size_t          n;
};

/* Return the method bit for name, or 0 if unknown. */
unsigned            router_method_bit(const char *name);

/*
 * Append a route; path is copied (a path ending in "/" and "*" makes a prefix route).  Return the
 * route, or NULL on allocation failure.
 */
struct route       *router_add(struct router *r, const char *path,
                        unsigned methods, const char *handler_name,
                        fc_handler_cb fn, void *data,
                        void (*data_free)(void *));

/*
 * Return the first route matching path and method, or NULL with *status set
 * to 404 (no path matches) or 405 (the path matches, not the method).
 */
const struct route *router_match(const struct router *r, const char *path,
                        const char *method, int *status);

/* Fill r with the default routes (the recipe's three, /status, /ping). */
int                 router_defaults(struct router *r);

/* Free every route. */
void                router_free(struct router *r);

#endif /* ROUTER_H */
