/* SPDX-License-Identifier: MIT */
/*
 * sql.c - the sql handler: one PostgreSQL statement per route, its values
 * bound from the request, its rows streamed to the client, and its
 * cancellation carried into the database.
 *
 * DESIGN
 *
 * A request takes a connection from the route's pool (pgpool.c), sends
 * the statement with PQsendQueryParams() (values bound, never spliced)
 * in single-row mode, and then sleeps in poll() on two descriptors: the
 * connection's socket and the token's (fc_token_fd()).  Each row is
 * written to the client as it arrives (sqlout.c), so the memory held is
 * one row's; a slow client slows the database down through TCP, it does
 * not fill the server's memory.
 *
 * When the token fires (client gone, FCGI_ABORT_REQUEST, a failed write,
 * the route's deadline, shutdown), the worker sends PostgreSQL a cancel
 * request at once (PQcancel() with the backend's key: a short second
 * connection), then reads the connection until its last result (the
 * "canceling statement due to user request" error, SQLSTATE 57014) so
 * that it is idle again, and gives it back to the pool; a connection
 * that does not come back within SQL_DRAIN_MS, or that is broken, is
 * closed instead.  PostgreSQL drops a cancel that reaches the backend
 * before it has read the statement (a statement sent just before the
 * token fired, on a loaded machine), so while no result comes the cancel
 * is sent again every SQL_RECANCEL_MS; one that lands after the
 * statement's end finds the backend reading its next command, and
 * PostgreSQL drops that one too.  The time from the cancel sent to the last result is
 * what the log line and /status report as the database's stop time.
 * PQcancel() blocks while it connects, which is why it runs here, on the
 * worker, and not in a cancel callback on the watcher thread.
 *
 * Statements of a read_only route run in read-only transactions: the
 * pool's connections start with default_transaction_read_only on.
 *
 * Clients see a generic message (400 bad parameter value, 503 database
 * unavailable with Retry-After, 500 query failed); the SQL text, the
 * conninfo (without its password) and PostgreSQL's message go to the log.
 *
 * Locking: `sql_routes_mtx` protects the list of served routes (for
 * /status); it is taken before a pool's mutex.  Counters are relaxed
 * atomics.
 *
 * Its parts with a life of their own are in their own files (the pool,
 * the $n values, the row writer); what stays here is one file of a little
 * over 900 lines because the run loop, the cancel path and the counters
 * that /status and /metrics read all work on struct sql_run and struct
 * sql_opts, which no other file needs to see.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <libpq-fe.h>

#include "expo.h"
#include "handlers/sql.h"
#include "handlers/sqlout.h"
#include "handlers/sqlparam.h"
#include "log.h"
#include "pgpool.h"
#include "status.h"
#include "util.h"

#define SQL_DRAIN_MS        5000    /* the database's stop, at most */
#define SQL_RECANCEL_MS     100     /* a cancel not acted on: sent again */
#define SQL_FLUSH_BYTES     16384   /* rows gathered before a write */
#define SQL_RETRY_AFTER     "5"     /* seconds, with a 503 */
#define SQL_FILE_MAX        65536   /* a conninfo_file */
#define SQL_POOL_MAX        1024
#define SQL_LOG_MAX         2048    /* a query or message in the log */

/* A route's figures for /status; relaxed atomics. */
struct sql_counters {
    _Atomic uint64_t    queries;        /* statements sent */
    _Atomic uint64_t    completed;
    _Atomic uint64_t    rows;
    _Atomic uint64_t    bad_request;    /* 400 */
    _Atomic uint64_t    unavailable;    /* 503 */
    _Atomic uint64_t    failed;         /* 500, or cut after rows */
    _Atomic uint64_t    cancelled;
    _Atomic uint64_t    retries;        /* on a new connection */
    _Atomic uint64_t    stops;          /* cancels the database confirmed */
    _Atomic uint64_t    stop_ns_total;
    _Atomic uint64_t    stop_ns_max;
    _Atomic uint64_t    stop_ns_last;
};

/* A route's options (the key table fills the first part) and state. */
struct sql_opts {
    char               *conninfo;
    char               *conninfo_file;
    char               *query;
    struct sqlparams    params;
    int                 writable;       /* "read_only": false */
    long                pool_size;
    int                 output;         /* enum sqlout_format */
    long                connect_timeout_ms;
    /* From build(). */
    char               *path;
    struct pgpool      *pool;
    struct sql_counters n;
    struct sql_opts    *prev, *next;    /* protected by sql_routes_mtx */
    int                 listed;         /* protected by sql_routes_mtx */
};

