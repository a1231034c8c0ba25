/* SPDX-License-Identifier: MIT */
/*
 * status.h - the server's counters and the /status and /ping handlers.
 */
#ifndef STATUS_H
#define STATUS_H

#include <stdatomic.h>
#include <stdint.h>

#include "fcgi_cancel.h"

/* How a request ended, for the counters. */
enum outcome {
    OUTCOME_COMPLETED,
    OUTCOME_CANCELLED,
    OUTCOME_FAILED
};

/* Process-wide counters; every field is an atomic updated with relaxed order. */
struct stats {
    _Atomic uint64_t    accepted;
    _Atomic uint64_t    completed;
    _Atomic uint64_t    cancelled;
    _Atomic uint64_t    failed;
    _Atomic uint64_t    by_reason[FC_REASON__MAX];
    _Atomic int64_t     in_flight;
    _Atomic int64_t     busy;
    _Atomic uint64_t    connections;    /* accepted since the start */
    _Atomic int64_t     arriving;       /* requests begun, not yet whole */
    _Atomic uint64_t    read_timeouts;  /* closed by read_timeout_ms */
    _Atomic uint64_t    slow;           /* jobs past their slow_ms */
    /* The bounds of arrive.c: */
    _Atomic int64_t     open_connections;       /* now */
    _Atomic uint64_t    refused_connections;    /* closed at accept: at
                                                   max_connections, none
                                                   arriving to drop */
    _Atomic uint64_t    dropped_max_connections;/* arriving ones dropped to
                                                   let a new one in */
    _Atomic int64_t     arriving_bytes;         /* buffers of requests not
                                                   yet whole, now */
    _Atomic uint64_t    dropped_max_arriving_bytes; /* arriving ones dropped
                                                   for max_arriving_bytes */
    int                 workers;
    uint64_t            start_ns;
};

extern struct stats stats;

/* Reset the counters; workers is the pool's size. */
void    stats_init(int workers);

/* Count the end of a request; reason matters for OUTCOME_CANCELLED. */
void    stats_end(enum outcome outcome, enum fc_reason reason);

struct watcher;

/* Let /status list the watcher's stragglers (NULL: none). */
void    stats_set_watcher(struct watcher *w);

/* Return how many jobs run on although cancelled (0 without a watcher). */
int     stats_straggler_count(void);

/* Record how long a cancelled job took to return after its cancel. */
void    stats_cancel_latency(uint64_t ns);

/*
 * Return ms as a JSON number written with three decimals (a json_object
 * *; caller puts it or hands it to an object).
 */
void   *status_ms(double ms);

/*
 * Return the status document (a json_object *; caller puts it); with
 * full, a "jobs" array lists the requests in flight.
 */
void   *status_json(int full);

/* The built-in handlers: JSON status, and "pong". */
int     status_handler(fc_request *req, fc_response *resp, fc_token *tok,
            void *data);
int     ping_handler(fc_request *req, fc_response *resp, fc_token *tok,
            void *data);

#endif /* STATUS_H */
