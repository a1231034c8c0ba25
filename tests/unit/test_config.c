/* SPDX-License-Identifier: MIT */
/*
 * test_config.c - unit tests of the configuration loader (config.c): the
 * defaults, a full file with comments and trailing commas, the annotated
 * example in conf/, and every error with its exact message: syntax errors
 * with their line and column, unknown keys, wrong types, each number at
 * min-1 and max+1, bad enums, bad routes, a missing and an empty file.
 * Every file is written into a mkdtemp() directory; every config is freed
 * so that LeakSanitizer stays quiet.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "config.h"
#include "config_keys.h"
#include "handlers/handlers.h"
#include "handlers/work.h"
#include "log.h"
#include "router.h"
#include "metrics.h"
#include "status.h"
#include "unit.h"

static char dir[64];            /* the temporary directory */
static char file[128];          /* dir/c.json, the file under test */

/* ---- helpers ---------------------------------------------------------- */

static int
suite_init(void)
{
    strcpy(dir, "/tmp/test_config.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(file, sizeof file, "%s/c.json", dir);
    return 0;
}

static int
suite_clean(void)
{
    unlink(file);
    return rmdir(dir);
}

/* Write len bytes of text to the file under test. */
static void
write_len(const char *text, size_t len)
{
    FILE *f = fopen(file, "w");

    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(text, 1, len, f), len);
    CU_ASSERT_EQUAL(fclose(f), 0);
}

/* Compare two strings; say both when they differ. */
#define CHECK_STR(got, want) check_str(got, want, __FILE__, __LINE__)

static void
check_str(const char *got, const char *want, const char *where, int line)
{
    int ok = got != NULL && strcmp(got, want) == 0;

    if (!ok)
        fprintf(stderr, "\n%s:%d:\n  got  [%s]\n  want [%s]\n", where, line,
            got != NULL ? got : "(null)", want);
    CU_assertImplementation(ok, (unsigned)line, "strings differ", where, "",
        CU_FALSE);
}

/* Load text into c (config_init()'ed here); return what config_load did. */
static int
load_text(const char *text, struct config *c, char **cause)
{
    write_len(text, strlen(text));
    config_init(c);
    *cause = NULL;
    return config_load(c, file, cause);
}

/* text must load; c is filled (caller frees). */
#define LOAD_OK(text, c) load_ok(text, c, __LINE__)

static void
load_ok(const char *text, struct config *c, int line)
{
    char *cause;

    if (load_text(text, c, &cause) != 0)
        fprintf(stderr, "\ntest_config.c:%d: %s\n", line, cause);
    CU_assertImplementation(cause == NULL, (unsigned)line, "load failed",
        __FILE__, "", CU_FALSE);
    free(cause);
}

/*
 * Write len bytes, load them into a config set to something else first,
 * and check the message: FILE followed by suffix.  The config must be left
 * as it was.
 */
#define ERR_LEN(text, len, suffix) err_len(text, len, suffix, __LINE__)
#define ERR(text, suffix) err_len(text, strlen(text), suffix, __LINE__)

static void
err_len(const char *text, size_t len, const char *suffix, int line)
{
    struct config   c;
    char           *cause = NULL, want[1024];

    write_len(text, len);
    config_init(&c);
    c.workers = 7;
    CU_assertImplementation(config_load(&c, file, &cause) == -1,
        (unsigned)line, "config_load() did not fail", __FILE__, "", CU_FALSE);
    snprintf(want, sizeof want, "%s%s", file, suffix);
    check_str(cause, want, __FILE__, line);
    CU_ASSERT_EQUAL(c.workers, 7);
    CU_ASSERT_EQUAL(c.routes.n, 0);
    free(cause);
    config_free(&c);
}

/*
 * The same for a semantic error: msg is expected at the line and column of
 * the first occurrence of anchor in text (ASCII text, one byte a column).
 */
#define ERR_AT(text, anchor, msg) err_at(text, anchor, msg, __LINE__)

static void
err_at(const char *text, const char *anchor, const char *msg, int line)
{
    const char *a = strstr(text, anchor), *p;
    char        suffix[1024];
    unsigned    l = 1, col = 1;

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    for (p = text; p < a; p++) {
        if (*p == '\n') {
            l++;
            col = 1;
        } else {
            col++;
        }
    }
    snprintf(suffix, sizeof suffix, ":%u:%u: %s", l, col, msg);
    err_len(text, strlen(text), suffix, line);
}

/* Wrap one route object in a config. */
static char *
one_route(const char *route)
{
    char *s;

    CU_ASSERT_FATAL(asprintf(&s, "{\"routes\": [%s]}", route) > 0);
    return s;
}

/* ---- defaults --------------------------------------------------------- */

static void
check_defaults(const struct config *c)
{
    CU_ASSERT_PTR_NULL(c->listen);
    CU_ASSERT_EQUAL(c->socket_mode, 0660);
    CU_ASSERT_PTR_NULL(c->socket_group);
    CU_ASSERT_EQUAL(c->workers, 32);
    CU_ASSERT_EQUAL(c->grace_ms, 10000);
    CU_ASSERT_EQUAL(c->max_body_bytes, 1048576);
    CU_ASSERT_EQUAL(c->read_timeout_ms, 30000);
    CU_ASSERT_EQUAL(c->max_connections, 10000);
    CU_ASSERT_EQUAL(c->max_arriving_bytes, 64L << 20);
    CU_ASSERT_EQUAL(c->peer_timeout_ms, 30000);
    CU_ASSERT_EQUAL(c->worker_stack_kb, 1024);
    CU_ASSERT_EQUAL(c->log_level, LOG_LEVEL_INFO);
    CU_ASSERT_PTR_NULL(c->access_log);
    CU_ASSERT_EQUAL(c->slow_ms, 0);
}