/* One statement's run on one connection. */
struct sql_run {
    struct sql_opts    *o;
    fc_request         *req;
    fc_response        *resp;
    fc_token           *tok;
    PGconn             *conn;
    struct sqlout       out;
    int                 begun;          /* sqlout_begin() done */
    const char        **vals;           /* one row's values */
    size_t             *lens;
    int                 failed;         /* an error result came */
    char                sqlstate[6];
    char               *message;        /* PostgreSQL's, for the log */
};

static pthread_mutex_t  sql_routes_mtx = PTHREAD_MUTEX_INITIALIZER;
static struct sql_opts *sql_routes;     /* protected by sql_routes_mtx */

static const char *const sql_outputs[] = { "json", "ndjson", "csv", NULL };

_Static_assert(nitems(sql_outputs) == SQLOUT_FORMAT__MAX + 1,
    "sql_outputs matches enum sqlout_format");

/* ---- keys ------------------------------------------------------------ */

/* "params": see sqlparam.h. */
static int
set_params(void *base, json_object *v, const char *path, char **cause)
{
    return sqlparam_parse(&((struct sql_opts *)base)->params, v, path,
        cause);
}

/* "read_only": a JSON boolean, stored as its opposite (calloc's 0 is the
 * default, true). */
static int
set_read_only(void *base, json_object *v, const char *path, char **cause)
{
    if (!json_object_is_type(v, json_type_boolean)) {
        if (asprintf(cause, "%s: must be true or false", path) < 0)
            *cause = NULL;
        return -1;
    }
    ((struct sql_opts *)base)->writable = !json_object_get_boolean(v);
    return 0;
}

/* "conninfo_file": an absolute path. */
static int
check_abs_path(const char *s, char **why)
{
    if (*s == '/')
        return 0;
    *why = strdup("must be an absolute path");
    return -1;
}

/* "query": not empty. */
static int
check_query(const char *s, char **why)
{
    if (*s != '\0')
        return 0;
    *why = strdup("must not be empty");
    return -1;
}

static const struct config_key sql_keys[] = {
    { .name = "conninfo", .type = CONFIG_STRING,
      .offset = offsetof(struct sql_opts, conninfo), .nullable = 1 },
    { .name = "conninfo_file", .type = CONFIG_STRING,
      .offset = offsetof(struct sql_opts, conninfo_file), .nullable = 1,
      .check = check_abs_path },
    { .name = "query", .type = CONFIG_STRING,
      .offset = offsetof(struct sql_opts, query), .check = check_query },
    { .name = "params", .type = CONFIG_CUSTOM, .set = set_params },
    { .name = "read_only", .type = CONFIG_CUSTOM, .set = set_read_only },
    { .name = "pool_size", .type = CONFIG_INT,
      .offset = offsetof(struct sql_opts, pool_size),
      .min = 1, .max = SQL_POOL_MAX, .def = 4 },
    { .name = "output", .type = CONFIG_ENUM,
      .offset = offsetof(struct sql_opts, output),
      .def = SQLOUT_JSON, .names = sql_outputs },
    { .name = "connect_timeout_ms", .type = CONFIG_INT,
      .offset = offsetof(struct sql_opts, connect_timeout_ms),
      .min = 1, .max = 600000, .def = 5000 },
};

/* Set *cause to "where[.key]: message"; return -1. */
static int __attribute__((format(printf, 4, 5)))
sql_fail(char **cause, const char *where, const char *key,
    const char *fmt, ...)
{
    struct buf  b = { 0 };
    va_list     ap;

    va_start(ap, fmt);
    if (buf_printf(&b, "%s%s%s: ", where, key != NULL ? "." : "",
        key != NULL ? key : "") != 0 || buf_vprintf(&b, fmt, ap) != 0) {
        buf_free(&b);
        b.data = strdup("out of memory");
    }
    va_end(ap);
    *cause = b.data;
    return -1;
}

/* Read the conninfo file at path into *out (trailing blanks cut). */
static int
sql_read_conninfo(const char *path, char **out, const char *where,
    char **cause)
{
    struct buf  b = { 0 };
    char        chunk[4096];
    ssize_t     r;
    int         fd, err;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return sql_fail(cause, where, "conninfo_file", "%s: %s", path,
            strerror(errno));
    while ((r = read(fd, chunk, sizeof chunk)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || b.len + (size_t)r > SQL_FILE_MAX ||
            buf_add(&b, chunk, (size_t)r) != 0) {
            err = r < 0 ? errno : EFBIG;
            close(fd);
            buf_free(&b);
            return sql_fail(cause, where, "conninfo_file", "%s: %s", path,
                strerror(err));
        }
    }
    close(fd);
    while (b.len > 0 && (b.data[b.len - 1] == '\n' ||
        b.data[b.len - 1] == '\r' || b.data[b.len - 1] == ' ' ||
        b.data[b.len - 1] == '\t'))
        b.data[--b.len] = '\0';
    *out = b.data != NULL ? b.data : strdup("");
    return *out != NULL ? 0 : sql_fail(cause, where, NULL, "out of memory");
}

