/* SPDX-License-Identifier: MIT */
/*
 * serve.c - serving one request that a worker has read whole.
 *
 * DESIGN
 * ------
 * The pool (pool.c) reads a connection without blocking until proto_feed()
 * says its request is whole; from there until the response has ended, the
 * request is this module's, on the same worker thread:
 *
 *   1. a request number and a token, a child of the server token (so that
 *      a shutdown cancels it); an FCGI_ABORT_REQUEST that was read together
 *      with the request cancels it at once (proto_classify());
 *   2. a request refused while it was read (proto.c's reject) is answered
 *      413 or 431; else it takes a reference to the current configuration
 *      generation (generation.c) and the route is matched in its routes
 *      (router.c: 404, 405); the reference is dropped when the request has
 *      ended and been logged, so a reload in the meantime changes nothing
 *      for it: it runs with the route, options and module it began with;
 *   3. the watcher's slot of this worker is armed with the connection
 *      (which stays in the watcher's epoll set from its first request to
 *      its close: no epoll_ctl() per request), the token and the deadline
 *      (the route's deadline_ms, shortened by the param
 *      FCGI_CANCEL_DEADLINE_MS), the handler runs on this thread, and the
 *      slot is disarmed;
 *   4. the outcome: cancelled (the token's reason: 499 for a gone client,
 *      504 at the deadline, 503 at shutdown, written only if the headers
 *      are not out or nothing followed them), failed (500) or completed;
 *      proto_out_end() sends the rest of the output, the end of
 *      FCGI_STDOUT and FCGI_END_REQUEST in one write;
 *   5. the counters (status.c, and this worker's block in metrics.c) and
 *      the access log line.
 *
 * The watcher's slot also carries, for /status?full and the slow line,
 * the route's path, the request's method and REMOTE_ADDR, the start and
 * the slow instant (the route's slow_ms, or the server's when the route
 * has none; 0: off).
 *
 * The verdict to the pool: SERVE_DISCARD after a 413/431 whose answer went
 * out (the peer may still be sending the body), SERVE_CLOSE when the
 * connection is out of step or unwanted (a write failed, a cancel other
 * than FCGI_ABORT_REQUEST, no FCGI_KEEP_CONN, out of memory), SERVE_KEEP
 * else.  A shutdown is the pool's to apply: it closes a kept connection
 * while it drains.
 *
 * The write path.  A handler writes with fc_response_write() (request.c),
 * which under the response's lock sends the CGI header block once and the
 * bytes through response_put() into FCGX_PutStr() (libfcgi), on the
 * FCGX_Stream that proto_out_open() (proto.c) made of this worker's
 * proto_out.  FCGX_PutStr() copies into the stream's buffer and, when the
 * buffer is full, calls the stream's emptyBuffProc function pointer, which
 * proto_out_open() set to proto_out_empty(): it closes the FCGI_STDOUT
 * record (header in front, padding behind) and proto_write() sends it, a
 * blocking send bounded by SO_SNDTIMEO (write_timeout_ms) that the pool set
 * at accept.  A failed send (reset, broken pipe, timeout) marks the stream
 * failed (proto_out_fail()) and leaves it full, so FCGX_PutStr() returns
 * short; response_put() sees that, marks the response failed, and
 * response_unlock() cancels the token with FC_WRITE_ERROR, once, after
 * letting go of the lock, so the job's cancel callbacks run on its own
 * thread.  fc_response_flush() takes the same path through FCGX_FFlush().
 * The watcher's probes (response_probe(), from its thread, with the
 * response's lock taken by trylock) flush with proto_out_try() instead,
 * which never blocks: what a full socket does not take stays owed and
 * goes first, blocking, with the handler's next write or the end.
 *
 * Locking: none of its own.  The server-wide state (struct serve) is fixed
 * once made but for next_id, an atomic; the generation's reference is
 * lock-free (generation.c); a request's token, response and watcher slot
 * are locked by their modules (token.c, request.c, watcher.c),
 * never two at once from here.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include <fcgiapp.h>

#include "accesslog.h"
#include "generation.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "request.h"
#include "router.h"
#include "serve.h"
#include "status.h"
#include "token.h"
#include "util.h"
#include "watcher.h"

struct serve {
    fc_token            *server_tok;    /* parent of every request token */
    struct watcher      *watcher;
    _Atomic uint64_t     next_id;       /* the last request number given */
};

