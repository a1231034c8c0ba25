/* SPDX-License-Identifier: MIT */
/*
 * test_metrics.c - unit tests of the exposition writer (expo.c): the
 * Accept negotiation, numbers, label escaping, counters and histograms in
 * both formats; and of metrics.c: what metrics_request() and friends move
 * on the per-worker blocks, summed in the scrape, and the /metrics
 * handler's answer through an in-memory FCGX_Stream.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "expo.h"
#include "fcgi_cancel.h"
#include "memstream.h"
#include "metrics.h"
#include "request.h"
#include "router.h"
#include "status.h"
#include "token.h"
#include "unit.h"

/* Accept headers and the format each gets. */
static void
test_negotiate(void)
{
    static const struct {
        const char         *accept;
        enum expo_format    want;
    } cases[] = {
        { NULL, EXPO_TEXT },
        { "", EXPO_TEXT },
        { "*/*", EXPO_TEXT },
        { "text/plain", EXPO_TEXT },
        { "application/openmetrics-text", EXPO_OPENMETRICS },
        { "Application/OpenMetrics-Text; version=1.0.0", EXPO_OPENMETRICS },
        /* What Prometheus 2.42 sends. */
        { "application/openmetrics-text;version=1.0.0,application/"
          "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;"
          "q=0.5,*/*;q=0.1", EXPO_OPENMETRICS },
        { "text/plain;version=0.0.4;q=1, application/openmetrics-text;"
          "q=0.5", EXPO_TEXT },
        { "application/openmetrics-text;q=0", EXPO_TEXT },
        { "text/html,application/xhtml+xml,*/*;q=0.8", EXPO_TEXT },
        { "application/openmetrics-textx", EXPO_TEXT },
    };
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (expo_negotiate(cases[i].accept) != cases[i].want)
            fprintf(stderr, "negotiate \"%s\"\n", cases[i].accept);
        CU_ASSERT_EQUAL(expo_negotiate(cases[i].accept), cases[i].want);
    }
    CU_ASSERT_STRING_EQUAL(expo_content_type(EXPO_TEXT),
        "text/plain; version=0.0.4; charset=utf-8");
    CU_ASSERT_STRING_EQUAL(expo_content_type(EXPO_OPENMETRICS),
        "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

/* Numbers: integers bare, fractions the shortest that reads back. */
static void
test_number(void)
{
    char s[40];

    CU_ASSERT_STRING_EQUAL(expo_number(s, sizeof s, 0), "0");
    CU_ASSERT_STRING_EQUAL(expo_number(s, sizeof s, 42), "42");
    CU_ASSERT_STRING_EQUAL(expo_number(s, sizeof s, -3), "-3");
    CU_ASSERT_STRING_EQUAL(expo_number(s, sizeof s, 0.087), "0.087");
    CU_ASSERT_STRING_EQUAL(expo_number(s, sizeof s, 0.005), "0.005");
    CU_ASSERT_STRING_EQUAL(expo_number(s, sizeof s, 2.5), "2.5");
    CU_ASSERT_STRING_EQUAL(expo_number(s, sizeof s, 1e20), "1e+20");
    CU_ASSERT_STRING_EQUAL(expo_number(s, sizeof s, INFINITY), "+Inf");
    CU_ASSERT_STRING_EQUAL(expo_number(s, sizeof s, -INFINITY), "-Inf");
    CU_ASSERT_STRING_EQUAL(expo_number(s, sizeof s, NAN), "NaN");
    CU_ASSERT_EQUAL(strtod(expo_number(s, sizeof s, 0.1 + 0.2), NULL),
        0.1 + 0.2);
}

/* Write the same families in format; return the text (caller frees). */
static char *
write_sample(enum expo_format format)
{
    static const double    bounds[] = { 0.1, 1 };
    static const uint64_t  counts[] = { 1, 2, 3 };
    const char            *l[] = { "route", "/a\"b\\c\nd", NULL };
    const char            *l2[] = { "route", "/x", "outcome", "completed",
                              NULL };
    struct buf             b = { NULL, 0, 0 };
    struct expo            e;

    expo_init(&e, &b, format);
    expo_family(&e, "t_requests", EXPO_COUNTER, "Requests.");
    expo_sample(&e, l2, 7);
    expo_sample(&e, l, 1);
    expo_family(&e, "t_in_flight", EXPO_GAUGE, "In flight.");
    expo_sample(&e, NULL, 3);
    expo_family(&e, "t_seconds", EXPO_HISTOGRAM, "Durations.");
    expo_histogram(&e, l2, bounds, 2, counts, 4.5);
    CU_ASSERT_EQUAL(expo_end(&e), 0);
    return b.data;
}

/* The text format 0.0.4: _total in HELP and TYPE, no # EOF. */
static void
test_text(void)
{
    char *t = write_sample(EXPO_TEXT);

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_STRING_EQUAL(t,
        "# HELP t_requests_total Requests.\n"
        "# TYPE t_requests_total counter\n"
        "t_requests_total{route=\"/x\",outcome=\"completed\"} 7\n"
        "t_requests_total{route=\"/a\\\"b\\\\c\\nd\"} 1\n"
        "# HELP t_in_flight In flight.\n"
        "# TYPE t_in_flight gauge\n"
        "t_in_flight 3\n"
        "# HELP t_seconds Durations.\n"
        "# TYPE t_seconds histogram\n"
        "t_seconds_bucket{route=\"/x\",outcome=\"completed\",le=\"0.1\"} 1\n"
        "t_seconds_bucket{route=\"/x\",outcome=\"completed\",le=\"1\"} 3\n"
        "t_seconds_bucket{route=\"/x\",outcome=\"completed\",le=\"+Inf\"} 6\n"
        "t_seconds_sum{route=\"/x\",outcome=\"completed\"} 4.5\n"
        "t_seconds_count{route=\"/x\",outcome=\"completed\"} 6\n");
    free(t);
}

/* OpenMetrics: the counter family without _total, samples with it, EOF. */
static void
test_openmetrics(void)
{
    char *t = write_sample(EXPO_OPENMETRICS);

    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT(strncmp(t, "# HELP t_requests Requests.\n"
        "# TYPE t_requests counter\n"
        "t_requests_total{route=\"/x\",outcome=\"completed\"} 7\n",
        strlen("# HELP t_requests Requests.\n"
        "# TYPE t_requests counter\n"
        "t_requests_total{route=\"/x\",outcome=\"completed\"} 7\n")) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "# TYPE t_seconds histogram\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(t, "\nt_seconds_count{route=\"/x\","
        "outcome=\"completed\"} 6\n# EOF\n"));
    CU_ASSERT_EQUAL(strlen(strstr(t, "# EOF\n")), strlen("# EOF\n"));
    free(t);
}

/* Return the value of the sample line that begins with prefix, or -1. */
static double
value_of(const char *text, const char *prefix)
{
    const char *p = text;
    size_t      n = strlen(prefix);

    while (p != NULL && *p != '\0') {
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        if ((p = strchr(p, '\n')) != NULL)
            p++;
    }
    return -1;
}

/* A router of two routes, for the counter tests. */
static void
two_routes(struct router *r)
{
    memset(r, 0, sizeof *r);
    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(r, "/a", 0, "ping",
        ping_handler, NULL, NULL));
    CU_ASSERT_PTR_NOT_NULL_FATAL(router_add(r, "/jobs/*", 0, "ping",
        ping_handler, NULL, NULL));
}