/* Check that the first six routes of c are the default ones. */
static void
check_default_routes(const struct config *c)
{
    static const struct {
        const char     *path;
        unsigned        methods;
        const char     *handler;
        enum work_style style;
        const char     *task_param;
    } want[] = {
        { "/cancel_tg", METHOD_GET | METHOD_HEAD, "work", WORK_POLL,
            "default_for_cancel_tg" },
        { "/cancel_tg_dependency", METHOD_GET | METHOD_HEAD, "work",
            WORK_CALLBACK, "default_for_cancel_tg_dependency" },
        { "/cancel_event", METHOD_GET | METHOD_HEAD, "work", WORK_WAIT,
            "default_for_cancel_tg_dependency" },
        { "/status", METHOD_GET | METHOD_HEAD, "status", 0, NULL },
        { "/ping", 0, "ping", 0, NULL },
        { "/metrics", METHOD_GET | METHOD_HEAD, "metrics", 0, NULL },
    };
    size_t i;

    CU_ASSERT_FATAL(c->routes.n >= 6);
    for (i = 0; i < 6; i++) {
        const struct route *rt = &c->routes.routes[i];

        CHECK_STR(rt->path, want[i].path);
        CU_ASSERT_EQUAL(rt->prefix, 0);
        CU_ASSERT_EQUAL(rt->methods, want[i].methods);
        CHECK_STR(rt->handler_name, want[i].handler);
        CU_ASSERT_EQUAL(rt->deadline_ms, 0);
        CU_ASSERT_EQUAL(rt->probe_ms, 0);
        CU_ASSERT_EQUAL(rt->slow_ms, -1);
        if (want[i].task_param != NULL) {
            const struct work_opts *o = rt->data;

            CU_ASSERT_PTR_EQUAL(rt->fn, work_handler);
            CU_ASSERT_PTR_NOT_NULL_FATAL(o);
            CU_ASSERT_EQUAL(o->style, want[i].style);
            CHECK_STR(o->task_param, want[i].task_param);
            CU_ASSERT_EQUAL(o->steps, 5);
            CU_ASSERT_EQUAL(o->step_ms, 1000);
            CU_ASSERT_EQUAL(o->mode, WORK_SLEEP);
        }
    }
    CU_ASSERT_PTR_EQUAL(c->routes.routes[3].fn, status_handler);
    CU_ASSERT_PTR_EQUAL(c->routes.routes[4].fn, ping_handler);
    CU_ASSERT_PTR_EQUAL(c->routes.routes[5].fn, metrics_handler);
}

static void
test_defaults(void)
{
    struct config c;

    config_init(&c);
    check_defaults(&c);
    CU_ASSERT_EQUAL(c.routes.n, 0);
    CU_ASSERT_EQUAL(config_default_routes(&c), 0);
    CU_ASSERT_EQUAL(c.routes.n, 6);
    check_default_routes(&c);
    config_free(&c);
    CU_ASSERT_EQUAL(c.routes.n, 0);
    config_free(&c);            /* freeing twice is harmless */
}

/* A file without "routes" gets the default routes, an empty object too. */
static void
test_no_routes_key(void)
{
    struct config c;

    LOAD_OK("{\"workers\": 4}", &c);
    CU_ASSERT_EQUAL(c.workers, 4);
    CU_ASSERT_EQUAL(c.routes.n, 6);
    check_default_routes(&c);
    config_free(&c);

    LOAD_OK("{}", &c);
    check_defaults(&c);
    CU_ASSERT_EQUAL(c.routes.n, 6);
    config_free(&c);
}

/* ---- a full valid file ------------------------------------------------ */

static const char full[] =
    "\xef\xbb\xbf// A full configuration.\n"
    "{\n"
    "    /* where */\n"
    "    \"listen\": \"unix:/run/fcgi-cancel/fc.sock\",\n"
    "    \"socket_mode\": \"0600\",\n"
    "    \"socket_group\": \"www-data\",\n"
    "    \"workers\": 16384,       // max\n"
    "    \"grace_ms\": 0,\n"
    "    \"max_body_bytes\": 1099511627776,\n"
    "    \"read_timeout_ms\": 86400000,\n"
    "    \"worker_stack_kb\": 64,\n"
    "    \"log_level\": \"debug\",\n"
    "    \"access_log\": \"/var/log/fcgi-cancel/access.log\",\n"
    "    \"slow_ms\": 2500,\n"
    "    \"routes\": [\n"
    "        { \"path\": \"/jobs/*\", \"methods\": [\"POST\", \"PUT\",],\n"
    "          \"handler\": \"work\", \"style\": \"wait\",\n"
    "          \"task_param\": \"t\", \"steps\": 1000, \"step_ms\": 0,\n"
    "          \"mode\": \"cpu\", \"deadline_ms\": 86400000,\n"
    "          \"probe_ms\": 10, },\n"
    "        { 'path': '/s', 'handler': 'status', 'probe_ms': 60000,\n"
    "          'slow_ms': 0 },\n"
    "        { \"path\": \"/p\", \"handler\": \"ping\", \"deadline_ms\": 1,\n"
    "          \"methods\": [\"GET\", \"HEAD\", \"POST\", \"PUT\","
    " \"DELETE\", \"PATCH\", \"OPTIONS\"] },\n"
    "        { \"path\": \"/w\", \"handler\": \"work\" },\n"
    "    ],\n"
    "} // no newline after this comment";

static void
test_full_file(void)
{
    struct config           c;
    const struct route     *rt;
    const struct work_opts *o;

    LOAD_OK(full, &c);
    CHECK_STR(c.listen, "unix:/run/fcgi-cancel/fc.sock");
    CU_ASSERT_EQUAL(c.socket_mode, 0600);
    CHECK_STR(c.socket_group, "www-data");
    CU_ASSERT_EQUAL(c.workers, 16384);
    CU_ASSERT_EQUAL(c.grace_ms, 0);
    CU_ASSERT_EQUAL(c.max_body_bytes, 1L << 40);
    CU_ASSERT_EQUAL(c.read_timeout_ms, 86400000);
    CU_ASSERT_EQUAL(c.worker_stack_kb, 64);
    CU_ASSERT_EQUAL(c.log_level, LOG_LEVEL_DEBUG);
    CHECK_STR(c.access_log, "/var/log/fcgi-cancel/access.log");
    CU_ASSERT_EQUAL(c.slow_ms, 2500);
    CU_ASSERT_EQUAL_FATAL(c.routes.n, 4);

    rt = &c.routes.routes[0];
    CHECK_STR(rt->path, "/jobs/");
    CHECK_STR(rt->name, "/jobs/*");
    CU_ASSERT_EQUAL(rt->prefix, 1);
    CU_ASSERT_EQUAL(rt->methods, METHOD_POST | METHOD_PUT);
    CHECK_STR(rt->handler_name, "work");
    CU_ASSERT_PTR_EQUAL(rt->fn, work_handler);
    CU_ASSERT_EQUAL(rt->deadline_ms, 86400000);
    CU_ASSERT_EQUAL(rt->probe_ms, 10);
    CU_ASSERT_EQUAL(rt->slow_ms, -1);           /* the server's */
    o = rt->data;
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(o->style, WORK_WAIT);
    CHECK_STR(o->task_param, "t");
    CU_ASSERT_EQUAL(o->steps, 1000);
    CU_ASSERT_EQUAL(o->step_ms, 0);
    CU_ASSERT_EQUAL(o->mode, WORK_CPU);

    rt = &c.routes.routes[1];
    CHECK_STR(rt->path, "/s");
    CU_ASSERT_EQUAL(rt->methods, 0);
    CU_ASSERT_PTR_EQUAL(rt->fn, status_handler);
    CU_ASSERT_EQUAL(rt->probe_ms, 60000);
    CU_ASSERT_EQUAL(rt->deadline_ms, 0);
    CU_ASSERT_EQUAL(rt->slow_ms, 0);            /* off, not the 2500 */

    rt = &c.routes.routes[2];
    CU_ASSERT_PTR_EQUAL(rt->fn, ping_handler);
    CU_ASSERT_EQUAL(rt->deadline_ms, 1);
    CU_ASSERT_EQUAL(rt->methods, METHOD_GET | METHOD_HEAD | METHOD_POST |
        METHOD_PUT | METHOD_DELETE | METHOD_PATCH | METHOD_OPTIONS);

    /* A work route with no options: the handler's defaults. */
    rt = &c.routes.routes[3];
    o = rt->data;
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_EQUAL(o->style, WORK_POLL);
    CHECK_STR(o->task_param, "default");
    CU_ASSERT_EQUAL(o->steps, 5);
    CU_ASSERT_EQUAL(o->step_ms, 1000);
    CU_ASSERT_EQUAL(o->mode, WORK_SLEEP);
    config_free(&c);
}

