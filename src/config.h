/* SPDX-License-Identifier: MIT */
/*
 * config.h - the server's configuration: one JSON file read with json-c
 * (comments and trailing commas allowed), every key with a default, so
 * the server also runs with no file at all.
 *
 * Keys are described by const tables of struct config_key; the same
 * tables fill a route's handler options, and a handler's builder (see
 * config_route_build_cb) may use config_route_options() with a table of
 * its own.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "router.h"

/* Bounds and defaults of the top-level keys. */
#define CONFIG_WORKERS_MAX          4096
#define CONFIG_MS_MAX               86400000L       /* one day */
#define CONFIG_BODY_MAX             (1L << 40)      /* 1 TiB */
#define CONFIG_STACK_KB_MIN         64
#define CONFIG_STACK_KB_MAX         65536
#define CONFIG_PROBE_MS_MIN         10
#define CONFIG_PROBE_MS_MAX         60000
#define CONFIG_PARAMS_MAX           (64L << 20)
#define CONFIG_FILE_MAX             (16L << 20)     /* larger files: error */

struct config {
    char           *listen;         /* NULL: an inherited socket */
    mode_t          socket_mode;    /* of a unix socket we bind; 0660 */
    char           *socket_group;   /* NULL: the process's group */
    long            workers;        /* 1..4096; 32 */
    long            grace_ms;       /* 0..86400000; 10000 */
    long            max_body_bytes; /* 0..1 TiB; 1048576 */
    long            read_timeout_ms;/* 0..86400000; 30000 */
    long            max_params_bytes;/* 1024..64 MiB; 1048576 */
    long            write_timeout_ms;/* 0..86400000; 60000 */
    long            worker_stack_kb;/* 64..65536; 1024 */
    int             log_level;      /* enum log_level; LOG_LEVEL_INFO */
    char           *access_log;     /* NULL: stderr; "off": none; a path */
    int             access_log_format;/* enum accesslog_format; default */
    char           *user;           /* NULL: stay who we are */
    char           *group;          /* NULL: the user's group */
    char          **allowed_clients;/* NULL-terminated IP addresses, or NULL */
    struct router   routes;         /* in order; the first match wins */
};

/* Fill c with the defaults and no routes; config_free() it later. */
void    config_init(struct config *c);

/*
 * Read the file at path into c, which config_init() or config_load() filled
 * before.  Keys the file does not set take their
 * defaults (not the values c had before); without a "routes" key, c gets
 * the default routes.  Return 0 on success: c's old contents are freed
 * and replaced.  Return -1 with *cause set (caller frees; NULL only if
 * memory ran out) and c unchanged.  *cause reads
 *   FILE: No such file or directory          (the file cannot be read)
 *   FILE:LINE:COL: what is wrong             (a syntax error)
 *   FILE:LINE:COL: KEY.PATH: what is wrong   (a bad value, a bad key)
 *   FILE: KEY.PATH: what is wrong            (the same, key not located)
 * LINE and COL count from 1; COL counts characters (UTF-8 code points).
 * A bad key or value is located at its key (an array element at its
 * first character), a missing key at the object it is missing from.
 */
int     config_load(struct config *c, const char *path, char **cause);

/*
 * config_load() in two steps, for a file parsed more than once (main.c
 * parses it again, without root, to load modules): read the file (NULL
 * with *cause set on failure), then parse it as config_load() does.
 */
struct config_source;
struct config_source *config_read(const char *path, char **cause);
int     config_parse(struct config *c, const struct config_source *src,
            char **cause);
void    config_source_free(struct config_source *src);

/*
 * Append the default routes (the recipe's three, /status, /ping) to c,
 * for a config that has none.  Return 0, or -1 if memory ran out.
 */
int     config_default_routes(struct config *c);

/* Free what c holds; c is left empty (config_init() it to reuse it). */
void    config_free(struct config *c);

/*
 * Check the syntax of a listen address, "unix:/ABSOLUTE/PATH" or
 * "tcp:HOST:PORT" (HOST may be "[v6 address]"), without binding or
 * resolving anything.  Return 0, or -1 with *cause set (caller frees) to
 * what is wrong, without the address itself.
 */