/* Ends on two workers are summed per route, outcome, reason and class. */
static void
test_counters(void)
{
    struct router   r;
    struct buf      b = { NULL, 0, 0 };

    two_routes(&r);
    stats_init(2);
    CU_ASSERT_EQUAL_FATAL(metrics_init(2), 0);
    metrics_request(0, &r.routes[0], OUTCOME_COMPLETED, FC_REASON_NONE,
        200, 2000000);
    metrics_request(1, &r.routes[0], OUTCOME_COMPLETED, FC_REASON_NONE,
        200, 40000000);
    metrics_request(1, &r.routes[1], OUTCOME_CANCELLED, FC_CLIENT_GONE,
        499, 1500000000);
    metrics_request(0, NULL, OUTCOME_COMPLETED, FC_REASON_NONE, 404, 1000);
    metrics_request(0, &r.routes[0], OUTCOME_FAILED, FC_REASON_NONE, 500,
        1000);
    metrics_request(7, &r.routes[0], OUTCOME_FAILED, FC_REASON_NONE, 500,
        1000);                              /* no such worker: ignored */
    metrics_cancel_latency(1, 300000);      /* 0.3 ms */
    metrics_refused(0, 413);
    metrics_refused(1, 431);
    metrics_refused(1, 431);
    CU_ASSERT_EQUAL_FATAL(metrics_write(&b, EXPO_TEXT), 0);

    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_requests_total{route="
        "\"/a\",outcome=\"completed\",reason=\"none\"}"), 2);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_requests_total{route="
        "\"/a\",outcome=\"failed\",reason=\"none\"}"), 1);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_requests_total{route="
        "\"/jobs/*\",outcome=\"cancelled\",reason=\"client_gone\"}"), 1);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_requests_total{route="
        "\"/jobs/*\",outcome=\"cancelled\",reason=\"deadline\"}"), 0);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_requests_total{route="
        "\"none\",outcome=\"completed\",reason=\"none\"}"), 1);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_responses_total{route="
        "\"/a\",code=\"2xx\"}"), 2);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_responses_total{route="
        "\"/a\",code=\"5xx\"}"), 1);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_responses_total{route="
        "\"/jobs/*\",code=\"4xx\"}"), 1);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_responses_total{route="
        "\"none\",code=\"4xx\"}"), 1);
    /* 2 ms and 40 ms and 1 us: le 0.005 holds 2, le 0.05 all 3. */
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_request_duration_seconds_"
        "bucket{route=\"/a\",le=\"0.005\"}"), 2);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_request_duration_seconds_"
        "bucket{route=\"/a\",le=\"0.05\"}"), 3);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_request_duration_seconds_"
        "count{route=\"/a\"}"), 3);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_request_duration_seconds_"
        "sum{route=\"/a\"}"), 0.042001);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_request_duration_seconds_"
        "bucket{route=\"/jobs/*\",le=\"1\"}"), 0);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_request_duration_seconds_"
        "bucket{route=\"/jobs/*\",le=\"2.5\"}"), 1);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_cancel_latency_seconds_"
        "bucket{le=\"0.00025\"}"), 0);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_cancel_latency_seconds_"
        "bucket{le=\"0.0005\"}"), 1);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_cancel_latency_seconds_"
        "sum"), 0.0003);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_refused_requests_total{"
        "code=\"413\"}"), 1);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_refused_requests_total{"
        "code=\"431\"}"), 2);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_workers"), 2);
    CU_ASSERT(value_of(b.data, "process_open_fds") > 2);
    CU_ASSERT(value_of(b.data, "process_start_time_seconds") > 1.5e9);
    CU_ASSERT(value_of(b.data, "process_resident_memory_bytes") > 0);
    CU_ASSERT(value_of(b.data, "process_cpu_seconds_total") >= 0);
    buf_free(&b);

    /* metrics_init() starts again from zero. */
    CU_ASSERT_EQUAL_FATAL(metrics_init(1), 0);
    CU_ASSERT_EQUAL_FATAL(metrics_write(&b, EXPO_OPENMETRICS), 0);
    CU_ASSERT_EQUAL(value_of(b.data, "fcgi_cancel_requests_total{route="
        "\"/a\",outcome=\"completed\",reason=\"none\"}"), 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "# TYPE process_cpu_seconds "
        "counter\n"));
    buf_free(&b);
    metrics_fini();
    router_free(&r);
}