/* null stores NULL for the keys whose default is NULL; CRLF is fine. */
static void
test_nulls_and_crlf(void)
{
    struct config c;

    LOAD_OK("{\r\n\"listen\": null,\r\n\"socket_group\": null,\r\n"
        "\"access_log\": \"off\",\r\n}\r\n", &c);
    CU_ASSERT_PTR_NULL(c.listen);
    CU_ASSERT_PTR_NULL(c.socket_group);
    CHECK_STR(c.access_log, "off");
    config_free(&c);
}

/* The annotated example is the default configuration plus /report. */
static void
test_example_conf(void)
{
    struct config       c;
    const char         *top = getenv("top_srcdir");
    char                path[4096], *cause = NULL;
    const struct route *rt;

    snprintf(path, sizeof path, "%s/conf/fcgi-cancel.json",
        top != NULL ? top : ".");
    config_init(&c);
    if (config_load(&c, path, &cause) != 0)
        fprintf(stderr, "\n%s\n", cause);
    CU_ASSERT_PTR_NULL_FATAL(cause);
    check_defaults(&c);
    CU_ASSERT_EQUAL_FATAL(c.routes.n, 8);
    check_default_routes(&c);
    rt = &c.routes.routes[6];
    CHECK_STR(rt->path, "/report");
    CHECK_STR(rt->handler_name, "exec");
    CU_ASSERT_EQUAL(rt->methods, 0);
    CU_ASSERT_EQUAL(rt->deadline_ms, 30000);
    CU_ASSERT_PTR_NOT_NULL(rt->fn);
    rt = &c.routes.routes[7];
    CHECK_STR(rt->path, "/items");
    CHECK_STR(rt->handler_name, "sql");
    CU_ASSERT_EQUAL(rt->deadline_ms, 10000);
    CU_ASSERT_PTR_NOT_NULL(rt->fn);
    config_free(&c);
}

/* A failed load leaves the config as it was; a good one replaces it. */
static void
test_reload(void)
{
    struct config   c;
    char           *cause = NULL;

    LOAD_OK("{\"workers\": 3, \"listen\": \"tcp:127.0.0.1:9000\"}", &c);
    write_len("{\"workers\": 0}", 14);
    CU_ASSERT_EQUAL(config_load(&c, file, &cause), -1);
    free(cause);
    CU_ASSERT_EQUAL(c.workers, 3);
    CHECK_STR(c.listen, "tcp:127.0.0.1:9000");
    CU_ASSERT_EQUAL(c.routes.n, 6);
    write_len("{\"grace_ms\": 5}", 15);
    CU_ASSERT_EQUAL(config_load(&c, file, &cause), 0);
    CU_ASSERT_EQUAL(c.workers, 32);         /* back to its default */
    CU_ASSERT_EQUAL(c.grace_ms, 5);
    CU_ASSERT_PTR_NULL(c.listen);
    CU_ASSERT_EQUAL(c.routes.n, 6);
    config_free(&c);
}

/* ---- files and syntax ------------------------------------------------- */

static void
test_missing_file(void)
{
    struct config   c;
    char           *cause = NULL, want[256];

    config_init(&c);
    snprintf(want, sizeof want, "%s/none.json", dir);
    CU_ASSERT_EQUAL(config_load(&c, want, &cause), -1);
    strcat(want, ": No such file or directory");
    CHECK_STR(cause, want);
    free(cause);
    cause = NULL;
    CU_ASSERT_EQUAL(config_load(&c, dir, &cause), -1);
    snprintf(want, sizeof want, "%s: Is a directory", dir);
    CHECK_STR(cause, want);
    free(cause);
    config_free(&c);
}

static void
test_empty_file(void)
{
    ERR("", ": empty file (write {} for the defaults)");
    ERR(" \n\t\n", ": empty file (write {} for the defaults)");
    ERR("// nothing\n/* at all */", ": empty file (write {} for the "
        "defaults)");
}

static void
test_syntax_errors(void)
{
    /* The missing comma: at the next key, line 3 column 5. */
    ERR("{\n    \"workers\": 4\n    \"grace_ms\": 5\n}\n",
        ":3:5: expected ',' or '}' after a value");
    ERR("{\"workers\" 4}", ":1:12: expected ':' after the key");
    ERR("{workers: 4}", ":1:2: expected a quoted key");
    ERR("{\"workers\": 4,, }", ":1:15: expected a quoted key");
    ERR("{\n  \"workers\": @\n}", ":2:14: unexpected character '@'");
    ERR("{\"routes\": [{} {}]}", ":1:16: expected ',' or ']' after an "
        "array element");
    ERR("{\"routes\": [1,,2]}", ":1:15: unexpected character ','");
    ERR("{\"workers\": tru }", ":1:16: expected true or false");
    ERR("{\"workers\": nul }", ":1:16: expected null");
    ERR("{\"workers\": -}", ":1:14: invalid number");
    ERR("{\"listen\": \"a\\qb\"}", ":1:15: invalid escape in a string");
    ERR("{\"workers\": 1 / 2}", ":1:16: expected a comment after '/'");
    ERR("{\"listen\": \"\xff\"}", ":1:13: invalid UTF-8 in a string");
    /* Columns count characters: the e-acute is one, the tab is one. */
    ERR("{\"socket_group\": \"\xc3\xa9\"\t x}",
        ":1:23: expected ',' or '}' after a value");
    /* A byte order mark is not a column. */
    ERR("\xef\xbb\xbf{x}", ":1:2: expected a quoted key");
    ERR("\n\n  ]", ":3:3: unexpected character ']'");
}

static void
test_unterminated(void)
{
    ERR("{\n  \"listen\": \"unix:/x\n}\n", ":2:13: unterminated string");
    ERR("{\n  \"workers\": 1 /* comment\n}\n",
        ":2:16: unterminated comment");
    ERR("{\n  \"workers\": 1\n", ":3:1: unexpected end of file: the '{' "
        "at 1:1 is not closed");
    ERR("{\"routes\": [\n  {\"path\": \"/x\"}",
        ":2:17: unexpected end of file: the '[' at 1:12 is not closed");
    ERR("{\"workers\":", ":1:12: unexpected end of file: the '{' at 1:1 "
        "is not closed");
    ERR("{} /* after", ":1:4: unterminated comment");
}

