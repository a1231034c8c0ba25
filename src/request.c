/* SPDX-License-Identifier: MIT */
/*
 * request.c - what a handler sees of a request (params, path, decoded query,
 * body) and the response writer.  Every byte of a response goes through
 * response_put(), the one place where a failed write is noticed (the
 * FCGX_Stream API reports the first failure and then returns 0 from later
 * flushes, so the stream's error is checked after every call); the public
 * functions
 * then cancel the request's token with FC_WRITE_ERROR, once, after letting
 * go of the response's lock.
 *
 * Probes: for front ends that notice a gone client only when they write to
 * it (Apache, lighttpd without tcp-fin-propagate), the watcher calls
 * response_probe() every probe_ms while a job runs.  If the job wrote
 * nothing since the previous tick, the headers are sent (if not yet) and
 * one space follows: whitespace keeps JSON, HTML and text valid.
 */
#include <ctype.h>
#include <pthread.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "log.h"
#include "proto.h"
#include "request.h"
#include "token.h"
#include "utf8.h"
#include "util.h"

struct fc_request {
    uint64_t           id;
    char             **envp;
    const char        *method;
    char              *path;
    const char        *query_string;
    struct query_arg  *args;
    size_t             nargs;
    int                args_parsed;
    char              *body;
    size_t             body_len;
};

/*
 * `mtx` protects every field but out and tok (fixed): the handler's thread
 * writes, and the watcher's thread may probe (response_probe()).
 */
struct fc_response {
    FCGX_Stream       *out;
    fc_token          *tok;
    pthread_mutex_t    mtx;
    int                status;
    int                committed;
    int                failed;
    int                fail_told;   /* the token was (or will be) cancelled */
    int                has_type;
    struct buf         headers;
    uint64_t           bytes;       /* body bytes written by the handler */
    uint64_t           probe_mark;  /* bytes at the last probe tick */
    uint64_t           probes;      /* probe bytes written */
    int                probe_owed;  /* a probe's bytes wait for room */
};

