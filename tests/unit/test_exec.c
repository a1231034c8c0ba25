/* SPDX-License-Identifier: MIT */
/*
 * test_exec.c - the exec handler: the CGI header parser, the route builder,
 * and the handler itself run in-process against the programs of tests/data
 * (found through $top_srcdir).  The response goes to a fake FCGX_Stream that
 * keeps the bytes in memory, or fails like a gone client; every handler
 * test also checks that no descriptor and no child was left behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcgiapp.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <json-c/json.h>

#include "handlers/cgi.h"
#include "handlers/exec.h"
#include "handlers/handlers.h"
#include "log.h"
#include "memstream.h"
#include "request.h"
#include "router.h"
#include "token.h"
#include "unit.h"
#include "util.h"

/* As in exec.c: NULL until request.c exports it. */
extern char **request_envp(const fc_request *req) __attribute__((weak));

static char data_dir[1024];         /* the scripts of tests/data */
static char tmp_dir[1024];          /* scratch files */

/* ---- helpers -------------------------------------------------------- */

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int
count_fds(void)
{
    DIR           *d = opendir("/proc/self/fd");
    struct dirent *e;
    int            n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            n++;
    }
    closedir(d);
    return n;
}

/* Return 1 if we have no child at all (none running, no zombie). */
static int
no_children(void)
{
    siginfo_t si;

    memset(&si, 0, sizeof si);
    return waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 &&
        errno == ECHILD;
}

/* Return 1 if pid is gone or a zombie (its parent is init now). */
static int
pid_dead(pid_t pid)
{
    char  path[64], line[512], *p;
    FILE *f;
    int   dead = 1;

    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    if ((f = fopen(path, "r")) == NULL)
        return 1;
    if (fgets(line, sizeof line, f) != NULL &&
        (p = strrchr(line, ')')) != NULL && p[1] == ' ')
        dead = p[2] == 'Z' || p[2] == 'X';
    fclose(f);
    return dead;
}

/* Wait up to ms for path to hold a PID; return it, or -1. */
static pid_t
read_pid_file(const char *path, long ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    FILE    *f;
    long     pid;

    do {
        if ((f = fopen(path, "r")) != NULL) {
            int ok = fscanf(f, "%ld", &pid) == 1;

            fclose(f);
            if (ok && pid > 0)
                return (pid_t)pid;
        }
        usleep(2000);
    } while (now_ms() < end);
    return -1;
}

/* Wait up to ms for pid to be dead; return 1 if it is. */
static int
wait_dead(pid_t pid, long ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;

    while (!pid_dead(pid)) {
        if (now_ms() >= end)
            return 0;
        usleep(1000);
    }
    return 1;
}

