/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - what /metrics exposes, and the counters behind it.
 *
 * DESIGN
 * ------
 * A request's end is counted on the hot path of every worker, so nothing
 * it touches is shared: each worker owns one counter block (struct
 * metrics_worker, on cache lines of its own), with one struct
 * metrics_route per configured route plus one for "none" (no route
 * matched, or the request was refused before routing).  Only the worker's
 * thread writes its block, with relaxed atomic loads and stores (no
 * read-modify-write is needed with one writer); a scrape reads every
 * block with relaxed loads and sums them.  A sum may be a few requests
 * behind, never torn; a counter never goes back.
 *
 * Label values come from the configuration only: "route" is the route's
 * path as written ("/jobs/" and a star for a prefix), or "none"; "outcome" and
 * "reason" are the names of enum outcome and enum fc_reason, "code" a
 * status class.  The series count is bounded by the number of routes.
 *
 * Gauges of the pool (in flight, busy workers, open connections, ...)
 * are the process-wide atomics of status.c, read at scrape time; the
 * handlers export their own series through handler_def.metrics (the exec
 * handler: its running programs).  The process_* metrics are read from
 * /proc/self at scrape time.
 *
 * Locking: none.  metrics_init() and metrics_fini() run while no worker
 * runs (pool.c calls them before the workers start and after they
 * stopped); in between `blocks` and `nworkers` do not change.
 */
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "handlers/handlers.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "watcher.h"

#define METRICS_LINE    64      /* bytes: a counter block's alignment */

/* The buckets of the request duration histogram, in seconds. */
static const double dur_bounds[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300
};
#define DUR_NB  nitems(dur_bounds)

/* The buckets of the cancel -> job returned histogram, in seconds. */
static const double lat_bounds[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1, 5
};
#define LAT_NB  nitems(lat_bounds)

/* The status classes counted, "1xx" .. "5xx". */
#define CODE_CLASSES    5

/* Where a request's end is counted: completed, failed, then one per
 * cancel reason (FC_REASON_NONE + 1 .. FC_REASON__MAX - 1). */
enum {
    END_COMPLETED,
    END_FAILED,
    END_CANCELLED,
    END__MAX = END_CANCELLED + FC_REASON__MAX - 1
};

typedef _Atomic uint64_t counter;

/* One route's counters in one worker's block. */
struct metrics_route {
    counter     ends[END__MAX];
    counter     codes[CODE_CLASSES];
    counter     dur[DUR_NB + 1];            /* not cumulative */
    counter     dur_sum_ns;
};

/* One worker's counters; written by its thread only. */
struct metrics_worker {
    counter     lat[LAT_NB + 1];            /* not cumulative */
    counter     lat_sum_ns;
    counter     refused_413;
    counter     refused_431;
    struct metrics_route routes[];          /* nroutes + 1: "none" last */
};

static struct metrics_worker   **blocks;    /* nworkers of them */
static int                      nworkers;
static const struct router     *metrics_router;
static char                   **labels;     /* route labels; "none" last */
static size_t                   nroutes;    /* without "none" */
static uint64_t                 dur_ns[DUR_NB];
static uint64_t                 lat_ns[LAT_NB];

