/* SPDX-License-Identifier: MIT */
/*
 * pgpool.h - a pool of PostgreSQL connections (libpq), one per sql route:
 * at most `size` connections, opened when a request first needs one
 * (never at start-up), checked when taken again, dropped when broken, and
 * waited for in a way that the request's cancel token interrupts.
 *
 * Also the two things around a connection that must not leak: the
 * conninfo as it may be logged (without its password) and the libpq
 * options every connection gets (client_encoding UTF8, a fallback
 * application_name "fcgi-cancel", and with read_only a default of
 * read-only transactions, sent in the start-up packet).
 */
#ifndef PGPOOL_H
#define PGPOOL_H

#include <stdint.h>

#include <libpq-fe.h>

#include "fcgi_cancel.h"

struct pgpool;

/* What pgpool_get() and pgpool_wait() return besides 0. */
enum pgpool_status {
    PGPOOL_OK = 0,
    PGPOOL_CANCELLED = 1,       /* the token was cancelled */
    PGPOOL_DOWN = 2,            /* the database cannot be reached */
    PGPOOL_TIMEOUT = 3          /* pgpool_wait(): the time passed */
};

/* What /status shows of a pool; a snapshot. */
struct pgpool_stats {
    int         size;           /* the bound */
    int         open;           /* connected or connecting */
    int         in_use;         /* taken by a request */
    uint64_t    connects;       /* connections opened, ever */
    uint64_t    connect_failures;
    uint64_t    dropped;        /* closed as broken or not idle */
};

/*
 * Check conninfo (a libpq keyword=value string or URI; "" takes the PG*
 * environment) and return a new pool of at most size connections, each
 * opened within connect_timeout_ms.  Nothing is connected yet.  Return
 * NULL with *cause set (caller frees) to what is wrong with conninfo: the
 * message never quotes the string (it may hold a password).
 */
struct pgpool *pgpool_new(const char *conninfo, int size, int read_only,
                   long connect_timeout_ms, char **cause);

/* Close every idle connection and free p; none may be in use. */
void        pgpool_free(struct pgpool *p);

/* Return the conninfo as the log may show it: no password (p owns it). */
const char *pgpool_safe_conninfo(const struct pgpool *p);

/*
 * Take a connection for tok's request: an idle one that still looks
 * alive (idle ones are checked for a close or error the server sent
 * meanwhile), else a new one if fewer than size are open, else wait for
 * one to be returned.  Return PGPOOL_OK with *conn set (give it back with
 * pgpool_put()) and *fresh set to 1 if it was just opened;
 * PGPOOL_CANCELLED if tok was cancelled before a connection was had;
 * PGPOOL_DOWN with *err set (caller frees; libpq's message, for the log)
 * if connecting failed or timed out.
 */
enum pgpool_status pgpool_get(struct pgpool *p, fc_token *tok,
                   PGconn **conn, int *fresh, char **err);

/*
 * Give conn back: kept for the next request if ok is set, the connection
 * is good and no transaction is open; otherwise closed.
 */
void        pgpool_put(struct pgpool *p, PGconn *conn, int ok);

/*
 * Wait until conn's socket is ready for what libpq needs (readable, or
 * writable if want_write) or tok (may be NULL) is cancelled, for at most
 * timeout_ms (negative: no limit).  Return PGPOOL_OK when the socket is
 * ready, PGPOOL_CANCELLED, PGPOOL_TIMEOUT, or PGPOOL_DOWN if poll() failed.
 */
enum pgpool_status pgpool_wait(PGconn *conn, fc_token *tok, int want_write,
                   long timeout_ms);

/* Fill *st with p's figures. */
void        pgpool_stats(struct pgpool *p, struct pgpool_stats *st);

/*
 * Write conninfo into dst (size bytes) without its password, as
 * "key=value" pairs of the keys it sets.  Return dst; "(invalid)" if
 * conninfo does not parse.
 */
char       *pgpool_strip_password(const char *conninfo, char *dst,
                   size_t size);

#endif /* PGPOOL_H */