/* The registry's build(): cross-key checks, the pool, the /status entry. */
static int
sql_build(void *opts, json_object *route_obj, const struct handler_ctx *ctx,
    char **cause)
{
    struct sql_opts *o = opts;
    char            *why = NULL, *conninfo = NULL;
    int              rc;

    if (o->query == NULL)
        return sql_fail(cause, ctx->where, NULL, "missing key \"query\"");
    if (o->conninfo != NULL && o->conninfo_file != NULL)
        return sql_fail(cause, ctx->where, "conninfo_file", "give "
            "\"conninfo\" or \"conninfo_file\", not both");
    if (sqlparam_check_query(o->query, o->params.n, &why) != 0) {
        rc = sql_fail(cause, ctx->where, "query", "%s",
            why != NULL ? why : "out of memory");
        free(why);
        return rc;
    }
    (void)route_obj;
    if (ctx->path != NULL && (o->path = strdup(ctx->path)) == NULL)
        return sql_fail(cause, ctx->where, NULL, "out of memory");
    if (o->conninfo_file != NULL) {
        if (ctx->flags & HANDLER_CHECK_ONLY)
            return 0;
        if (sql_read_conninfo(o->conninfo_file, &conninfo, ctx->where,
            cause) != 0)
            return -1;
    }
    o->pool = pgpool_new(conninfo != NULL ? conninfo : o->conninfo != NULL ?
        o->conninfo : "", (int)o->pool_size, !o->writable,
        o->connect_timeout_ms, &why);
    free(conninfo);
    if (o->pool == NULL) {
        rc = sql_fail(cause, ctx->where, o->conninfo_file != NULL ?
            "conninfo_file" : "conninfo", "%s",
            why != NULL ? why : "out of memory");
        free(why);
        return rc;
    }
    if (ctx->flags & HANDLER_CHECK_ONLY)
        return 0;
    xmutex_lock(&sql_routes_mtx);
    o->next = sql_routes;
    if (sql_routes != NULL)
        sql_routes->prev = o;
    sql_routes = o;
    o->listed = 1;
    xmutex_unlock(&sql_routes_mtx);
    return 0;
}

/* The registry's fini(): what build() and the custom keys added. */
static void
sql_fini(void *opts)
{
    struct sql_opts *o = opts;

    xmutex_lock(&sql_routes_mtx);
    if (o->listed) {
        if (o->prev != NULL)
            o->prev->next = o->next;
        else
            sql_routes = o->next;
        if (o->next != NULL)
            o->next->prev = o->prev;
        o->listed = 0;
    }
    xmutex_unlock(&sql_routes_mtx);
    pgpool_free(o->pool);
    o->pool = NULL;
    sqlparam_free(&o->params);
    free(o->path);
    o->path = NULL;
}

/* ---- errors ----------------------------------------------------------- */

int
sql_http_status(const char *sqlstate, int conn_bad)
{
    static const char *const unavailable[] = {
        "08", "53", "57P01", "57P02", "57P03"
    };
    size_t i;

    if (conn_bad)
        return 503;
    if (sqlstate == NULL)
        return 500;
    if (strncmp(sqlstate, "22", 2) == 0)
        return 400;
    for (i = 0; i < nitems(unavailable); i++) {
        if (strncmp(sqlstate, unavailable[i], strlen(unavailable[i])) == 0)
            return 503;
    }
    return 500;
}

/* The message a client gets with status. */
static const char *
sql_http_message(int status)
{
    switch (status) {
    case 400:
        return "bad parameter value";
    case 503:
        return "database unavailable";
    default:
        return "query failed";
    }
}

/* Write s into dst for the log: escaped, trailing newlines cut. */
static char *
sql_log_text(char *dst, size_t size, const char *s)
{
    char    tmp[SQL_LOG_MAX];
    size_t  len;

    snprintf(tmp, sizeof tmp, "%s", s != NULL ? s : "");
    len = strlen(tmp);
    while (len > 0 && (tmp[len - 1] == '\n' || tmp[len - 1] == ' '))
        tmp[--len] = '\0';
    return log_escape(dst, size, tmp);
}

