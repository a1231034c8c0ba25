/* SPDX-License-Identifier: MIT */
/*
 * fcgi_cancel.h - the public API of fcgi-cancel.
 *
 * A handler (built in, or a module loaded with dlopen) receives the request,
 * a response writer and the request's cancel token.  The token is cancelled
 * when the client is gone (the front end closed the FastCGI connection, sent
 * FCGI_ABORT_REQUEST, or a write of the response failed), when the route's
 * deadline passes, or when the server shuts down.  A handler notices in one
 * of four ways: it polls fc_token_cancelled(), sleeps in fc_token_wait(),
 * registers a callback with fc_token_on_cancel(), or polls fc_token_fd()
 * beside its own descriptors.
 *
 * This header is the whole contract: a module includes nothing else of the
 * project.  Every function is safe to call from the handler's thread; the
 * fc_token_* functions are safe from any thread.
 */
#ifndef FCGI_CANCEL_H
#define FCGI_CANCEL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FC_API __attribute__((visibility("default")))
#define FC_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define FC_API
#define FC_PRINTF(f, a)
#endif

/* Bumped whenever a change breaks modules built against an older header. */
#define FC_ABI_VERSION 1

/* Why a token was cancelled.  The first cancel wins. */
enum fc_reason {
    FC_REASON_NONE = 0,     /* not cancelled */
    FC_CLIENT_GONE,         /* EOF, hang-up or reset on the connection */
    FC_ABORTED,             /* FCGI_ABORT_REQUEST for this request */
    FC_WRITE_ERROR,         /* a write of the response failed */
    FC_DEADLINE,            /* the route's deadline passed */
    FC_SHUTDOWN,            /* the server is shutting down */
    FC_REASON__MAX
};

/* What a handler returns. */
enum fc_result {
    FC_OK = 0,              /* the job completed and answered */
    FC_CANCELLED = 1,       /* the job stopped because its token was cancelled */
    FC_ERROR = -1           /* the job failed; 500 if nothing was sent yet */
};

typedef struct fc_token fc_token;
typedef struct fc_request fc_request;
typedef struct fc_response fc_response;

/* Called once when a token is cancelled, on the cancelling thread. */
typedef void (*fc_cancel_cb)(fc_token *tok, enum fc_reason reason, void *arg);

/* A request handler; data is the route's handler data. */
typedef int (*fc_handler_cb)(fc_request *req, fc_response *resp,
    fc_token *tok, void *data);

/* ---- token ---------------------------------------------------------- */

/* Return 1 if the token is cancelled, else 0; a lock-free atomic load. */
FC_API int fc_token_cancelled(const fc_token *tok);

/* Return the reason of the first cancel, or FC_REASON_NONE. */
FC_API enum fc_reason fc_token_reason(const fc_token *tok);

/* Return the reason's name ("client_gone", ...), "none" or "unknown". */
FC_API const char *fc_reason_name(enum fc_reason reason);

/*
 * Sleep up to ms milliseconds (a negative ms waits without limit).  Return 1
 * at once when the token is or becomes cancelled, 0 when the time passed.
 */
FC_API int fc_token_wait(fc_token *tok, long ms);

/*
 * Return a descriptor that becomes readable (POLLIN) when the token is
 * cancelled; the token owns it: do not read or close it.  Return -1 with
 * errno set if it cannot be created.
 */
FC_API int fc_token_fd(fc_token *tok);

/*
 * Register fn(tok, reason, arg) to run exactly once when the token is
 * cancelled, on the cancelling thread; if the token is already cancelled,
 * fn runs at once on this thread.  Return a handle > 0 for
 * fc_token_off_cancel(), 0 if fn already ran, -1 on allocation failure.
 * fn must be short and must not block: it runs on the cancelling thread,
 * often the watcher thread, or a worker that read an abort record for
 * the request.
 */
FC_API int fc_token_on_cancel(fc_token *tok, fc_cancel_cb fn, void *arg);

/*
 * Remove a callback registered with fc_token_on_cancel().  Return 0 if it was
 * removed before it ran, 1 if it already ran; if it is running on another
 * thread, wait until it returns first.  A handle of 0 returns 1.
 */
FC_API int fc_token_off_cancel(fc_token *tok, int handle);

/* ---- request -------------------------------------------------------- */

/* Return the FastCGI param name (e.g. "HTTP_USER_AGENT"), or NULL. */
FC_API const char *fc_request_param(const fc_request *req, const char *name);

/* Return the method ("GET" if the front end sent none). */
FC_API const char *fc_request_method(const fc_request *req);

/* Return the path of the request, without the query string. */
FC_API const char *fc_request_path(const fc_request *req);