int     config_check_listen(const char *spec, char **cause);

/*
 * Check what no single key can: a TCP listen address that is not loopback
 * needs allowed_clients; every allowed client is an IP address.  Call it on
 * the final configuration (file and options).  Return 0, or -1 with *cause
 * set (caller frees).
 */
int     config_check_access(const struct config *c, char **cause);

/* ---- key tables, for this module and for route builders ------------ */

enum config_type {
    CONFIG_INT,         /* long, a JSON integer in [min, max] */
    CONFIG_STRING,      /* char *, owned; check() may refuse the value */
    CONFIG_ENUM,        /* int: the index of the JSON string in names */
    CONFIG_MODE,        /* mode_t, a JSON string of octal digits <= max */
    CONFIG_STRV,        /* char **, NULL-terminated, owned: an array of
                           strings with min..max elements (max 0: any) */
    CONFIG_CUSTOM,      /* set() reads the JSON value itself */
    CONFIG_TYPE__MAX
};

/*
 * The checker of a CONFIG_STRING.  Return 0, or -1 with *why set to what is
 * wrong (caller frees).
 */
typedef int (*config_check_cb)(const char *value, char **why);

/*
 * The reader of a CONFIG_CUSTOM key: store what v says into base.  Return
 * 0, or -1 with *cause set to "PATH: what is wrong" (caller frees), where
 * PATH is path or a path below it (path "[1]", path ".x").
 */
typedef int (*config_set_cb)(void *base, json_object *v, const char *path,
    char **cause);

/* One key: its name, its type, where it goes in the struct it fills. */
struct config_key {
    const char         *name;
    enum config_type    type;
    size_t              offset;     /* offsetof() the field in base */
    long                min;        /* CONFIG_INT; CONFIG_STRV: elements */
    long                max;        /* CONFIG_INT, CONFIG_MODE, CONFIG_STRV */
    long                def;        /* CONFIG_INT, CONFIG_ENUM, CONFIG_MODE */
    const char         *def_str;    /* CONFIG_STRING; copied, may be NULL */
    const char *const  *names;      /* CONFIG_ENUM; NULL-terminated */
    int                 nullable;   /* CONFIG_STRING: null stores NULL */
    config_check_cb     check;      /* CONFIG_STRING; NULL: any string */
    config_set_cb       set;        /* CONFIG_CUSTOM */
};

/*
 * Store the default of each key into base (CONFIG_CUSTOM keys are left
 * alone).  Return 0, or -1 if memory ran out copying a def_str.
 */
int     config_keys_defaults(const struct config_key *keys, size_t n,
            void *base);

/* Free the strings and string vectors that the keys stored in base. */
void    config_keys_free(const struct config_key *keys, size_t n,
            void *base);

/* Return 1 if name is one of the keys that config.c reads in every route
 * ("path", "methods", "handler", "deadline_ms", "probe_ms"), else 0. */
int     config_route_common_key(const char *name);

/*
 * For a route builder: read every member of route_obj that is not a
 * common route key with keys into base; a member that keys does not name
 * is an error ("WHERE.KEY: unknown key").  Return 0, or -1 with *cause set
 * (caller frees) to "WHERE.KEY: what is wrong".  What was stored before an
 * error stays in base, for config_keys_free().
 */
int     config_route_options(const struct config_key *keys, size_t n,
            void *base, json_object *route_obj, const char *where,
            char **cause);

/*
 * A handler's builder, called by config_load() for each route with that
 * handler, after the common keys are checked and the route is added with
 * its path, methods, deadline_ms and probe_ms.  It reads (and checks) the
 * other keys of route_obj, rejects the keys it does not know, and sets
 * rt->fn, rt->data and rt->data_free.  where is the route's place in the
 * file, e.g. "routes[2]".  Return 0, or -1 with *cause set (caller frees)
 * to "WHERE.KEY: what is wrong" or "WHERE: what is wrong": config_load()
 * puts the file name (and the line and column of WHERE.KEY) in front.
 */
typedef int (*config_route_build_cb)(struct route *rt, json_object *route_obj,
    const char *where, char **cause);

#endif /* CONFIG_H */
