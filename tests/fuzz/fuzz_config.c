/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config.c - libFuzzer target for config_load(), the JSON
 * configuration reader (json-c in its non-strict mode, plus the scanner of
 * config.c that locates keys for FILE:LINE:COL messages and finds
 * duplicates, the key tables, the route builders).
 *
 * config_load() takes a path: the input is written to a memfd and loaded
 * as /proc/self/fd/N.  Checked: the contract of config.h (0 and no cause,
 * or -1 with a cause naming the file and the config left as it was), the
 * bounds of every loaded key, that a loaded config loads again on top of
 * itself to the same values, and that the routes it builds can be matched.
 * Everything is freed: ASan's leak check is on.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "router.h"

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz_config: %s:%d: check failed: %s\n", \
        __FILE__, __LINE__, #cond); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;
static char memfd_path[64];

/* Put data in the memfd, replacing what it held. */
static void
memfd_fill(const uint8_t *data, size_t size)
{
    size_t  off = 0;
    ssize_t w;

    if (memfd < 0) {
        memfd = memfd_create("fuzz_config.json", MFD_CLOEXEC);
        CHECK(memfd >= 0);
        snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    }
    CHECK(ftruncate(memfd, 0) == 0);
    while (off < size) {
        w = pwrite(memfd, data + off, size - off, (off_t)off);
        CHECK(w > 0);
        off += (size_t)w;
    }
}

/* The loaded values are within their documented bounds. */
static void
check_bounds(const struct config *c)
{
    size_t i;

    CHECK(c->workers >= 1 && c->workers <= CONFIG_WORKERS_MAX);
    CHECK(c->grace_ms >= 0 && c->grace_ms <= CONFIG_MS_MAX);
    CHECK(c->max_body_bytes >= 0 && c->max_body_bytes <= CONFIG_BODY_MAX);
    CHECK(c->read_timeout_ms >= 0 && c->read_timeout_ms <= CONFIG_MS_MAX);
    CHECK(c->worker_stack_kb >= CONFIG_STACK_KB_MIN &&
        c->worker_stack_kb <= CONFIG_STACK_KB_MAX);
    CHECK(c->log_level >= 0 && c->log_level < LOG_LEVEL__MAX);
    CHECK((c->socket_mode & ~0777u) == 0);
    if (c->listen != NULL) {
        char *why = NULL;

        CHECK(config_check_listen(c->listen, &why) == 0 && why == NULL);
    }
    CHECK(c->routes.n > 0);
    for (i = 0; i < c->routes.n; i++) {
        const struct route *rt = &c->routes.routes[i];

        CHECK(rt->path != NULL && rt->path[0] == '/');
        CHECK(rt->fn != NULL && rt->handler_name != NULL);
        CHECK(rt->deadline_ms >= 0 && rt->deadline_ms <= CONFIG_MS_MAX);
        CHECK(rt->probe_ms == 0 || (rt->probe_ms >= CONFIG_PROBE_MS_MIN &&
            rt->probe_ms <= CONFIG_PROBE_MS_MAX));
    }
}

/* The same scalars and route table. */
static void
check_same(const struct config *a, const struct config *b)
{
    size_t i;

    CHECK(a->workers == b->workers && a->grace_ms == b->grace_ms &&
        a->max_body_bytes == b->max_body_bytes &&
        a->read_timeout_ms == b->read_timeout_ms &&
        a->worker_stack_kb == b->worker_stack_kb &&
        a->log_level == b->log_level && a->socket_mode == b->socket_mode);
    CHECK((a->listen == NULL) == (b->listen == NULL));
    CHECK(a->listen == NULL || strcmp(a->listen, b->listen) == 0);
    CHECK(a->routes.n == b->routes.n);
    for (i = 0; i < a->routes.n; i++) {
        CHECK(strcmp(a->routes.routes[i].path, b->routes.routes[i].path) ==
            0);
        CHECK(a->routes.routes[i].methods == b->routes.routes[i].methods);
    }
}

/* Every route matches its own path (or, for a prefix, a path below it). */
static void
check_match(const struct config *c)
{
    const struct route *rt;
    size_t              i;
    int                 status;
    char                path[4096];

    for (i = 0; i < c->routes.n; i++) {
        rt = &c->routes.routes[i];
        snprintf(path, sizeof path, "%s%s", rt->path, rt->prefix ? "x" : "");
        status = 0;
        if (router_match(&c->routes, path, "GET", &status) == NULL)
            CHECK(status == 404 || status == 405);
        if (router_match(&c->routes, path, "OPTIONS", &status) == NULL)
            CHECK(status == 404 || status == 405);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config   c, again;
    char           *cause = (char *)"unset";
    int             rc;

    log_level = LOG_LEVEL_ERROR;
    memfd_fill(data, size);

    config_init(&c);
    rc = config_load(&c, memfd_path, &cause);
    CHECK(rc == 0 || rc == -1);
    if (rc != 0) {
        /* Out of memory is the one case without a cause. */
        CHECK(cause != NULL);
        CHECK(strncmp(cause, memfd_path, strlen(memfd_path)) == 0);
        /* c is unchanged: still the defaults, no routes. */
        CHECK(c.routes.n == 0 && c.listen == NULL);
        free(cause);
        config_free(&c);
        return 0;
    }
    CHECK(cause == NULL);
    check_bounds(&c);
    check_match(&c);

    /* Load again on top of a loaded config: the old one is freed. */
    config_init(&again);
    CHECK(config_load(&again, memfd_path, &cause) == 0 && cause == NULL);
    CHECK(config_load(&again, memfd_path, &cause) == 0 && cause == NULL);
    check_same(&c, &again);
    config_free(&again);
    config_free(&c);
    return 0;
}
