/* SPDX-License-Identifier: MIT */
/*
 * status.c - counters of what the server did, and the /status and /ping
 * handlers.  The names of the /status document are an interface that
 * operators and tests rely on (see README): fields may be added, never
 * renamed.  Cancel latencies (cancel -> job returned) are kept in a ring of
 * the last 4096 samples, for p50/p99/max, written without a lock (each
 * slot, the count and the max are atomics): when thousands of jobs are
 * cancelled at once, a job that would wait for a lock here, held by a
 * thread the scheduler has just preempted, returns late.  /status reads
 * the ring under `copy_mtx`, which guards only its copy; a sample counted
 * but not yet stored reads as the one before it in that slot.
 * Numbers that are not counts are written with a fixed number of
 * decimals (json_object_new_double_s()), never as 0.086999999999999994.
 * /status?full adds the requests in flight, as the watcher's slots know
 * them (watcher_jobs()), like PHP-FPM's ?full.
 * The two handlers' rows in the handler registry (handler_status,
 * handler_ping, at the end) give each its default route.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "generation.h"
#include "handlers/handlers.h"
#include "handlers/sql.h"
#include "status.h"
#include "watcher.h"
#include "util.h"

#define LAT_SAMPLES 4096

struct stats stats;

/* The watcher, to list stragglers; set once before the workers start. */
static struct watcher  *status_watcher;

static _Atomic uint32_t lat_us[LAT_SAMPLES];
static _Atomic uint64_t lat_count;
static _Atomic uint32_t lat_max;
static pthread_mutex_t  copy_mtx = PTHREAD_MUTEX_INITIALIZER;

void
stats_init(int workers)
{
    int i;

    atomic_store(&stats.accepted, 0);
    atomic_store(&stats.completed, 0);
    atomic_store(&stats.cancelled, 0);
    atomic_store(&stats.failed, 0);
    for (i = 0; i < FC_REASON__MAX; i++)
        atomic_store(&stats.by_reason[i], 0);
    atomic_store(&stats.in_flight, 0);
    atomic_store(&stats.busy, 0);
    atomic_store(&stats.connections, 0);
    atomic_store(&stats.slow, 0);
    atomic_store(&stats.arriving, 0);
    atomic_store(&stats.read_timeouts, 0);
    atomic_store(&stats.open_connections, 0);
    atomic_store(&stats.refused_connections, 0);
    atomic_store(&stats.dropped_max_connections, 0);
    atomic_store(&stats.arriving_bytes, 0);
    atomic_store(&stats.dropped_max_arriving_bytes, 0);
    stats.workers = workers;
    stats.start_ns = now_ns();
    atomic_store(&lat_count, 0);
    atomic_store(&lat_max, 0);
}

void
stats_end(enum outcome outcome, enum fc_reason reason)
{
    switch (outcome) {
    case OUTCOME_COMPLETED:
        atomic_fetch_add_explicit(&stats.completed, 1, memory_order_relaxed);
        break;
    case OUTCOME_CANCELLED:
        if (reason <= FC_REASON_NONE || reason >= FC_REASON__MAX)
            reason = FC_REASON_NONE;
        atomic_fetch_add_explicit(&stats.by_reason[reason], 1,
            memory_order_relaxed);
        atomic_fetch_add_explicit(&stats.cancelled, 1, memory_order_relaxed);
        break;
    case OUTCOME_FAILED:
        atomic_fetch_add_explicit(&stats.failed, 1, memory_order_relaxed);
        break;
    }
}

void
stats_cancel_latency(uint64_t ns)
{
    uint64_t us = ns / 1000;
    uint32_t v = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    uint64_t i = atomic_fetch_add_explicit(&lat_count, 1,
        memory_order_relaxed);
    uint32_t max = atomic_load_explicit(&lat_max, memory_order_relaxed);

    atomic_store_explicit(&lat_us[i % LAT_SAMPLES], v, memory_order_relaxed);
    while (v > max && !atomic_compare_exchange_weak_explicit(&lat_max, &max,
        v, memory_order_relaxed, memory_order_relaxed))
        ;
}

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* Return a JSON number of ms milliseconds, written with 3 decimals. */
void *
status_ms(double ms)
{
    char text[32];

    snprintf(text, sizeof text, "%.3f", ms);
    return json_object_new_double_s(ms, text);
}

