/* SPDX-License-Identifier: MIT */
/*
 * config.c - the server's configuration: struct config and its top-level
 * keys (a const table on the config_keys engine, with their checks), and
 * the reading of the file: jsonpos.c reads and parses the text and says
 * where each key is, the key tables check the values, and router.c builds
 * each element of "routes" (its common keys, then its handler's options
 * through the handler registry).
 *
 * Every message names the file, and the line and column of the key it is
 * about: the key tables say "PATH: what is wrong", jsonpos_locate() puts
 * "FILE:LINE:COL: " in front.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "accesslog.h"
#include "config.h"
#include "config_keys.h"
#include "jsonpos.h"
#include "log.h"
#include "util.h"

/* ---- checks of string values ----------------------------------------- */

int
config_check_listen(const char *spec, char **cause)
{
    const char  *addr, *port, *p;
    size_t       hlen;
    long         pnum = 0;

    if (strncmp(spec, "unix:", 5) == 0) {
        if (spec[5] != '/')
            return config_keys_fail(cause, NULL,
                "the path of unix: must be absolute");
        if (strlen(spec + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return config_keys_fail(cause, NULL, "the path of unix: is too "
                "long (at most %zu bytes)",
                sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        return 0;
    }
    if (strncmp(spec, "tcp:", 4) != 0)
        return config_keys_fail(cause, NULL,
            "must be unix:/PATH or tcp:HOST:PORT");
    addr = spec + 4;
    if ((port = strrchr(addr, ':')) == NULL)
        return config_keys_fail(cause, NULL, "must be tcp:HOST:PORT");
    hlen = (size_t)(port - addr);
    port++;
    for (p = port; *p >= '0' && *p <= '9' && pnum <= 65535; p++)
        pnum = pnum * 10 + (*p - '0');
    if (*port == '\0' || *p != '\0' || pnum > 65535)
        return config_keys_fail(cause, NULL, "the port must be 0..65535");
    if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
        addr++;
        hlen -= 2;
    }
    if (hlen == 0)
        return config_keys_fail(cause, NULL,
            "the host is missing (tcp:HOST:PORT)");
    if (hlen > 253)
        return config_keys_fail(cause, NULL, "the host is too long");
    for (p = addr; p < addr + hlen; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '[' ||
            *p == ']' || *p == '/')
            return config_keys_fail(cause, NULL, "the host must be a name "
                "or an address (in [ ] for IPv6)");
    }
    return 0;
}

/* socket_group: a group name or number (no blanks, ":" or "/"). */
static int
check_group(const char *s, char **why)
{
    if (*s == '\0')
        return config_keys_refuse(why, "must not be empty");
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == ':' || *s == '/')
            return config_keys_refuse(why, "must be a group name or number");
    }
    return 0;
}

/* access_log: "off" or an absolute path. */
static int
check_access_log(const char *s, char **why)
{
    if (strcmp(s, "off") != 0 && *s != '/')
        return config_keys_refuse(why, "must be \"off\" or an absolute path");
    return 0;
}


/* ---- routes ---------------------------------------------------------- */

/* The "routes" key: a non-empty array of route objects. */
static int
set_routes(void *base, json_object *v, const char *path, char **cause)
{
    struct config  *c = base;
    char            where[32];
    size_t          i, n;

    if (!json_object_is_type(v, json_type_array))
        return config_keys_fail(cause, path, "must be an array of routes");
    if ((n = json_object_array_length(v)) == 0)
        return config_keys_fail(cause, path, "must not be empty");
    for (i = 0; i < n; i++) {
        snprintf(where, sizeof where, "routes[%zu]", i);
        if (router_add_json(&c->routes, json_object_array_get_idx(v, i),
            where, c->parse_flags, cause) != 0)
            return -1;
    }
    return 0;
}

/* ---- the configuration ---------------------------------------------- */

/* The names of enum log_level, in its order. */
static const char *const log_levels[] = {
    "error", "warn", "info", "debug", NULL
};

_Static_assert(nitems(log_levels) == LOG_LEVEL__MAX + 1,
    "log_levels matches enum log_level");