/*
 * Return the decoded value of query argument name, or NULL if absent (or if
 * memory ran out).  The value is UTF-8: an escape that gives an ill-formed
 * sequence (%FF) becomes U+FFFD.  A repeated name gives its last value, as
 * FastAPI does.  The value may hold NUL bytes (%00): this string ends at
 * the first; fc_request_query_len() gives the whole value.  Valid until the
 * handler returns.
 */
FC_API const char *fc_request_query(const fc_request *req, const char *name);

/*
 * fc_request_query(), and store the value's length in bytes in *len (if
 * len is not NULL; 0 when absent).  The value is NUL-terminated after
 * those *len bytes, and may hold NULs before.
 */
FC_API const char *fc_request_query_len(const fc_request *req,
    const char *name, size_t *len);

/* Return the request body and store its length in *len (may be 0). */
FC_API const void *fc_request_body(const fc_request *req, size_t *len);

/* Return the server's number for this request, as in its logs. */
FC_API uint64_t fc_request_id(const fc_request *req);

/* Log a line tagged with the request id at info level. */
FC_API void fc_request_log(const fc_request *req, const char *fmt, ...)
    FC_PRINTF(2, 3);

/* ---- response ------------------------------------------------------- */

/* Set the HTTP status; return 0, or -1 if the headers were already sent. */
FC_API int fc_response_status(fc_response *resp, int status);

/*
 * Add a response header; return 0, or -1 if the headers were already sent
 * or name/value contain CR, LF or (name) ':' .
 */
FC_API int fc_response_header(fc_response *resp, const char *name,
    const char *value);

/*
 * Write body bytes, sending the headers first if not done yet.  Return 0, or
 * -1 if the write failed: the token is then cancelled with FC_WRITE_ERROR.
 */
FC_API int fc_response_write(fc_response *resp, const void *buf, size_t len);

/* printf-style fc_response_write(); same return values. */
FC_API int fc_response_printf(fc_response *resp, const char *fmt, ...)
    FC_PRINTF(2, 3);

/* Push buffered output to the front end; same return values. */
FC_API int fc_response_flush(fc_response *resp);

/* Return 1 if the headers were sent, else 0. */
FC_API int fc_response_committed(const fc_response *resp);

/*
 * Send status and a JSON document (a json-c "struct json_object *", passed
 * as void * so that this header needs no json-c include), with
 * Content-Type application/json.  Return 0, or -1 as fc_response_write().
 */
FC_API int fc_response_json(fc_response *resp, int status, void *json_object);

/*
 * Send status and {"error": message, "status": status} as JSON.  Return 0,
 * or -1 as fc_response_write().
 */
FC_API int fc_response_error(fc_response *resp, int status,
    const char *message);

/* ---- modules -------------------------------------------------------- */

/*
 * A module is a shared object that a "module" route loads with dlopen():
 *
 *   { "path": "/primes", "handler": "module", "module": "/abs/primes.so",
 *     "symbol": "primes_handler", "options": { ... } }
 *
 * It defines fc_module_abi with FC_MODULE_DECLARE(), the handler that the
 * route's "symbol" names (an fc_handler_cb marked FC_API), and optionally
 * fc_module_init() and fc_module_fini().  Build it with
 *   cc -shared -fPIC $(pkg-config --cflags --libs fcgi-cancel) mod.c -o mod.so
 */

/* The ABI version a module was built for; FC_MODULE_DECLARE() defines it. */
FC_API extern const unsigned int fc_module_abi;

/* Define fc_module_abi as FC_ABI_VERSION; once, at file scope, in a module. */
#ifdef __cplusplus
#define FC_MODULE_DECLARE() \
    extern "C" FC_API const unsigned int fc_module_abi = FC_ABI_VERSION
#else
#define FC_MODULE_DECLARE() \
    FC_API const unsigned int fc_module_abi = FC_ABI_VERSION
#endif

/*
 * Optional: called once per route that loads the module, when the
 * configuration is loaded (at start-up and by -t), on the main thread,
 * before any request.  options is the route's "options", a json-c
 * "struct json_object *" of type object (borrowed: json_object_get() what
 * must outlive the call).  What is stored in *data (NULL before the call)
 * is the data that the route's handler receives, on many threads at once.
 * Return 0, or -1 with *error set to a message the caller frees with
 * free(), or left NULL: the server then refuses the configuration.
 */
FC_API int fc_module_init(void *options, void **data, char **error);

/*
 * Optional: called once per route when the routes are freed (at exit, or
 * after -t), after the last request, with that route's data; it must stop
 * whatever the module started, as the module is unloaded next.
 */
FC_API void fc_module_fini(void *data);

#ifdef __cplusplus
}
#endif
#endif /* FCGI_CANCEL_H */
