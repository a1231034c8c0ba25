/* SPDX-License-Identifier: MIT */
/*
 * router.c - maps a request's path and method to a route.  Routes are tried
 * in order; the first match wins.
 *
 * It also builds a route from its JSON object: the keys that every route
 * has (path, methods, handler, deadline_ms, probe_ms, slow_ms) are read
 * here, on
 * the config_keys engine, and only here; the rest of the object goes to
 * the handler the route names, through the registry (handler_opts_new()),
 * which rejects the keys that neither knows.  The default routes come
 * from the registry too, as JSON text, and are built by the same code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_keys.h"
#include "handlers/handlers.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "util.h"

static const struct {
    const char *name;
    unsigned    bit;
} methods[] = {
    { "GET", METHOD_GET }, { "HEAD", METHOD_HEAD }, { "POST", METHOD_POST },
    { "PUT", METHOD_PUT }, { "DELETE", METHOD_DELETE },
    { "PATCH", METHOD_PATCH }, { "OPTIONS", METHOD_OPTIONS },
};

/* The methods as methods[] knows them, for messages. */
#define METHOD_NAMES "GET, HEAD, POST, PUT, DELETE, PATCH or OPTIONS"

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
    if (rt->path == NULL || (rt->name = strdup(path)) == NULL) {
        free(rt->path);
        return NULL;
    }
    rt->methods = meth;
    rt->slow_ms = -1;
    rt->metrics_id = metrics_route_id(rt->name);
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

/* ---- building a route ------------------------------------------------ */

/* The keys of every route, read into a struct route_common. */
struct route_common {
    char       *path;
    unsigned    methods;        /* 0: any */
    char       *handler;
    long        deadline_ms;    /* 0: none */
    long        probe_ms;       /* 0: none */
    long        slow_ms;        /* 0: none; -1: the server's */
};

static int check_route_path(const char *, char **);
static int set_methods(void *, json_object *, const char *, char **);

static const struct config_key route_keys[] = {
    { .name = "path", .type = CONFIG_STRING,
      .offset = offsetof(struct route_common, path),
      .check = check_route_path },
    { .name = "methods", .type = CONFIG_CUSTOM, .set = set_methods },
    { .name = "handler", .type = CONFIG_STRING,
      .offset = offsetof(struct route_common, handler),
      .check = handler_check_name },
    { .name = "deadline_ms", .type = CONFIG_INT,
      .offset = offsetof(struct route_common, deadline_ms),
      .min = 1, .max = CONFIG_MS_MAX, .def = 0 },
    { .name = "probe_ms", .type = CONFIG_INT,
      .offset = offsetof(struct route_common, probe_ms),
      .min = CONFIG_PROBE_MS_MIN, .max = CONFIG_PROBE_MS_MAX, .def = 0 },
    { .name = "slow_ms", .type = CONFIG_INT,
      .offset = offsetof(struct route_common, slow_ms),
      .min = 0, .max = CONFIG_MS_MAX, .def = -1 },
};

int
router_common_key(const char *name)
{
    return config_keys_find(route_keys, nitems(route_keys), name) != NULL;
}

/* A route's path: absolute, printable, a star only to end a prefix. */
static int
check_route_path(const char *s, char **why)
{
    size_t i, len = strlen(s);

    if (s[0] != '/')
        return config_keys_refuse(why, "must start with '/'");
    for (i = 0; i < len; i++) {
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return config_keys_refuse(why, "must not contain spaces or "
                "control characters");
        if (s[i] == '?' || s[i] == '#')
            return config_keys_refuse(why, "must not contain '?' or '#'");
        if (s[i] == '*' && (i != len - 1 || s[i - 1] != '/'))
            return config_keys_refuse(why, "may have '*' only at its end, "
                "after a '/' (\"/prefix/*\")");
    }
    return 0;
}

/* A route's methods: a non-empty array of known method names. */
static int
set_methods(void *base, json_object *v, const char *path, char **cause)
{
    struct route_common *rc = base;
    char                 epath[512];
    const char          *s = "";
    unsigned             bits = 0, bit;
    size_t               i, n;

    if (!json_object_is_type(v, json_type_array))
        return config_keys_fail(cause, path, "must be an array of methods");
    if ((n = json_object_array_length(v)) == 0)
        return config_keys_fail(cause, path, "must not be empty (leave it "
            "out to allow every method)");
    for (i = 0; i < n; i++) {
        snprintf(epath, sizeof epath, "%s[%zu]", path, i);
        if (config_keys_string(json_object_array_get_idx(v, i), epath, &s,
            cause) != 0) {
            free(*cause);
            return config_keys_fail(cause, epath, "must be %s",
                METHOD_NAMES);
        }
        if ((bit = router_method_bit(s)) == 0)
            return config_keys_fail(cause, epath, "must be %s",
                METHOD_NAMES);
        bits |= bit;
    }
    rc->methods = bits;
    return 0;
}