static const struct config_key config_keys[] = {
    { .name = "listen", .type = CONFIG_STRING,
      .offset = offsetof(struct config, listen),
      .nullable = 1, .check = config_check_listen },
    { .name = "socket_mode", .type = CONFIG_MODE,
      .offset = offsetof(struct config, socket_mode),
      .max = 0777, .def = 0660 },
    { .name = "socket_group", .type = CONFIG_STRING,
      .offset = offsetof(struct config, socket_group),
      .nullable = 1, .check = check_group },
    { .name = "workers", .type = CONFIG_INT,
      .offset = offsetof(struct config, workers),
      .min = 1, .max = CONFIG_WORKERS_MAX, .def = 32 },
    { .name = "grace_ms", .type = CONFIG_INT,
      .offset = offsetof(struct config, grace_ms),
      .min = 0, .max = CONFIG_MS_MAX, .def = 10000 },
    { .name = "max_body_bytes", .type = CONFIG_INT,
      .offset = offsetof(struct config, max_body_bytes),
      .min = 0, .max = CONFIG_BODY_MAX, .def = 1048576 },
    { .name = "read_timeout_ms", .type = CONFIG_INT,
      .offset = offsetof(struct config, read_timeout_ms),
      .min = 0, .max = CONFIG_MS_MAX, .def = 30000 },
    { .name = "max_params_bytes", .type = CONFIG_INT,
      .offset = offsetof(struct config, max_params_bytes),
      .min = 1024, .max = CONFIG_PARAMS_MAX, .def = 1048576 },
    { .name = "write_timeout_ms", .type = CONFIG_INT,
      .offset = offsetof(struct config, write_timeout_ms),
      .min = 0, .max = CONFIG_MS_MAX, .def = 60000 },
    { .name = "worker_stack_kb", .type = CONFIG_INT,
      .offset = offsetof(struct config, worker_stack_kb),
      .min = CONFIG_STACK_KB_MIN, .max = CONFIG_STACK_KB_MAX, .def = 1024 },
    { .name = "log_level", .type = CONFIG_ENUM,
      .offset = offsetof(struct config, log_level),
      .def = LOG_LEVEL_INFO, .names = log_levels },
    { .name = "access_log", .type = CONFIG_STRING,
      .offset = offsetof(struct config, access_log),
      .nullable = 1, .check = check_access_log },
    { .name = "access_log_format", .type = CONFIG_ENUM,
      .offset = offsetof(struct config, access_log_format),
      .def = ACCESSLOG_DEFAULT, .names = accesslog_format_names },
    { .name = "slow_ms", .type = CONFIG_INT,
      .offset = offsetof(struct config, slow_ms),
      .min = 0, .max = CONFIG_MS_MAX, .def = 0 },
    { .name = "user", .type = CONFIG_STRING,
      .offset = offsetof(struct config, user),
      .nullable = 1, .check = check_group },
    { .name = "group", .type = CONFIG_STRING,
      .offset = offsetof(struct config, group),
      .nullable = 1, .check = check_group },
    { .name = "allowed_clients", .type = CONFIG_STRV,
      .offset = offsetof(struct config, allowed_clients),
      .min = 0, .max = 0 },
    { .name = "max_connections", .type = CONFIG_INT,
      .offset = offsetof(struct config, max_connections),
      .min = 1, .max = CONFIG_CONNECTIONS_MAX, .def = 10000 },
    { .name = "max_arriving_bytes", .type = CONFIG_INT,
      .offset = offsetof(struct config, max_arriving_bytes),
      .min = 0, .max = CONFIG_BODY_MAX, .def = 64L << 20 },
    { .name = "peer_timeout_ms", .type = CONFIG_INT,
      .offset = offsetof(struct config, peer_timeout_ms),
      .min = 0, .max = CONFIG_MS_MAX, .def = 30000 },
    { .name = "routes", .type = CONFIG_CUSTOM, .set = set_routes },
};

/* The top-level keys that a running server cannot change (config.h). */
static const char *const restart_keys[] = {
    "listen", "socket_mode", "socket_group", "user", "group", "workers",
    "worker_stack_kb", "max_connections", "max_arriving_bytes",
    "peer_timeout_ms", NULL
};

/* Is name one of restart_keys? */
static int
restart_key(const char *name)
{
    size_t i;

    for (i = 0; restart_keys[i] != NULL; i++) {
        if (strcmp(restart_keys[i], name) == 0)
            return 1;
    }
    return 0;
}

int
config_compare(struct config *next, const struct config *cur,
    config_change_cb changed, void *arg)
{
    size_t i;
    int    restart;

    for (i = 0; i < nitems(config_keys); i++) {
        if (config_keys_equal(&config_keys[i], next, cur))
            continue;
        restart = restart_key(config_keys[i].name);
        if (restart && config_keys_copy(&config_keys[i], next, cur) != 0)
            return -1;
        changed(arg, config_keys[i].name, restart);
    }
    return 0;
}