/* A json route object from text; the test fails if it does not parse. */
static json_object *
route_json(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_object *
route_json(const char *fmt, ...)
{
    char        text[4096];
    va_list     ap;
    json_object *o;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    o = json_tokener_parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    return o;
}

/* Build a route from text; return the builder's result. */
static int
build(struct route *rt, char **cause, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
build(struct route *rt, char **cause, const char *fmt, ...)
{
    struct handler_ctx ctx = { .where = "routes[3]", .path = "/t" };
    json_object *pv;
    char         text[4096];
    va_list      ap;
    json_object *o;
    int          rc;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memset(rt, 0, sizeof *rt);
    rt->path = (char *)"/t";
    o = route_json("%s", text);
    if (json_object_object_get_ex(o, "path", &pv))
        ctx.path = json_object_get_string(pv);
    /* As router_add_json() builds it, without the common keys' checks. */
    rc = handler_opts_new(&handler_exec, o, &ctx, router_common_key,
        &rt->data, cause);
    if (rc == 0) {
        rt->fn = handler_exec.handler;
        rt->def = &handler_exec;
        rt->handler_name = handler_exec.name;
    }
    json_object_put(o);
    return rc;
}

/* Free what a successful build stored in rt. */
static void
route_release(struct route *rt)
{
    if (rt->def != NULL)
        handler_opts_free(rt->def, rt->data);
    rt->data = NULL;
    rt->def = NULL;
}

/* ---- running the handler -------------------------------------------- */

struct call {
    struct route      rt;
    char             *params[32];
    int               nparams;
    const char       *body;
    size_t            body_len;
    long              fail_after;
    fc_token         *tok;
    struct memstream  out;
    int               rc;
    uint64_t          ms;           /* the handler's run time */
    char             *head;         /* the response's header block */
    const char       *resp_body;    /* into out.got */
};

/* Add or replace a param "NAME=VALUE". */
static void
call_param(struct call *c, const char *nv)
{
    size_t nlen = strcspn(nv, "=") + 1;
    int    i;

    for (i = 0; i < c->nparams; i++) {
        if (strncmp(c->params[i], nv, nlen) == 0) {
            free(c->params[i]);
            c->params[i] = strdup(nv);
            return;
        }
    }
    CU_ASSERT_FATAL(c->nparams + 1 < (int)nitems(c->params));
    c->params[c->nparams++] = strdup(nv);
    c->params[c->nparams] = NULL;
}

/* Set up c for the route in text, with the default params. */
static void
call_init(struct call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
call_init(struct call *c, const char *fmt, ...)
{
    char     text[4096], *cause = NULL;
    va_list  ap;

    memset(c, 0, sizeof *c);
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (build(&c->rt, &cause, "%s", text) != 0) {
        fprintf(stderr, "build: %s\n", cause);
        free(cause);
        CU_FAIL_FATAL("route does not build");
    }
    call_param(c, "REQUEST_METHOD=GET");
    call_param(c, "DOCUMENT_URI=/t");
    call_param(c, "QUERY_STRING=a=1");
    c->fail_after = -1;
    c->tok = token_new(NULL);
}

/* Run the handler (on this thread); split the response. */
static void
call_run(struct call *c)
{
    fc_request  *req;
    fc_response *resp;
    char        *b, *sep;
    uint64_t     t0;

    memstream_init(&c->out, MEMSTREAM_CHUNK, c->fail_after);
    req = request_new(1, c->params);
    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    if (c->body_len > 0) {
        b = malloc(c->body_len);
        memcpy(b, c->body, c->body_len);
        request_set_body(req, b, c->body_len);
    }
    resp = response_new(&c->out.s, c->tok);
    t0 = now_ms();
    c->rc = c->rt.fn(req, resp, c->tok, c->rt.data);
    c->ms = now_ms() - t0;
    if (c->rc == FC_OK && !fc_response_committed(resp))
        fc_response_flush(resp);
    if (c->out.fail_after < 0)
        FCGX_FFlush(&c->out.s);
    response_free(resp);
    request_free(req);
    buf_add(&c->out.got, "", 0);
    if (c->out.got.data != NULL &&
        (sep = strstr(c->out.got.data, "\r\n\r\n")) != NULL) {
        c->head = strndup(c->out.got.data,
            (size_t)(sep - c->out.got.data) + 2);
        c->resp_body = sep + 4;
    }
}

static void *
call_thread(void *arg)
{
    call_run(arg);
    return NULL;
}

static void
call_free(struct call *c)
{
    int i;

    for (i = 0; i < c->nparams; i++)
        free(c->params[i]);
    route_release(&c->rt);
    token_unref(c->tok);
    memstream_free(&c->out);
    free(c->head);
}

static void
script(char *dst, size_t size, const char *name)
{
    snprintf(dst, size, "%s/%s", data_dir, name);
}

/* ---- cgi_parse_headers ---------------------------------------------- */

static int
parse(const char *s, size_t *consumed, struct cgi_headers *h)
{
    return cgi_parse_headers(s, strlen(s), consumed, h);
}

static void
test_cgi_status(void)
{
    struct cgi_headers h;
    const char        *s = "Status: 201 Created\r\n"
                           "Content-Type: text/plain\r\n\r\nbody";
    size_t             used;

    CU_ASSERT_EQUAL(parse(s, &used, &h), 1);
    CU_ASSERT_EQUAL(h.status, 201);
    CU_ASSERT_STRING_EQUAL(h.content_type, "text/plain");
    CU_ASSERT_PTR_NULL(h.location);
    CU_ASSERT_EQUAL(h.nextra, 0);
    CU_ASSERT_EQUAL(used, strlen(s) - 4);
    CU_ASSERT_STRING_EQUAL(s + used, "body");
    cgi_headers_free(&h);

    CU_ASSERT_EQUAL(parse("Status: 404\n\n", &used, &h), 1);
    CU_ASSERT_EQUAL(h.status, 404);
    cgi_headers_free(&h);
}

static void
test_cgi_location(void)
{
    struct cgi_headers h;
    size_t             used;

    CU_ASSERT_EQUAL(parse("Location: https://example.org/x\n\n", &used, &h),
        1);
    CU_ASSERT_EQUAL(h.status, 302);
    CU_ASSERT_STRING_EQUAL(h.location, "https://example.org/x");
    cgi_headers_free(&h);

    CU_ASSERT_EQUAL(parse("Location: /y\nStatus: 301 Moved\n\n", &used, &h),
        1);
    CU_ASSERT_EQUAL(h.status, 301);
    cgi_headers_free(&h);
}

static void
test_cgi_content_type(void)
{
    struct cgi_headers h;
    size_t             used;

    CU_ASSERT_EQUAL(parse("content-type:text/html; charset=utf-8  \n\n<p>",
        &used, &h), 1);
    CU_ASSERT_EQUAL(h.status, 200);
    CU_ASSERT_STRING_EQUAL(h.content_type, "text/html; charset=utf-8");
    CU_ASSERT_EQUAL(used,
        strlen("content-type:text/html; charset=utf-8  \n\n"));
    cgi_headers_free(&h);
}

static void
test_cgi_custom(void)
{
    struct cgi_headers h;
    size_t             used;

    CU_ASSERT_EQUAL(parse("X-Custom:   yes \t\nCache-Control: no-store\n"
        "X-Empty:\nContent-Type: text/plain\n\n", &used, &h), 1);
    CU_ASSERT_EQUAL_FATAL(h.nextra, 3);
    CU_ASSERT_STRING_EQUAL(h.extra[0].name, "X-Custom");
    CU_ASSERT_STRING_EQUAL(h.extra[0].value, "yes");
    CU_ASSERT_STRING_EQUAL(h.extra[1].name, "Cache-Control");
    CU_ASSERT_STRING_EQUAL(h.extra[1].value, "no-store");
    CU_ASSERT_STRING_EQUAL(h.extra[2].name, "X-Empty");
    CU_ASSERT_STRING_EQUAL(h.extra[2].value, "");
    cgi_headers_free(&h);
}

static void
test_cgi_line_ends(void)
{
    struct cgi_headers h;
    size_t             used;

    /* Mixed: CRLF then LF then a CRLF blank line. */
    CU_ASSERT_EQUAL(parse("A: 1\r\nB: 2\n\r\nrest", &used, &h), 1);
    CU_ASSERT_EQUAL(used, 13);
    CU_ASSERT_EQUAL_FATAL(h.nextra, 2);
    CU_ASSERT_STRING_EQUAL(h.extra[1].value, "2");
    cgi_headers_free(&h);

    /* A CR alone is part of the value, not a line end: refused. */
    CU_ASSERT_EQUAL(parse("A: 1\rB: 2\n\n", &used, &h), -1);
}

static void
test_cgi_need_more(void)
{
    static const char full[] = "Status: 200 OK\r\nX-A: b\r\n\r\nbody";
    struct cgi_headers h;
    size_t             used, i, block = strlen(full) - 4;

    CU_ASSERT_EQUAL(cgi_parse_headers("", 0, &used, &h), 0);
    CU_ASSERT_EQUAL(parse("Content-Type: text/plain\r\n", &used, &h), 0);
    CU_ASSERT_EQUAL(parse("Content-Type: text/plain\r\n\r", &used, &h), 0);
    CU_ASSERT_EQUAL(used, 0);
    /* Every prefix shorter than the block needs more; then it is done. */
    for (i = 0; i <= strlen(full); i++) {
        int rc = cgi_parse_headers(full, i, &used, &h);

        if (i < block) {
            CU_ASSERT_EQUAL(rc, 0);
        } else {
            CU_ASSERT_EQUAL(rc, 1);
            CU_ASSERT_EQUAL(used, block);
            cgi_headers_free(&h);
        }
    }
}

static void
test_cgi_bad(void)
{
    static const char *const bad[] = {
        "no colon here\n\n",
        "Bad Name: x\n\n",
        " X-Folded: y\n\n",
        ": empty name\n\n",
        "X(y): z\n\n",
        "X: a\001b\n\n",
        "Status: abc\n\n",
        "Status: 20\n\n",
        "Status: 2000\n\n",
        "Status: 099\n\n",
        "Status: 200\nStatus: 201\n\n",
        "Content-Type: a\nContent-Type: b\n\n",
        "Location: /a\nLocation: /b\n\n",
        "Content-Type:\n\n",
        "\n",
        "\r\n",
        "HTTP/1.1 200 OK\r\n\r\n",
    };
    struct cgi_headers h;
    size_t             i, used;

    for (i = 0; i < nitems(bad); i++) {
        int rc = parse(bad[i], &used, &h);

        if (rc != -1)
            fprintf(stderr, "accepted: \"%s\"\n", bad[i]);
        CU_ASSERT_EQUAL(rc, -1);
        CU_ASSERT_PTR_NOT_NULL(h.error);
        CU_ASSERT_EQUAL(h.nextra, 0);
    }
    /* A NUL byte in a value. */
    CU_ASSERT_EQUAL(cgi_parse_headers("X: a\0b\n\n", 8, &used, &h), -1);
}

static void
test_cgi_oversize(void)
{
    struct cgi_headers h;
    size_t             used, n = CGI_HEADERS_MAX + 16;
    char              *big = malloc(n);

    CU_ASSERT_PTR_NOT_NULL_FATAL(big);
    /* One long header line, never ended: too big once 64 KiB are in. */
    memcpy(big, "X-Long: ", 8);
    memset(big + 8, 'a', n - 8);
    CU_ASSERT_EQUAL(cgi_parse_headers(big, CGI_HEADERS_MAX - 1, &used, &h),
        0);
    CU_ASSERT_EQUAL(cgi_parse_headers(big, CGI_HEADERS_MAX, &used, &h), -1);
    CU_ASSERT_EQUAL(cgi_parse_headers(big, n, &used, &h), -1);

    /* A block of exactly 64 KiB is fine, one byte more is not. */
    big[CGI_HEADERS_MAX - 2] = '\n';
    big[CGI_HEADERS_MAX - 1] = '\n';
    CU_ASSERT_EQUAL(cgi_parse_headers(big, n, &used, &h), 1);
    CU_ASSERT_EQUAL(used, CGI_HEADERS_MAX);
    cgi_headers_free(&h);
    big[CGI_HEADERS_MAX - 2] = 'a';
    big[CGI_HEADERS_MAX - 1] = '\n';
    big[CGI_HEADERS_MAX] = '\n';
    CU_ASSERT_EQUAL(cgi_parse_headers(big, n, &used, &h), -1);
    free(big);
}

/* ---- the route options (handler_exec) ------------------------------- */

/* The build fails with a cause that contains want. */
static void
build_fails(const char *want, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
build_fails(const char *want, const char *fmt, ...)
{
    struct route rt;
    char         text[4096], *cause = NULL;
    va_list      ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    CU_ASSERT_EQUAL(build(&rt, &cause, "%s", text), -1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(cause);
    if (strstr(cause, want) == NULL)
        fprintf(stderr, "cause \"%s\" lacks \"%s\"\n", cause, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(cause, want));
    CU_ASSERT_PTR_NULL(rt.fn);
    CU_ASSERT_PTR_NULL(rt.data);
    free(cause);
}

static void
test_build_errors(void)
{
    char sh[PATH_MAX];

    script(sh, sizeof sh, "cat.sh");
    build_fails("routes[3].argv: missing", "{\"path\": \"%s\"}", "/x");
    build_fails("routes[3].argv: must be a non-empty array",
        "{\"argv\": [], \"x\": \"%s\"}", "");
    build_fails("routes[3].argv: must be a non-empty array",
        "{\"argv\": \"%s\"}", "/bin/sh");
    build_fails("routes[3].argv[1]: must be a string",
        "{\"argv\": [\"%s\", 1]}", sh);
    build_fails("routes[3].argv[0]: \"sh\" is not an absolute path",
        "{\"argv\": [\"%s\"]}", "sh");
    build_fails("routes[3].argv[0]: /nonexistent/x: No such file or "
        "directory", "{\"argv\": [\"%s\"]}", "/nonexistent/x");
    build_fails("routes[3].argv[0]: /etc/passwd: Permission denied",
        "{\"argv\": [\"%s\"]}", "/etc/passwd");
    build_fails("routes[3].argv[0]: /tmp: not a regular file",
        "{\"argv\": [\"%s\"]}", "/tmp");
    build_fails("routes[3].kill_grace_ms: must be an integer from 0 to "
        "600000", "{\"argv\": [\"%s\"], \"kill_grace_ms\": -1}", sh);
    build_fails("routes[3].kill_grace_ms:",
        "{\"argv\": [\"%s\"], \"kill_grace_ms\": 600001}", sh);
    build_fails("routes[3].kill_grace_ms:",
        "{\"argv\": [\"%s\"], \"kill_grace_ms\": \"2000\"}", sh);
    build_fails("routes[3].kill_grace_ms:",
        "{\"argv\": [\"%s\"], \"kill_grace_ms\": 1.5}", sh);
    build_fails("routes[3].shell: unknown key",
        "{\"argv\": [\"%s\"], \"shell\": true}", sh);
    build_fails("routes[3].output: must be \"cgi\" or \"raw\"",
        "{\"argv\": [\"%s\"], \"output\": \"json\"}", sh);
    build_fails("routes[3].content_type: only with \"output\": \"raw\"",
        "{\"argv\": [\"%s\"], \"content_type\": \"text/plain\"}", sh);
    build_fails("routes[3].cwd: /nonexistent: No such file",
        "{\"argv\": [\"%s\"], \"cwd\": \"/nonexistent\"}", sh);
    build_fails("routes[3].cwd: /etc/passwd: Not a directory",
        "{\"argv\": [\"%s\"], \"cwd\": \"/etc/passwd\"}", sh);
    build_fails("routes[3].env.A: must be a string",
        "{\"argv\": [\"%s\"], \"env\": {\"A\": 1}}", sh);
    build_fails("routes[3].env: \"A-B\" is not a variable name",
        "{\"argv\": [\"%s\"], \"env\": {\"A-B\": \"x\"}}", sh);
    build_fails("routes[3].env: must be an object",
        "{\"argv\": [\"%s\"], \"env\": [\"A=B\"]}", sh);
}

static void
test_build_ok(void)
{
    struct route rt;
    char         sh[PATH_MAX], *cause = NULL;

    script(sh, sizeof sh, "cat.sh");
    /* The common keys are the loader's: ignored here. */
    CU_ASSERT_EQUAL(build(&rt, &cause, "{\"path\": \"/report\", \"methods\": "
        "[\"GET\"], \"handler\": \"exec\", \"deadline_ms\": 5000, "
        "\"probe_ms\": 0, \"argv\": [\"%s\", \"-x\"], \"cwd\": \"/tmp\", "
        "\"env\": {\"A\": \"b\"}, \"kill_grace_ms\": 0}", sh), 0);
    CU_ASSERT_PTR_NULL(cause);
    CU_ASSERT_PTR_EQUAL(rt.fn, exec_handler);
    CU_ASSERT_PTR_NOT_NULL(rt.data);
    CU_ASSERT_PTR_EQUAL(rt.def, &handler_exec);
    CU_ASSERT_STRING_EQUAL(rt.handler_name, "exec");
    route_release(&rt);

    /* Raw without content_type is fine (application/octet-stream). */
    CU_ASSERT_EQUAL(build(&rt, &cause, "{\"argv\": [\"%s\"], "
        "\"output\": \"raw\"}", sh), 0);
    CU_ASSERT_PTR_NULL(cause);
    route_release(&rt);
    CU_ASSERT_EQUAL(build(&rt, &cause, "{\"argv\": [\"%s\"], \"output\": "
        "\"raw\", \"content_type\": \"text/csv\", \"kill_grace_ms\": "
        "600000}", sh), 0);
    route_release(&rt);
}

/* ---- the handler ---------------------------------------------------- */

static void
test_exec_status201(void)
{
    struct call c;
    char        sh[PATH_MAX];
    int         fds = count_fds();

    script(sh, sizeof sh, "status201.sh");
    call_init(&c, "{\"path\": \"/t\", \"argv\": [\"%s\"]}", sh);
    call_run(&c);
    CU_ASSERT_EQUAL(c.rc, FC_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.head);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.head, "Status: 201 Created\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.head, "X-Custom: yes\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.head, "Content-Type: text/plain\r\n"));
    CU_ASSERT_STRING_EQUAL(c.resp_body, "created\n");
    call_free(&c);
    CU_ASSERT_EQUAL(count_fds(), fds);
    CU_ASSERT(no_children());
}

static void
test_exec_cat_big_body(void)
{
    struct call c;
    char        sh[PATH_MAX], *body;
    size_t      i, n = 200 * 1024;
    int         fds = count_fds();

    body = malloc(n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    for (i = 0; i < n; i++)
        body[i] = (char)('a' + i % 26);
    script(sh, sizeof sh, "cat.sh");
    call_init(&c, "{\"argv\": [\"%s\"]}", sh);
    call_param(&c, "REQUEST_METHOD=POST");
    c.body = body;
    c.body_len = n;
    call_run(&c);
    CU_ASSERT_EQUAL(c.rc, FC_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.head);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.head,
        "Content-Type: application/octet-stream\r\n"));
    CU_ASSERT_EQUAL_FATAL(c.out.got.len - (size_t)(c.resp_body -
        c.out.got.data), n);
    CU_ASSERT(memcmp(c.resp_body, body, n) == 0);
    call_free(&c);
    free(body);
    CU_ASSERT_EQUAL(count_fds(), fds);
    CU_ASSERT(no_children());
}

static void
test_exec_env(void)
{
    struct call c;
    char        sh[PATH_MAX];
    const char *b;

    script(sh, sizeof sh, "env.sh");
    setenv("EXEC_TEST_SERVER_SECRET", "leak", 1);
    call_init(&c, "{\"argv\": [\"%s\"], \"env\": {\"ROUTE_VAR\": \"r v\"}}",
        sh);
    call_param(&c, "REQUEST_METHOD=POST");
    call_param(&c, "CONTENT_TYPE=text/plain");
    call_param(&c, "CONTENT_LENGTH=999");
    call_param(&c, "REMOTE_ADDR=192.0.2.1");
    call_param(&c, "HTTP_HOST=example.org");
    call_param(&c, "HTTP_USER_AGENT=test agent");
    call_param(&c, "HTTP_X_TEST=hello");
    call_param(&c, "HTTP_PROXY=http://evil:3128");
    call_param(&c, "LD_PRELOAD=/tmp/evil.so");
    call_param(&c, "PATH=/evil");
    call_param(&c, "SERVER_SOFTWARE=nginx");
    c.body = "hello";
    c.body_len = 5;
    call_run(&c);
    unsetenv("EXEC_TEST_SERVER_SECRET");
    CU_ASSERT_EQUAL(c.rc, FC_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.resp_body);
    b = c.resp_body - 1;             /* the LF that ends the headers */
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "\nGATEWAY_INTERFACE=CGI/1.1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "\nREQUEST_METHOD=POST\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "\nQUERY_STRING=a=1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "\nCONTENT_LENGTH=5\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "\nCONTENT_TYPE=text/plain\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "\nDOCUMENT_URI=/t\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "\nREMOTE_ADDR=192.0.2.1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "\nHTTP_HOST=example.org\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "\nHTTP_USER_AGENT=test agent\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "\nPATH=/usr/local/bin:/usr/bin:/bin\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "\nROUTE_VAR=r v\n"));
    if (request_envp != NULL)
        CU_ASSERT_PTR_NOT_NULL(strstr(b, "\nHTTP_X_TEST=hello\n"));
    CU_ASSERT_PTR_NULL(strstr(b, "HTTP_PROXY"));
    CU_ASSERT_PTR_NULL(strstr(b, "LD_PRELOAD"));
    CU_ASSERT_PTR_NULL(strstr(b, "/evil"));
    CU_ASSERT_PTR_NULL(strstr(b, "EXEC_TEST_SERVER_SECRET"));
    CU_ASSERT_PTR_NULL(strstr(b, "SERVER_SOFTWARE"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b, "--- body\nhello"));
    call_free(&c);
}