/* The cancel-latency object: samples, p50, p99 and max in milliseconds. */
static json_object *
status_latency(void)
{
    static uint32_t  copy[LAT_SAMPLES];     /* protected by copy_mtx */
    json_object     *o = json_object_new_object();
    uint64_t         count;
    size_t           n, i;
    double           p50 = 0, p99 = 0, max;

    xmutex_lock(&copy_mtx);
    count = atomic_load_explicit(&lat_count, memory_order_relaxed);
    n = count < LAT_SAMPLES ? (size_t)count : LAT_SAMPLES;
    for (i = 0; i < n; i++)
        copy[i] = atomic_load_explicit(&lat_us[i], memory_order_relaxed);
    qsort(copy, n, sizeof copy[0], cmp_u32);
    if (n > 0) {
        size_t i50 = (n - 1) / 2, i99 = (n * 99 + 99) / 100 - 1;

        p50 = copy[i50] / 1000.0;
        p99 = copy[i99] / 1000.0;
    }
    xmutex_unlock(&copy_mtx);
    max = atomic_load_explicit(&lat_max, memory_order_relaxed) / 1000.0;
    json_object_object_add(o, "samples", json_object_new_int64(
        (int64_t)count));
    json_object_object_add(o, "p50_ms", status_ms(p50));
    json_object_object_add(o, "p99_ms", status_ms(p99));
    json_object_object_add(o, "max_ms", status_ms(max));
    return o;
}

void
stats_set_watcher(struct watcher *w)
{
    status_watcher = w;
}

/* Add one straggler to the array arg. */
static void
status_straggler(void *arg, uint64_t id, enum fc_reason reason,
    uint64_t since_ns)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_int64((int64_t)id));
    json_object_object_add(o, "reason", json_object_new_string(
        fc_reason_name(reason)));
    json_object_object_add(o, "since_cancel_ms", json_object_new_int64(
        (int64_t)(since_ns / 1000000u)));
    json_object_array_add(arg, o);
}

int
stats_straggler_count(void)
{
    return status_watcher != NULL ?
        watcher_stragglers(status_watcher, NULL, NULL) : 0;
}

/* Add one request in flight to the array arg, for ?full. */
static void
status_job(void *arg, const struct watcher_job *j)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_int64((int64_t)j->id));
    json_object_object_add(o, "route", j->route != NULL ?
        json_object_new_string(j->route) : NULL);
    json_object_object_add(o, "method", j->method != NULL ?
        json_object_new_string(j->method) : NULL);
    json_object_object_add(o, "client", j->client != NULL ?
        json_object_new_string(j->client) : NULL);
    json_object_object_add(o, "elapsed_ms", status_ms(
        (double)j->elapsed_ns / 1e6));
    json_object_object_add(o, "cancelled", json_object_new_boolean(
        j->reason != FC_REASON_NONE));
    json_object_object_add(o, "reason", j->reason != FC_REASON_NONE ?
        json_object_new_string(fc_reason_name(j->reason)) : NULL);
    json_object_array_add(arg, o);
}

static json_object *
u64(_Atomic uint64_t *v)
{
    return json_object_new_int64((int64_t)atomic_load_explicit(v,
        memory_order_relaxed));
}