/* Add n to a counter that only this thread writes. */
static inline void
counter_add(counter *c, uint64_t n)
{
    /* Relaxed: one writer, readers only need an untorn value. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) +
        n, memory_order_relaxed);
}

/* Read a counter for a scrape. */
static inline uint64_t
counter_get(counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

/* Return the bucket of v among n increasing bounds (n: above them all). */
static size_t
bucket(const uint64_t *bounds, size_t n, uint64_t v)
{
    size_t i;

    for (i = 0; i < n && v > bounds[i]; i++)
        continue;
    return i;
}

void
metrics_fini(void)
{
    size_t  i;
    int     w;

    for (w = 0; w < nworkers; w++)
        free(blocks[w]);
    free(blocks);
    if (labels != NULL) {
        for (i = 0; i <= nroutes; i++)
            free(labels[i]);
    }
    free(labels);
    blocks = NULL;
    labels = NULL;
    nworkers = 0;
    nroutes = 0;
    metrics_router = NULL;
}

int
metrics_init(const struct router *router, int workers)
{
    size_t  size, i;
    int     w;

    metrics_fini();
    for (i = 0; i < DUR_NB; i++)
        dur_ns[i] = (uint64_t)(dur_bounds[i] * 1e9 + 0.5);
    for (i = 0; i < LAT_NB; i++)
        lat_ns[i] = (uint64_t)(lat_bounds[i] * 1e9 + 0.5);
    nroutes = router->n;
    size = sizeof(struct metrics_worker) +
        (nroutes + 1) * sizeof(struct metrics_route);
    size = (size + METRICS_LINE - 1) / METRICS_LINE * METRICS_LINE;
    if ((labels = calloc(nroutes + 1, sizeof *labels)) == NULL ||
        (blocks = calloc((size_t)workers,
        sizeof(struct metrics_worker *))) == NULL)
        goto fail;
    for (i = 0; i < nroutes; i++) {
        if ((labels[i] = strdup(router->routes[i].name)) == NULL)
            goto fail;
    }
    if ((labels[nroutes] = strdup("none")) == NULL)
        goto fail;
    for (w = 0; w < workers; w++) {
        if ((blocks[w] = aligned_alloc(METRICS_LINE, size)) == NULL)
            goto fail;
        memset(blocks[w], 0, size);
        nworkers = w + 1;
    }
    metrics_router = router;
    return 0;
fail:
    log_errorx("metrics: out of memory");
    metrics_fini();
    return -1;
}

/* Return the index of rt in the router, nroutes for NULL or a stranger. */
static size_t
route_index(const struct route *rt)
{
    size_t i;

    if (rt == NULL || metrics_router == NULL ||
        rt < metrics_router->routes ||
        rt >= metrics_router->routes + nroutes)
        return nroutes;
    i = (size_t)(rt - metrics_router->routes);
    return i;
}

void
metrics_request(int worker, const struct route *rt, enum outcome outcome,
    enum fc_reason reason, int status, uint64_t duration_ns)
{
    struct metrics_route   *m;
    size_t                  end;

    if (worker < 0 || worker >= nworkers)
        return;
    m = &blocks[worker]->routes[route_index(rt)];
    if (outcome == OUTCOME_COMPLETED)
        end = END_COMPLETED;
    else if (outcome == OUTCOME_FAILED || reason <= FC_REASON_NONE ||
        reason >= FC_REASON__MAX)
        end = END_FAILED;
    else
        end = END_CANCELLED + (size_t)reason - 1;
    counter_add(&m->ends[end], 1);
    if (status >= 100 && status < 100 * (CODE_CLASSES + 1))
        counter_add(&m->codes[status / 100 - 1], 1);
    counter_add(&m->dur[bucket(dur_ns, DUR_NB, duration_ns)], 1);
    counter_add(&m->dur_sum_ns, duration_ns);
}

void
metrics_cancel_latency(int worker, uint64_t ns)
{
    if (worker < 0 || worker >= nworkers)
        return;
    counter_add(&blocks[worker]->lat[bucket(lat_ns, LAT_NB, ns)], 1);
    counter_add(&blocks[worker]->lat_sum_ns, ns);
}

void
metrics_refused(int worker, int status)
{
    if (worker < 0 || worker >= nworkers)
        return;
    counter_add(status == 413 ? &blocks[worker]->refused_413 :
        &blocks[worker]->refused_431, 1);
}

/* ---- the scrape ------------------------------------------------------ */

/* The sum of one route's counters over every worker. */
struct route_sum {
    uint64_t    ends[END__MAX];
    uint64_t    codes[CODE_CLASSES];
    uint64_t    dur[DUR_NB + 1];
    uint64_t    dur_sum_ns;
};

/* Sum route i over the workers into s. */
static void
metrics_sum_route(size_t i, struct route_sum *s)
{
    size_t  k;
    int     w;

    memset(s, 0, sizeof *s);
    for (w = 0; w < nworkers; w++) {
        struct metrics_route *m = &blocks[w]->routes[i];

        for (k = 0; k < END__MAX; k++)
            s->ends[k] += counter_get(&m->ends[k]);
        for (k = 0; k < CODE_CLASSES; k++)
            s->codes[k] += counter_get(&m->codes[k]);
        for (k = 0; k <= DUR_NB; k++)
            s->dur[k] += counter_get(&m->dur[k]);
        s->dur_sum_ns += counter_get(&m->dur_sum_ns);
    }
}

/* Return the sum of one counter of struct metrics_worker at offset. */
static uint64_t
metrics_sum_worker(size_t offset)
{
    uint64_t    n = 0;
    int         w;

    for (w = 0; w < nworkers; w++)
        n += counter_get((counter *)(void *)((char *)blocks[w] + offset));
    return n;
}

/* The requests, responses and duration families, a series per route. */
static void
metrics_write_routes(struct expo *e)
{
    static const char *const ends[END__MAX][2] = {
        { "completed", "none" }, { "failed", "none" },
        { "cancelled", "client_gone" }, { "cancelled", "aborted" },
        { "cancelled", "write_error" }, { "cancelled", "deadline" },
        { "cancelled", "shutdown" },
    };
    static const char *const classes[CODE_CLASSES] = {
        "1xx", "2xx", "3xx", "4xx", "5xx"
    };
    struct route_sum   *sums;
    const char         *l[7];
    size_t              i, k;

    if ((sums = calloc(nroutes + 1, sizeof *sums)) == NULL) {
        e->failed = 1;
        return;
    }
    for (i = 0; i <= nroutes; i++)
        metrics_sum_route(i, &sums[i]);
    l[0] = "route";
    l[2] = "outcome";
    l[4] = "reason";
    l[6] = NULL;
    expo_family(e, "fcgi_cancel_requests", EXPO_COUNTER, "Requests ended, "
        "by route, outcome and cancel reason.");
    for (i = 0; i <= nroutes; i++) {
        l[1] = labels[i];
        for (k = 0; k < END__MAX; k++) {
            l[3] = ends[k][0];
            l[5] = ends[k][1];
            expo_sample(e, l, (double)sums[i].ends[k]);
        }
    }
    l[2] = "code";
    l[4] = NULL;
    expo_family(e, "fcgi_cancel_responses", EXPO_COUNTER, "Responses, by "
        "route and status class (499: the client was gone).");
    for (i = 0; i <= nroutes; i++) {
        l[1] = labels[i];
        for (k = 0; k < CODE_CLASSES; k++) {
            l[3] = classes[k];
            expo_sample(e, l, (double)sums[i].codes[k]);
        }
    }
    l[2] = NULL;
    expo_family(e, "fcgi_cancel_request_duration_seconds", EXPO_HISTOGRAM,
        "Time from a request read whole to its response ended, by route.");
    for (i = 0; i <= nroutes; i++) {
        l[1] = labels[i];
        expo_histogram(e, l, dur_bounds, DUR_NB, sums[i].dur,
            (double)sums[i].dur_sum_ns / 1e9);
    }
    free(sums);
}

/* One family of a single unlabelled sample. */
static void
metrics_one(struct expo *e, const char *name, enum expo_type type,
    const char *help, double v)
{
    expo_family(e, name, type, help);
    expo_sample(e, NULL, v);
}

/* Load one of the stats' signed atomics as a double. */
#define GAUGE(f)    ((double)atomic_load_explicit(&stats.f, \
                        memory_order_relaxed))