/* Run fn with the server log (fd 2) going to a file; return its text. */
static char *
capture_log(void (*fn)(struct call *), struct call *c)
{
    char   path[PATH_MAX], *text = NULL;
    int    fd, saved;
    FILE  *f;
    long   len;

    snprintf(path, sizeof path, "%s/log", tmp_dir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CU_ASSERT_FATAL(fd >= 0);
    saved = dup(2);
    dup2(fd, 2);
    close(fd);
    fn(c);
    dup2(saved, 2);
    close(saved);
    if ((f = fopen(path, "r")) != NULL) {
        fseek(f, 0, SEEK_END);
        len = ftell(f);
        rewind(f);
        text = calloc(1, (size_t)len + 1);
        if (fread(text, 1, (size_t)len, f) != (size_t)len)
            text[0] = '\0';
        fclose(f);
    }
    unlink(path);
    fputs(text != NULL ? text : "", stderr);
    return text;
}

static void
test_exec_fail_502(void)
{
    struct call c;
    char        sh[PATH_MAX], *log;
    int         fds = count_fds();

    script(sh, sizeof sh, "fail.sh");
    call_init(&c, "{\"path\": \"/report\", \"argv\": [\"%s\"]}", sh);
    log = capture_log(call_run, &c);
    CU_ASSERT_EQUAL(c.rc, FC_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.head);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.head, "Status: 502"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.resp_body,
        "exec route /report: program failed"));
    CU_ASSERT_PTR_NULL(strstr(c.resp_body, sh));
    CU_ASSERT_PTR_NOT_NULL_FATAL(log);
    CU_ASSERT_PTR_NOT_NULL(strstr(log,
        "req=1 stderr: fail.sh: failing on purpose"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "exit status 3"));
    free(log);
    call_free(&c);
    CU_ASSERT_EQUAL(count_fds(), fds);
    CU_ASSERT(no_children());
}