/* Answer status with the generic JSON error (and Retry-After for 503). */
static void
sql_answer_error(struct sql_opts *o, fc_response *resp, int status)
{
    _Atomic uint64_t *c = status == 400 ? &o->n.bad_request :
        status == 503 ? &o->n.unavailable : &o->n.failed;

    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
    if (status == 503)
        fc_response_header(resp, "Retry-After", SQL_RETRY_AFTER);
    fc_response_error(resp, status, sql_http_message(status));
}

/* ---- one statement ------------------------------------------------------ */

/*
 * Read conn's results until the last (NULL), for at most until end_ns,
 * after flushing what is left to send; the SQLSTATE of an error result
 * goes into sqlstate (6 bytes) if not NULL.  Return 1 if the last result
 * came, 0 if not (time out, or the connection broke).
 */
static int
sql_drain(PGconn *conn, uint64_t end_ns, char *sqlstate)
{
    enum pgpool_status  ws;
    PGresult           *res;
    const char         *s;
    uint64_t            now;
    int                 f;

    while ((f = PQflush(conn)) == 1) {
        if ((now = now_ns()) >= end_ns ||
            pgpool_wait(conn, NULL, 1, (long)((end_ns - now) / 1000000u))
            != PGPOOL_OK || !PQconsumeInput(conn))
            return 0;
    }
    if (f < 0)
        return 0;
    for (;;) {
        while (!PQisBusy(conn)) {
            if ((res = PQgetResult(conn)) == NULL)
                return 1;
            if (sqlstate != NULL && PQresultStatus(res) ==
                PGRES_FATAL_ERROR && (s = PQresultErrorField(res,
                PG_DIAG_SQLSTATE)) != NULL)
                snprintf(sqlstate, 6, "%s", s);
            PQclear(res);
        }
        if ((now = now_ns()) >= end_ns)
            return 0;
        ws = pgpool_wait(conn, NULL, 0, (long)((end_ns - now) / 1000000u));
        if (ws != PGPOOL_OK || (!PQconsumeInput(conn) && PQisBusy(conn)))
            return 0;
    }
}

/* Bring conn back to idle (ROLLBACK an open transaction); 1 if it is. */
static int
sql_idle(PGconn *conn)
{
    PGTransactionStatusType ts;

    if (PQstatus(conn) != CONNECTION_OK)
        return 0;
    ts = PQtransactionStatus(conn);
    if (ts == PQTRANS_IDLE)
        return 1;
    if ((ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR) ||
        !PQsendQuery(conn, "ROLLBACK") ||
        !sql_drain(conn, now_ns() + SQL_DRAIN_MS * 1000000ull, NULL))
        return 0;
    return PQtransactionStatus(conn) == PQTRANS_IDLE;
}

/* Give the run's connection back: kept if ok and idle, else closed. */
static void
sql_release(struct sql_run *r, int ok)
{
    pgpool_put(r->o->pool, r->conn, ok && sql_idle(r->conn));
    r->conn = NULL;
}

/* Send what the writer holds; all: even a little.  0, or -1 (cancelled). */
static int
sql_send(struct sql_run *r, int all)
{
    struct buf *b = &r->out.out;
    int         rc = 0;

    if (b->len == 0 || (!all && b->len < SQL_FLUSH_BYTES))
        return 0;
    rc = fc_response_write(r->resp, b->data, b->len);
    b->len = 0;             /* the memory stays, for the next rows */
    b->data[0] = '\0';
    return rc;
}

/* Start the response from res's columns.  0, or -1 if memory ran out. */
static int
sql_begin(struct sql_run *r, const PGresult *res)
{
    const char    **names;
    unsigned int   *oids;
    size_t          n = (size_t)PQnfields(res), i;
    int             rc = -1;

    names = calloc(n + 1, sizeof *names);
    oids = calloc(n + 1, sizeof *oids);
    r->vals = calloc(n + 1, sizeof *r->vals);
    r->lens = calloc(n + 1, sizeof *r->lens);
    if (names != NULL && oids != NULL && r->vals != NULL && r->lens != NULL) {
        for (i = 0; i < n; i++) {
            names[i] = PQfname(res, (int)i);
            oids[i] = PQftype(res, (int)i);
        }
        rc = sqlout_begin(&r->out, (enum sqlout_format)r->o->output, n,
            names, oids);
    }
    free(names);
    free(oids);
    if (rc != 0)
        return -1;
    r->begun = 1;
    fc_response_status(r->resp, 200);
    fc_response_header(r->resp, "Content-Type",
        sqlout_content_type((enum sqlout_format)r->o->output));
    fc_response_header(r->resp, "Cache-Control", "no-store");
    return 0;
}