/* One request being served: what the steps of serve_request() share. */
struct serve_req {
    uint64_t         id;            /* the server's request number */
    uint64_t         t0;            /* CLOCK_MONOTONIC, serving began */
    fc_request      *req;
    fc_response     *resp;
    fc_token        *tok;
    struct generation *gen;         /* a reference, from routing to the
                                       end; NULL: not routed */
    const struct route *rt;         /* the route matched (in gen); NULL:
                                       none */
    enum outcome     outcome;
    int              status;        /* for the access log */
    int              keep;          /* the connection is still in step */
    int              refused;       /* answered 413 or 431 */
};

struct serve *
serve_new(fc_token *server_tok, struct watcher *watcher)
{
    struct serve *sv;

    if ((sv = calloc(1, sizeof *sv)) == NULL)
        return NULL;
    sv->server_tok = server_tok;
    sv->watcher = watcher;
    return sv;
}

void
serve_free(struct serve *sv)
{
    free(sv);
}

/*
 * Return the CLOCK_MONOTONIC deadline of a request that started at t0: the
 * route's deadline_ms, shortened (or set) by the FastCGI param
 * FCGI_CANCEL_DEADLINE_MS that a front end may pass; 0 for none.  A
 * malformed param is ignored (logged at debug level).
 */
static uint64_t
serve_deadline(const struct route *rt, char **envp, uint64_t t0)
{
    const char *p = FCGX_GetParam("FCGI_CANCEL_DEADLINE_MS", envp);
    long        ms = rt->deadline_ms, v;

    if (p != NULL) {
        if (parse_long(p, 1, 86400000L, &v) != 0)
            log_debug("FCGI_CANCEL_DEADLINE_MS ignored: not 1..86400000");
        else if (ms == 0 || v < ms)
            ms = v;
    }
    return ms > 0 ? t0 + (uint64_t)ms * 1000000u : 0;
}

/*
 * Answer with an error status and JSON body if the handler sent no body:
 * before the headers went out, as the status; after probes sent them (200),
 * in the body, after the probes' whitespace.  Return the status sent.
 */
static int
serve_finish_error(fc_response *resp, int status, const char *message)
{
    if (!fc_response_committed(resp)) {
        fc_response_error(resp, status, message);
        return status;
    }
    if (response_bytes(resp) == 0)
        fc_response_error(resp, status, message);
    return response_get_status(resp);
}

/*
 * End the response of a request that did not complete; return the status
 * for the access log (499 if the client is gone: nothing is written).
 */
static int
serve_finish_cancelled(fc_response *resp, enum fc_reason reason)
{
    switch (reason) {
    case FC_DEADLINE:
        return serve_finish_error(resp, 504, "deadline exceeded");
    case FC_SHUTDOWN:
        return serve_finish_error(resp, 503, "server shutting down");
    default:
        return 499;
    }
}

/*
 * Answer a refused request, or route it and run its handler on this
 * thread with the watcher's slot armed; return the handler's result
 * (FC_OK when no handler ran: the answer is written).
 */
static int
serve_run(struct serve *sv, int slot, int fd, uint64_t conn, int pooled,
    struct proto_req *pr, struct serve_req *r)
{
    const struct route *rt;
    struct watch        wa;
    long                slow;
    int                 status, result;

    if (pr->reject == PROTO_BODY_TOO_LARGE ||
        pr->reject == PROTO_PARAMS_TOO_LARGE) {
        status = pr->reject == PROTO_BODY_TOO_LARGE ? 413 : 431;
        fc_response_error(r->resp, status, status == 413 ?
            "request body too large" : "request params too large");
        metrics_refused(slot, status);
        r->keep = 0;
        r->refused = 1;
        return FC_OK;
    }
    request_set_body(r->req, pr->body.data, pr->body.len);
    pr->body.data = NULL;
    pr->body.len = pr->body.size = 0;
    r->gen = gen_get();
    if ((rt = router_match(&r->gen->cfg.routes, fc_request_path(r->req),
        fc_request_method(r->req), &status)) == NULL) {
        fc_response_error(r->resp, status, status == 404 ? "not found" :
            "method not allowed");
        return FC_OK;
    }
    r->rt = rt;
    if (fc_token_cancelled(r->tok))
        return FC_CANCELLED;
    slow = rt->slow_ms >= 0 ? rt->slow_ms : r->gen->cfg.slow_ms;
    wa = (struct watch){
        .fd = fd, .reqid = (int)pr->id, .id = r->id, .conn = conn,
        .pooled = pooled,
        .tok = r->tok,
        .deadline_ns = serve_deadline(rt, pr->envp, r->t0),
        .resp = r->resp, .probe_ms = rt->probe_ms,
        .route = rt->name, .method = fc_request_method(r->req),
        .client = fc_request_param(r->req, "REMOTE_ADDR"),
        .start_ns = r->t0,
        .slow_ns = slow > 0 ? r->t0 + (uint64_t)slow * 1000000u : 0
    };
    watcher_arm(sv->watcher, slot, &wa);
    result = rt->fn(r->req, r->resp, r->tok, rt->data);
    watcher_disarm(sv->watcher, slot);
    return result;
}

