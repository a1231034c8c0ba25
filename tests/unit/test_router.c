/* SPDX-License-Identifier: MIT */
/*
 * test_router.c - unit tests of the routing table (router.c): exact and
 * prefix paths, 404 against 405, the first matching route winning, the
 * method names and the default routes.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "fcgi_cancel.h"
#include "router.h"
#include "unit.h"

/* A handler that is never called; routes only compare its address. */
static int
dummy_a(fc_request *req, fc_response *resp, fc_token *tok, void *data)
{
    (void)req;
    (void)resp;
    (void)tok;
    (void)data;
    return FC_OK;
}

/* A second handler, to tell routes apart. */
static int
dummy_b(fc_request *req, fc_response *resp, fc_token *tok, void *data)
{
    (void)req;
    (void)resp;
    (void)tok;
    (void)data;
    return FC_ERROR;
}

/* Match path and method; return the route's handler name or "404"/"405". */
static const char *
route_of(const struct router *r, const char *path, const char *method)
{
    const struct route *rt;
    int                 status = 0;

    if ((rt = router_match(r, path, method, &status)) != NULL)
        return rt->handler_name;
    return status == 404 ? "404" : status == 405 ? "405" : "?";
}

/* Exact paths match exactly. */
static void
test_router_exact(void)
{
    struct router r = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/x", 0, "x", dummy_a, NULL,
        NULL));
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/x", "GET"), "x");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/x/", "GET"), "404");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/xy", "GET"), "404");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/", "GET"), "404");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "", "GET"), "404");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/X", "GET"), "404");
    CU_ASSERT_EQUAL(r.routes[0].prefix, 0);
    router_free(&r);
    CU_ASSERT_EQUAL(r.n, 0);
}

/* A prefix route ("/a/" then "*") matches "/a", "/a/" and what is under it. */
static void
test_router_prefix(void)
{
    struct router r = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/a/*", 0, "a", dummy_a, NULL,
        NULL));
    CU_ASSERT_EQUAL(r.routes[0].prefix, 1);
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/a/b", "GET"), "a");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/a/b/c", "GET"), "a");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/a/", "GET"), "a");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/a", "GET"), "a");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/ab", "GET"), "404");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/", "GET"), "404");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/b/a/", "GET"), "404");
    router_free(&r);
}

/* No path matches: 404; a path matches but not the method: 405. */
static void
test_router_404_405(void)
{
    struct router r = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/p", METHOD_GET | METHOD_HEAD,
        "p", dummy_a, NULL, NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/d/*", METHOD_DELETE, "d",
        dummy_a, NULL, NULL));
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/p", "GET"), "p");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/p", "HEAD"), "p");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/p", "POST"), "405");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/p", "BREW"), "405");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/p", "get"), "405");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/q", "GET"), "404");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/q", "POST"), "404");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/d/1", "DELETE"), "d");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/d/1", "GET"), "405");
    router_free(&r);
}

/* Routes are tried in order: the first match wins, method by method. */
static void
test_router_first_wins(void)
{
    struct router       r = { 0 };
    const struct route *rt;
    int                 status = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/s", METHOD_POST, "post",
        dummy_a, NULL, NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/s", 0, "any", dummy_a, NULL,
        NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/s", 0, "shadowed", dummy_b,
        NULL, NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/*", 0, "catchall", dummy_b,
        NULL, NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(&r, "/t", 0, "late", dummy_a,
        NULL, NULL));
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/s", "POST"), "post");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/s", "GET"), "any");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/s", "BREW"), "any");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/t", "GET"), "catchall");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/anything", "GET"), "catchall");
    rt = router_match(&r, "/s", "GET", &status);
    CU_ASSERT(rt != NULL && rt->fn == dummy_a && rt == &r.routes[1]);
    router_free(&r);
}

/* The method names, and the default table (the recipe's routes). */
static void
test_router_defaults(void)
{
    static const char *const recipe[] = {
        "/cancel_tg", "/cancel_tg_dependency", "/cancel_event"
    };
    struct router r = { 0 };
    size_t        i;

    CU_ASSERT_EQUAL(router_method_bit("GET"), METHOD_GET);
    CU_ASSERT_EQUAL(router_method_bit("HEAD"), METHOD_HEAD);
    CU_ASSERT_EQUAL(router_method_bit("POST"), METHOD_POST);
    CU_ASSERT_EQUAL(router_method_bit("PUT"), METHOD_PUT);
    CU_ASSERT_EQUAL(router_method_bit("DELETE"), METHOD_DELETE);
    CU_ASSERT_EQUAL(router_method_bit("PATCH"), METHOD_PATCH);
    CU_ASSERT_EQUAL(router_method_bit("OPTIONS"), METHOD_OPTIONS);
    CU_ASSERT_EQUAL(router_method_bit("BREW"), 0);
    CU_ASSERT_EQUAL(router_method_bit(""), 0);

    CU_ASSERT_EQUAL_FATAL(router_defaults(&r), 0);
    for (i = 0; i < sizeof recipe / sizeof recipe[0]; i++) {
        CU_ASSERT_STRING_EQUAL(route_of(&r, recipe[i], "GET"), "work");
        CU_ASSERT_STRING_EQUAL(route_of(&r, recipe[i], "POST"), "405");
    }
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/status", "GET"), "status");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/ping", "GET"), "ping");
    CU_ASSERT_STRING_EQUAL(route_of(&r, "/nope", "GET"), "404");
    router_free(&r);            /* frees the work options too (ASan) */
}

static CU_TestInfo router_tests[] = {
    { "exact path", test_router_exact },
    { "prefix route", test_router_prefix },
    { "404 and 405", test_router_404_405 },
    { "first route wins", test_router_first_wins },
    { "methods and default routes", test_router_defaults },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "router", NULL, NULL, NULL, NULL, router_tests },
    CU_SUITE_INFO_NULL
};

int
main(void)
{
    return unit_run("test_router", suites, 60);
}