static void
test_exec_cannot_start(void)
{
    struct call c;
    char        sh[PATH_MAX], copy[PATH_MAX], cmd[2 * PATH_MAX + 16];
    int         fds = count_fds();

    /* Built while the program exists, deleted before the request. */
    script(sh, sizeof sh, "status201.sh");
    snprintf(copy, sizeof copy, "%s/gone.sh", tmp_dir);
    snprintf(cmd, sizeof cmd, "cp %s %s", sh, copy);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    call_init(&c, "{\"path\": \"/report\", \"argv\": [\"%s\"]}", copy);
    unlink(copy);
    call_run(&c);
    CU_ASSERT_EQUAL(c.rc, FC_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.head);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.head, "Status: 502"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.resp_body,
        "exec route /report: cannot start program"));
    CU_ASSERT_PTR_NULL(strstr(c.resp_body, "gone.sh"));
    call_free(&c);
    CU_ASSERT_EQUAL(count_fds(), fds);
    CU_ASSERT(no_children());
}

static void
test_exec_bad_headers(void)
{
    struct call c;

    /* A line without ':' */
    call_init(&c, "{\"argv\": [\"/usr/bin/printf\", \"%s\"]}",
        "no header\\\\n\\\\nbody");
    call_run(&c);
    CU_ASSERT_EQUAL(c.rc, FC_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.head);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.head, "Status: 502"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.resp_body, "bad CGI headers"));
    call_free(&c);

    /* Output that ends inside the header block. */
    call_init(&c, "{\"argv\": [\"/bin/echo\", \"%s\"]}", "X-A: b");
    call_run(&c);
    CU_ASSERT_EQUAL(c.rc, FC_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.head);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.head, "Status: 502"));
    CU_ASSERT_PTR_NULL(strstr(c.head, "X-A"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.resp_body, "bad CGI headers"));
    call_free(&c);
    CU_ASSERT(no_children());
}