void *
status_json(int full)
{
    json_object *root = json_object_new_object();
    json_object *r = json_object_new_object();
    json_object *w = json_object_new_object();
    int          i;

    json_object_object_add(r, "accepted", u64(&stats.accepted));
    json_object_object_add(r, "completed", u64(&stats.completed));
    json_object_object_add(r, "cancelled", u64(&stats.cancelled));
    json_object_object_add(r, "failed", u64(&stats.failed));
    json_object_object_add(root, "requests", r);

    r = json_object_new_object();
    for (i = FC_REASON_NONE + 1; i < FC_REASON__MAX; i++)
        json_object_object_add(r, fc_reason_name((enum fc_reason)i),
            u64(&stats.by_reason[i]));
    json_object_object_add(root, "cancelled_by_reason", r);

    json_object_object_add(root, "in_flight", json_object_new_int64(
        atomic_load_explicit(&stats.in_flight, memory_order_relaxed)));
    json_object_object_add(w, "total", json_object_new_int(stats.workers));
    json_object_object_add(w, "busy", json_object_new_int64(
        atomic_load_explicit(&stats.busy, memory_order_relaxed)));
    json_object_object_add(root, "workers", w);
    json_object_object_add(root, "connections", u64(&stats.connections));
    json_object_object_add(root, "arriving", json_object_new_int64(
        atomic_load_explicit(&stats.arriving, memory_order_relaxed)));
    json_object_object_add(root, "read_timeouts", u64(&stats.read_timeouts));
    json_object_object_add(root, "slow", u64(&stats.slow));
    json_object_object_add(root, "open_connections", json_object_new_int64(
        atomic_load_explicit(&stats.open_connections, memory_order_relaxed)));
    json_object_object_add(root, "refused_connections",
        u64(&stats.refused_connections));
    json_object_object_add(root, "dropped_max_connections",
        u64(&stats.dropped_max_connections));
    json_object_object_add(root, "arriving_bytes", json_object_new_int64(
        atomic_load_explicit(&stats.arriving_bytes, memory_order_relaxed)));
    json_object_object_add(root, "dropped_max_arriving_bytes",
        u64(&stats.dropped_max_arriving_bytes));
    json_object_object_add(root, "cancel_latency", status_latency());
    /* Jobs still running although cancelled: they ignore their token. */
    r = json_object_new_array();
    if (status_watcher != NULL)
        watcher_stragglers(status_watcher, status_straggler, r);
    json_object_object_add(root, "stragglers", r);
    /* Per sql route: statements, cancels, the database's stop times. */
    json_object_object_add(root, "sql", sql_status_json());
    /* The configuration's: 1 at start-up, one more per reload. */
    json_object_object_add(root, "generation", json_object_new_int64(
        (int64_t)gen_number()));
    json_object_object_add(root, "uptime_s", json_object_new_int64(
        (int64_t)((now_ns() - stats.start_ns) / 1000000000u)));
    if (full) {
        r = json_object_new_array();
        if (status_watcher != NULL)
            watcher_jobs(status_watcher, 0, status_job, r);
        json_object_object_add(root, "jobs", r);
    }
    return root;
}

int
status_handler(fc_request *req, fc_response *resp, fc_token *tok, void *data)
{
    json_object *o = status_json(req != NULL &&
        fc_request_query(req, "full") != NULL);
    int          rc;

    fc_response_header(resp, "Cache-Control", "no-store");
    rc = fc_response_json(resp, 200, o);
    json_object_put(o);
    return rc == 0 ? FC_OK : FC_ERROR;
}

int
ping_handler(fc_request *req, fc_response *resp, fc_token *tok, void *data)
{
    fc_response_header(resp, "Content-Type", "text/plain");
    fc_response_header(resp, "Cache-Control", "no-store");
    return fc_response_write(resp, "pong", 4) == 0 ? FC_OK : FC_ERROR;
}

/* The rows of the two in the handler registry: no options, a route each. */
static const char *const status_default_routes[] = {
    "{\"path\": \"/status\", \"methods\": [\"GET\", \"HEAD\"], "
    "\"handler\": \"status\"}",
    NULL
};

const struct handler_def handler_status = {
    .name = "status",
    .handler = status_handler,
    .default_routes = status_default_routes,
};

static const char *const ping_default_routes[] = {
    "{\"path\": \"/ping\", \"handler\": \"ping\"}",
    NULL
};

const struct handler_def handler_ping = {
    .name = "ping",
    .handler = ping_handler,
    .default_routes = ping_default_routes,
};