/* Settle the outcome and status of the request from result and its token. */
static void
serve_outcome(int slot, struct serve_req *r, int result)
{
    enum fc_reason reason = fc_token_reason(r->tok);
    uint64_t       t1;

    if ((result == FC_CANCELLED || response_failed(r->resp)) &&
        reason != FC_REASON_NONE) {
        r->outcome = OUTCOME_CANCELLED;
        r->status = serve_finish_cancelled(r->resp, reason);
        t1 = now_ns();
        stats_cancel_latency(t1 - token_cancel_ns(r->tok));
        metrics_cancel_latency(slot, t1 - token_cancel_ns(r->tok));
        log_info("req=%llu job cancelled reason=%s returned_after_ms=%.3f",
            (unsigned long long)r->id, fc_reason_name(reason),
            (double)(t1 - token_cancel_ns(r->tok)) / 1e6);
        if (reason != FC_ABORTED)
            r->keep = 0;
    } else if (result != FC_OK) {
        r->outcome = OUTCOME_FAILED;
        r->status = serve_finish_error(r->resp, 500, "internal error");
    } else {
        r->outcome = OUTCOME_COMPLETED;
        if (!fc_response_committed(r->resp))
            fc_response_flush(r->resp);
        r->status = response_get_status(r->resp);
    }
}

/* Write the access log line of the request. */
static void
serve_log(const struct serve_req *r)
{
    accesslog_request(r->req, r->rt != NULL ? r->rt->path : NULL,
        r->status, response_bytes(r->resp), now_ns() - r->t0,
        r->outcome == OUTCOME_CANCELLED ?
        fc_reason_name(fc_token_reason(r->tok)) : NULL);
}

enum serve_verdict
serve_request(struct serve *sv, int slot, struct proto_out *out, int fd,
    uint64_t conn, int pooled, struct proto_req *pr, struct buf *pending)
{
    struct serve_req    r = { .keep = 1 };
    enum serve_verdict  verdict;
    size_t              consume;

    r.t0 = now_ns();
    r.id = atomic_fetch_add_explicit(&sv->next_id, 1,
        memory_order_relaxed) + 1;
    atomic_fetch_add_explicit(&stats.accepted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&stats.in_flight, 1, memory_order_relaxed);

    if ((r.tok = token_new(sv->server_tok)) == NULL ||
        (r.req = request_new(r.id, pr->envp)) == NULL ||
        (r.resp = response_new(proto_out_open(out, fd, pr->id),
        r.tok)) == NULL) {
        log_errorx("req=%llu out of memory", (unsigned long long)r.id);
        r.outcome = OUTCOME_FAILED;
        r.status = 500;
        r.keep = 0;
    } else {
        /* An FCGI_ABORT_REQUEST read right behind the request. */
        if (pending->len > 0 &&
            proto_classify((const unsigned char *)pending->data,
            pending->len, (int)pr->id, &consume) == PROTO_CLASS_ABORT) {
            buf_consume(pending, consume);
            token_cancel(r.tok, FC_ABORTED);
        }
        serve_outcome(slot, &r, serve_run(sv, slot, fd, conn, pooled, pr, &r));
        /* The rest of the output, the end of FCGI_STDOUT and
         * FCGI_END_REQUEST (answering an FCGI_ABORT_REQUEST too; a front
         * end that only half-closed still reads it).  Fails at once if a
         * write failed. */
        if (proto_out_end(out) != 0)
            r.keep = 0;
    }

    stats_end(r.outcome, r.tok != NULL ? fc_token_reason(r.tok) :
        FC_REASON_NONE);
    metrics_request(slot, r.rt, r.outcome, r.tok != NULL ?
        fc_token_reason(r.tok) : FC_REASON_NONE, r.status,
        now_ns() - r.t0);
    atomic_fetch_sub_explicit(&stats.in_flight, 1, memory_order_relaxed);
    if (r.req != NULL)
        serve_log(&r);
    response_free(r.resp);
    request_free(r.req);
    token_unref(r.tok);
    gen_put(r.gen);         /* the last request of an old one frees it */
    if (r.refused && proto_out_ok(out))
        verdict = SERVE_DISCARD;
    else if (!r.keep || !pr->keep_conn)
        verdict = SERVE_CLOSE;
    else
        verdict = SERVE_KEEP;
    proto_reset(pr);
    return verdict;
}
