/* SPDX-License-Identifier: MIT */
/*
 * accesslog.h - the access log: one line per request, in one of three
 * formats, buffered and written at most 100 ms late.
 */
#ifndef ACCESSLOG_H
#define ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

#include "fcgi_cancel.h"

/* The formats of access_log_format, in the order of their names. */
enum accesslog_format {
    ACCESSLOG_DEFAULT,      /* "req=ID METHOD "PATH?Q" STATUS DURms reason=R" */
    ACCESSLOG_COMBINED,     /* Apache/nginx combined, then duration, reason */
    ACCESSLOG_JSON,         /* one JSON object per line */
    ACCESSLOG_FORMAT__MAX
};

/* The names of enum accesslog_format, NULL-terminated (for a key table). */
extern const char *const accesslog_format_names[];

/* What one access line says.  Any string may be NULL ("-" in the line). */
struct accesslog_entry {
    uint64_t        id;             /* the request's number */
    int64_t         start_real_ns;  /* CLOCK_REALTIME at its arrival */
    const char     *remote_addr;    /* REMOTE_ADDR from the front end */
    const char     *remote_user;    /* REMOTE_USER */
    const char     *method;
    const char     *path;           /* decoded path, no query */
    const char     *query;          /* QUERY_STRING, or NULL/"" */
    const char     *protocol;       /* SERVER_PROTOCOL */
    const char     *referer;        /* HTTP_REFERER */
    const char     *user_agent;     /* HTTP_USER_AGENT */
    const char     *route;          /* the route's path as configured */
    int             status;         /* 499: the client left */
    uint64_t        bytes;          /* body bytes sent */
    uint64_t        duration_ns;
    const char     *reason;         /* the cancel reason; NULL: not cancelled */
};

/*
 * Send access lines to path (appended, created 0640), to stderr (NULL) or
 * nowhere ("off"), in format fmt; what other threads buffered for the old
 * destination is written there first.  Starts the flusher thread the
 * first time.  Return 0, or -1 with errno set (nothing changes).  Main
 * thread only.
 */
int     accesslog_open(const char *path, enum accesslog_format fmt);

/* Reopen the file (after logrotate moved it), flushing first; 0 or -1. */
int     accesslog_reopen(void);

/*
 * Format e into the calling thread's buffer.  The buffer is written when
 * it fills, by the flusher thread once its oldest line is 50 ms old (so
 * every line is out within 100 ms), and by accesslog_flush().  Never
 * blocks on another thread's write.
 */
void    accesslog_write(const struct accesslog_entry *e);

/*
 * Log the request req, answered with status: accesslog_write() with the
 * entry filled from req's params.  route is the route's path (NULL: none
 * matched), bytes the body bytes sent, reason the cancel reason or NULL.
 */
void    accesslog_request(const fc_request *req, const char *route,
            int status, uint64_t bytes, uint64_t duration_ns,
            const char *reason);

/* Write what every thread has buffered; any thread. */
void    accesslog_flush(void);

/*
 * Flush, stop the flusher thread and close the file.  Main thread, after
 * the workers stopped writing (a later accesslog_write() goes to stderr).
 */
void    accesslog_close(void);

#endif /* ACCESSLOG_H */