/* Handle one result.  Return 0, or -1 if the client's write failed. */
static int
sql_result(struct sql_run *r, PGresult *res)
{
    ExecStatusType  st = PQresultStatus(res);
    const char     *s;
    size_t          i;

    switch (st) {
    case PGRES_SINGLE_TUPLE:
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
        if (r->failed)
            return 0;
        if (!r->begun && sql_begin(r, res) != 0) {
            r->failed = 1;
            free(r->message);
            r->message = strdup("out of memory");
            return 0;
        }
        if (st != PGRES_SINGLE_TUPLE)
            return 0;
        for (i = 0; i < r->out.ncols; i++) {
            r->vals[i] = PQgetisnull(res, 0, (int)i) ? NULL :
                PQgetvalue(res, 0, (int)i);
            r->lens[i] = (size_t)PQgetlength(res, 0, (int)i);
        }
        if (sqlout_row(&r->out, r->vals, r->lens) != 0) {
            r->failed = 1;
            return 0;
        }
        return sql_send(r, 0);
    default:
        if (!r->failed) {
            r->failed = 1;
            s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            snprintf(r->sqlstate, sizeof r->sqlstate, "%s",
                s != NULL ? s : "");
            free(r->message);
            r->message = strdup(st == PGRES_EMPTY_QUERY ? "empty query" :
                PQresultErrorMessage(res));
        }
        return 0;
    }
}

/* Send a cancel request for conn's statement; 1 if sent, else 0 (err). */
static int
sql_send_cancel(PGconn *conn, char *err, int errlen)
{
    PGcancel   *pc;
    int         sent = 0;

    if ((pc = PQgetCancel(conn)) != NULL) {
        sent = PQcancel(pc, err, errlen);
        PQfreeCancel(pc);
    }
    return sent;
}

/*
 * The token fired while the statement ran: cancel it in the database
 * (again every SQL_RECANCEL_MS while it runs on), wait for the last
 * result, give the connection back.  Return FC_CANCELLED.
 */
static int
sql_cancel(struct sql_run *r)
{
    struct sql_opts    *o = r->o;
    char                err[256] = "", state[6] = "", esc[300];
    uint64_t            t0, t1, end, next, max;
    char                more[40] = "";
    int                 sent, drained = 0, times = 1;

    t0 = now_ns();
    end = t0 + SQL_DRAIN_MS * 1000000ull;
    sent = sql_send_cancel(r->conn, err, (int)sizeof err);
    while (sent) {
        next = now_ns() + SQL_RECANCEL_MS * 1000000ull;
        if ((drained = sql_drain(r->conn, next < end ? next : end, state)) ||
            now_ns() >= end || PQstatus(r->conn) != CONNECTION_OK)
            break;
        /* A resend that fails leaves the first one's wait to run out. */
        if (sql_send_cancel(r->conn, err, (int)sizeof err))
            times++;
    }
    t1 = now_ns();
    if (times > 1)
        snprintf(more, sizeof more, "; cancel sent %d times", times);
    atomic_fetch_add_explicit(&o->n.cancelled, 1, memory_order_relaxed);
    if (!sent) {
        log_warnx("req=%llu sql %s: query cancelled (%s), but the cancel "
            "request failed: %s; connection closed",
            (unsigned long long)fc_request_id(r->req), o->path,
            fc_reason_name(fc_token_reason(r->tok)),
            sql_log_text(esc, sizeof esc, err));
    } else if (!drained) {
        log_warnx("req=%llu sql %s: query cancelled (%s), the database did "
            "not stop within %d ms%s; connection closed",
            (unsigned long long)fc_request_id(r->req), o->path,
            fc_reason_name(fc_token_reason(r->tok)), SQL_DRAIN_MS, more);
    } else {
        atomic_fetch_add_explicit(&o->n.stops, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&o->n.stop_ns_total, t1 - t0,
            memory_order_relaxed);
        atomic_store_explicit(&o->n.stop_ns_last, t1 - t0,
            memory_order_relaxed);
        max = atomic_load_explicit(&o->n.stop_ns_max, memory_order_relaxed);
        while (t1 - t0 > max && !atomic_compare_exchange_weak_explicit(
            &o->n.stop_ns_max, &max, t1 - t0, memory_order_relaxed,
            memory_order_relaxed))
            ;
        log_info("req=%llu sql %s: query cancelled (%s) in the database: "
            "stopped %.3f ms after the cancel (SQLSTATE %s)%s",
            (unsigned long long)fc_request_id(r->req), o->path,
            fc_reason_name(fc_token_reason(r->tok)), (double)(t1 - t0) / 1e6,
            *state != '\0' ? state : "none: it had ended", more);
    }
    sql_release(r, sent && drained);
    return FC_CANCELLED;
}

