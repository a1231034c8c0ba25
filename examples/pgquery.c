/* SPDX-License-Identifier: MIT */
/*
 * pgquery.c - an example module: a PostgreSQL query on a libpq connection
 * of its own, cancelled in the database when the request is.
 *
 *   { "path": "/pgquery", "handler": "module",
 *     "module": "/usr/local/lib/fcgi-cancel/pgquery.so",
 *     "symbol": "pgquery_handler",
 *     "options": { "conninfo": "host=/run/postgresql dbname=app",
 *                  "query": "select name from items where id = $1",
 *                  "arg": "id" } }
 *
 * GET /pgquery?id=7 answers {"rows": [["first value", ...], ...]} (every
 * value a string, NULL as null).  The built-in "sql" handler does this
 * for real (a pool, types, streaming); this file shows the moves a module
 * needs for its own database work:
 *
 *  - the query is sent asynchronously (PQsendQueryParams, its value bound)
 *    and the handler sleeps in poll() on the connection's socket AND on
 *    fc_token_fd(): when the client leaves (or the deadline passes, or the
 *    server shuts down), poll() returns at once;
 *  - it then sends PostgreSQL a cancel request (PQcancel, with the key of
 *    the backend that PQgetCancel copied) and reads the connection until
 *    its last result: the backend has stopped when that comes;
 *  - fc_token_on_cancel() records when the cancel happened.  The callback
 *    runs on the server's watcher thread and must not block, which is why
 *    PQcancel() is not called there: it opens a connection to the server
 *    and waits for it.  The handler, woken by poll(), calls it instead,
 *    and logs how long the database took to stop.
 *
 * One connection per request keeps the example short; connecting costs a
 * few milliseconds and a backend process, which is why the sql handler
 * keeps a pool.  Build: see examples/README.md; needs libpq (libpq-dev).
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L   /* strdup(), clock_gettime() */
#endif

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <fcgi_cancel.h>
#include <json-c/json.h>
#include <libpq-fe.h>

FC_MODULE_DECLARE();

#define PGQUERY_DRAIN_MS    5000    /* the database's stop, at most */

FC_API int pgquery_handler(fc_request *, fc_response *, fc_token *, void *);

/* The route's options. */
struct pgquery {
    char   *conninfo;
    char   *query;
    char   *arg;            /* the query argument bound as $1, or NULL */
};

/* Return the string member name of options (a copy), or NULL. */
static char *
option(void *options, const char *name)
{
    json_object *v;

    if (!json_object_object_get_ex(options, name, &v) ||
        !json_object_is_type(v, json_type_string))
        return NULL;
    return strdup(json_object_get_string(v));
}

void
fc_module_fini(void *data)
{
    struct pgquery *q = data;

    if (q == NULL)
        return;
    free(q->conninfo);
    free(q->query);
    free(q->arg);
    free(q);
}

/* Read "conninfo" (may be "": the PG* environment), "query", "arg". */
int
fc_module_init(void *options, void **data, char **error)
{
    struct pgquery *q;

    if ((q = calloc(1, sizeof *q)) == NULL ||
        (q->conninfo = option(options, "conninfo")) == NULL ||
        (q->query = option(options, "query")) == NULL) {
        fc_module_fini(q);
        *error = strdup("options.conninfo and options.query: strings "
            "required");
        return -1;
    }
    q->arg = option(options, "arg");
    *data = q;
    return 0;
}

/* Return CLOCK_MONOTONIC in nanoseconds. */
static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The cancel callback: note when (on the watcher thread; no blocking). */
static void
on_cancel(fc_token *tok, enum fc_reason reason, void *arg)
{
    atomic_store_explicit((_Atomic uint64_t *)arg, now_ns(),
        memory_order_release);
}

/*
 * Wait until conn's socket is readable or tok (NULL: not watched) is
 * cancelled, for at most ms (-1: no limit).  Return 1 when readable, 0
 * when cancelled, -1 on time out or error.
 */
static int
wait_conn(PGconn *conn, fc_token *tok, int ms)
{
    struct pollfd pfd[2] = {
        { .fd = PQsocket(conn), .events = POLLIN },
        { .fd = tok != NULL ? fc_token_fd(tok) : -1, .events = POLLIN },
    };
    int n;

    do
        n = poll(pfd, pfd[1].fd >= 0 ? 2 : 1, ms);
    while (n < 0 && errno == EINTR);
    if (n > 0 && pfd[1].revents != 0)
        return 0;
    return n > 0 ? 1 : -1;
}