static void
test_exec_raw(void)
{
    struct call c;

    call_init(&c, "{\"argv\": [\"/bin/echo\", \"%s\"], \"output\": \"raw\"}",
        "Status: 500");
    call_run(&c);
    CU_ASSERT_EQUAL(c.rc, FC_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.head);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.head, "Status: 200 OK\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(c.head,
        "Content-Type: application/octet-stream\r\n"));
    CU_ASSERT_STRING_EQUAL(c.resp_body, "Status: 500\n");
    call_free(&c);

    /* Raw, non-zero exit before any output: 502. */
    call_init(&c, "{\"argv\": [\"/bin/false\"], \"output\": \"raw\", "
        "\"content_type\": \"%s\"}", "text/csv");
    call_run(&c);
    CU_ASSERT_EQUAL(c.rc, FC_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.head);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.head, "Status: 502"));
    CU_ASSERT_PTR_NULL(strstr(c.head, "text/csv"));
    call_free(&c);
    CU_ASSERT(no_children());
}

/* Run argv (a JSON array) with raw output from a thread that blocks some
 * signals, as workers do; return the output (caller frees). */
static char *
child_output(const char *argv_json)
{
    struct call c;
    sigset_t    set, old;
    char       *out;

    call_init(&c, "{\"argv\": %s, \"output\": \"raw\"}", argv_json);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    call_run(&c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    CU_ASSERT_EQUAL(c.rc, FC_OK);
    out = strdup(c.resp_body != NULL ? c.resp_body : "");
    call_free(&c);
    return out;
}

/*
 * The child has descriptors 0, 1 and 2 only (ls adds 3, its directory), no
 * signal blocked or ignored (the worker blocks some, the server ignores
 * SIGPIPE), and leads its own process group.  glibc's posix_spawn() leaves
 * its two internal signals (32 and 33, which no sigset_t can name) ignored:
 * not checked.
 */
static void
test_exec_child_state(void)
{
    unsigned long long blk = 1, ign = 1;
    long               pid = 0, pgrp = -1;
    char              *out;

    out = child_output("[\"/bin/ls\", \"/proc/self/fd\"]");
    CU_ASSERT_STRING_EQUAL(out, "0\n1\n2\n3\n");
    free(out);

    out = child_output("[\"/bin/grep\", \"-E\", \"^Sig(Blk|Ign)\", "
        "\"/proc/self/status\"]");
    CU_ASSERT_EQUAL(sscanf(out, "SigBlk: %llx SigIgn: %llx", &blk, &ign), 2);
    CU_ASSERT_EQUAL(blk, 0);
    CU_ASSERT_EQUAL(ign & ~(3ull << 31), 0);
    free(out);

    out = child_output("[\"/bin/cut\", \"-d \", \"-f1,5\", "
        "\"/proc/self/stat\"]");
    CU_ASSERT_EQUAL(sscanf(out, "%ld %ld", &pid, &pgrp), 2);
    CU_ASSERT(pid > 0);
    CU_ASSERT_EQUAL(pgrp, pid);
    free(out);
}

/* A completed program's background child is killed with its group. */
static void
test_exec_background_killed(void)
{
    struct call c;
    char        sh[PATH_MAX], pidfile[PATH_MAX];
    pid_t       gc;
    int         fds = count_fds();

    script(sh, sizeof sh, "progress.sh");
    snprintf(pidfile, sizeof pidfile, "%s/bg.pid", tmp_dir);
    unlink(pidfile);
    call_init(&c, "{\"argv\": [\"%s\"], \"env\": {\"PID_FILE\": \"%s\", "
        "\"STEPS\": \"2\"}}", sh, pidfile);
    call_run(&c);
    CU_ASSERT_EQUAL(c.rc, FC_OK);
    /* It did not wait for the sleep 300 that still held stdout. */
    CU_ASSERT(c.ms < 5000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.resp_body);
    CU_ASSERT_STRING_EQUAL(c.resp_body,
        "progress 1 of 2\nprogress 2 of 2\n");
    gc = read_pid_file(pidfile, 0);
    CU_ASSERT_FATAL(gc > 0);
    CU_ASSERT(wait_dead(gc, 1000));
    call_free(&c);
    unlink(pidfile);
    CU_ASSERT_EQUAL(count_fds(), fds);
    CU_ASSERT(no_children());
}

/* Cancel a running program; check how soon its group is gone. */
static void
cancel_case(const char *name, long grace_ms, long min_ms, long max_ms,
    enum fc_reason reason)
{
    struct call c;
    pthread_t   th;
    char        sh[PATH_MAX], pidfile[PATH_MAX];
    pid_t       pid;
    uint64_t    t0, gone_ms;
    int         fds = count_fds();

    script(sh, sizeof sh, name);
    snprintf(pidfile, sizeof pidfile, "%s/cancel.pid", tmp_dir);
    unlink(pidfile);
    call_init(&c, "{\"argv\": [\"%s\"], \"kill_grace_ms\": %ld, "
        "\"env\": {\"PID_FILE\": \"%s\"}}", sh, grace_ms, pidfile);
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, call_thread, &c), 0);
    pid = read_pid_file(pidfile, 5000);
    CU_ASSERT_FATAL(pid > 0);
    usleep(250 * 1000);             /* a few lines of output */
    t0 = now_ms();
    token_cancel(c.tok, reason);
    CU_ASSERT(wait_dead(pid, 5000));
    gone_ms = now_ms() - t0;
    pthread_join(th, NULL);
    fprintf(stderr, "\n  %s: group member %ld gone %llu ms after the "
        "cancel (grace %ld ms), handler back after %llu ms\n", name,
        (long)pid, (unsigned long long)gone_ms, grace_ms,
        (unsigned long long)(now_ms() - t0));
    CU_ASSERT(gone_ms >= (uint64_t)min_ms);
    CU_ASSERT(gone_ms <= (uint64_t)max_ms);
    CU_ASSERT_EQUAL(c.rc, FC_CANCELLED);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c.resp_body);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.resp_body, name[0] == 'p' ?
        "progress 1 of" : "still here 1\n"));
    call_free(&c);
    unlink(pidfile);
    CU_ASSERT_EQUAL(count_fds(), fds);
    CU_ASSERT(no_children());
}