/*
 * Run o's statement with vals on conn (fresh: just connected) and answer.
 * The connection goes back to the pool.  Return FC_OK, FC_ERROR (failed
 * after rows were sent) or FC_CANCELLED; *retry set: the connection was
 * found broken before anything could have run or been sent, try again on
 * another one.
 */
static int
sql_run(struct sql_opts *o, fc_request *req, fc_response *resp,
    fc_token *tok, PGconn *conn, int fresh, char **vals, int *retry)
{
    struct sql_run      r = { .o = o, .req = req, .resp = resp,
                              .tok = tok, .conn = conn };
    enum pgpool_status  ws;
    PGresult           *res;
    char                q[SQL_LOG_MAX], m[SQL_LOG_MAX];
    int                 f, status, rc = FC_OK, conn_bad, queued;

    *retry = 0;
    queued = PQsendQueryParams(conn, o->query, (int)o->params.n, NULL,
        (const char *const *)vals, NULL, NULL, 0);
    if (queued && !PQsetSingleRowMode(conn))
        log_warnx("req=%llu sql %s: no single-row mode: rows come at once",
            (unsigned long long)fc_request_id(req), o->path);
    while (queued && (f = PQflush(conn)) != 0) {
        if (f < 0) {
            queued = 0;
            break;
        }
        if ((ws = pgpool_wait(conn, tok, 1, -1)) == PGPOOL_CANCELLED)
            goto cancel;
        if (ws != PGPOOL_OK || !PQconsumeInput(conn))
            queued = 0;
    }
    if (!queued) {
        r.failed = 1;
        r.message = strdup(PQerrorMessage(conn));
        goto done;
    }
    atomic_fetch_add_explicit(&o->n.queries, 1, memory_order_relaxed);
    for (;;) {
        while (!PQisBusy(conn)) {
            if ((res = PQgetResult(conn)) == NULL)
                goto done;
            f = sql_result(&r, res);
            PQclear(res);
            if (f != 0)
                goto cancel;
        }
        /* Rows wait here no longer than for the database: before
         * sleeping, what we hold goes out. */
        if (r.out.rows > 0 && !r.failed && (sql_send(&r, 1) != 0 ||
            fc_response_flush(resp) != 0))
            goto cancel;
        if ((ws = pgpool_wait(conn, tok, 0, -1)) == PGPOOL_CANCELLED)
            goto cancel;
        if ((ws != PGPOOL_OK || !PQconsumeInput(conn)) && PQisBusy(conn)) {
            r.failed = 1;
            free(r.message);
            r.message = strdup(PQerrorMessage(conn));
            goto done;
        }
    }

cancel:
    rc = sql_cancel(&r);
    goto out;

done:
    if (!r.failed) {
        if ((!r.begun && sql_begin(&r, NULL) != 0) ||
            sqlout_end(&r.out) != 0 || sql_send(&r, 1) != 0) {
            /* The statement is over: a failed write only loses the
             * client, which the token says. */
            rc = fc_token_cancelled(tok) ? FC_CANCELLED : FC_ERROR;
        } else {
            atomic_fetch_add_explicit(&o->n.completed, 1,
                memory_order_relaxed);
        }
        atomic_fetch_add_explicit(&o->n.rows, r.out.rows,
            memory_order_relaxed);
        sql_release(&r, 1);
        goto out;
    }
    conn_bad = PQstatus(conn) != CONNECTION_OK;
    status = sql_http_status(*r.sqlstate != '\0' ? r.sqlstate : NULL,
        conn_bad);
    if (conn_bad && !fresh && r.out.rows == 0 && !r.begun &&
        (!queued || !o->writable)) {
        log_info("req=%llu sql %s: connection lost (%s); again on a new "
            "one", (unsigned long long)fc_request_id(req), o->path,
            sql_log_text(m, sizeof m, r.message));
        sql_release(&r, 0);
        *retry = 1;
        goto out;
    }
    log_warnx("req=%llu sql %s: query failed (SQLSTATE %s, HTTP %d): %s; "
        "query: %s; conninfo: %s", (unsigned long long)fc_request_id(req),
        o->path, *r.sqlstate != '\0' ? r.sqlstate : "none", status,
        sql_log_text(m, sizeof m, r.message),
        sql_log_text(q, sizeof q, o->query), pgpool_safe_conninfo(o->pool));
    if (r.out.rows == 0 && !fc_response_committed(resp)) {
        sql_answer_error(o, resp, status);
    } else {
        atomic_fetch_add_explicit(&o->n.failed, 1, memory_order_relaxed);
        rc = FC_ERROR;          /* the body is cut short */
    }
    sql_release(&r, !conn_bad);
out:
    sqlout_free(&r.out);
    free(r.vals);
    free(r.lens);
    free(r.message);
    return rc;
}

