/* SPDX-License-Identifier: MIT */
/*
 * router.c - maps a request's path and method to a route.  Routes are tried
 * in order; the first match wins.  The default table serves the recipe's
 * three routes, each with its own style of watching the token, plus /status
 * and /ping.
 */
#include <stdlib.h>
#include <string.h>

#include "handlers/work.h"
#include "router.h"
#include "status.h"
#include "util.h"

static const struct {
    const char *name;
    unsigned    bit;
} methods[] = {
    { "GET", METHOD_GET }, { "HEAD", METHOD_HEAD }, { "POST", METHOD_POST },
    { "PUT", METHOD_PUT }, { "DELETE", METHOD_DELETE },
    { "PATCH", METHOD_PATCH }, { "OPTIONS", METHOD_OPTIONS },
};

unsigned
router_method_bit(const char *name)
{
    size_t i;

    for (i = 0; i < nitems(methods); i++) {
        if (strcmp(methods[i].name, name) == 0)
            return methods[i].bit;
    }
    return 0;
}

struct route *
router_add(struct router *r, const char *path, unsigned meth,
    const char *handler_name, fc_handler_cb fn, void *data,
    void (*data_free)(void *))
{
    struct route *nr, *rt;
    size_t        len = strlen(path);

    if ((nr = realloc(r->routes, (r->n + 1) * sizeof *nr)) == NULL)
        return NULL;
    r->routes = nr;
    rt = &r->routes[r->n];
    memset(rt, 0, sizeof *rt);
    if (len >= 2 && strcmp(path + len - 2, "/*") == 0) {
        rt->prefix = 1;
        rt->path = strndup(path, len - 1);
    } else {
        rt->path = strdup(path);
    }
    if (rt->path == NULL)
        return NULL;
    rt->methods = meth;
    rt->handler_name = handler_name;
    rt->fn = fn;
    rt->data = data;
    rt->data_free = data_free;
    r->n++;
    return rt;
}

const struct route *
router_match(const struct router *r, const char *path, const char *method,
    int *status)
{
    unsigned    bit = router_method_bit(method);
    size_t      i;
    int         path_seen = 0;

    for (i = 0; i < r->n; i++) {
        const struct route *rt = &r->routes[i];
        int hit;

        if (rt->prefix) {
            size_t plen = strlen(rt->path);
            /* "/a/" matches "/a/..." and "/a" itself */
            hit = strncmp(path, rt->path, plen) == 0 ||
                (strncmp(path, rt->path, plen - 1) == 0 &&
                path[plen - 1] == '\0');
        } else {
            hit = strcmp(path, rt->path) == 0;
        }
        if (!hit)
            continue;
        path_seen = 1;
        if (rt->methods == 0 || (rt->methods & bit) != 0)
            return rt;
    }
    *status = path_seen ? 405 : 404;
    return NULL;
}

int
router_defaults(struct router *r)
{
    static const struct {
        const char     *path;
        enum work_style style;
        const char     *task_param;
    } recipe[] = {
        { "/cancel_tg", WORK_POLL, "default_for_cancel_tg" },
        { "/cancel_tg_dependency", WORK_CALLBACK,
            "default_for_cancel_tg_dependency" },
        { "/cancel_event", WORK_WAIT, "default_for_cancel_tg_dependency" },
    };
    size_t i;

    for (i = 0; i < nitems(recipe); i++) {
        struct work_opts *o = work_opts_new(recipe[i].style,
            recipe[i].task_param);

        if (o == NULL || router_add(r, recipe[i].path, METHOD_GET |
            METHOD_HEAD, "work", work_handler, o, work_opts_free) == NULL) {
            work_opts_free(o);
            return -1;
        }
    }
    if (router_add(r, "/status", METHOD_GET | METHOD_HEAD, "status",
        status_handler, NULL, NULL) == NULL ||
        router_add(r, "/ping", 0, "ping", ping_handler, NULL, NULL) == NULL)
        return -1;
    return 0;
}

void
router_free(struct router *r)
{
    size_t i;

    for (i = 0; i < r->n; i++) {
        free(r->routes[i].path);
        if (r->routes[i].data_free != NULL)
            r->routes[i].data_free(r->routes[i].data);
    }
    free(r->routes);
    r->routes = NULL;
    r->n = 0;
}