static void
test_nul_byte(void)
{
    ERR_LEN("{\n\"wor\0kers\": 1}", 16, ":2:5: NUL character in the file");
    ERR("{\"listen\": \"a\\u0000b\"}",
        ":1:2: listen: must not contain a NUL character");
}

/* Nesting beyond json-c's 32 levels, a file beyond 16 MiB. */
static void
test_limits(void)
{
    char    text[64], *big;
    size_t  n = (size_t)CONFIG_FILE_MAX + 1;

    snprintf(text, sizeof text, "{\"x\": %.40s", "[[[[[[[[[[[[[[[[[[[["
        "[[[[[[[[[[[[[[[[[[[[");
    /* The root is level 1: the 32nd '[' would be level 33. */
    ERR(text, ":1:38: nested too deep");
    big = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    ERR_LEN(big, n, ": larger than 16 MiB");
    free(big);
}

static void
test_top_level(void)
{
    ERR("{} x", ":1:4: unexpected text after the end of the top-level "
        "object");
    ERR("{}\n}", ":2:1: unexpected text after the end of the top-level "
        "object");
    ERR("{} // fine\n{}", ":2:1: unexpected text after the end of the "
        "top-level object");
    ERR("  [1]", ":1:3: the top level must be an object: { ... }");
    ERR("\"x\"", ":1:1: the top level must be an object: { ... }");
    ERR("5", ":1:1: the top level must be an object: { ... }");
    ERR("{\"workers\": 1,\n \"workers\": 2}",
        ":2:2: workers: duplicate key (also at 1:2)");
    ERR("{\"routes\": [{\"path\": \"/a\", \"handler\": \"ping\",\n"
        "  \"path\": \"/b\"}]}",
        ":2:3: routes[0].path: duplicate key (also at 1:14)");
    /* The same key spelt another way is the same key to json-c. */
    ERR("{\"workers\": 1,\n \"w\\u006frkers\": 4096}",
        ":2:2: workers: duplicate key (also at 1:2)");
    ERR("{\"workers\": 1,\n 'workers': 4096}",
        ":2:2: workers: duplicate key (also at 1:2)");
}

/* ---- keys and values ------------------------------------------------- */

static void
test_unknown_keys(void)
{
    char *s;

    ERR("{\"foo\": 1}", ":1:2: foo: unknown key");
    ERR("{\n  \"workers\": 2,\n  \"Workers\": 2\n}",
        ":3:3: Workers: unknown key");
    s = one_route("{\"path\": \"/x\", \"handler\": \"work\", \"foo\": 1}");
    ERR_AT(s, "\"foo\"", "routes[0].foo: unknown key");
    free(s);
    /* A work option on a status route. */
    s = one_route("{\"path\": \"/x\", \"handler\": \"status\", \"steps\": 1}");
    ERR_AT(s, "\"steps\"", "routes[0].steps: unknown key");
    free(s);
    s = one_route("{\"path\": \"/x\", \"handler\": \"ping\", \"argv\": []}");
    ERR_AT(s, "\"argv\"", "routes[0].argv: unknown key");
    free(s);
    /* Odd key names are escaped and still located. */
    ERR("{\"a b\": 1}", ":1:2: a b: unknown key");
    ERR("{\"\": 1}", ":1:2: \"\": unknown key");
}

static void
test_wrong_types(void)
{
    static const struct {
        const char *text, *anchor, *msg;
    } t[] = {
        { "{\"workers\": \"32\"}", "\"workers\"",
            "workers: must be an integer" },
        { "{\"workers\": 1.5}", "\"workers\"",
            "workers: must be an integer" },
        { "{\"workers\": 1e3}", "\"workers\"",
            "workers: must be an integer" },
        { "{\"workers\": true}", "\"workers\"",
            "workers: must be an integer" },
        { "{\"workers\": null}", "\"workers\"",
            "workers: must be an integer" },
        { "{\"grace_ms\": [1]}", "\"grace_ms\"",
            "grace_ms: must be an integer" },
        { "{\"listen\": 5}", "\"listen\"",
            "listen: must be a string or null" },
        { "{\"socket_group\": {}}", "\"socket_group\"",
            "socket_group: must be a string or null" },
        { "{\"access_log\": false}", "\"access_log\"",
            "access_log: must be a string or null" },
        { "{\"log_level\": 3}", "\"log_level\"",
            "log_level: must be a string" },
        { "{\"routes\": {}}", "\"routes\"",
            "routes: must be an array of routes" },
        { "{\"routes\": [5]}", "5", "routes[0]: must be an object" },
        { "{\"routes\": [{\"path\": \"/\", \"handler\": \"ping\"}, []]}",
            "[]", "routes[1]: must be an object" },
        { "{\"routes\": [{\"path\": 5, \"handler\": \"ping\"}]}",
            "\"path\"", "routes[0].path: must be a string" },
        { "{\"routes\": [{\"path\": \"/\", \"handler\": [\"ping\"]}]}",
            "\"handler\"", "routes[0].handler: must be a string" },
        { "{\"routes\": [{\"path\": \"/\", \"handler\": \"ping\", "
            "\"methods\": \"GET\"}]}", "\"methods\"",
            "routes[0].methods: must be an array of methods" },
        { "{\"routes\": [{\"path\": \"/\", \"handler\": \"ping\", "
            "\"deadline_ms\": \"5\"}]}", "\"deadline_ms\"",
            "routes[0].deadline_ms: must be an integer" },
        { "{\"routes\": [{\"path\": \"/\", \"handler\": \"work\", "
            "\"task_param\": 5}]}", "\"task_param\"",
            "routes[0].task_param: must be a string" },
        { "{\"routes\": [{\"path\": \"/\", \"handler\": \"work\", "
            "\"steps\": 2.0}]}", "\"steps\"",
            "routes[0].steps: must be an integer" },
        { "{\"routes\": [{\"path\": \"/\", \"handler\": \"work\", "
            "\"style\": 1}]}", "\"style\"",
            "routes[0].style: must be a string" },
    };
    size_t i;

    for (i = 0; i < sizeof t / sizeof t[0]; i++)
        ERR_AT(t[i].text, t[i].anchor, t[i].msg);
}