/* The handler: resolve the values, take a connection, run. */
static int
sql_handler(fc_request *req, fc_response *resp, fc_token *tok, void *data)
{
    struct sql_opts    *o = data;
    enum pgpool_status  st;
    PGconn             *conn;
    char              **vals = NULL, *why = NULL, *err = NULL, m[SQL_LOG_MAX];
    int                 attempt, fresh, retry, rc = FC_OK;

    if (sqlparam_resolve(&o->params, req, &vals, &why) != 0) {
        if (why == NULL)
            return FC_ERROR;
        atomic_fetch_add_explicit(&o->n.bad_request, 1,
            memory_order_relaxed);
        rc = fc_response_error(resp, 400, why) == 0 ? FC_OK : FC_ERROR;
        free(why);
        return rc;
    }
    for (attempt = 0; attempt < 2; attempt++) {
        st = pgpool_get(o->pool, tok, &conn, &fresh, &err);
        if (st == PGPOOL_CANCELLED) {
            atomic_fetch_add_explicit(&o->n.cancelled, 1,
                memory_order_relaxed);
            rc = FC_CANCELLED;
            break;
        }
        if (st != PGPOOL_OK) {
            log_warnx("req=%llu sql %s: cannot connect (%s): %s",
                (unsigned long long)fc_request_id(req), o->path,
                pgpool_safe_conninfo(o->pool),
                sql_log_text(m, sizeof m, err));
            free(err);
            sql_answer_error(o, resp, 503);
            break;
        }
        rc = sql_run(o, req, resp, tok, conn, fresh, vals, &retry);
        if (!retry)
            break;
        atomic_fetch_add_explicit(&o->n.retries, 1, memory_order_relaxed);
    }
    sqlparam_values_free(vals, o->params.n);
    return rc;
}

/* ---- /status ------------------------------------------------------------ */

/* A counter's value as a JSON integer. */
static json_object *
sql_u64(_Atomic uint64_t *v)
{
    return json_object_new_int64((int64_t)atomic_load_explicit(v,
        memory_order_relaxed));
}

/* One route's object. */
static json_object *
sql_route_json(struct sql_opts *o)
{
    struct pgpool_stats ps;
    json_object        *r = json_object_new_object(), *s, *p;
    uint64_t            n, total;

    json_object_object_add(r, "queries", sql_u64(&o->n.queries));
    json_object_object_add(r, "completed", sql_u64(&o->n.completed));
    json_object_object_add(r, "rows", sql_u64(&o->n.rows));
    json_object_object_add(r, "bad_request", sql_u64(&o->n.bad_request));
    json_object_object_add(r, "unavailable", sql_u64(&o->n.unavailable));
    json_object_object_add(r, "failed", sql_u64(&o->n.failed));
    json_object_object_add(r, "cancelled", sql_u64(&o->n.cancelled));
    json_object_object_add(r, "retries", sql_u64(&o->n.retries));
    s = json_object_new_object();
    n = atomic_load_explicit(&o->n.stops, memory_order_relaxed);
    total = atomic_load_explicit(&o->n.stop_ns_total, memory_order_relaxed);
    json_object_object_add(s, "samples", json_object_new_int64((int64_t)n));
    json_object_object_add(s, "last_ms", status_ms(
        (double)atomic_load_explicit(&o->n.stop_ns_last,
        memory_order_relaxed) / 1e6));
    json_object_object_add(s, "mean_ms", status_ms(
        n > 0 ? (double)total / (double)n / 1e6 : 0));
    json_object_object_add(s, "max_ms", status_ms(
        (double)atomic_load_explicit(&o->n.stop_ns_max,
        memory_order_relaxed) / 1e6));
    json_object_object_add(r, "db_stop", s);
    pgpool_stats(o->pool, &ps);
    p = json_object_new_object();
    json_object_object_add(p, "size", json_object_new_int(ps.size));
    json_object_object_add(p, "open", json_object_new_int(ps.open));
    json_object_object_add(p, "in_use", json_object_new_int(ps.in_use));
    json_object_object_add(p, "connects", json_object_new_int64(
        (int64_t)ps.connects));
    json_object_object_add(p, "connect_failures", json_object_new_int64(
        (int64_t)ps.connect_failures));
    json_object_object_add(p, "dropped", json_object_new_int64(
        (int64_t)ps.dropped));
    json_object_object_add(r, "pool", p);
    return r;
}

