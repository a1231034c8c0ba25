/* SPDX-License-Identifier: MIT */
/*
 * cgi.h - CGI/1.1 for the exec handler (RFC 3875): the header block a
 * program prints before its body, parsed into a struct cgi_headers, and
 * the environment a program starts with, built from the request.
 *
 * Both are pure (no I/O, no global state), so tests/fuzz/fuzz_cgi.c and
 * tests/unit/test_exec.c take them as units of their own; exec.c runs the
 * program around them.
 */
#ifndef HANDLERS_CGI_H
#define HANDLERS_CGI_H

#include <stddef.h>

#include "fcgi_cancel.h"

/* The largest CGI header block, blank line included. */
#define CGI_HEADERS_MAX         ((size_t)64 * 1024)

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

/* A program's environment, "NAME=VALUE" strings; built by cgi_env_build(). */
struct cgi_env {
    char      **v;                      /* NULL-terminated */
    size_t      n;
    size_t      cap;
    int         failed;                 /* an allocation failed */
};

/*
 * Build the environment of a program run for req: the CGI/1.1
 * meta-variables (GATEWAY_INTERFACE, REQUEST_METHOD, QUERY_STRING,
 * CONTENT_LENGTH of the body_len bytes of body, and an allow-list of the
 * FastCGI params), every HTTP_* param but HTTP_PROXY,
 * PATH=/usr/local/bin:/usr/bin:/bin, then the "NAME=VALUE" strings of
 * extra (NULL-terminated, or NULL), which win over the rest.  Return 0
 * (cgi_env_free() e later), or -1 if memory ran out (e is empty).
 */
int     cgi_env_build(struct cgi_env *e, fc_request *req, size_t body_len,
            char *const *extra);

/* Free what cgi_env_build() stored in e and empty it. */
void    cgi_env_free(struct cgi_env *e);

/* Return 1 if name is a portable environment variable name, else 0. */
int     cgi_env_name_ok(const char *name);

#endif /* HANDLERS_CGI_H */