static const struct {
    int          status;
    const char  *reason;
} http_reasons[] = {
    { 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
    { 204, "No Content" }, { 301, "Moved Permanently" }, { 302, "Found" },
    { 304, "Not Modified" }, { 400, "Bad Request" }, { 401, "Unauthorized" },
    { 403, "Forbidden" }, { 404, "Not Found" },
    { 405, "Method Not Allowed" }, { 408, "Request Timeout" },
    { 409, "Conflict" }, { 413, "Content Too Large" },
    { 429, "Too Many Requests" },
    { 431, "Request Header Fields Too Large" },
    { 499, "Client Closed Request" },
    { 500, "Internal Server Error" }, { 502, "Bad Gateway" },
    { 503, "Service Unavailable" }, { 504, "Gateway Timeout" },
};

const char *
http_reason(int status)
{
    size_t i;

    for (i = 0; i < nitems(http_reasons); i++) {
        if (http_reasons[i].status == status)
            return http_reasons[i].reason;
    }
    return "Unknown";
}

static int
hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/*
 * Decode len bytes of s into a new string of *olen bytes (NULs included)
 * that is valid UTF-8: what the escapes give that is not becomes U+FFFD.
 * Return NULL on allocation failure.
 */
static char *
url_decode(const char *s, size_t len, size_t *olen)
{
    struct buf  b = { 0 };
    char       *out, *o;
    size_t      i;

    if ((out = malloc(len + 1)) == NULL)
        return NULL;
    for (i = 0, o = out; i < len; i++) {
        if (s[i] == '+') {
            *o++ = ' ';
        } else if (s[i] == '%' && i + 2 < len &&
            hexval((unsigned char)s[i + 1]) >= 0 &&
            hexval((unsigned char)s[i + 2]) >= 0) {
            *o++ = (char)(hexval((unsigned char)s[i + 1]) * 16 +
                hexval((unsigned char)s[i + 2]));
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    *olen = (size_t)(o - out);
    if (utf8_valid(out, *olen))
        return out;
    if (utf8_sanitize(&b, out, *olen) != 0)
        buf_free(&b);
    free(out);
    *olen = b.len;
    return b.data;
}

void
query_free(struct query_arg *args, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(args[i].name);
        free(args[i].value);
    }
    free(args);
}

int
query_parse(const char *qs, struct query_arg **args, size_t *n)
{
    struct query_arg *a = NULL, *na;
    size_t            count = 0, cap = 0;
    const char       *p, *amp, *eq;

    *args = NULL;
    *n = 0;
    for (p = qs != NULL ? qs : ""; *p != '\0'; p = *amp ? amp + 1 : amp) {
        if ((amp = strchr(p, '&')) == NULL)
            amp = p + strlen(p);
        if (amp == p)
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 8;
            if ((na = realloc(a, cap * sizeof *a)) == NULL)
                goto fail;
            a = na;
        }
        eq = memchr(p, '=', (size_t)(amp - p));
        a[count].name = url_decode(p, (size_t)((eq ? eq : amp) - p),
            &a[count].name_len);
        a[count].value = eq ? url_decode(eq + 1, (size_t)(amp - eq - 1),
            &a[count].value_len) : url_decode("", 0, &a[count].value_len);
        count++;
        if (a[count - 1].name == NULL || a[count - 1].value == NULL)
            goto fail;
    }
    *args = a;
    *n = count;
    return 0;
fail:
    query_free(a, count);
    return -1;
}

fc_request *
request_new(uint64_t id, char **envp)
{
    fc_request *req;
    const char *uri, *q;
    size_t      len;

    if ((req = calloc(1, sizeof *req)) == NULL)
        return NULL;
    req->id = id;
    req->envp = envp;
    req->method = FCGX_GetParam("REQUEST_METHOD", envp);
    if (req->method == NULL || *req->method == '\0')
        req->method = "GET";
    req->query_string = FCGX_GetParam("QUERY_STRING", envp);
    if (req->query_string == NULL)
        req->query_string = "";

    /*
     * The path: DOCUMENT_URI (nginx, decoded), else SCRIPT_NAME + PATH_INFO
     * (CGI), else REQUEST_URI without its query.
     */
    if ((uri = FCGX_GetParam("DOCUMENT_URI", envp)) != NULL && *uri == '/') {
        req->path = strdup(uri);
    } else if ((uri = FCGX_GetParam("SCRIPT_NAME", envp)) != NULL &&
        *uri == '/') {
        const char *pi = FCGX_GetParam("PATH_INFO", envp);
        struct buf  b = { 0 };

        if (buf_printf(&b, "%s%s", uri, pi ? pi : "") == 0)
            req->path = b.data;
    } else if ((uri = FCGX_GetParam("REQUEST_URI", envp)) != NULL &&
        *uri == '/') {
        q = strchr(uri, '?');
        len = q ? (size_t)(q - uri) : strlen(uri);
        if ((req->path = malloc(len + 1)) != NULL) {
            memcpy(req->path, uri, len);
            req->path[len] = '\0';
        }
    } else {
        req->path = strdup("/");
    }
    if (req->path == NULL) {
        free(req);
        return NULL;
    }
    return req;
}

void
request_free(fc_request *req)
{
    if (req == NULL)
        return;
    query_free(req->args, req->nargs);
    free(req->path);
    free(req->body);
    free(req);
}

char **
request_envp(const fc_request *req)
{
    return req->envp;
}

void
request_set_body(fc_request *req, char *body, size_t len)
{
    free(req->body);
    req->body = body;
    req->body_len = len;
}

const char *
fc_request_param(const fc_request *req, const char *name)
{
    return FCGX_GetParam(name, req->envp);
}

const char *
fc_request_method(const fc_request *req)
{
    return req->method;
}

const char *
fc_request_path(const fc_request *req)
{
    return req->path;
}

const char *
fc_request_query_len(const fc_request *req, const char *name, size_t *len)
{
    fc_request *r = (fc_request *)req;  /* parsed once, on first use */
    size_t      i, nlen = strlen(name);

    if (len != NULL)
        *len = 0;
    if (!r->args_parsed) {
        if (query_parse(r->query_string, &r->args, &r->nargs) != 0)
            return NULL;
        r->args_parsed = 1;
    }
    /* The last of a repeated name wins, as in FastAPI (Starlette). */
    for (i = r->nargs; i-- > 0;) {
        if (r->args[i].name_len == nlen &&
            memcmp(r->args[i].name, name, nlen) == 0) {
            if (len != NULL)
                *len = r->args[i].value_len;
            return r->args[i].value;
        }
    }
    return NULL;
}

const char *
fc_request_query(const fc_request *req, const char *name)
{
    return fc_request_query_len(req, name, NULL);
}

const void *
fc_request_body(const fc_request *req, size_t *len)
{
    *len = req->body_len;
    return req->body != NULL ? req->body : "";
}

uint64_t
fc_request_id(const fc_request *req)
{
    return req->id;
}

void
fc_request_log(const fc_request *req, const char *fmt, ...)
{
    struct buf b = { 0 };
    va_list    ap;

    if (log_level < LOG_LEVEL_INFO)
        return;
    va_start(ap, fmt);
    if (buf_vprintf(&b, fmt, ap) == 0)
        log_emit(LOG_LEVEL_INFO, 0, "req=%llu %s",
            (unsigned long long)req->id, b.data);
    va_end(ap);
    buf_free(&b);
}

fc_response *
response_new(FCGX_Stream *out, fc_token *tok)
{
    fc_response *resp;

    if ((resp = calloc(1, sizeof *resp)) == NULL)
        return NULL;
    resp->out = out;
    resp->tok = tok;
    resp->status = 200;
    xmutex_init(&resp->mtx);
    return resp;
}

void
response_free(fc_response *resp)
{
    if (resp == NULL)
        return;
    xmutex_destroy(&resp->mtx);
    buf_free(&resp->headers);
    free(resp);
}

int
response_get_status(const fc_response *resp)
{
    fc_response *r = (fc_response *)resp;
    int          status;

    xmutex_lock(&r->mtx);
    status = r->status;
    xmutex_unlock(&r->mtx);
    return status;
}

uint64_t
response_bytes(const fc_response *resp)
{
    fc_response *r = (fc_response *)resp;
    uint64_t     n;

    xmutex_lock(&r->mtx);
    n = r->bytes;
    xmutex_unlock(&r->mtx);
    return n;
}

int
response_failed(const fc_response *resp)
{
    fc_response *r = (fc_response *)resp;
    int          failed;

    xmutex_lock(&r->mtx);
    failed = r->failed;
    xmutex_unlock(&r->mtx);
    return failed;
}

/* Record a failed write (mtx held): the client is as good as gone. */
static int
response_fail(fc_response *resp)
{
    resp->failed = 1;
    return -1;
}

/*
 * Let go of mtx; if a write failed and nobody cancelled for it yet, cancel
 * the token with FC_WRITE_ERROR now, without the lock (callbacks run).
 * Return rc.
 */
static int
response_unlock(fc_response *resp, int rc)
{
    int tell = resp->failed && !resp->fail_told;

    if (tell)
        resp->fail_told = 1;
    xmutex_unlock(&resp->mtx);
    if (tell)
        token_cancel(resp->tok, FC_WRITE_ERROR);
    return rc;
}

/* Write raw bytes to the FastCGI stdout stream; see the file comment. */
static int
response_put(fc_response *resp, const char *p, size_t len)
{
    int chunk;

    if (resp->failed)
        return -1;
    while (len > 0) {
        chunk = len > INT_MAX ? INT_MAX : (int)len;
        if (FCGX_PutStr(p, chunk, resp->out) != chunk ||
            FCGX_GetError(resp->out) != 0)
            return response_fail(resp);
        p += chunk;
        len -= (size_t)chunk;
    }
    return 0;
}

/* Send the CGI header block once, into the output stream's buffer (a
 * small response then goes out in one write). */
static int
response_commit(fc_response *resp)
{
    static const char   ctype[] = "Content-Type: text/plain; charset=utf-8\r\n";
    const char         *reason = http_reason(resp->status);
    char                st[16] = "Status: ";

    if (resp->committed)
        return resp->failed ? -1 : 0;
    resp->committed = 1;
    /* fc_response_status() keeps status within 100..999. */
    st[8] = (char)('0' + resp->status / 100);
    st[9] = (char)('0' + resp->status / 10 % 10);
    st[10] = (char)('0' + resp->status % 10);
    st[11] = ' ';
    if (response_put(resp, st, 12) != 0 ||
        response_put(resp, reason, strlen(reason)) != 0 ||
        response_put(resp, "\r\n", 2) != 0 ||
        response_put(resp, resp->headers.data, resp->headers.len) != 0 ||
        (!resp->has_type &&
        response_put(resp, ctype, sizeof ctype - 1) != 0))
        return -1;
    return response_put(resp, "\r\n", 2);
}

int
fc_response_status(fc_response *resp, int status)
{
    xmutex_lock(&resp->mtx);
    if (resp->committed || status < 100 || status > 999)
        return response_unlock(resp, -1);
    resp->status = status;
    return response_unlock(resp, 0);
}

int
fc_response_header(fc_response *resp, const char *name, const char *value)
{
    if (*name == '\0' || strpbrk(name, "\r\n:") != NULL ||
        strpbrk(value, "\r\n") != NULL || strcasecmp(name, "Status") == 0)
        return -1;
    xmutex_lock(&resp->mtx);
    if (resp->committed || buf_add(&resp->headers, name, strlen(name)) != 0 ||
        buf_add(&resp->headers, ": ", 2) != 0 ||
        buf_add(&resp->headers, value, strlen(value)) != 0 ||
        buf_add(&resp->headers, "\r\n", 2) != 0)
        return response_unlock(resp, -1);
    if (strcasecmp(name, "Content-Type") == 0)
        resp->has_type = 1;
    return response_unlock(resp, 0);
}

int
fc_response_write(fc_response *resp, const void *buf, size_t len)
{
    xmutex_lock(&resp->mtx);
    if (response_commit(resp) != 0 || response_put(resp, buf, len) != 0)
        return response_unlock(resp, -1);
    resp->bytes += len;
    return response_unlock(resp, 0);
}

int
fc_response_printf(fc_response *resp, const char *fmt, ...)
{
    struct buf b = { 0 };
    va_list    ap;
    int        rc;

    va_start(ap, fmt);
    rc = buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (rc == 0)
        rc = fc_response_write(resp, b.data, b.len);
    buf_free(&b);
    return rc;
}

/* Push buffered output out (mtx held). */
static int
response_push(fc_response *resp)
{
    if (resp->failed)
        return -1;
    if (FCGX_FFlush(resp->out) != 0 || FCGX_GetError(resp->out) != 0)
        return response_fail(resp);
    return 0;
}

int
fc_response_flush(fc_response *resp)
{
    xmutex_lock(&resp->mtx);
    if (response_commit(resp) != 0 || response_push(resp) != 0)
        return response_unlock(resp, -1);
    return response_unlock(resp, 0);
}

int
fc_response_committed(const fc_response *resp)
{
    fc_response *r = (fc_response *)resp;
    int          committed;

    xmutex_lock(&r->mtx);
    committed = r->committed;
    xmutex_unlock(&r->mtx);
    return committed;
}

/*
 * Send what the response holds without blocking (mtx held); return 1 if
 * all went, 0 if the socket is full (the rest goes with the next write),
 * -1 if the write failed (the response is failed).
 */
static int
response_try(fc_response *resp)
{
    int r = proto_out_try(resp->out);

    if (r < 0)
        return response_fail(resp);
    resp->probe_owed = r == 0;
    return r;
}

int
response_probe(fc_response *resp)
{
    int rc = 0;

    /* The handler is writing: it is not silent. */
    if (pthread_mutex_trylock(&resp->mtx) != 0)
        return 0;
    if (resp->failed) {
        rc = -1;
    } else if (resp->probe_owed) {
        /* The last probe is still in the buffer: only push it on. */
        rc = response_try(resp) < 0 ? -1 : 0;
    } else if (resp->bytes != resp->probe_mark) {
        resp->probe_mark = resp->bytes;     /* it wrote since the last tick */
    } else if ((rc = response_try(resp)) == 1) {
        /* The buffer is empty: the header block (unless it cannot fit
         * without a blocking write) and one space go in, then out. */
        rc = 0;
        if (!resp->committed && resp->headers.len + 128 >=
            (size_t)(resp->out->stop - resp->out->wrNext)) {
            log_debug("probe skipped: header block too large");
        } else {
            if (!resp->committed && !resp->has_type &&
                buf_printf(&resp->headers,
                "Content-Type: application/json\r\n") == 0)
                resp->has_type = 1;
            if (response_commit(resp) != 0 ||
                response_put(resp, " ", 1) != 0 || response_try(resp) < 0)
                rc = -1;
            else
                resp->probes++;
        }
    } else {
        rc = rc < 0 ? -1 : 0;           /* 0: the socket is full: skip */
    }
    /* The caller cancels on -1: nobody else must. */
    if (rc != 0)
        resp->fail_told = 1;
    xmutex_unlock(&resp->mtx);
    return rc;
}

int
fc_response_json(fc_response *resp, int status, void *json_object)
{
    const char *s;
    size_t      len;

    if (!fc_response_committed(resp)) {
        fc_response_status(resp, status);
        fc_response_header(resp, "Content-Type", "application/json");
    }
    s = json_object_to_json_string_length(json_object,
        JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    /* json-c copies a string's bytes as they are: a handler's string
     * that is not UTF-8 would make the body invalid JSON (RFC 8259). */
    if (!utf8_valid(s, len)) {
        struct buf b = { 0 };
        int        rc;

        rc = utf8_sanitize(&b, s, len) == 0 ?
            fc_response_write(resp, b.data, b.len) : -1;
        buf_free(&b);
        return rc != 0 ? -1 : 0;
    }
    if (fc_response_write(resp, s, len) != 0)
        return -1;
    return 0;
}

int
fc_response_error(fc_response *resp, int status, const char *message)
{
    json_object *o = json_object_new_object();
    int          rc;

    json_object_object_add(o, "error", json_object_new_string(message));
    json_object_object_add(o, "status", json_object_new_int(status));
    rc = fc_response_json(resp, status, o);
    json_object_put(o);
    return rc;
}
