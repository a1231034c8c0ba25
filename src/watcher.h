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

/*
 * Return a watcher with nslots slots (one per worker), or NULL with *cause
 * set (caller frees).  Its thread starts at once.
 */
struct watcher *watcher_new(int nslots, char **cause);

/* Stop the thread and free the watcher; no slot may be armed. */
void        watcher_free(struct watcher *w);

/* What a worker hands the watcher for the request it runs. */
struct watch {
    int              fd;            /* the FastCGI connection, or -1 */
    int              reqid;         /* the FastCGI request id on it */
    uint64_t         id;            /* the server's request number */
    uint64_t         conn;          /* the connection's number, unique in
                                       the process: fd stays watched
                                       between its requests until closed;
                                       0: watched for this request only */
    int              pooled;        /* with conn: the pool's epoll set
                                       holds fd, and its poller calls
                                       watcher_poke() when bytes come */
    fc_token        *tok;
    uint64_t         deadline_ns;   /* CLOCK_MONOTONIC; 0: none */
    fc_response     *resp;          /* probed when probe_ms > 0 */
    long             probe_ms;
    /* For /status?full and the slow line; the strings are the caller's
     * (the route's, the request's) and must live until watcher_disarm(). */
    const char      *route;         /* the route's path; NULL: none */
    const char      *method;        /* NULL: none */
    const char      *client;        /* REMOTE_ADDR as given; NULL: none */
    uint64_t         start_ns;      /* CLOCK_MONOTONIC: serving began */
    uint64_t         slow_ns;       /* CLOCK_MONOTONIC: past it, the job
                                       gets one slow line; 0: never */
};

/*
 * Watch the request on slot, cancelling its token on hang-up, reset, EOF,
 * FCGI_ABORT_REQUEST for reqid, or at the deadline; with probe_ms > 0,
 * probe resp every probe_ms (see response_probe()); at slow_ns, write one
 * warn line "req=ID slow route=R client=C elapsed_ms=N" and count it in
 * stats.slow.  The caller keeps tok, resp and the strings alive until
 * watcher_disarm().  Return 0, or -1 if fd cannot be watched (logged;
 * deadlines, probes and the slow line still apply).
 */
int         watcher_arm(struct watcher *w, int slot, const struct watch *wa);

/* A request in flight, as watcher_jobs() shows it. */
struct watcher_job {
    uint64_t         id;            /* the server's request number */
    const char      *route;         /* as armed; NULL: none */
    const char      *method;
    const char      *client;
    uint64_t         elapsed_ns;    /* since start_ns */
    enum fc_reason   reason;        /* FC_REASON_NONE: not cancelled */
    uint64_t         since_cancel_ns;   /* when cancelled */
};

/*
 * Called for each armed request, with the watcher's lock held: copy what
 * is kept (the strings live only until the call returns), block on nothing.
 */
typedef void (*watcher_job_cb)(void *arg, const struct watcher_job *job);

/*
 * Call cb for every request in flight (only those whose token is
 * cancelled when only_cancelled); return how many.
 */
int         watcher_jobs(struct watcher *w, int only_cancelled,
                watcher_job_cb cb, void *arg);

/* Called for each armed request whose token is cancelled (a straggler). */
typedef void (*watcher_straggler_cb)(void *arg, uint64_t id,
                enum fc_reason reason, uint64_t since_cancel_ns);

/*
 * Call cb for every request still running although its token is
 * cancelled (a job that ignores its token); return how many.
 */
int         watcher_stragglers(struct watcher *w, watcher_straggler_cb cb,
                void *arg);

/*
 * Stop watching slot; wait, if the watcher is peeking at its connection
 * or probing its response, for that non-blocking call to end.  A cancel
 * that the watcher decided just before may still complete on its thread
 * after this returns (it holds its own reference to tok): the token can
 * turn cancelled, and run its callbacks, after.  Handlers remove their callbacks (fc_token_off_cancel) before they
 * return, so nothing of theirs runs late.
 */
void        watcher_disarm(struct watcher *w, int slot);

/*
 * Bytes came on fd, a pooled connection (struct watch) that a worker
 * owns: if a job is armed with it, peek at them for an
 * FCGI_ABORT_REQUEST, on the caller's thread, as the watcher's thread
 * does for the connections it watches for bytes itself; if none is, the
 * next arm with fd peeks.
 */
void        watcher_poke(struct watcher *w, int fd);

#endif /* WATCHER_H */
