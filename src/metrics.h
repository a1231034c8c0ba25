/* SPDX-License-Identifier: MIT */
/*
 * metrics.h - per-route, per-worker counters and histograms of the
 * requests served, and the /metrics handler that sums them at scrape time
 * and writes them, with the pool's gauges (status.h), the handlers' own
 * series (handler_def.metrics) and the process_* metrics, in the
 * Prometheus text format or OpenMetrics (expo.h).
 */
#ifndef METRICS_H
#define METRICS_H

#include <stdint.h>

#include "expo.h"
#include "fcgi_cancel.h"
#include "status.h"
#include "util.h"

struct router;
struct route;

/* Route labels kept at most, "none" included. */
#define METRICS_ROUTES_MAX  256

/*
 * Make the counter blocks for a pool of workers (at most METRICS_SHARDS
 * blocks, shared by workers w % METRICS_SHARDS), freeing the blocks of an
 * earlier call.  Return 0, or -1 if memory ran out (logged; requests are
 * then not counted here).
 */
int     metrics_init(int workers);

/*
 * Return the id of the route label name (a route's path as written),
 * given the first time a path is named and kept for the life of the
 * process, so that a reload keeps a route's series; 0 ("none") for NULL,
 * or when METRICS_ROUTES_MAX labels are taken (warned once).  Any thread.
 */
int     metrics_route_id(const char *name);

/* Free the blocks; nothing is counted until the next metrics_init(). */
void    metrics_fini(void);

/*
 * Count the end of a request on worker's block: its route (NULL: none
 * matched, or refused before routing), how it ended (reason matters for
 * OUTCOME_CANCELLED), its HTTP status and how long it took.  Only the
 * thread of worker may call it with that worker.
 */
void    metrics_request(int worker, const struct route *rt,
            enum outcome outcome, enum fc_reason reason, int status,
            uint64_t duration_ns);

/* Count, on worker's block, how long a cancelled job took to return. */
void    metrics_cancel_latency(int worker, uint64_t ns);

/* Count, on worker's block, a request refused with 413 or 431. */
void    metrics_refused(int worker, int status);

/*
 * Write every metric in format to out.  Return 0, or -1 if memory ran
 * out (out then holds part of it).
 */
int     metrics_write(struct buf *out, enum expo_format format);

/* The handler of /metrics: the format chosen by the Accept header. */
int     metrics_handler(fc_request *req, fc_response *resp, fc_token *tok,
            void *data);

#endif /* METRICS_H */