void *
sql_status_json(void)
{
    json_object     *root = json_object_new_object();
    struct sql_opts *o;

    xmutex_lock(&sql_routes_mtx);
    for (o = sql_routes; o != NULL; o = o->next)
        json_object_object_add(root, o->path != NULL ? o->path : "?",
            sql_route_json(o));
    xmutex_unlock(&sql_routes_mtx);
    return root;
}

/* Load one of a route's counters as a double, for a sample. */
#define SQL_N(o, f) ((double)atomic_load_explicit(&(o)->n.f, \
                        memory_order_relaxed))

/*
 * The registry's metrics(): per sql route, the statements by how they
 * ended, the time the database took to stop cancelled ones, and the pool.
 * Counters start again from 0 when a reload builds the route anew.
 */
static void
sql_metrics(struct expo *e, const struct handler_route *routes, size_t n)
{
    static const char *const ends[] = {
        "completed", "bad_request", "unavailable", "failed", "cancelled"
    };
    struct pgpool_stats ps;
    const char         *l[5];
    size_t              i, k;

    l[0] = "route";
    l[2] = "outcome";
    l[4] = NULL;
    expo_family(e, "fcgi_cancel_sql_queries", EXPO_COUNTER, "Statements "
        "of sql routes, by how they ended (cancelled: in the database).");
    for (i = 0; i < n; i++) {
        struct sql_opts *o = routes[i].opts;
        const double     v[] = { SQL_N(o, completed), SQL_N(o, bad_request),
            SQL_N(o, unavailable), SQL_N(o, failed), SQL_N(o, cancelled) };

        l[1] = routes[i].route;
        for (k = 0; k < nitems(ends); k++) {
            l[3] = ends[k];
            expo_sample(e, l, v[k]);
        }
    }
    l[2] = NULL;
    expo_family(e, "fcgi_cancel_sql_cancel_stops", EXPO_COUNTER,
        "Statements stopped in the database by a cancel request.");
    for (i = 0; i < n; i++) {
        l[1] = routes[i].route;
        expo_sample(e, l, SQL_N((struct sql_opts *)routes[i].opts, stops));
    }
    expo_family(e, "fcgi_cancel_sql_cancel_stop_seconds", EXPO_COUNTER,
        "Time from each cancel request sent to PostgreSQL to the cancelled "
        "statement's last result, added up (divide by "
        "fcgi_cancel_sql_cancel_stops_total for the mean).");
    for (i = 0; i < n; i++) {
        l[1] = routes[i].route;
        expo_sample(e, l, SQL_N((struct sql_opts *)routes[i].opts,
            stop_ns_total) / 1e9);
    }
    l[2] = "state";
    expo_family(e, "fcgi_cancel_sql_pool_connections", EXPO_GAUGE,
        "Connections of an sql route's pool: open, and in use by a job.");
    for (i = 0; i < n; i++) {
        pgpool_stats(((struct sql_opts *)routes[i].opts)->pool, &ps);
        l[1] = routes[i].route;
        l[3] = "open";
        expo_sample(e, l, ps.open);
        l[3] = "in_use";
        expo_sample(e, l, ps.in_use);
    }
    l[2] = NULL;
    expo_family(e, "fcgi_cancel_sql_pool_connects", EXPO_COUNTER,
        "Connections an sql route's pool opened.");
    for (i = 0; i < n; i++) {
        pgpool_stats(((struct sql_opts *)routes[i].opts)->pool, &ps);
        l[1] = routes[i].route;
        expo_sample(e, l, (double)ps.connects);
    }
}

const struct handler_def handler_sql = {
    .name = "sql",
    .keys = sql_keys,
    .nkeys = nitems(sql_keys),
    .opts_size = sizeof(struct sql_opts),
    .build = sql_build,
    .handler = sql_handler,
    .fini = sql_fini,
    .metrics = sql_metrics,
    .default_routes = NULL,
};
