/* SPDX-License-Identifier: MIT */
/*
 * cgi.c - the CGI/1.1 side of the exec handler (see cgi.h): the parser of
 * the header block a program prints before its body, and the builder of
 * the environment a program starts with.  Neither does any I/O: exec.c
 * spawns, feeds and reaps the program, and hands its output here.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include "handlers/cgi.h"
#include "request.h"
#include "util.h"

#define CGI_PATH_ENV        "PATH=/usr/local/bin:/usr/bin:/bin"

/* ---- CGI header parsing --------------------------------------------- */

/* Is c a tchar of RFC 9110 (a header name character)? */
static int
cgi_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

void
cgi_headers_free(struct cgi_headers *h)
{
    size_t i;

    free(h->content_type);
    free(h->location);
    for (i = 0; i < h->nextra; i++) {
        free(h->extra[i].name);
        free(h->extra[i].value);
    }
    free(h->extra);
    memset(h, 0, sizeof *h);
}

/* Empty h and note why the block is bad; return -1. */
static int
cgi_bad(struct cgi_headers *h, const char *why)
{
    cgi_headers_free(h);
    h->error = why;
    return -1;
}

/* Is the header name of nlen bytes at name equal to s, ignoring case? */
static int
cgi_is(const char *name, size_t nlen, const char *s)
{
    return strlen(s) == nlen && strncasecmp(name, s, nlen) == 0;
}

/* Parse one "Name: value" line of len bytes (no line end); 0 or -1. */
static int
cgi_line(const char *line, size_t len, struct cgi_headers *h)
{
    struct cgi_header *nx;
    const char        *colon, *v, *end = line + len, *p;
    size_t             nlen, vlen;
    char              *value;

    if ((colon = memchr(line, ':', len)) == NULL)
        return cgi_bad(h, "header line without ':'");
    nlen = (size_t)(colon - line);
    if (nlen == 0)
        return cgi_bad(h, "empty header name");
    for (p = line; p < colon; p++) {
        if (!cgi_tchar((unsigned char)*p))
            return cgi_bad(h, "invalid character in a header name");
    }
    for (v = colon + 1; v < end && (*v == ' ' || *v == '\t'); v++)
        ;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    vlen = (size_t)(end - v);
    for (p = v; p < end; p++) {
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
            return cgi_bad(h, "control character in a header value");
    }

    if (cgi_is(line, nlen, "Status")) {
        if (h->status != 0)
            return cgi_bad(h, "repeated Status");
        if (vlen < 3 || v[0] < '1' || v[0] > '9' ||
            !isdigit((unsigned char)v[1]) || !isdigit((unsigned char)v[2]) ||
            (vlen > 3 && v[3] != ' ' && v[3] != '\t'))
            return cgi_bad(h, "Status is not a 3-digit code");
        h->status = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
        return 0;
    }
    if ((value = strndup(v, vlen)) == NULL)
        return cgi_bad(h, "out of memory");
    if (cgi_is(line, nlen, "Content-Type") ||
        cgi_is(line, nlen, "Location")) {
        char **slot = cgi_is(line, nlen, "Location") ? &h->location :
            &h->content_type;

        if (*slot != NULL || vlen == 0) {
            free(value);
            return cgi_bad(h, vlen == 0 ? "empty Content-Type or Location" :
                "repeated Content-Type or Location");
        }
        *slot = value;
        return 0;
    }
    if ((nx = realloc(h->extra, (h->nextra + 1) * sizeof *nx)) == NULL) {
        free(value);
        return cgi_bad(h, "out of memory");
    }
    h->extra = nx;
    nx[h->nextra].value = value;
    if ((nx[h->nextra].name = strndup(line, nlen)) == NULL) {
        free(value);
        return cgi_bad(h, "out of memory");
    }
    h->nextra++;
    return 0;
}

int
cgi_parse_headers(const char *buf, size_t len, size_t *consumed,
    struct cgi_headers *h)
{
    const char *nl;
    size_t      lim = len < CGI_HEADERS_MAX ? len : CGI_HEADERS_MAX;
    size_t      off = 0, end, llen, block = 0, lines = 0;

    memset(h, 0, sizeof *h);
    *consumed = 0;

    /* Find the blank line first: nothing is allocated for a partial block. */
    for (;;) {
        if ((nl = memchr(buf + off, '\n', lim - off)) == NULL) {
            if (len >= CGI_HEADERS_MAX)
                return cgi_bad(h, "header block longer than 64 KiB");
            return 0;
        }
        end = (size_t)(nl - buf);
        llen = end - off;
        if (llen > 0 && buf[end - 1] == '\r')
            llen--;
        off = end + 1;
        if (llen == 0) {
            block = off;
            break;
        }
        lines++;
    }
    if (lines == 0)
        return cgi_bad(h, "no header before the blank line");