/* Every number at min-1 and max+1 fails, at min and max it loads. */
static void
test_ranges(void)
{
    static const struct {
        const char *key;
        long        min, max;
        int         route;      /* 0: top level, 1: a work route */
    } t[] = {
        { "workers", 1, 16384, 0 },
        { "grace_ms", 0, 86400000, 0 },
        { "max_body_bytes", 0, 1099511627776L, 0 },
        { "read_timeout_ms", 0, 86400000, 0 },
        { "max_connections", 1, 1000000, 0 },
        { "max_arriving_bytes", 0, 1099511627776L, 0 },
        { "peer_timeout_ms", 0, 86400000, 0 },
        { "worker_stack_kb", 64, 65536, 0 },
        { "deadline_ms", 1, 86400000, 1 },
        { "probe_ms", 10, 60000, 1 },
        { "slow_ms", 0, 86400000, 0 },
        { "slow_ms", 0, 86400000, 1 },
        { "steps", 0, 1000, 1 },
        { "step_ms", 0, 600000, 1 },
    };
    struct config   c;
    char            text[256], anchor[64], msg[128];
    long            v[4];
    size_t          i, j;

    for (i = 0; i < sizeof t / sizeof t[0]; i++) {
        v[0] = t[i].min - 1;
        v[1] = t[i].max + 1;
        v[2] = t[i].min;
        v[3] = t[i].max;
        snprintf(anchor, sizeof anchor, "\"%s\"", t[i].key);
        for (j = 0; j < 4; j++) {
            if (t[i].route)
                snprintf(text, sizeof text, "{\"routes\": [{\"path\": "
                    "\"/x\", \"handler\": \"work\", \"%s\": %ld}]}",
                    t[i].key, v[j]);
            else
                snprintf(text, sizeof text, "{\"%s\": %ld}", t[i].key, v[j]);
            snprintf(msg, sizeof msg, "%s%s: must be %ld..%ld",
                t[i].route ? "routes[0]." : "", t[i].key, t[i].min,
                t[i].max);
            if (j < 2) {
                ERR_AT(text, anchor, msg);
            } else {
                LOAD_OK(text, &c);
                config_free(&c);
            }
        }
    }
    /* Beyond 64 bits json-c saturates; still out of range. */
    ERR("{\"workers\": 99999999999999999999}",
        ":1:2: workers: must be 1..16384");
    ERR("{\"grace_ms\": -99999999999999999999}",
        ":1:2: grace_ms: must be 0..86400000");
    ERR("{\"max_body_bytes\": 9223372036854775807}",
        ":1:2: max_body_bytes: must be 0..1099511627776");
}

static void
test_enums(void)
{
    struct config   c;
    char           *s;

    ERR("{\"log_level\": \"verbose\"}",
        ":1:2: log_level: must be error, warn, info or debug");
    ERR("{\"log_level\": \"INFO\"}",
        ":1:2: log_level: must be error, warn, info or debug");
    LOAD_OK("{\"log_level\": \"error\"}", &c);
    CU_ASSERT_EQUAL(c.log_level, LOG_LEVEL_ERROR);
    config_free(&c);
    LOAD_OK("{\"log_level\": \"warn\"}", &c);
    CU_ASSERT_EQUAL(c.log_level, LOG_LEVEL_WARN);
    config_free(&c);

    s = one_route("{\"path\": \"/x\", \"handler\": \"work\", "
        "\"style\": \"fast\"}");
    ERR_AT(s, "\"style\"", "routes[0].style: must be poll, callback, wait or ignore");
    free(s);
    s = one_route("{\"path\": \"/x\", \"handler\": \"work\", "
        "\"mode\": \"gpu\"}");
    ERR_AT(s, "\"mode\"", "routes[0].mode: must be sleep or cpu");
    free(s);
    LOAD_OK("{\"routes\": [{\"path\": \"/x\", \"handler\": \"work\", "
        "\"style\": \"callback\", \"mode\": \"sleep\"}]}", &c);
    CU_ASSERT_EQUAL(((struct work_opts *)c.routes.routes[0].data)->style,
        WORK_CALLBACK);
    config_free(&c);
}

static void
test_socket_mode(void)
{
    static const char *const bad[] = {
        "660", "\"\"", "\"0888\"", "\"01000\"", "\"0660x\"", "\"-1\"",
        "\"0o660\"", "\"000000660\"", "null",
    };
    struct config   c;
    char            text[64];
    size_t          i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "{\"socket_mode\": %s}", bad[i]);
        ERR(text, ":1:2: socket_mode: must be a string of octal digits "
            "from \"0000\" to \"0777\"");
    }
    LOAD_OK("{\"socket_mode\": \"0777\"}", &c);
    CU_ASSERT_EQUAL(c.socket_mode, 0777);
    config_free(&c);
    LOAD_OK("{\"socket_mode\": \"0\"}", &c);
    CU_ASSERT_EQUAL(c.socket_mode, 0);
    config_free(&c);
    LOAD_OK("{\"socket_mode\": \"666\"}", &c);
    CU_ASSERT_EQUAL(c.socket_mode, 0666);
    config_free(&c);
}

static void
test_strings(void)
{
    ERR("{\"listen\": \"/tmp/s\"}",
        ":1:2: listen: must be unix:/PATH or tcp:HOST:PORT");
    ERR("{\"listen\": \"unix:run/s\"}",
        ":1:2: listen: the path of unix: must be absolute");
    ERR("{\"listen\": \"tcp:localhost\"}",
        ":1:2: listen: must be tcp:HOST:PORT");
    ERR("{\"listen\": \"tcp:localhost:http\"}",
        ":1:2: listen: the port must be 0..65535");
    ERR("{\"socket_group\": \"\"}", ":1:2: socket_group: must not be empty");
    ERR("{\"socket_group\": \"www data\"}",
        ":1:2: socket_group: must be a group name or number");
    ERR("{\"access_log\": \"access.log\"}",
        ":1:2: access_log: must be \"off\" or an absolute path");
    ERR("{\"access_log\": \"\"}",
        ":1:2: access_log: must be \"off\" or an absolute path");
}

/* ---- routes ----------------------------------------------------------- */

static void
test_route_errors(void)
{
    static const struct {
        const char *route, *anchor, *msg;
    } t[] = {
        { "{\"path\": \"x\", \"handler\": \"ping\"}", "\"path\"",
            "routes[0].path: must start with '/'" },
        { "{\"path\": \"\", \"handler\": \"ping\"}", "\"path\"",
            "routes[0].path: must start with '/'" },
        { "{\"path\": \"/a b\", \"handler\": \"ping\"}", "\"path\"",
            "routes[0].path: must not contain spaces or control "
            "characters" },
        { "{\"path\": \"/a?b=1\", \"handler\": \"ping\"}", "\"path\"",
            "routes[0].path: must not contain '?' or '#'" },
        { "{\"path\": \"/a*\", \"handler\": \"ping\"}", "\"path\"",
            "routes[0].path: may have '*' only at its end, after a '/' "
            "(\"/prefix/*\")" },
        { "{\"path\": \"/*/a\", \"handler\": \"ping\"}", "\"path\"",
            "routes[0].path: may have '*' only at its end, after a '/' "
            "(\"/prefix/*\")" },
        { "{\"handler\": \"ping\"}", "{\"handler",
            "routes[0]: missing key \"path\"" },
        { "{\"path\": \"/x\"}", "{\"path",
            "routes[0]: missing key \"handler\"" },
        { "{\"path\": \"/x\", \"handler\": \"cgi\"}", "\"handler\"",
            "routes[0].handler: must be work, exec, status, ping, "
            "metrics, module or sql" },
        { "{\"path\": \"/x\", \"handler\": \"module\"}", "{\"path",
            "routes[0]: missing key \"module\"" },
        { "{\"path\": \"/x\", \"handler\": \"ping\", \"methods\": []}",
            "\"methods\"", "routes[0].methods: must not be empty (leave it "
            "out to allow every method)" },
        { "{\"path\": \"/x\", \"handler\": \"ping\", "
            "\"methods\": [\"GET\", \"FETCH\"]}", "\"FETCH\"",
            "routes[0].methods[1]: must be GET, HEAD, POST, PUT, DELETE, "
            "PATCH or OPTIONS" },
        { "{\"path\": \"/x\", \"handler\": \"ping\", \"methods\": [\"get\"]}",
            "\"get\"", "routes[0].methods[0]: must be GET, HEAD, POST, "
            "PUT, DELETE, PATCH or OPTIONS" },
        { "{\"path\": \"/x\", \"handler\": \"ping\", \"methods\": [7]}",
            "7", "routes[0].methods[0]: must be GET, HEAD, POST, PUT, "
            "DELETE, PATCH or OPTIONS" },
    };
    char   *s;
    size_t  i;

    for (i = 0; i < sizeof t / sizeof t[0]; i++) {
        s = one_route(t[i].route);
        ERR_AT(s, t[i].anchor, t[i].msg);
        free(s);
    }
    ERR("{\"routes\": []}", ":1:2: routes: must not be empty");
}