/* The handler: format by Accept, Content-Type with its version. */
static void
test_handler(void)
{
    static char         om[] = "HTTP_ACCEPT=application/openmetrics-text";
    static char         meth[] = "REQUEST_METHOD=GET";
    char               *envp[] = { meth, om, NULL };
    struct router       r;
    struct memstream    k;
    fc_token           *tok = token_new(NULL);
    fc_request         *req;
    fc_response        *resp;
    const char         *text;

    two_routes(&r);
    stats_init(1);
    CU_ASSERT_EQUAL_FATAL(metrics_init(1), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);

    memstream_init(&k, MEMSTREAM_SMALL, -1);
    resp = response_new(&k.s, tok);
    CU_ASSERT_EQUAL(metrics_handler(NULL, resp, tok, NULL), FC_OK);
    text = memstream_text(&k);
    CU_ASSERT(strncmp(text, "Status: 200 OK\r\n", 16) == 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "Content-Type: text/plain; "
        "version=0.0.4; charset=utf-8\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE fcgi_cancel_requests_total "
        "counter\n"));
    CU_ASSERT_PTR_NULL(strstr(text, "# EOF"));
    response_free(resp);
    memstream_free(&k);

    memstream_init(&k, MEMSTREAM_SMALL, -1);
    req = request_new(1, envp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    resp = response_new(&k.s, tok);
    CU_ASSERT_EQUAL(metrics_handler(req, resp, tok, NULL), FC_OK);
    text = memstream_text(&k);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "Content-Type: application/"
        "openmetrics-text; version=1.0.0; charset=utf-8\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "# TYPE fcgi_cancel_requests "
        "counter\n"));
    CU_ASSERT(strlen(text) > 6 &&
        strcmp(text + strlen(text) - 6, "# EOF\n") == 0);
    response_free(resp);
    request_free(req);
    memstream_free(&k);

    metrics_fini();
    router_free(&r);
    token_unref(tok);
}

static CU_TestInfo expo_tests[] = {
    { "Accept negotiation", test_negotiate },
    { "numbers", test_number },
    { "text format 0.0.4", test_text },
    { "OpenMetrics 1.0", test_openmetrics },
    CU_TEST_INFO_NULL
};

static CU_TestInfo metrics_tests[] = {
    { "per-worker counters summed", test_counters },
    { "handler", test_handler },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "expo", NULL, NULL, NULL, NULL, expo_tests },
    { "metrics", NULL, NULL, NULL, NULL, metrics_tests },
    CU_SUITE_INFO_NULL
};

int
main(void)
{
    return unit_run("test_metrics", suites, 60);
}
