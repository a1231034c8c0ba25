/* SPDX-License-Identifier: MIT */
/*
 * metrics.c - what /metrics exposes, and the counters behind it.
 *
 * DESIGN
 * ------
 * A request's end is counted on the hot path of every worker, so little
 * that it touches is shared: the counters live in blocks (struct
 * metrics_worker, on cache lines of their own), one per worker up to
 * METRICS_SHARDS, and worker w counts into block w % METRICS_SHARDS: with
 * the default 32 workers two share a block, and 10,000 workers cost no
 * more memory than 16.  Counts are relaxed atomic adds; a scrape reads
 * every block with relaxed loads and sums them.  A sum may be a few
 * requests behind, never torn; a counter never goes back.
 *
 * Each block holds one struct metrics_route per route label.  A label is
 * a route's path as written, given an id the first time a configuration
 * names it (metrics_route_id(), called when a route is built) and kept
 * for the life of the process, so a live reload neither resets a route's
 * series nor moves them to another route; id 0 is "none" (no route
 * matched, or the request was refused before routing).  Labels are
 * bounded by METRICS_ROUTES_MAX; past it, new paths count as "none" (with
 * one warning).
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
 * Locking: label_mtx serializes the appends to the label table; readers
 * load nlabels with acquire order, which publishes the labels below it
 * (each written once before its release store).  metrics_init() and
 * metrics_fini() run while no worker runs (pool.c calls them before the
 * workers start and after they stopped); in between `blocks` and
 * `nblocks` do not change.
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
#include "generation.h"
#include "watcher.h"

#define METRICS_LINE    64      /* bytes: a counter block's alignment */
#define METRICS_SHARDS  16      /* counter blocks at most */

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
    struct metrics_route routes[METRICS_ROUTES_MAX]; /* by label id */
};

static struct metrics_worker   **blocks;    /* nblocks of them */
static int                      nblocks;
static int                      nworkers;   /* workers counted: 0..n-1 */
static pthread_mutex_t          label_mtx = PTHREAD_MUTEX_INITIALIZER;
static const char              *labels[METRICS_ROUTES_MAX] = { "none" };
static _Atomic size_t           nlabels = 1;    /* "none" is id 0 */
static uint64_t                 dur_ns[DUR_NB];
static uint64_t                 lat_ns[LAT_NB];

/* Add n to a counter; relaxed: a scrape needs an untorn value only. */
static inline void
counter_add(counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* The counter block of worker w, or NULL. */
static inline struct metrics_worker *
block_of(int worker)
{
    return worker >= 0 && worker < nworkers ? blocks[worker % nblocks] :
        NULL;
}

int
metrics_route_id(const char *name)
{
    static int  warned;
    size_t      i, n;
    int         id = 0;

    if (name == NULL)
        return 0;
    xmutex_lock(&label_mtx);
    n = atomic_load_explicit(&nlabels, memory_order_relaxed);
    for (i = 1; i < n; i++) {
        if (strcmp(labels[i], name) == 0) {
            id = (int)i;
            goto out;
        }
    }
    if (n == METRICS_ROUTES_MAX) {
        if (!warned)
            log_warnx("metrics: more than %d route paths: the others "
                "count as route \"none\"", METRICS_ROUTES_MAX - 1);
        warned = 1;
        goto out;
    }
    if ((labels[n] = strdup(name)) == NULL)
        goto out;
    /* Release: the label is written before its id can be read. */
    atomic_store_explicit(&nlabels, n + 1, memory_order_release);
    id = (int)n;
out:
    xmutex_unlock(&label_mtx);
    return id;
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
    int w;

    for (w = 0; w < nblocks; w++)
        free(blocks[w]);
    free(blocks);
    blocks = NULL;
    nblocks = 0;
    nworkers = 0;
}

int
metrics_init(int workers)
{
    size_t  size, i;
    int     w, n = workers < METRICS_SHARDS ? workers : METRICS_SHARDS;

    metrics_fini();
    for (i = 0; i < DUR_NB; i++)
        dur_ns[i] = (uint64_t)(dur_bounds[i] * 1e9 + 0.5);
    for (i = 0; i < LAT_NB; i++)
        lat_ns[i] = (uint64_t)(lat_bounds[i] * 1e9 + 0.5);
    size = sizeof(struct metrics_worker);
    size = (size + METRICS_LINE - 1) / METRICS_LINE * METRICS_LINE;
    if ((blocks = calloc((size_t)n, sizeof(struct metrics_worker *))) == NULL)
        goto fail;
    for (w = 0; w < n; w++) {
        if ((blocks[w] = aligned_alloc(METRICS_LINE, size)) == NULL)
            goto fail;
        memset(blocks[w], 0, size);
        nblocks = w + 1;
    }
    nworkers = workers;
    return 0;
fail:
    log_errorx("metrics: out of memory");
    metrics_fini();
    return -1;
}

void
metrics_request(int worker, const struct route *rt, enum outcome outcome,
    enum fc_reason reason, int status, uint64_t duration_ns)
{
    struct metrics_worker  *b = block_of(worker);
    struct metrics_route   *m;
    size_t                  end;

    if (b == NULL)
        return;
    m = &b->routes[rt != NULL && rt->metrics_id > 0 &&
        rt->metrics_id < METRICS_ROUTES_MAX ? rt->metrics_id : 0];
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
    struct metrics_worker *b = block_of(worker);

    if (b == NULL)
        return;
    counter_add(&b->lat[bucket(lat_ns, LAT_NB, ns)], 1);
    counter_add(&b->lat_sum_ns, ns);
}

void
metrics_refused(int worker, int status)
{
    struct metrics_worker *b = block_of(worker);

    if (b == NULL)
        return;
    counter_add(status == 413 ? &b->refused_413 : &b->refused_431, 1);
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
    for (w = 0; w < nblocks; w++) {
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

    for (w = 0; w < nblocks; w++)
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
    size_t              i, k, nroutes;

    /* Acquire: the labels below the count are written. */
    nroutes = atomic_load_explicit(&nlabels, memory_order_acquire) - 1;
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
    metrics_one(e, "fcgi_cancel_open_connections", EXPO_GAUGE,
        "FastCGI connections open now.", GAUGE(open_connections));
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

/*
 * The handlers' own families: each hook once, with all of its routes of
 * the current configuration.
 */
static void
metrics_write_handlers(struct expo *e)
{
    struct generation      *gen;
    const struct router    *r;
    struct handler_route   *hr;
    size_t                  h, i, n;

    if ((gen = gen_get()) == NULL)
        return;
    r = &gen->cfg.routes;
    if ((hr = calloc(r->n + 1, sizeof *hr)) == NULL) {
        gen_put(gen);
        return;
    }
    for (h = 0; handlers[h] != NULL; h++) {
        if (handlers[h]->metrics == NULL)
            continue;
        for (i = n = 0; i < r->n; i++) {
            if (r->routes[i].def != handlers[h])
                continue;
            hr[n].route = r->routes[i].name;
            hr[n++].opts = r->routes[i].data;
        }
        if (n > 0)
            handlers[h]->metrics(e, hr, n);
    }
    free(hr);
    gen_put(gen);
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