/* The error is reported on the route it is in. */
static void
test_route_index(void)
{
    static const char text[] =
        "{\n"
        "  \"routes\": [\n"
        "    { \"path\": \"/a\", \"handler\": \"ping\" },\n"
        "    { \"path\": \"/b\", \"handler\": \"ping\" },\n"
        "    { \"path\": \"/c\", \"handler\": \"work\",\n"
        "      \"deadline_ms\": 0 },\n"
        "  ],\n"
        "}\n";

    ERR(text, ":6:7: routes[2].deadline_ms: must be 1..86400000");
}

static void
test_duplicate_paths(void)
{
    struct config c;

    ERR("{\"routes\": [\n"
        "  {\"path\": \"/x\", \"handler\": \"ping\"},\n"
        "  {\"path\": \"/y\", \"handler\": \"ping\"},\n"
        "  {\"path\": \"/x\", \"handler\": \"status\"}]}",
        ":4:4: routes[2].path: \"/x\" is already the path of routes[0]");
    ERR("{\"routes\": [\n"
        "  {\"path\": \"/x/*\", \"handler\": \"ping\"},\n"
        "  {\"path\": \"/x/*\", \"handler\": \"ping\"}]}",
        ":3:4: routes[1].path: \"/x/*\" is already the path of routes[0]");
    /* A prefix route and an exact one are different paths. */
    LOAD_OK("{\"routes\": [{\"path\": \"/x/\", \"handler\": \"ping\"},"
        "{\"path\": \"/x/*\", \"handler\": \"ping\"},"
        "{\"path\": \"/x\", \"handler\": \"ping\"}]}", &c);
    CU_ASSERT_EQUAL_FATAL(c.routes.n, 3);
    CU_ASSERT_EQUAL(c.routes.routes[0].prefix, 0);
    CU_ASSERT_EQUAL(c.routes.routes[1].prefix, 1);
    CHECK_STR(c.routes.routes[1].path, "/x/");
    config_free(&c);
}

/* Check that got starts with want; say both when it does not. */
static void
check_prefix(const char *got, const char *want, int line)
{
    int ok = got != NULL && strncmp(got, want, strlen(want)) == 0;

    if (!ok)
        fprintf(stderr, "\ntest_config.c:%d:\n  got  [%s]\n  want [%s...]\n",
            line, got != NULL ? got : "(null)", want);
    CU_assertImplementation(ok, (unsigned)line, "prefix differs", __FILE__,
        "", CU_FALSE);
}

/* exec keys are the builder's; config.c names the file and the place. */
static void
test_exec_route(void)
{
    struct config   c;
    char           *cause = NULL, want[512];
    const char     *text = "{\"routes\": [{\"path\": \"/r\", \"handler\": "
        "\"exec\", \"argv\": [\"/bin/true\"],\n  \"no_such_key\": 1}]}";

    LOAD_OK("{\"routes\": [{\"path\": \"/r\", \"handler\": \"exec\", "
        "\"argv\": [\"/bin/true\"], \"deadline_ms\": 500, "
        "\"probe_ms\": 100, \"methods\": [\"POST\"]}]}", &c);
    CU_ASSERT_EQUAL_FATAL(c.routes.n, 1);
    CHECK_STR(c.routes.routes[0].handler_name, "exec");
    CU_ASSERT_EQUAL(c.routes.routes[0].deadline_ms, 500);
    CU_ASSERT_EQUAL(c.routes.routes[0].probe_ms, 100);
    CU_ASSERT_EQUAL(c.routes.routes[0].methods, METHOD_POST);
    CU_ASSERT_PTR_NOT_NULL(c.routes.routes[0].fn);
    config_free(&c);

    CU_ASSERT_EQUAL(load_text(text, &c, &cause), -1);
    snprintf(want, sizeof want, "%s:2:3: routes[0].no_such_key: ", file);
    check_prefix(cause, want, __LINE__);
    free(cause);
    config_free(&c);

    /* No argv: the key is not in the text, the route's '{' is. */
    CU_ASSERT_EQUAL(load_text("{\"routes\": [\n  {\"path\": \"/r\", "
        "\"handler\": \"exec\"}]}", &c, &cause), -1);
    snprintf(want, sizeof want, "%s:2:3: routes[0]", file);
    check_prefix(cause, want, __LINE__);
    free(cause);
    config_free(&c);
}

/* ---- listen addresses ------------------------------------------------- */

static void
test_check_listen(void)
{
    static const char *const good[] = {
        "unix:/run/fcgi-cancel.sock", "unix:/x", "tcp:127.0.0.1:9000",
        "tcp:localhost:0", "tcp:[::1]:65535", "tcp:::1:9000",
        "tcp:0.0.0.0:8080", "tcp:h:0080",
    };
    static const struct {
        const char *spec, *msg;
    } bad[] = {
        { "", "must be unix:/PATH or tcp:HOST:PORT" },
        { "udp:1.2.3.4:5", "must be unix:/PATH or tcp:HOST:PORT" },
        { "unix:", "the path of unix: must be absolute" },
        { "unix:x.sock", "the path of unix: must be absolute" },
        { "tcp:", "must be tcp:HOST:PORT" },
        { "tcp:host", "must be tcp:HOST:PORT" },
        { "tcp::9000", "the host is missing (tcp:HOST:PORT)" },
        { "tcp:[]:9000", "the host is missing (tcp:HOST:PORT)" },
        { "tcp:h:", "the port must be 0..65535" },
        { "tcp:h:65536", "the port must be 0..65535" },
        { "tcp:h:-1", "the port must be 0..65535" },
        { "tcp:h:+80", "the port must be 0..65535" },
        { "tcp:h:99999999999999999999", "the port must be 0..65535" },
        { "tcp:h:80x", "the port must be 0..65535" },
        { "tcp:a b:80", "the host must be a name or an address (in [ ] for "
            "IPv6)" },
        { "tcp:[::1:80", "the host must be a name or an address (in [ ] for "
            "IPv6)" },
    };
    char    *cause, path[200];
    size_t   i;

    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        cause = NULL;
        if (config_check_listen(good[i], &cause) != 0)
            fprintf(stderr, "\n%s: %s\n", good[i], cause);
        CU_ASSERT_PTR_NULL(cause);
        free(cause);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cause = NULL;
        CU_ASSERT_EQUAL(config_check_listen(bad[i].spec, &cause), -1);
        CHECK_STR(cause, bad[i].msg);
        free(cause);
    }
    memset(path, 'a', sizeof path);
    memcpy(path, "unix:/", 6);
    path[sizeof path - 1] = '\0';
    cause = NULL;
    CU_ASSERT_EQUAL(config_check_listen(path, &cause), -1);
    CHECK_STR(cause, "the path of unix: is too long (at most 107 bytes)");
    free(cause);
}