/* Is s a numeric IPv4 or IPv6 address?  Loopback ones set *loop. */
static int
ip_address(const char *s, int *loop)
{
    struct in6_addr a6;
    struct in_addr  a4;

    if (inet_pton(AF_INET, s, &a4) == 1) {
        *loop = (ntohl(a4.s_addr) >> 24) == 127;
        return 1;
    }
    if (inet_pton(AF_INET6, s, &a6) == 1) {
        *loop = IN6_IS_ADDR_LOOPBACK(&a6);
        return 1;
    }
    return 0;
}

int
config_check_access(const struct config *c, char **cause)
{
    char        host[256], msg[512];
    const char *p, *colon;
    size_t      i, len;
    int         loop = 0;

    for (i = 0; c->allowed_clients != NULL && c->allowed_clients[i] != NULL;
        i++) {
        if (!ip_address(c->allowed_clients[i], &loop)) {
            snprintf(msg, sizeof msg, "allowed_clients[%zu]: \"%s\" is not "
                "an IP address", i, c->allowed_clients[i]);
            *cause = strdup(msg);
            return -1;
        }
    }
    if (c->listen == NULL || strncmp(c->listen, "tcp:", 4) != 0 ||
        (c->allowed_clients != NULL && c->allowed_clients[0] != NULL))
        return 0;
    p = c->listen + 4;
    if ((colon = strrchr(p, ':')) == NULL)
        return 0;           /* config_check_listen() says what is wrong */
    len = (size_t)(colon - p);
    if (len >= 2 && p[0] == '[' && p[len - 1] == ']') {
        p++;
        len -= 2;
    }
    if (len >= sizeof host)
        len = sizeof host - 1;
    memcpy(host, p, len);
    host[len] = '\0';
    if (strcmp(host, "localhost") == 0 || (ip_address(host, &loop) && loop))
        return 0;
    snprintf(msg, sizeof msg, "allowed_clients: required when listening on "
        "%s, which is not a loopback address", c->listen);
    *cause = strdup(msg);
    return -1;
}

void
config_init(struct config *c)
{
    memset(c, 0, sizeof *c);
    /* No top-level key has a string default: this cannot fail. */
    config_keys_defaults(config_keys, nitems(config_keys), c);
}

void
config_free(struct config *c)
{
    config_keys_free(config_keys, nitems(config_keys), c);
    router_free(&c->routes);
}

int
config_default_routes(struct config *c)
{
    return router_defaults(&c->routes);
}

/* A configuration file's text, kept to be parsed more than once. */
struct config_source {
    char           *path;
    struct jsonpos_text t;
};

struct config_source *
config_read(const char *path, char **cause)
{
    struct config_source *src;

    *cause = NULL;
    if ((src = calloc(1, sizeof *src)) == NULL ||
        (src->path = strdup(path)) == NULL) {
        free(src);
        config_keys_fail(cause, path, "out of memory");
        return NULL;
    }
    if (jsonpos_read(path, (size_t)CONFIG_FILE_MAX, &src->t, cause) != 0) {
        config_source_free(src);
        return NULL;
    }
    return src;
}

void
config_source_free(struct config_source *src)
{
    if (src == NULL)
        return;
    jsonpos_text_free(&src->t);
    free(src->path);
    free(src);
}

int
config_load(struct config *c, const char *path, char **cause)
{
    struct config_source *src;
    int                   rc;

    if ((src = config_read(path, cause)) == NULL)
        return -1;
    rc = config_parse(c, src, 0, cause);
    config_source_free(src);
    return rc;
}

int
config_parse(struct config *c, const struct config_source *src,
    unsigned flags, char **cause)
{
    struct config           tmp;
    struct jsonpos_index   *ix = NULL;
    json_object            *root = NULL;
    char                   *err = NULL;
    int                     rc = -1;

    *cause = NULL;
    if (jsonpos_parse(src->path, &src->t, &ix, &root, cause) != 0)
        return -1;
    config_init(&tmp);
    tmp.parse_flags = flags;
    if (config_keys_read(config_keys, nitems(config_keys), &tmp, root, "",
        NULL, &err) != 0) {
        jsonpos_locate(cause, src->path, &src->t, ix, err);
        config_free(&tmp);
        goto out;
    }
    if (tmp.routes.n == 0 && config_default_routes(&tmp) != 0) {
        config_keys_fail(cause, src->path, "out of memory");
        config_free(&tmp);
        goto out;
    }
    config_free(c);
    *c = tmp;
    rc = 0;
out:
    json_object_put(root);
    jsonpos_index_free(ix);
    return rc;
}
