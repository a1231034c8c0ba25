/* SPDX-License-Identifier: MIT */
/*
 * test_module.c - the module handler: the loader's errors (a missing or
 * odd file, a missing ABI symbol or handler, a wrong ABI version, an init
 * that fails, bad keys), each naming the route's key, and a good module
 * loaded, inited with its options, called through the route, and finied
 * when the route is freed.  The modules are the .so files of tests/modules in
 * $top_builddir; this binary is linked with -rdynamic, as the daemon is,
 * so that they find the fc_* functions in it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcgiapp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <json-c/json.h>

#include "config.h"
#include "handlers/handlers.h"
#include "handlers/module.h"
#include "memstream.h"
#include "request.h"
#include "router.h"
#include "token.h"
#include "util.h"
#include "unit.h"

static char mod_dir[PATH_MAX];      /* the built tests/modules */
static char good_so[PATH_MAX + 16];

/* Fail unless got equals want; print both when it does not. */
#define CHECK_STR(got, want) check_str((got), (want), __LINE__)

static void
check_str(const char *got, const char *want, int line)
{
    int ok = got != NULL && strcmp(got, want) == 0;

    if (!ok)
        fprintf(stderr, "\nline %d:\n  got:  %s\n  want: %s\n", line,
            got != NULL ? got : "(null)", want);
    CU_ASSERT(ok);
}

/* Build a route "routes[3]" from JSON text with flags (HANDLER_*); return
 * the registry's result. */