/* ---- the key tables, as a route builder uses them --------------------- */

struct opts {
    long    n;
    char   *s;
    char   *maybe;
    int     e;
    mode_t  m;
    char  **v;
};

static const char *const colours[] = { "red", "green", NULL };

static const struct config_key opt_keys[] = {
    { .name = "n", .type = CONFIG_INT, .offset = offsetof(struct opts, n),
      .min = -5, .max = 5, .def = 3 },
    { .name = "s", .type = CONFIG_STRING, .offset = offsetof(struct opts, s),
      .def_str = "dflt" },
    { .name = "maybe", .type = CONFIG_STRING, .nullable = 1,
      .offset = offsetof(struct opts, maybe) },
    { .name = "e", .type = CONFIG_ENUM, .offset = offsetof(struct opts, e),
      .def = 1, .names = colours },
    { .name = "m", .type = CONFIG_MODE, .offset = offsetof(struct opts, m),
      .max = 07777, .def = 0644 },
    { .name = "v", .type = CONFIG_STRV, .offset = offsetof(struct opts, v),
      .min = 1, .max = 3 },
};

/* Apply opt_keys to the route object in json; return the cause or NULL. */
static char *
apply_opts(const char *json, struct opts *o)
{
    json_object *obj = json_tokener_parse(json);
    char        *cause = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(obj);
    memset(o, 0, sizeof *o);
    CU_ASSERT_EQUAL(config_keys_defaults(opt_keys, 6, o), 0);
    if (config_keys_read(opt_keys, 6, o, obj, "routes[4]", router_common_key,
        &cause) != 0)
        CU_ASSERT_PTR_NOT_NULL(cause);
    json_object_put(obj);
    return cause;
}

static void
test_route_options(void)
{
    static const struct {
        const char *json, *msg;
    } bad[] = {
        { "{\"n\": 6}", "routes[4].n: must be -5..5" },
        { "{\"s\": null}", "routes[4].s: must be a string" },
        { "{\"maybe\": 1}", "routes[4].maybe: must be a string or null" },
        { "{\"e\": \"blue\"}", "routes[4].e: must be red or green" },
        { "{\"m\": \"17777\"}",
            "routes[4].m: must be a string of octal digits from \"0000\" "
            "to \"7777\"" },
        { "{\"v\": \"a\"}", "routes[4].v: must be an array of strings" },
        { "{\"v\": []}", "routes[4].v: must not be empty" },
        { "{\"v\": [\"a\", \"b\", \"c\", \"d\"]}",
            "routes[4].v: must have at most 3 elements" },
        { "{\"v\": [\"a\", 2]}", "routes[4].v[1]: must be a string" },
        { "{\"path\": \"/\", \"zz\": 2}", "routes[4].zz: unknown key" },
    };
    struct opts  o;
    char        *cause;
    size_t       i;

    /* Defaults, and the common route keys left alone. */
    cause = apply_opts("{\"path\": 5, \"handler\": 1, \"methods\": 2, "
        "\"deadline_ms\": 3, \"probe_ms\": 4}", &o);
    CU_ASSERT_PTR_NULL(cause);
    CU_ASSERT_EQUAL(o.n, 3);
    CHECK_STR(o.s, "dflt");
    CU_ASSERT_PTR_NULL(o.maybe);
    CU_ASSERT_EQUAL(o.e, 1);
    CU_ASSERT_EQUAL(o.m, 0644);
    CU_ASSERT_PTR_NULL(o.v);
    config_keys_free(opt_keys, 6, &o);
    CU_ASSERT_PTR_NULL(o.s);

    cause = apply_opts("{\"n\": -5, \"s\": \"x\", \"maybe\": \"y\", "
        "\"e\": \"red\", \"m\": \"7777\", \"v\": [\"a\", \"b\"]}", &o);
    CU_ASSERT_PTR_NULL(cause);
    CU_ASSERT_EQUAL(o.n, -5);
    CHECK_STR(o.s, "x");
    CHECK_STR(o.maybe, "y");
    CU_ASSERT_EQUAL(o.e, 0);
    CU_ASSERT_EQUAL(o.m, 07777);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o.v);
    CHECK_STR(o.v[0], "a");
    CHECK_STR(o.v[1], "b");
    CU_ASSERT_PTR_NULL(o.v[2]);
    config_keys_free(opt_keys, 6, &o);

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cause = apply_opts(bad[i].json, &o);
        CHECK_STR(cause, bad[i].msg);
        free(cause);
        config_keys_free(opt_keys, 6, &o);
    }
    CU_ASSERT_EQUAL(router_common_key("deadline_ms"), 1);
    CU_ASSERT_EQUAL(router_common_key("argv"), 0);
}

/* Two keys with their own words for a bad value, and a set() on a
 * CONFIG_STRV whose vector config_keys_free() frees. */
struct own_opts {
    long    n;
    int     e;
    char  **pair;
};

/* "pair": a string "A=B", stored as {"A", "B"}. */
static int
set_pair(void *base, json_object *v, const char *path, char **cause)
{
    struct own_opts *o = base;
    const char      *s = "", *eq;

    if (config_keys_string(v, path, &s, cause) != 0)
        return -1;
    if ((eq = strchr(s, '=')) == NULL)
        return config_keys_fail(cause, path, "must be A=B");
    o->pair = calloc(3, sizeof *o->pair);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o->pair);
    o->pair[0] = strndup(s, (size_t)(eq - s));
    o->pair[1] = strdup(eq + 1);
    return 0;
}

static const struct config_key own_keys[] = {
    { .name = "n", .type = CONFIG_INT, .offset = offsetof(struct own_opts, n),
      .min = 0, .max = 9, .must = "a digit" },
    { .name = "e", .type = CONFIG_ENUM, .offset = offsetof(struct own_opts, e),
      .names = colours, .must = "a colour" },
    { .name = "pair", .type = CONFIG_STRV, .set = set_pair,
      .offset = offsetof(struct own_opts, pair) },
};