static void
test_exec_cancel_term(void)
{
    /* progress.sh dies of the SIGTERM, and so does its sleep 300. */
    cancel_case("progress.sh", 2000, 0, 500, FC_CLIENT_GONE);
}

static void
test_exec_cancel_kill(void)
{
    /* ignore-term.sh only goes with the SIGKILL, after the grace. */
    cancel_case("ignore-term.sh", 300, 250, 2000, FC_DEADLINE);
}

static void
test_exec_write_error(void)
{
    struct call c;
    char        sh[PATH_MAX], pidfile[PATH_MAX];
    pid_t       gc;
    int         fds = count_fds();

    script(sh, sizeof sh, "progress.sh");
    snprintf(pidfile, sizeof pidfile, "%s/we.pid", tmp_dir);
    unlink(pidfile);
    call_init(&c, "{\"argv\": [\"%s\"], \"env\": {\"PID_FILE\": \"%s\"}}",
        sh, pidfile);
    c.fail_after = 100;             /* the client goes after 100 bytes */
    call_run(&c);
    CU_ASSERT_EQUAL(c.rc, FC_CANCELLED);
    CU_ASSERT_EQUAL(fc_token_reason(c.tok), FC_WRITE_ERROR);
    CU_ASSERT(c.ms < 3000);
    gc = read_pid_file(pidfile, 0);
    CU_ASSERT_FATAL(gc > 0);
    CU_ASSERT(wait_dead(gc, 1000));
    call_free(&c);
    unlink(pidfile);
    CU_ASSERT_EQUAL(count_fds(), fds);
    CU_ASSERT(no_children());
}