/* Return the index of the route whose path is path as written, or -1. */
static long
route_find(const struct router *r, const char *path)
{
    size_t  len = strlen(path), i;
    int     prefix = len >= 2 && strcmp(path + len - 2, "/*") == 0;

    if (prefix)
        len--;
    for (i = 0; i < r->n; i++) {
        if (r->routes[i].prefix == prefix &&
            strncmp(r->routes[i].path, path, len) == 0 &&
            r->routes[i].path[len] == '\0')
            return (long)i;
    }
    return -1;
}

int
router_add_json(struct router *r, json_object *obj, const char *where,
    unsigned flags, char **cause)
{
    const struct handler_def   *h;
    struct handler_ctx          ctx;
    struct route_common         rc;
    struct route               *rt;
    void                       *opts = NULL;
    char                        path[64], esc[128];
    long                        other;
    int                         ret = -1;

    *cause = NULL;
    if (!json_object_is_type(obj, json_type_object))
        return config_keys_fail(cause, where, "must be an object");
    memset(&rc, 0, sizeof rc);
    /* No route key has a string default: this cannot fail. */
    config_keys_defaults(route_keys, nitems(route_keys), &rc);
    if (config_keys_read(route_keys, nitems(route_keys), &rc, obj, where,
        config_keys_skip_all, cause) != 0)
        goto out;
    if (rc.path == NULL || rc.handler == NULL) {
        config_keys_fail(cause, where, "missing key \"%s\"",
            rc.path == NULL ? "path" : "handler");
        goto out;
    }
    if ((other = route_find(r, rc.path)) >= 0) {
        snprintf(path, sizeof path, "%s.path", where);
        config_keys_fail(cause, path, "\"%s\" is already the path of "
            "routes[%ld]", log_escape(esc, sizeof esc, rc.path), other);
        goto out;
    }
    h = handler_find(rc.handler);       /* handler_check_name() found it */
    ctx = (struct handler_ctx){ .where = where, .path = rc.path,
        .flags = flags };
    if (handler_opts_new(h, obj, &ctx, router_common_key, &opts,
        cause) != 0)
        goto out;
    if ((rt = router_add(r, rc.path, rc.methods, h->name, h->handler, opts,
        NULL)) == NULL) {
        handler_opts_free(h, opts);
        *cause = strdup("out of memory");
        goto out;
    }
    rt->def = h;
    rt->deadline_ms = rc.deadline_ms;
    rt->probe_ms = rc.probe_ms;
    rt->slow_ms = rc.slow_ms;
    ret = 0;
out:
    config_keys_free(route_keys, nitems(route_keys), &rc);
    return ret;
}

int
router_defaults(struct router *r)
{
    json_object *obj;
    char         where[32], *cause = NULL;
    size_t       i, j;
    int          rc;

    for (i = 0; handlers[i] != NULL; i++) {
        const char *const *text = handlers[i]->default_routes;

        for (j = 0; text != NULL && text[j] != NULL; j++) {
            snprintf(where, sizeof where, "routes[%zu]", r->n);
            if ((obj = json_tokener_parse(text[j])) == NULL) {
                log_errorx("default route of %s: not JSON",
                    handlers[i]->name);
                return -1;
            }
            rc = router_add_json(r, obj, where, 0, &cause);
            json_object_put(obj);
            if (rc != 0) {
                log_errorx("default route of %s: %s", handlers[i]->name,
                    cause != NULL ? cause : "out of memory");
                free(cause);
                return -1;
            }
        }
    }
    return 0;
}

void
router_free(struct router *r)
{
    size_t i;

    for (i = 0; i < r->n; i++) {
        free(r->routes[i].path);
        free(r->routes[i].name);
        if (r->routes[i].def != NULL)
            handler_opts_free(r->routes[i].def, r->routes[i].data);
        else if (r->routes[i].data_free != NULL)
            r->routes[i].data_free(r->routes[i].data);
    }
    free(r->routes);
    r->routes = NULL;
    r->n = 0;
}
