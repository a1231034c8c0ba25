/* SPDX-License-Identifier: MIT */
/*
 * watcher.h - the thread that watches the FastCGI connections of requests
 * in flight and cancels their tokens: client gone, FCGI_ABORT_REQUEST,
 * deadline.
 */
#ifndef WATCHER_H
#define WATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "fcgi_cancel.h"

struct watcher;

/* What the bytes waiting on a watched connection are. */
enum watch_verdict {
    WATCH_MORE = 0,     /* a record has begun; wait for the rest */
    WATCH_ABORT,        /* FCGI_ABORT_REQUEST for the watched request */
    WATCH_STRAY         /* anything else: ignored, never cancels */
};

/*
 * Classify the len bytes buf that wait on a connection serving request id
 * reqid.  For WATCH_ABORT, *consume is the length of the whole record.
 */
enum watch_verdict watcher_classify(const unsigned char *buf, size_t len,
                        int reqid, size_t *consume);

/*
 * Return a watcher with nslots slots (one per worker), or NULL with *cause
 * set (caller frees).  Its thread starts at once.
 */
struct watcher *watcher_new(int nslots, char **cause);

/* Stop the thread and free the watcher; no slot may be armed. */
void        watcher_free(struct watcher *w);

/*
 * Watch fd for request reqid on slot, cancelling tok on hang-up, reset,
 * EOF, FCGI_ABORT_REQUEST for reqid, or at deadline_ns (CLOCK_MONOTONIC;
 * 0 for none); with probe_ms > 0, probe resp every probe_ms (see
 * response_probe()).  The caller keeps tok and resp alive until
 * watcher_disarm().  Return 0, or -1 if fd cannot be watched (logged;
 * deadlines and probes still apply).
 */
int         watcher_arm(struct watcher *w, int slot, int fd, int reqid,
                fc_token *tok, uint64_t deadline_ns, fc_response *resp,
                long probe_ms);

/* Stop watching slot; once it returns the watcher no longer uses tok. */
void        watcher_disarm(struct watcher *w, int slot);

#endif /* WATCHER_H */