    for (off = 0; off < block; off = end + 1) {
        nl = memchr(buf + off, '\n', block - off);
        end = (size_t)(nl - buf);
        llen = end - off;
        if (llen > 0 && buf[end - 1] == '\r')
            llen--;
        if (llen == 0)
            break;
        if (cgi_line(buf + off, llen, h) != 0)
            return -1;
    }
    if (h->status == 0)
        h->status = h->location != NULL ? 302 : 200;
    *consumed = block;
    return 1;
}

/* ---- the environment ------------------------------------------------ */

/* CGI/1.1 meta-variables copied from the params when present. */
static const char *const cgi_params[] = {
    "PATH_INFO", "SCRIPT_NAME", "REQUEST_URI", "DOCUMENT_URI",
    "REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT",
    "SERVER_PROTOCOL", "HTTPS", "CONTENT_TYPE",
};

int
cgi_env_name_ok(const char *name)
{
    const char *p;

    if (!isalpha((unsigned char)*name) && *name != '_')
        return 0;
    for (p = name; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_')
            return 0;
    }
    return 1;
}

/* Return the index of variable name (nlen bytes) in e, or -1. */
static ssize_t
env_find(const struct cgi_env *e, const char *name, size_t nlen)
{
    size_t i;

    for (i = 0; i < e->n; i++) {
        if (strncmp(e->v[i], name, nlen) == 0 && e->v[i][nlen] == '=')
            return (ssize_t)i;
    }
    return -1;
}

/* Add "name=value" (entry, taken over); replace decides if it wins. */
static void
env_put_entry(struct cgi_env *e, char *entry, int replace)
{
    size_t  nlen;
    ssize_t i;
    char  **nv;

    if (entry == NULL) {
        e->failed = 1;
        return;
    }
    nlen = strcspn(entry, "=");
    if ((i = env_find(e, entry, nlen)) >= 0) {
        if (replace) {
            free(e->v[i]);
            e->v[i] = entry;
        } else {
            free(entry);
        }
        return;
    }
    if (e->n + 2 > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;

        if ((nv = realloc(e->v, cap * sizeof *nv)) == NULL) {
            free(entry);
            e->failed = 1;
            return;
        }
        e->v = nv;
        e->cap = cap;
    }
    e->v[e->n++] = entry;
    e->v[e->n] = NULL;
}

/* Add "name=value"; replace decides if it wins over one already there. */
static void
env_set(struct cgi_env *e, const char *name, const char *value, int replace)
{
    char *entry;

    if (asprintf(&entry, "%s=%s", name, value) < 0) {
        e->failed = 1;
        return;
    }
    env_put_entry(e, entry, replace);
}

void
cgi_env_free(struct cgi_env *e)
{
    size_t i;

    for (i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
    memset(e, 0, sizeof *e);
}

/* Add an HTTP_* param unless it is HTTP_PROXY or has an odd name. */
static void
env_http(struct cgi_env *e, const char *name, const char *value)
{
    if (strncmp(name, "HTTP_", 5) != 0 || name[5] == '\0' ||
        strcmp(name, "HTTP_PROXY") == 0 || !cgi_env_name_ok(name))
        return;
    env_set(e, name, value, 0);
}

int
cgi_env_build(struct cgi_env *e, fc_request *req, size_t body_len,
    char *const *extra)
{
    const char *v;
    char      **pv, num[32];
    size_t      i;

    memset(e, 0, sizeof *e);
    env_set(e, "GATEWAY_INTERFACE", "CGI/1.1", 1);
    env_set(e, "REQUEST_METHOD", fc_request_method(req), 1);
    v = fc_request_param(req, "QUERY_STRING");
    env_set(e, "QUERY_STRING", v != NULL ? v : "", 1);
    v = fc_request_param(req, "CONTENT_LENGTH");
    if (body_len > 0 || (v != NULL && *v != '\0')) {
        snprintf(num, sizeof num, "%zu", body_len);
        env_set(e, "CONTENT_LENGTH", num, 1);
    }
    for (i = 0; i < nitems(cgi_params); i++) {
        if ((v = fc_request_param(req, cgi_params[i])) != NULL)
            env_set(e, cgi_params[i], v, 1);
    }
    for (pv = request_envp(req); pv != NULL && *pv != NULL; pv++) {
        char   *eq = strchr(*pv, '='), name[256];
        size_t  nlen;

        if (eq == NULL || (nlen = (size_t)(eq - *pv)) >= sizeof name)
            continue;
        memcpy(name, *pv, nlen);
        name[nlen] = '\0';
        env_http(e, name, eq + 1);
    }
    env_put_entry(e, strdup(CGI_PATH_ENV), 1);
    for (; extra != NULL && *extra != NULL; extra++)
        env_put_entry(e, strdup(*extra), 1);
    if (e->failed || e->v == NULL) {
        cgi_env_free(e);
        return -1;
    }
    return 0;
}
