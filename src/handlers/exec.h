/* SPDX-License-Identifier: MIT */
/*
 * exec.h - the exec handler: run an external program per request, the CGI
 * way, and kill it as a process group when the request is cancelled.
 *
 * The program is started with posix_spawn(), never through a shell, with
 * the argv of the route and nothing from the request.  It gets the CGI/1.1
 * meta-variables built from the FastCGI params (an allow-list, plus every
 * HTTP_* param but HTTP_PROXY), PATH=/usr/local/bin:/usr/bin:/bin and the
 * route's "env"; nothing else of the server's environment.  The request
 * body goes to its stdin, its stdout is the response (CGI headers first with
 * "output": "cgi", the body alone with "output": "raw"), and each line of
 * its stderr goes to the server log, tagged with the request.
 *
 * The program leads a process group of its own.  When the request's token
 * is cancelled (client gone, abort, failed write, deadline, shutdown) the
 * group gets SIGTERM at once, from the cancelling thread, and SIGKILL after
 * kill_grace_ms if the program has not exited by then.  When the program
 * exits, whether cancelled or not, whatever is left of its group gets
 * SIGKILL: a background process of a CGI program does not outlive its
 * request.  A program that leaves its group (setsid(), setpgid()) escapes
 * this and is not tracked.
 *
 * What the process must provide: SIGPIPE ignored (a child that stops
 * reading its stdin must not kill the server), and SIGCHLD not set to
 * SIG_IGN and no waitpid(-1) anywhere (the handler reaps its own child and
 * relies on the zombie to keep the group id from being reused).
 */
#ifndef HANDLERS_EXEC_H
#define HANDLERS_EXEC_H

#include <stddef.h>

#include <json-c/json.h>

#include "fcgi_cancel.h"

struct route;

/* Limits of a route's options. */
#define EXEC_KILL_GRACE_MAX_MS  600000
#define EXEC_KILL_GRACE_DEF_MS  2000

/* The largest CGI header block, blank line included. */
#define CGI_HEADERS_MAX         ((size_t)64 * 1024)

/*
 * Read the exec keys of route_obj ("argv", "cwd", "env", "kill_grace_ms",
 * "output", "content_type"; the common keys "path", "methods", "handler",
 * "deadline_ms" and "probe_ms" are left to the caller, any other key is an
 * error), check that argv[0] is an executable file and that cwd is a
 * directory, and make rt an exec route: rt->fn, rt->data (the options),
 * rt->data_free and rt->handler_name are set.  Return 0, or -1 with *cause
 * set to "<where>.<key>: what is wrong" (caller frees) and rt unchanged.
 */
int     exec_route_build(struct route *rt, json_object *route_obj,
            const char *where, char **cause);

/* Free the options that exec_route_build() stored in rt->data. */
void    exec_opts_free(void *opts);

/*
 * The handler; data is the options of exec_route_build().  Return FC_OK
 * when the request was answered (the program's output, or a 502 naming the
 * route when it could not be started, failed before any output, or printed
 * bad CGI headers), FC_CANCELLED when the token was cancelled (the program
 * is killed, nothing more is written), FC_ERROR when nothing could be
 * written (the caller answers 500).
 */
int     exec_handler(fc_request *req, fc_response *resp, fc_token *tok,
            void *data);

/* One header of a CGI header block, other than Status/Content-Type/Location. */
struct cgi_header {
    char               *name;
    char               *value;
};

/* What a CGI header block says; filled by cgi_parse_headers(). */
struct cgi_headers {
    int                 status;         /* "Status:", else 302 with a
                                           Location, else 200 */
    char               *content_type;   /* NULL if none */
    char               *location;       /* NULL if none */
    struct cgi_header  *extra;          /* the other headers, in order */
    size_t              nextra;
    const char         *error;          /* static text when -1 */
};

/*
 * Parse the CGI header block at the start of buf (len bytes): header lines
 * ended by LF or CRLF up to an empty line.  Pure: no I/O, no global state.
 * Return 1 when the block is complete: *consumed is its length, blank line
 * included (the body starts there), and h is filled (free it with
 * cgi_headers_free()).  Return 0 when more bytes are needed (no blank line
 * yet, and fewer than CGI_HEADERS_MAX bytes); h is then empty.  Return -1
 * when the block is bad (a line without ':', an invalid name, a control
 * character in a value, a bad or repeated Status, a repeated Content-Type
 * or Location, no header at all, longer than CGI_HEADERS_MAX) or memory ran
 * out: h->error says which, and h needs no freeing.
 */
int     cgi_parse_headers(const char *buf, size_t len, size_t *consumed,
            struct cgi_headers *h);

/* Free what cgi_parse_headers() stored in h and empty it. */
void    cgi_headers_free(struct cgi_headers *h);

#endif /* HANDLERS_EXEC_H */
