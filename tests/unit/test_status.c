/* SPDX-License-Identifier: MIT */
/*
 * test_status.c - unit tests of the counters and the /status document
 * (status.c): the documented keys, what stats_end() moves, and the handler's
 * JSON answer through an in-memory FCGX_Stream.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <json-c/json.h>

#include "fcgi_cancel.h"
#include "memstream.h"
#include "request.h"
#include "status.h"
#include "token.h"
#include "unit.h"

/* Return the integer at root.a (or root.a.b), or -12345 if absent. */
static int64_t
jget(json_object *root, const char *a, const char *b)
{
    json_object *o, *v;

    if (!json_object_object_get_ex(root, a, &o))
        return -12345;
    if (b == NULL)
        return json_object_is_type(o, json_type_int) ?
            json_object_get_int64(o) : -12345;
    if (!json_object_object_get_ex(o, b, &v) ||
        !json_object_is_type(v, json_type_int))
        return -12345;
    return json_object_get_int64(v);
}

/* The document has every documented key, as integers, zero after init. */
static void
test_status_keys(void)
{
    static const char *const requests[] = {
        "accepted", "completed", "cancelled", "failed"
    };
    static const char *const reasons[] = {
        "client_gone", "aborted", "write_error", "deadline", "shutdown"
    };
    json_object *root;
    size_t       i;

    stats_init(4);
    root = status_json(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    for (i = 0; i < sizeof requests / sizeof requests[0]; i++)
        CU_ASSERT_EQUAL(jget(root, "requests", requests[i]), 0);
    for (i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", reasons[i]), 0);
    CU_ASSERT_EQUAL(jget(root, "in_flight", NULL), 0);
    CU_ASSERT_EQUAL(jget(root, "workers", "total"), 4);
    CU_ASSERT_EQUAL(jget(root, "workers", "busy"), 0);
    CU_ASSERT_EQUAL(jget(root, "uptime_s", NULL), 0);
    CU_ASSERT_EQUAL(jget(root, "generation", NULL), 0);  /* none yet */
    CU_ASSERT_EQUAL(jget(root, "cancel_latency", "samples"), 0);
    json_object_put(root);
}

/* stats_end() moves exactly the counters of the outcome and reason. */
static void
test_status_counters(void)
{
    json_object *root;
    int          i;

    stats_init(2);
    atomic_fetch_add(&stats.accepted, 9);
    atomic_fetch_add(&stats.in_flight, 3);
    atomic_fetch_add(&stats.busy, 2);
    stats_end(OUTCOME_COMPLETED, FC_REASON_NONE);
    stats_end(OUTCOME_COMPLETED, FC_DEADLINE);      /* reason ignored */
    stats_end(OUTCOME_FAILED, FC_REASON_NONE);
    for (i = 0; i < 3; i++)
        stats_end(OUTCOME_CANCELLED, FC_CLIENT_GONE);
    stats_end(OUTCOME_CANCELLED, FC_ABORTED);
    stats_end(OUTCOME_CANCELLED, FC_WRITE_ERROR);
    stats_end(OUTCOME_CANCELLED, FC_DEADLINE);
    stats_end(OUTCOME_CANCELLED, FC_DEADLINE);
    stats_end(OUTCOME_CANCELLED, FC_SHUTDOWN);
    stats_end(OUTCOME_CANCELLED, FC_REASON_NONE);   /* counted, no reason */
    stats_end(OUTCOME_CANCELLED, (enum fc_reason)77);
    stats_cancel_latency(2500000);
    stats_cancel_latency(500000);

    root = status_json(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_EQUAL(jget(root, "requests", "accepted"), 9);
    CU_ASSERT_EQUAL(jget(root, "requests", "completed"), 2);
    CU_ASSERT_EQUAL(jget(root, "requests", "failed"), 1);
    CU_ASSERT_EQUAL(jget(root, "requests", "cancelled"), 10);
    CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", "client_gone"), 3);
    CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", "aborted"), 1);
    CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", "write_error"), 1);
    CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", "deadline"), 2);
    CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", "shutdown"), 1);
    CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", "none"), -12345);
    CU_ASSERT_EQUAL(jget(root, "in_flight", NULL), 3);
    CU_ASSERT_EQUAL(jget(root, "workers", "total"), 2);
    CU_ASSERT_EQUAL(jget(root, "workers", "busy"), 2);
    CU_ASSERT_EQUAL(jget(root, "cancel_latency", "samples"), 2);
    json_object_put(root);

    /* stats_init() starts again from zero. */
    stats_init(2);
    root = status_json(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_EQUAL(jget(root, "requests", "cancelled"), 0);
    CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", "client_gone"), 0);
    CU_ASSERT_EQUAL(jget(root, "cancel_latency", "samples"), 0);
    json_object_put(root);
}

/* Milliseconds at 3 decimals; "jobs" only when asked for (?full). */
static void
test_status_precision_full(void)
{
    json_object *root, *jobs;
    const char  *text;

    stats_init(1);
    stats_cancel_latency(87000);            /* 0.087 ms */
    stats_cancel_latency(2500000);
    root = status_json(0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"p50_ms\":0.087,"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"max_ms\":2.500"));
    CU_ASSERT_PTR_NULL(strstr(text, "0.08699"));
    CU_ASSERT_FALSE(json_object_object_get_ex(root, "jobs", NULL));
    CU_ASSERT_EQUAL(jget(root, "slow", NULL), 0);
    CU_ASSERT_EQUAL(jget(root, "open_connections", NULL), 0);
    json_object_put(root);
    root = status_json(1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_FATAL(json_object_object_get_ex(root, "jobs", &jobs));
    CU_ASSERT(json_object_is_type(jobs, json_type_array));
    CU_ASSERT_EQUAL(json_object_array_length(jobs), 0);    /* no watcher */
    json_object_put(root);
}

/* The /status handler answers the same document as JSON. */
static void
test_status_handler(void)
{
    struct memstream  k;
    fc_token         *tok = token_new(NULL);
    fc_response      *resp;
    json_object      *root;
    const char       *text, *body;

    stats_init(3);
    stats_end(OUTCOME_CANCELLED, FC_ABORTED);
    memstream_init(&k, MEMSTREAM_SMALL, -1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    resp = response_new(&k.s, tok);
    CU_ASSERT_PTR_NOT_NULL_FATAL(resp);
    CU_ASSERT_EQUAL(status_handler(NULL, resp, tok, NULL), FC_OK);
    text = memstream_text(&k);
    CU_ASSERT(strncmp(text, "Status: 200 OK\r\n", 16) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "Content-Type: application/json"));
    body = strstr(text, "\r\n\r\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    root = json_tokener_parse(body + 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    CU_ASSERT_EQUAL(jget(root, "cancelled_by_reason", "aborted"), 1);
    CU_ASSERT_EQUAL(jget(root, "workers", "total"), 3);
    json_object_put(root);
    response_free(resp);
    memstream_free(&k);
    token_unref(tok);
}

static CU_TestInfo status_tests[] = {
    { "documented keys", test_status_keys },
    { "stats_end moves the right counters", test_status_counters },
    { "3 decimals, ?full", test_status_precision_full },
    { "status handler", test_status_handler },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "status", NULL, NULL, NULL, NULL, status_tests },
    CU_SUITE_INFO_NULL
};

int
main(void)
{
    return unit_run("test_status", suites, 60);
}