static void
test_exec_already_cancelled(void)
{
    struct call c;
    char        sh[PATH_MAX];

    script(sh, sizeof sh, "status201.sh");
    call_init(&c, "{\"argv\": [\"%s\"]}", sh);
    token_cancel(c.tok, FC_SHUTDOWN);
    call_run(&c);
    CU_ASSERT_EQUAL(c.rc, FC_CANCELLED);
    CU_ASSERT_EQUAL(c.out.got.len, 0);
    call_free(&c);
    CU_ASSERT(no_children());
}

/* ---- main ----------------------------------------------------------- */

static CU_TestInfo cgi_tests[] = {
    { "status", test_cgi_status },
    { "location gives 302", test_cgi_location },
    { "content type", test_cgi_content_type },
    { "custom headers", test_cgi_custom },
    { "CRLF and LF", test_cgi_line_ends },
    { "no blank line yet: need more", test_cgi_need_more },
    { "bad lines", test_cgi_bad },
    { "oversize", test_cgi_oversize },
    CU_TEST_INFO_NULL
};

static CU_TestInfo build_tests[] = {
    { "errors", test_build_errors },
    { "valid routes", test_build_ok },
    CU_TEST_INFO_NULL
};

static CU_TestInfo handler_tests[] = {
    { "status 201 and a custom header", test_exec_status201 },
    { "200 KB body through cat", test_exec_cat_big_body },
    { "CGI environment", test_exec_env },
    { "failing program: 502, stderr logged", test_exec_fail_502 },
    { "deleted program: 502", test_exec_cannot_start },
    { "bad CGI headers: 502", test_exec_bad_headers },
    { "raw output", test_exec_raw },
    { "child: fds 0-2, default signals, own group", test_exec_child_state },
    { "background child killed at the end", test_exec_background_killed },
    { "cancel: SIGTERM to the group", test_exec_cancel_term },
    { "cancel: SIGKILL after the grace", test_exec_cancel_kill },
    { "failed write cancels", test_exec_write_error },
    { "already cancelled: nothing runs", test_exec_already_cancelled },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "cgi_parse_headers", NULL, NULL, NULL, NULL, cgi_tests },
    { "exec_route_build", NULL, NULL, NULL, NULL, build_tests },
    { "exec_handler", NULL, NULL, NULL, NULL, handler_tests },
    CU_SUITE_INFO_NULL
};

int
main(void)
{
    const char *top = getenv("top_srcdir");
    char        path[PATH_MAX], real[PATH_MAX];
    int         rc;

    signal(SIGPIPE, SIG_IGN);       /* as the server does */
    snprintf(path, sizeof path, "%s/tests/data", top != NULL ? top : ".");
    if (realpath(path, real) == NULL || strlen(real) >= sizeof data_dir) {
        fprintf(stderr, "test_exec: %s: %s (set top_srcdir)\n", path,
            strerror(errno));
        return 99;
    }
    strcpy(data_dir, real);
    if ((size_t)snprintf(tmp_dir, sizeof tmp_dir, "%s/test_exec.XXXXXX",
        getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp") >=
        sizeof tmp_dir || mkdtemp(tmp_dir) == NULL) {
        perror("test_exec: mkdtemp");
        return 99;
    }
    rc = unit_run("test_exec", suites, 120);
    rmdir(tmp_dir);
    return rc;
}