static void
test_own_words(void)
{
    static const struct {
        const char *json, *msg;
    } bad[] = {
        { "{\"n\": 10}", "r.n: must be a digit" },
        { "{\"n\": \"1\"}", "r.n: must be a digit" },
        { "{\"e\": \"blue\"}", "r.e: must be a colour" },
        { "{\"e\": 1}", "r.e: must be a colour" },
        { "{\"pair\": \"ab\"}", "r.pair: must be A=B" },
        { "{\"zz\": 1}", "r.zz: unknown key" },
    };
    struct own_opts  o;
    json_object     *obj;
    char            *cause = NULL;
    size_t           i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&o, 0, sizeof o);
        obj = json_tokener_parse(bad[i].json);
        CU_ASSERT_PTR_NOT_NULL_FATAL(obj);
        CU_ASSERT_EQUAL(config_keys_read(own_keys, 3, &o, obj, "r", NULL,
            &cause), -1);
        CHECK_STR(cause, bad[i].msg);
        free(cause);
        cause = NULL;
        json_object_put(obj);
    }
    memset(&o, 0, sizeof o);
    obj = json_tokener_parse("{\"n\": 9, \"pair\": \"k=v\"}");
    CU_ASSERT_EQUAL(config_keys_read(own_keys, 3, &o, obj, "r", NULL,
        &cause), 0);
    CU_ASSERT_EQUAL(o.n, 9);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o.pair);
    CHECK_STR(o.pair[0], "k");
    CHECK_STR(o.pair[1], "v");
    config_keys_free(own_keys, 3, &o);
    CU_ASSERT_PTR_NULL(o.pair);
    json_object_put(obj);
}

/*
 * The handler registry: each row whole and found by its name, and the
 * default routes built from the rows by the code that builds the file's.
 */
static void
test_registry(void)
{
    struct router   r = { 0 };
    char           *why = NULL;
    size_t          i, j, n = 0;

    for (i = 0; handlers[i] != NULL; i++) {
        const struct handler_def *h = handlers[i];

        CU_ASSERT_PTR_NOT_NULL(h->handler);
        CU_ASSERT_EQUAL(h->keys == NULL, h->nkeys == 0);
        CU_ASSERT(h->nkeys == 0 || h->opts_size > 0);
        CU_ASSERT_PTR_EQUAL(handler_find(h->name), h);
        CU_ASSERT_EQUAL(handler_check_name(h->name, &why), 0);
        for (j = 0; h->default_routes != NULL &&
            h->default_routes[j] != NULL; j++)
            n++;
    }
    CU_ASSERT_PTR_NULL(handler_find("nope"));
    CU_ASSERT_EQUAL(handler_check_name("nope", &why), -1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(why);
    CU_ASSERT_EQUAL(strncmp(why, "must be work, exec, ", 20), 0);
    free(why);

    CU_ASSERT_EQUAL_FATAL(router_defaults(&r), 0);
    CU_ASSERT_EQUAL(r.n, n);
    for (i = 0; i < r.n; i++) {
        CU_ASSERT_PTR_NOT_NULL_FATAL(r.routes[i].def);
        CU_ASSERT_PTR_EQUAL(r.routes[i].fn, r.routes[i].def->handler);
        CHECK_STR(r.routes[i].handler_name, r.routes[i].def->name);
    }
    router_free(&r);
}

/* A config_change_cb: append "KEY " or "KEY! " (restart) to arg. */
static void
note_change(void *arg, const char *key, int restart)
{
    strcat(arg, key);
    strcat(arg, restart ? "! " : " ");
}

/* config_compare(): the keys that differ, restart ones given back. */
static void
test_compare(void)
{
    struct config   cur, next;
    char            seen[256] = "";

    LOAD_OK("{\"listen\": \"unix:/a\", \"log_level\": \"debug\", "
        "\"workers\": 4, \"socket_mode\": \"0600\"}", &cur);
    LOAD_OK("{\"listen\": \"unix:/b\", \"log_level\": \"warn\", "
        "\"workers\": 4, \"socket_mode\": \"0666\", "
        "\"allowed_clients\": [\"127.0.0.1\"], "
        "\"routes\": [{\"path\": \"/p\", \"handler\": \"ping\"}]}",
        &next);
    CU_ASSERT_EQUAL(config_compare(&next, &cur, note_change, seen), 0);
    CHECK_STR(seen, "listen! socket_mode! log_level allowed_clients ");
    CHECK_STR(next.listen, "unix:/a");
    CU_ASSERT_EQUAL(next.socket_mode, 0600);
    CU_ASSERT_EQUAL(next.log_level, LOG_LEVEL_WARN);
    CU_ASSERT_EQUAL(next.routes.n, 1);
    seen[0] = '\0';
    CU_ASSERT_EQUAL(config_compare(&next, &next, note_change, seen), 0);
    CHECK_STR(seen, "");
    config_free(&cur);
    config_free(&next);
}

/* ---- main ------------------------------------------------------------- */

static CU_TestInfo load_tests[] = {
    { "defaults", test_defaults },
    { "no routes key: default routes", test_no_routes_key },
    { "full file, comments, trailing commas", test_full_file },
    { "nulls and CRLF", test_nulls_and_crlf },
    { "conf/fcgi-cancel.json", test_example_conf },
    { "failed load keeps the config", test_reload },
    { "config_compare for a reload", test_compare },
    CU_TEST_INFO_NULL
};

static CU_TestInfo syntax_tests[] = {
    { "missing file, directory", test_missing_file },
    { "empty file", test_empty_file },
    { "syntax errors with line:col", test_syntax_errors },
    { "unterminated string, comment, object", test_unterminated },
    { "NUL bytes", test_nul_byte },
    { "nesting and size limits", test_limits },
    { "top level, trailing text, duplicate keys", test_top_level },
    CU_TEST_INFO_NULL
};

static CU_TestInfo key_tests[] = {
    { "unknown keys", test_unknown_keys },
    { "wrong types", test_wrong_types },
    { "ranges: min-1, max+1, min, max", test_ranges },
    { "enums", test_enums },
    { "socket_mode", test_socket_mode },
    { "listen, socket_group, access_log", test_strings },
    { "route errors", test_route_errors },
    { "error in the third route", test_route_index },
    { "duplicate paths", test_duplicate_paths },
    { "exec route and its builder", test_exec_route },
    { "config_check_listen", test_check_listen },
    { "key tables for builders", test_route_options },
    { "keys with their own words, set() on a vector", test_own_words },
    { "the handler registry and its default routes", test_registry },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "config load", suite_init, suite_clean, NULL, NULL, load_tests },
    { "config syntax", suite_init, suite_clean, NULL, NULL, syntax_tests },
    { "config keys", suite_init, suite_clean, NULL, NULL, key_tests },
    CU_SUITE_INFO_NULL
};

int
main(void)
{
    return unit_run("test_config", suites, 60);
}
