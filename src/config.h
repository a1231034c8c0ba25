/* SPDX-License-Identifier: MIT */
/*
 * config.h - the server's configuration: one JSON file read with json-c
 * (comments and trailing commas allowed), every key with a default, so
 * the server also runs with no file at all.
 *
 * The keys are const tables of struct config_key (config_keys.h); the
 * text is read and located by jsonpos.h; each route is built by router.h
 * and the handler registry (handlers/handlers.h).
 */
#ifndef CONFIG_H
#define CONFIG_H

#include <stddef.h>
#include <sys/types.h>

#include "router.h"

/* Bounds and defaults of the top-level keys. */
#define CONFIG_WORKERS_MAX          16384
#define CONFIG_MS_MAX               86400000L       /* one day */
#define CONFIG_BODY_MAX             (1L << 40)      /* 1 TiB */
#define CONFIG_STACK_KB_MIN         64
#define CONFIG_STACK_KB_MAX         65536
#define CONFIG_PROBE_MS_MIN         10
#define CONFIG_PROBE_MS_MAX         60000
#define CONFIG_PARAMS_MAX           (64L << 20)
#define CONFIG_FILE_MAX             (16L << 20)     /* larger files: error */
#define CONFIG_CONNECTIONS_MAX      1000000

struct config {
    char           *listen;         /* NULL: an inherited socket */
    mode_t          socket_mode;    /* of a unix socket we bind; 0660 */
    char           *socket_group;   /* NULL: the process's group */
    long            workers;        /* 1..16384; 32 */
    long            grace_ms;       /* 0..86400000; 10000 */
    long            max_body_bytes; /* 0..1 TiB; 1048576 */
    long            read_timeout_ms;/* 0..86400000; 30000 */
    long            max_params_bytes;/* 1024..64 MiB; 1048576 */
    long            write_timeout_ms;/* 0..86400000; 60000 */
    long            worker_stack_kb;/* 64..65536; 1024 */
    int             log_level;      /* enum log_level; LOG_LEVEL_INFO */
    char           *access_log;     /* NULL: stderr; "off": none; a path */
    int             access_log_format;/* enum accesslog_format; default */
    long            slow_ms;        /* 0..86400000; 0 (off) */
    char           *user;           /* NULL: stay who we are */
    char           *group;          /* NULL: the user's group */
    char          **allowed_clients;/* NULL-terminated IP addresses, or NULL */
    long            max_connections;/* 1..1000000; 10000 */
    long            max_arriving_bytes;/* 0 (none)..1 TiB; 64 MiB */
    long            peer_timeout_ms;/* 0 (off)..86400000; 30000 */
    struct router   routes;         /* in order; the first match wins */
    unsigned        parse_flags;    /* the HANDLER_* flags config_parse()
                                       built the routes with */
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
 * parses it first with HANDLER_CHECK_ONLY, then again, without root, to
 * load modules): read the file (NULL with *cause set on failure), then
 * parse it as config_load() does, handing flags (HANDLER_* of
 * handlers/handlers.h; config_load() hands 0) to each route's builder.
 */
struct config_source;
struct config_source *config_read(const char *path, char **cause);
int     config_parse(struct config *c, const struct config_source *src,
            unsigned flags, char **cause);
void    config_source_free(struct config_source *src);

/*
 * Append the default routes (the recipe's three, /status, /ping) to c,
 * for a config that has none.  Return 0, or -1 if memory ran out.
 */
int     config_default_routes(struct config *c);

/* Free what c holds; c is left empty (config_init() it to reuse it). */
void    config_free(struct config *c);

/* What config_compare() calls for each top-level key that differs. */
typedef void (*config_change_cb)(void *arg, const char *key, int restart);

/*
 * Compare next, a configuration read again for a reload, with cur, the one
 * in force: call changed(arg, KEY, restart) for each top-level key, other
 * than "routes", whose value differs.  restart is 1 for a key that a
 * running server cannot change: listen, socket_mode, socket_group, user,
 * group, workers, worker_stack_kb (the socket is bound, the privileges
 * dropped, the threads started); next gets cur's value of those back, so
 * that it says what stays in force.  Return 0, or -1 if memory ran out.
 */
int     config_compare(struct config *next, const struct config *cur,
            config_change_cb changed, void *arg);

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

#endif /* CONFIG_H */