/* The pool's gauges and counters (status.c), and the cancel latency. */
static void
metrics_write_pool(struct expo *e)
{
    static const char *const l413[] = { "code", "413", NULL };
    static const char *const l431[] = { "code", "431", NULL };
    uint64_t lat[LAT_NB + 1];
    size_t   k;

    for (k = 0; k <= LAT_NB; k++)
        lat[k] = metrics_sum_worker(offsetof(struct metrics_worker, lat) +
            k * sizeof(counter));
    expo_family(e, "fcgi_cancel_cancel_latency_seconds", EXPO_HISTOGRAM,
        "Time from a job's cancel to its return.");
    expo_histogram(e, NULL, lat_bounds, LAT_NB, lat, (double)
        metrics_sum_worker(offsetof(struct metrics_worker, lat_sum_ns)) /
        1e9);
    expo_family(e, "fcgi_cancel_refused_requests", EXPO_COUNTER,
        "Requests refused before routing: 413 body or 431 params too "
        "large.");
    expo_sample(e, l413, (double)metrics_sum_worker(
        offsetof(struct metrics_worker, refused_413)));
    expo_sample(e, l431, (double)metrics_sum_worker(
        offsetof(struct metrics_worker, refused_431)));
    metrics_one(e, "fcgi_cancel_requests_in_flight", EXPO_GAUGE,
        "Requests being served now.", GAUGE(in_flight));
    metrics_one(e, "fcgi_cancel_requests_arriving", EXPO_GAUGE,
        "Connections whose request has begun but is not whole.",
        GAUGE(arriving));
    metrics_one(e, "fcgi_cancel_workers", EXPO_GAUGE,
        "Worker threads.", (double)stats.workers);
    metrics_one(e, "fcgi_cancel_workers_busy", EXPO_GAUGE,
        "Worker threads busy with a connection now.", GAUGE(busy));
    metrics_one(e, "fcgi_cancel_connections_open", EXPO_GAUGE,
        "FastCGI connections open now.", GAUGE(connections_open));
    metrics_one(e, "fcgi_cancel_connections", EXPO_COUNTER,
        "FastCGI connections accepted.", GAUGE(connections));
    metrics_one(e, "fcgi_cancel_read_timeouts", EXPO_COUNTER,
        "Connections closed because a request was not read whole within "
        "read_timeout_ms.", GAUGE(read_timeouts));
    metrics_one(e, "fcgi_cancel_slow_requests", EXPO_COUNTER,
        "Jobs that ran past their slow_ms.", GAUGE(slow));
    metrics_one(e, "fcgi_cancel_stragglers", EXPO_GAUGE,
        "Jobs still running although cancelled.",
        (double)stats_straggler_count());
}