/* Read every result left on conn within PGQUERY_DRAIN_MS; 1 if the last
 * came (the statement is over in the database), 0 if not. */
static int
drain(PGconn *conn)
{
    uint64_t    end = now_ns() + PGQUERY_DRAIN_MS * 1000000ull, t;
    PGresult   *res;

    for (;;) {
        while (!PQisBusy(conn)) {
            if ((res = PQgetResult(conn)) == NULL)
                return 1;
            PQclear(res);
        }
        if ((t = now_ns()) >= end ||
            wait_conn(conn, NULL, (int)((end - t) / 1000000u)) != 1 ||
            !PQconsumeInput(conn))
            return 0;
    }
}

/* Add res's rows to the array rows, every value as a string or null. */
static void
add_rows(json_object *rows, const PGresult *res)
{
    json_object *row;
    int          i, j;

    for (i = 0; i < PQntuples(res); i++) {
        row = json_object_new_array();
        for (j = 0; j < PQnfields(res); j++)
            json_object_array_add(row, PQgetisnull(res, i, j) ? NULL :
                json_object_new_string(PQgetvalue(res, i, j)));
        json_object_array_add(rows, row);
    }
}

int
pgquery_handler(fc_request *req, fc_response *resp, fc_token *tok,
    void *data)
{
    struct pgquery     *q = data;
    _Atomic uint64_t    cancelled_at = 0;
    const char         *value = NULL;
    json_object        *doc, *rows;
    PGresult           *res;
    PGconn             *conn;
    PGcancel           *pc;
    uint64_t            sent;
    char                err[256] = "";
    int                 handle, failed = 0, rc, w, stopped;

    if (q->arg != NULL &&
        (value = fc_request_query(req, q->arg)) == NULL)
        return fc_response_error(resp, 400, "missing argument") == 0 ?
            FC_OK : FC_ERROR;
    if ((handle = fc_token_on_cancel(tok, on_cancel, &cancelled_at)) < 0)
        return FC_ERROR;
    conn = PQconnectdb(q->conninfo);
    if (PQstatus(conn) != CONNECTION_OK ||
        !PQsendQueryParams(conn, q->query, value != NULL ? 1 : 0, NULL,
        &value, NULL, NULL, 0)) {
        fc_request_log(req, "pgquery: %s", PQerrorMessage(conn));
        PQfinish(conn);
        fc_token_off_cancel(tok, handle);
        return fc_response_error(resp, 503, "database unavailable") == 0 ?
            FC_OK : FC_ERROR;
    }

    rows = json_object_new_array();
    for (;;) {
        if (!PQisBusy(conn)) {
            if ((res = PQgetResult(conn)) == NULL)
                break;                      /* the statement is over */
            if (PQresultStatus(res) == PGRES_TUPLES_OK)
                add_rows(rows, res);
            else if (PQresultStatus(res) != PGRES_COMMAND_OK)
                failed = 1;
            PQclear(res);
            continue;
        }
        if ((w = wait_conn(conn, tok, -1)) == 0) {
            /* Cancelled: stop the statement in the database. */
            sent = now_ns();
            pc = PQgetCancel(conn);
            if (pc == NULL || !PQcancel(pc, err, sizeof err))
                fc_request_log(req, "pgquery: cancel failed: %s", err);
            PQfreeCancel(pc);
            stopped = drain(conn);
            fc_request_log(req, "pgquery: query cancelled (%s): %s %.3f ms "
                "after the cancel request, sent %.3f ms after the token "
                "fired", fc_reason_name(fc_token_reason(tok)), stopped ?
                "the database stopped it" : "no answer", (double)(now_ns() -
                sent) / 1e6, (double)(sent - atomic_load_explicit(
                &cancelled_at, memory_order_acquire)) / 1e6);
            PQfinish(conn);
            json_object_put(rows);
            fc_token_off_cancel(tok, handle);
            return FC_CANCELLED;
        }
        if (w < 0 || !PQconsumeInput(conn)) {
            failed = 1;
            break;
        }
    }
    if (failed)
        fc_request_log(req, "pgquery: %s", PQerrorMessage(conn));
    PQfinish(conn);
    fc_token_off_cancel(tok, handle);
    if (failed) {
        json_object_put(rows);
        return fc_response_error(resp, 500, "query failed") == 0 ?
            FC_OK : FC_ERROR;
    }
    doc = json_object_new_object();
    json_object_object_add(doc, "rows", rows);
    rc = fc_response_json(resp, 200, doc);
    json_object_put(doc);
    return rc == 0 ? FC_OK : FC_ERROR;
}
