/* SPDX-License-Identifier: MIT */
/*
 * request.h - the request and response objects that handlers receive, and
 * the decoding of query strings.  The structs are private to request.c.
 */
#ifndef REQUEST_H
#define REQUEST_H

#include <fcgiapp.h>
#include <stdint.h>

#include "fcgi_cancel.h"

/* One decoded query argument: valid UTF-8, NULs kept. */
struct query_arg {
    char   *name;
    char   *value;
    size_t  name_len;       /* bytes, the terminating NUL not counted */
    size_t  value_len;
};

/*
 * Decode an application/x-www-form-urlencoded string ('+' is a space, %XX a
 * byte; a malformed escape stays as it is), into UTF-8: each ill-formed
 * sequence the escapes give becomes U+FFFD (utf8_sanitize()), as FastAPI
 * (Starlette) decodes.  On success return 0 and store an array of *n args,
 * in their order, in *args (caller frees with query_free); -1 on
 * allocation failure.
 */
int          query_parse(const char *qs, struct query_arg **args, size_t *n);
void         query_free(struct query_arg *args, size_t n);

/*
 * Return a new request for params envp (owned by the caller, valid until
 * request_free()), or NULL on allocation failure.
 */
fc_request  *request_new(uint64_t id, char **envp);
void         request_free(fc_request *req);

/*
 * Return the request's params as NULL-terminated "NAME=VALUE" strings,
 * valid until the request ends (for handlers that pass them all on, as
 * exec).
 */
char       **request_envp(const fc_request *req);

/* Take ownership of the body (malloc'd, len bytes). */
void         request_set_body(fc_request *req, char *body, size_t len);

/* Return a new response writing to out, failing writes cancelling tok. */
fc_response *response_new(FCGX_Stream *out, fc_token *tok);
void         response_free(fc_response *resp);

/* Return the status sent or to be sent. */
int          response_get_status(const fc_response *resp);

/* Return the number of body bytes written so far. */
uint64_t     response_bytes(const fc_response *resp);

/* Return 1 if a write failed. */
int          response_failed(const fc_response *resp);

/*
 * Called by the watcher every probe_ms while the request's job runs: if the
 * handler wrote nothing since the previous call and is not writing now,
 * send the headers (if not yet; Content-Type application/json unless set)
 * and one space, flushed without blocking: on a full socket the bytes wait
 * in the buffer and later ticks only push them on (the tick is skipped).
 * Never waits, neither for the handler nor for the peer.  Return 0, or -1
 * if the write failed: the caller then cancels the token with
 * FC_WRITE_ERROR.
 */
int          response_probe(fc_response *resp);

/* Return the reason phrase of an HTTP status ("OK"), or "Unknown". */
const char  *http_reason(int status);

#endif /* REQUEST_H */