/* The handlers' own families: each hook once, with all of its routes. */
static void
metrics_write_handlers(struct expo *e)
{
    struct handler_route   *hr;
    size_t                  h, i, n;

    if (metrics_router == NULL ||
        (hr = calloc(nroutes + 1, sizeof *hr)) == NULL)
        return;
    for (h = 0; handlers[h] != NULL; h++) {
        if (handlers[h]->metrics == NULL)
            continue;
        for (i = n = 0; i < nroutes; i++) {
            if (metrics_router->routes[i].def != handlers[h])
                continue;
            hr[n].route = labels[i];
            hr[n++].opts = metrics_router->routes[i].data;
        }
        if (n > 0)
            handlers[h]->metrics(e, hr, n);
    }
    free(hr);
}

/*
 * Fill f[0 .. n - 1] with the numeric fields of /proc/self/stat after the
 * command name: f[0] is field 4 (ppid), so field k is f[k - 4].  Return
 * how many were read.
 */
static size_t
metrics_proc_stat(unsigned long long *f, size_t n)
{
    char        line[1024], *p, *end;
    size_t      i = 0;
    FILE       *fp;

    if ((fp = fopen("/proc/self/stat", "r")) == NULL)
        return 0;
    if (fgets(line, sizeof line, fp) != NULL &&
        (p = strrchr(line, ')')) != NULL && p[1] == ' ' && p[2] != '\0') {
        p += 3;                         /* past ") " and the state */
        for (; i < n; i++, p = end) {
            f[i] = strtoull(p, &end, 10);
            if (end == p)
                break;
        }
    }
    fclose(fp);
    return i;
}