static int __attribute__((format(printf, 4, 5)))
build_flags(struct route *rt, unsigned flags, char **cause, const char *fmt,
    ...)
{
    struct handler_ctx ctx = { .where = "routes[3]", .path = "/t",
        .flags = flags };
    char         text[4096];
    va_list      ap;
    json_object *o;
    int          rc;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memset(rt, 0, sizeof *rt);
    o = json_tokener_parse(text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    /* As router_add_json() builds it, without the common keys' checks. */
    rc = handler_opts_new(&handler_module, o, &ctx, router_common_key,
        &rt->data, cause);
    if (rc == 0) {
        rt->fn = handler_module.handler;
        rt->def = &handler_module;
        rt->handler_name = handler_module.name;
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
    memset(rt, 0, sizeof *rt);
}

#define build(rt, cause, ...) build_flags((rt), 0, (cause), __VA_ARGS__)

/* Check that the route text fails to build with message msg. */
#define BUILD_ERR(msg, ...) build_err(__LINE__, msg, __VA_ARGS__)

static void __attribute__((format(printf, 3, 4)))
build_err(int line, const char *msg, const char *fmt, ...)
{
    struct route rt;
    char         text[4096], *cause = NULL;
    va_list      ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    CU_ASSERT_EQUAL(build(&rt, &cause, "%s", text), -1);
    check_str(cause, msg, line);
    /* The route is left as it was. */
    CU_ASSERT_PTR_NULL(rt.fn);
    CU_ASSERT_PTR_NULL(rt.data);
    CU_ASSERT_PTR_NULL(rt.def);
    free(cause);
}

/* The address of an exported variable of a test module, through a handle
 * of our own (dlopen() counts references: the module stays loaded). */
static void *
module_var(void *dl, const char *name)
{
    void *p = dlsym(dl, name);

    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    return p;
}

static void *
module_open(const char *name)
{
    char  path[PATH_MAX + 32];
    void *dl;

    snprintf(path, sizeof path, "%s/%s", mod_dir, name);
    if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL)
        fprintf(stderr, "dlopen: %s\n", dlerror());
    CU_ASSERT_PTR_NOT_NULL_FATAL(dl);
    return dl;
}

/* ---- running a route's handler ------------------------------------- */

/*
 * Run rt's handler on a GET of /t?QUERY with token tok; return its result
 * and store the response (header block and body) in *out (caller frees).
 */
static int
run(const struct route *rt, const char *query, fc_token *tok, char **out)
{
    struct memstream  m;
    fc_request       *req;
    fc_response      *resp;
    char              qs[256], *envp[4];
    int               rc;

    memstream_init(&m, MEMSTREAM_CHUNK, -1);
    snprintf(qs, sizeof qs, "QUERY_STRING=%s", query);
    envp[0] = (char *)"REQUEST_METHOD=GET";
    envp[1] = (char *)"DOCUMENT_URI=/t";
    envp[2] = qs;
    envp[3] = NULL;
    req = request_new(7, envp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    resp = response_new(&m.s, tok);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    rc = rt->fn(req, resp, tok, rt->data);
    if (rc == FC_OK && !fc_response_committed(resp))
        fc_response_flush(resp);
    FCGX_FFlush(&m.s);
    response_free(resp);
    request_free(req);
    *out = strdup(memstream_text(&m));
    memstream_free(&m);
    return rc;
}

/* ---- loader errors --------------------------------------------------- */

static void
test_missing_file(void)
{
    BUILD_ERR("routes[3].module: /nonexistent/x.so: cannot open shared "
        "object file: No such file or directory",
        "{\"module\": \"/nonexistent/x.so\", \"symbol\": \"f\"}");
}

static void
test_not_a_file(void)
{
    char msg[PATH_MAX + 64];

    snprintf(msg, sizeof msg, "routes[3].module: %s: not a regular file",
        mod_dir);
    BUILD_ERR(msg, "{\"module\": \"%s\", \"symbol\": \"f\"}", mod_dir);
    BUILD_ERR("routes[3].module: /dev/null: not a regular file",
        "{\"module\": \"/dev/null\", \"symbol\": \"f\"}");
}

static void
test_not_a_module(void)
{
    char msg[PATH_MAX + 64];

    /* A text file. */
    snprintf(msg, sizeof msg, "%s/../../Makefile", mod_dir);
    CU_ASSERT_EQUAL_FATAL(access(msg, R_OK), 0);
    {
        struct route rt;
        char        *cause = NULL;

        CU_ASSERT_EQUAL(build(&rt, &cause, "{\"module\": \"%s\", "
            "\"symbol\": \"f\"}", msg), -1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(cause);
        CU_ASSERT(strncmp(cause, "routes[3].module: ", 18) == 0);
        CU_ASSERT_PTR_NOT_NULL(strstr(cause, "Makefile: "));
        free(cause);
    }
}

static void
test_missing_abi(void)
{
    char msg[PATH_MAX + 256];

    snprintf(msg, sizeof msg, "routes[3].module: %s/nosym.so: no "
        "fc_module_abi symbol (not an fcgi-cancel module? define it with "
        "FC_MODULE_DECLARE())", mod_dir);
    BUILD_ERR(msg, "{\"module\": \"%s/nosym.so\", "
        "\"symbol\": \"nosym_handler\"}", mod_dir);
}

static void
test_wrong_abi(void)
{
    char msg[PATH_MAX + 128];

    snprintf(msg, sizeof msg, "routes[3].module: %s/badabi.so: ABI "
        "version 7, this server speaks %d", mod_dir, FC_ABI_VERSION);
    BUILD_ERR(msg, "{\"module\": \"%s/badabi.so\", "
        "\"symbol\": \"badabi_handler\"}", mod_dir);
}

static void
test_missing_symbol(void)
{
    char  msg[PATH_MAX + 128];
    void *dl = module_open("good.so");
    int   inits = *(int *)module_var(dl, "good_inits");
    int   finis = *(int *)module_var(dl, "good_finis");

    snprintf(msg, sizeof msg, "routes[3].symbol: %s: undefined symbol: "
        "good_handlr", good_so);
    BUILD_ERR(msg, "{\"module\": \"%s\", \"symbol\": \"good_handlr\"}",
        good_so);
    /* Found nothing: no init, no fini. */
    CU_ASSERT_EQUAL(*(int *)module_var(dl, "good_inits"), inits);
    CU_ASSERT_EQUAL(*(int *)module_var(dl, "good_finis"), finis);
    dlclose(dl);
}

static void
test_init_fails(void)
{
    char  msg[PATH_MAX + 128];
    void *dl = module_open("initfail.so");

    snprintf(msg, sizeof msg, "routes[3].module: %s/initfail.so: "
        "fc_module_init failed: no database at localhost:5432", mod_dir);
    BUILD_ERR(msg, "{\"module\": \"%s/initfail.so\", "
        "\"symbol\": \"initfail_handler\"}", mod_dir);
    snprintf(msg, sizeof msg, "routes[3].options: %s/initfail.so: "
        "fc_module_init failed: bad \\x22host\\x22\\x0a", mod_dir);
    BUILD_ERR(msg, "{\"module\": \"%s/initfail.so\", "
        "\"symbol\": \"initfail_handler\", "
        "\"options\": {\"message\": \"bad \\\"host\\\"\\n\"}}", mod_dir);
    snprintf(msg, sizeof msg, "routes[3].options: %s/initfail.so: "
        "fc_module_init failed", mod_dir);
    BUILD_ERR(msg, "{\"module\": \"%s/initfail.so\", "
        "\"symbol\": \"initfail_handler\", "
        "\"options\": {\"message\": null}}", mod_dir);
    /* A failed init is not finied. */
    CU_ASSERT_EQUAL(*(int *)module_var(dl, "initfail_finis"), 0);
    dlclose(dl);
}

static void
test_bad_keys(void)
{
    BUILD_ERR("routes[3].module: must be an absolute path",
        "{\"module\": \"good.so\", \"symbol\": \"f\"}");
    BUILD_ERR("routes[3].module: must be a string",
        "{\"module\": 1, \"symbol\": \"f\"}");
    BUILD_ERR("routes[3]: missing key \"module\"", "{\"symbol\": \"f\"}");
    BUILD_ERR("routes[3]: missing key \"symbol\"",
        "{\"module\": \"/x.so\"}");
    BUILD_ERR("routes[3].symbol: must be the name of a C function",
        "{\"module\": \"/x.so\", \"symbol\": \"a-b\"}");
    BUILD_ERR("routes[3].symbol: must be the name of a C function",
        "{\"module\": \"/x.so\", \"symbol\": \"\"}");
    BUILD_ERR("routes[3].options: must be an object",
        "{\"module\": \"/x.so\", \"symbol\": \"f\", \"options\": [1]}");
    BUILD_ERR("routes[3].argv: unknown key",
        "{\"module\": \"/x.so\", \"symbol\": \"f\", \"argv\": []}");
}

/* ---- a good module --------------------------------------------------- */

static void
test_good_module(void)
{
    struct route  rt;
    fc_token     *tok;
    void         *dl = module_open("good.so");
    int          *inits = module_var(dl, "good_inits");
    int          *finis = module_var(dl, "good_finis");
    const char   *last = module_var(dl, "good_last_fini");
    char         *cause = NULL, *out = NULL;
    int           inits0 = *inits, finis0 = *finis;

    CU_ASSERT_EQUAL_FATAL(build(&rt, &cause, "{\"path\": \"/t\", "
        "\"handler\": \"module\", \"deadline_ms\": 100, \"module\": \"%s\", "
        "\"symbol\": \"good_handler\", \"options\": {\"greeting\": \"hi\"}}",
        good_so), 0);
    CU_ASSERT_PTR_NULL(cause);
    CU_ASSERT_EQUAL(*inits, inits0 + 1);
    CU_ASSERT_EQUAL(*finis, finis0);
    CU_ASSERT_PTR_EQUAL(rt.fn, module_handler);
    CHECK_STR(rt.handler_name, "module");

    tok = token_new(NULL);
    CU_ASSERT_EQUAL(run(&rt, "who=world", tok, &out), FC_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Status: 201"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Content-Type: text/plain\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\n\r\nhi world"));
    free(out);
    /* The module sees the token: cancelled, its wait returns at once. */
    token_cancel(tok, FC_CLIENT_GONE);
    CU_ASSERT_EQUAL(run(&rt, "wait=10000", tok, &out), FC_CANCELLED);
    free(out);
    token_unref(tok);

    route_release(&rt);
    CU_ASSERT_EQUAL(*finis, finis0 + 1);
    CHECK_STR(last, "hi");
    dlclose(dl);
}

/* HANDLER_CHECK_ONLY (main.c's first parse): the keys are checked, no
 * module is loaded or inited, and the route answers 500. */
static void
test_check_only(void)
{
    struct route  rt;
    fc_token     *tok = token_new(NULL);
    void         *dl = module_open("good.so");
    int          *inits = module_var(dl, "good_inits");
    int          *finis = module_var(dl, "good_finis");
    char          bad[PATH_MAX + 32], *cause = NULL, *out = NULL;
    int           inits0 = *inits, finis0 = *finis;

    CU_ASSERT_EQUAL_FATAL(build_flags(&rt, HANDLER_CHECK_ONLY, &cause,
        "{\"module\": \"%s\", \"symbol\": \"good_handler\"}", good_so), 0);
    CU_ASSERT_PTR_NULL(cause);
    CU_ASSERT_EQUAL(*inits, inits0);
    CU_ASSERT_EQUAL(run(&rt, "who=x", tok, &out), FC_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "Status: 500"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "module not loaded"));
    free(out);
    route_release(&rt);
    CU_ASSERT_EQUAL(*finis, finis0);

    /* A module that would not load is not looked at; bad keys still are. */
    snprintf(bad, sizeof bad, "%s/badabi.so", mod_dir);
    CU_ASSERT_EQUAL(build_flags(&rt, HANDLER_CHECK_ONLY, &cause,
        "{\"module\": \"%s\", \"symbol\": \"f\"}", bad), 0);
    route_release(&rt);
    CU_ASSERT_EQUAL(build_flags(&rt, HANDLER_CHECK_ONLY, &cause,
        "{\"module\": \"%s\"}", bad), -1);
    CHECK_STR(cause, "routes[3]: missing key \"symbol\"");
    free(cause);
    cause = NULL;
    CU_ASSERT_EQUAL(build_flags(&rt, HANDLER_CHECK_ONLY, &cause,
        "{\"module\": \"x.so\", \"symbol\": \"f\"}"), -1);
    CHECK_STR(cause, "routes[3].module: must be an absolute path");
    free(cause);
    token_unref(tok);
    dlclose(dl);
}

/* Two routes on one module: an init, data and fini each. */
static void
test_two_routes(void)
{
    struct route  a, b;
    fc_token     *tok = token_new(NULL);
    void         *dl = module_open("good.so");
    int          *inits = module_var(dl, "good_inits");
    int          *finis = module_var(dl, "good_finis");
    const char   *last = module_var(dl, "good_last_fini");
    char         *cause = NULL, *out = NULL;
    int           inits0 = *inits, finis0 = *finis;

    CU_ASSERT_EQUAL_FATAL(build(&a, &cause, "{\"module\": \"%s\", "
        "\"symbol\": \"good_handler\", \"options\": {\"greeting\": \"A\"}}",
        good_so), 0);
    /* No options: the module gets {} and uses its default. */
    CU_ASSERT_EQUAL_FATAL(build(&b, &cause, "{\"module\": \"%s\", "
        "\"symbol\": \"good_handler\"}", good_so), 0);
    CU_ASSERT_EQUAL(*inits, inits0 + 2);
    CU_ASSERT_EQUAL(run(&b, "who=b", tok, &out), FC_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\n\r\nhello b"));
    free(out);
    CU_ASSERT_EQUAL(run(&a, "", tok, &out), FC_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\n\r\nA nobody"));
    free(out);
    route_release(&b);
    CU_ASSERT_EQUAL(*finis, finis0 + 1);
    CHECK_STR(last, "hello");
    /* a still works after b unloaded its reference. */
    CU_ASSERT_EQUAL(run(&a, "who=a", tok, &out), FC_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "\r\n\r\nA a"));
    free(out);
    route_release(&a);
    CU_ASSERT_EQUAL(*finis, finis0 + 2);
    CHECK_STR(last, "A");
    token_unref(tok);
    dlclose(dl);
}

/* ---- through config_load(): FILE:LINE:COL, and config_free() finis -- */

static void
test_config_load(void)
{
    struct config c;
    FILE         *f;
    void         *dl = module_open("good.so");
    int          *finis = module_var(dl, "good_finis");
    char          file[] = "/tmp/test_module.XXXXXX", *cause = NULL;
    char          want[PATH_MAX + 256];
    int           fd, finis0 = *finis;

    fd = mkstemp(file);
    CU_ASSERT_FATAL(fd >= 0);
    f = fdopen(fd, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "{\n  \"routes\": [\n"
        "    { \"path\": \"/g\", \"handler\": \"module\",\n"
        "      \"module\": \"%s\", \"symbol\": \"good_handler\" },\n"
        "    { \"path\": \"/b\", \"handler\": \"module\",\n"
        "      \"module\": \"%s/badabi.so\", \"symbol\": \"badabi_handler\" }"
        "\n  ]\n}\n", good_so, mod_dir);
    fclose(f);
    config_init(&c);
    CU_ASSERT_EQUAL(config_load(&c, file, &cause), -1);
    snprintf(want, sizeof want, "%s:6:7: routes[1].module: %s/badabi.so: "
        "ABI version 7, this server speaks %d", file, mod_dir,
        FC_ABI_VERSION);
    CHECK_STR(cause, want);
    free(cause);
    /* The good route, built before the error, was freed: finied. */
    CU_ASSERT_EQUAL(*finis, finis0 + 1);
    config_free(&c);

    f = fopen(file, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fprintf(f, "{\"routes\": [{\"path\": \"/g\", \"handler\": \"module\", "
        "\"module\": \"%s\", \"symbol\": \"good_handler\"}]}\n", good_so);
    fclose(f);
    config_init(&c);
    CU_ASSERT_EQUAL_FATAL(config_load(&c, file, &cause), 0);
    CU_ASSERT_EQUAL_FATAL(c.routes.n, 1);
    CHECK_STR(c.routes.routes[0].handler_name, "module");
    config_free(&c);
    CU_ASSERT_EQUAL(*finis, finis0 + 2);
    unlink(file);
    dlclose(dl);
}

static CU_TestInfo loader_tests[] = {
    { "missing file", test_missing_file },
    { "a directory, a device", test_not_a_file },
    { "not a shared object", test_not_a_module },
    { "no fc_module_abi", test_missing_abi },
    { "wrong ABI version", test_wrong_abi },
    { "missing handler symbol", test_missing_symbol },
    { "fc_module_init fails", test_init_fails },
    { "bad keys", test_bad_keys },
    CU_TEST_INFO_NULL
};

static CU_TestInfo good_tests[] = {
    { "init, handler, fini", test_good_module },
    { "two routes, one module", test_two_routes },
    { "HANDLER_CHECK_ONLY loads nothing", test_check_only },
    { "config_load and config_free", test_config_load },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "loader errors", NULL, NULL, NULL, NULL, loader_tests },
    { "good module", NULL, NULL, NULL, NULL, good_tests },
    CU_SUITE_INFO_NULL
};

int
main(void)
{
    const char *top = getenv("top_builddir");
    char        path[PATH_MAX];

    snprintf(path, sizeof path, "%s/tests/modules", top != NULL ? top : ".");
    if (realpath(path, mod_dir) == NULL) {
        fprintf(stderr, "test_module: %s: %s (set top_builddir)\n", path,
            strerror(errno));
        return 99;
    }
    snprintf(good_so, sizeof good_so, "%s/good.so", mod_dir);
    return unit_run("test_module", suites, 60);
}