/* Return the boot time in seconds since the epoch (btime), 0 if unknown. */
static unsigned long long
metrics_boot_time(void)
{
    unsigned long long  t = 0;
    char                line[256];
    FILE               *fp;

    if ((fp = fopen("/proc/stat", "r")) == NULL)
        return 0;
    while (fgets(line, sizeof line, fp) != NULL) {
        if (strncmp(line, "btime ", 6) == 0) {
            t = strtoull(line + 6, NULL, 10);
            break;
        }
    }
    fclose(fp);
    return t;
}

/* The conventional process_* metrics, from /proc/self. */
static void
metrics_write_process(struct expo *e)
{
    unsigned long long  f[21] = { 0 };  /* fields 4 .. 24 */
    long                tck = sysconf(_SC_CLK_TCK),
                        page = sysconf(_SC_PAGESIZE), fds = 0;
    struct rlimit       rl;
    struct dirent      *de;
    DIR                *d;

    if (metrics_proc_stat(f, nitems(f)) < nitems(f))
        memset(f, 0, sizeof f);
    if ((d = opendir("/proc/self/fd")) != NULL) {
        while ((de = readdir(d)) != NULL)
            fds += de->d_name[0] != '.';
        closedir(d);
    }
    if (tck <= 0)
        tck = 100;
    /* utime 14, stime 15, starttime 22, vsize 23, rss 24 (pages). */
    metrics_one(e, "process_cpu_seconds", EXPO_COUNTER,
        "User and system CPU time spent, in seconds.",
        (double)(f[14 - 4] + f[15 - 4]) / (double)tck);
    metrics_one(e, "process_start_time_seconds", EXPO_GAUGE,
        "Start time of the process since the Unix epoch, in seconds.",
        (double)metrics_boot_time() + (double)f[22 - 4] / (double)tck);
    metrics_one(e, "process_resident_memory_bytes", EXPO_GAUGE,
        "Resident memory size, in bytes.", (double)f[24 - 4] * (double)page);
    metrics_one(e, "process_virtual_memory_bytes", EXPO_GAUGE,
        "Virtual memory size, in bytes.", (double)f[23 - 4]);
    metrics_one(e, "process_open_fds", EXPO_GAUGE,
        "Open file descriptors.", (double)fds);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        metrics_one(e, "process_max_fds", EXPO_GAUGE,
            "The limit of open file descriptors.",
            rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur);
}

int
metrics_write(struct buf *out, enum expo_format format)
{
    struct expo e;

    expo_init(&e, out, format);
    if (labels != NULL)
        metrics_write_routes(&e);
    metrics_write_pool(&e);
    metrics_write_handlers(&e);
    metrics_write_process(&e);
    return expo_end(&e);
}

int
metrics_handler(fc_request *req, fc_response *resp, fc_token *tok,
    void *data)
{
    enum expo_format    format;
    struct buf          b = { NULL, 0, 0 };
    int                 rc;

    (void)tok;
    (void)data;
    format = expo_negotiate(req != NULL ?
        fc_request_param(req, "HTTP_ACCEPT") : NULL);
    if (metrics_write(&b, format) != 0) {
        buf_free(&b);
        return FC_ERROR;
    }
    fc_response_header(resp, "Content-Type", expo_content_type(format));
    fc_response_header(resp, "Cache-Control", "no-store");
    rc = fc_response_write(resp, b.data, b.len);
    buf_free(&b);
    return rc == 0 ? FC_OK : FC_ERROR;
}

/* Its row in the handler registry: no options, GET and HEAD on /metrics. */
static const char *const metrics_default_routes[] = {
    "{\"path\": \"/metrics\", \"methods\": [\"GET\", \"HEAD\"], "
    "\"handler\": \"metrics\"}",
    NULL
};

const struct handler_def handler_metrics = {
    .name = "metrics",
    .handler = metrics_handler,
    .default_routes = metrics_default_routes,
};
