/* SPDX-License-Identifier: MIT */
/*
 * exec.c - the exec handler: one external program per request, CGI-style,
 * killed as a process group when the request is cancelled (see exec.h for
 * the contract).
 *
 * One request, one poll() loop on the worker's thread, over the program's
 * stdin (while the body is being written), stdout, stderr, a pidfd that
 * becomes readable when the program exits, and the token's descriptor.
 * The loop ends when the program has exited; only then is anything reaped,
 * so the zombie keeps its pid, which is also the group id, from being
 * reused while signals are still sent to the group.  The cancel callback
 * (run on the cancelling thread, usually the watcher) sends SIGTERM to the
 * group at once, even while this thread is blocked writing the response;
 * the loop then sends SIGKILL when kill_grace_ms have passed.  The callback
 * is removed before the child is reaped, for the same reason.
 *
 * Without pidfd_open (Linux < 5.3, or a seccomp filter), the loop looks at
 * the child with waitid(WNOWAIT) every EXEC_WAIT_POLL_MS instead.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "handlers/exec.h"
#include "request.h"
#include "log.h"
#include "token.h"
#include "router.h"
#include "util.h"

#define EXEC_PATH_ENV       "PATH=/usr/local/bin:/usr/bin:/bin"
#define EXEC_WAIT_POLL_MS   10          /* without a pidfd */
#define EXEC_IO_CHUNK       65536       /* one read or write */
#define EXEC_DRAIN_MAX      (4 << 20)   /* read after the exit, per pipe */
#define EXEC_STDERR_LINE    1024        /* longer stderr lines are cut */
#define EXEC_ESCAPED_LINE   (EXEC_STDERR_LINE * 4 + 8)

enum exec_output {
    EXEC_OUTPUT_CGI,
    EXEC_OUTPUT_RAW
};

/* A route's options; read-only once built, shared by every worker. */
struct exec_opts {
    char               *route;          /* the route's path, for messages */
    char              **argv;           /* NULL-terminated */
    char               *cwd;            /* NULL: the server's */
    char              **env;            /* "NAME=VALUE", NULL-terminated */
    long                kill_grace_ms;
    enum exec_output    output;
    char               *content_type;   /* raw output only */
};

/* One request's run of the program; owned by the worker's thread. */
struct exec_run {
    const struct exec_opts *o;
    fc_request         *req;
    fc_response        *resp;
    fc_token           *tok;
    pid_t               pid;            /* also the process group id */
    int                 fd_in;          /* our ends of the pipes, -1 closed */
    int                 fd_out;
    int                 fd_err;
    int                 fd_pid;         /* pidfd, -1 without */
    int                 fd_tok;         /* the token's, -1 without */
    int                 cb;             /* fc_token_on_cancel() handle */
    const char         *body;           /* for stdin */
    size_t              body_len;
    size_t              body_off;
    int                 exited;         /* a zombie now, not reaped yet */
    int                 lost;           /* reaped by someone else */
    int                 stopping;       /* SIGTERM sent; output discarded */
    int                 killed;         /* SIGKILL sent */
    uint64_t            kill_at;        /* CLOCK_MONOTONIC ns */
    int                 answered;       /* our own 502 went out */
    int                 applied;        /* the headers are in resp */
    uint64_t            sent;           /* body bytes to the client */
    int                 have_headers;   /* cgi: the block was parsed */
    struct cgi_headers  hdr;
    struct buf          hbuf;           /* cgi: stdout until the block ends */
    size_t              errlen;         /* bytes in errline */
    int                 errcut;         /* this line was too long */
    char                errline[EXEC_STDERR_LINE + 1];
    char                escaped[EXEC_ESCAPED_LINE];
    char                io[EXEC_IO_CHUNK];
};

/* CGI/1.1 meta-variables copied from the params when present. */
static const char *const cgi_params[] = {
    "PATH_INFO", "SCRIPT_NAME", "REQUEST_URI", "DOCUMENT_URI",
    "REMOTE_ADDR", "REMOTE_PORT", "SERVER_NAME", "SERVER_PORT",
    "SERVER_PROTOCOL", "HTTPS", "CONTENT_TYPE",
};

/* ---- options ------------------------------------------------------- */

void
exec_opts_free(void *opts)
{
    struct exec_opts *o = opts;

    if (o == NULL)
        return;
    free(o->route);
    strv_free(o->argv);
    free(o->cwd);
    strv_free(o->env);
    free(o->content_type);
    free(o);
}

/* Set *cause to "<where>.<key>: <message>"; return -1. */
static int __attribute__((format(printf, 4, 5)))
opt_fail(char **cause, const char *where, const char *key, const char *fmt,
    ...)
{
    struct buf b = { 0 };
    va_list    ap;

    va_start(ap, fmt);
    if (buf_printf(&b, "%s.%s: ", where, key) != 0 ||
        buf_vprintf(&b, fmt, ap) != 0) {
        buf_free(&b);
        b.data = strdup("out of memory");
    }
    va_end(ap);
    *cause = b.data;
    return -1;
}

/* Return the string of a json string without NUL bytes, else NULL. */
static const char *
opt_string(json_object *v)
{
    const char *s;

    if (!json_object_is_type(v, json_type_string))
        return NULL;
    s = json_object_get_string(v);
    if (strlen(s) != (size_t)json_object_get_string_len(v))
        return NULL;
    return s;
}

/* Is name a portable environment variable name? */
static int
env_name_ok(const char *name)
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

static int
opt_argv(struct exec_opts *o, json_object *v, const char *where,
    const char *key, char **cause)
{
    struct stat st;
    const char *s;
    size_t      i, n;
    char        k[64];

    if (!json_object_is_type(v, json_type_array) ||
        (n = json_object_array_length(v)) == 0)
        return opt_fail(cause, where, key,
            "must be a non-empty array of strings");
    strv_free(o->argv);
    if ((o->argv = calloc(n + 1, sizeof *o->argv)) == NULL)
        return opt_fail(cause, where, key, "out of memory");
    for (i = 0; i < n; i++) {
        snprintf(k, sizeof k, "%s[%zu]", key, i);
        if ((s = opt_string(json_object_array_get_idx(v, i))) == NULL)
            return opt_fail(cause, where, k,
                "must be a string (without NUL bytes)");
        if ((o->argv[i] = strdup(s)) == NULL)
            return opt_fail(cause, where, k, "out of memory");
    }
    s = o->argv[0];
    snprintf(k, sizeof k, "%s[0]", key);
    if (*s != '/')
        return opt_fail(cause, where, k, "\"%s\" is not an absolute path",
            s);
    if (stat(s, &st) != 0)
        return opt_fail(cause, where, k, "%s: %s", s, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return opt_fail(cause, where, k, "%s: not a regular file", s);
    if (faccessat(AT_FDCWD, s, X_OK, AT_EACCESS) != 0)
        return opt_fail(cause, where, k, "%s: %s", s, strerror(errno));
    return 0;
}

static int
opt_cwd(struct exec_opts *o, json_object *v, const char *where,
    const char *key, char **cause)
{
    struct stat st;
    const char *s;

    if ((s = opt_string(v)) == NULL || *s == '\0')
        return opt_fail(cause, where, key, "must be a directory name");
    if (stat(s, &st) != 0)
        return opt_fail(cause, where, key, "%s: %s", s, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return opt_fail(cause, where, key, "%s: %s", s, strerror(ENOTDIR));
    free(o->cwd);
    if ((o->cwd = strdup(s)) == NULL)
        return opt_fail(cause, where, key, "out of memory");
    return 0;
}

static int
opt_env(struct exec_opts *o, json_object *v, const char *where,
    const char *key, char **cause)
{
    const char *s;
    size_t      n = 0;
    char        k[256];

    if (!json_object_is_type(v, json_type_object))
        return opt_fail(cause, where, key,
            "must be an object of string values");
    strv_free(o->env);
    if ((o->env = calloc((size_t)json_object_object_length(v) + 1,
        sizeof *o->env)) == NULL)
        return opt_fail(cause, where, key, "out of memory");
    json_object_object_foreach(v, name, val) {
        snprintf(k, sizeof k, "%s.%s", key, name);
        if (!env_name_ok(name))
            return opt_fail(cause, where, key,
                "\"%s\" is not a variable name",
                log_escape(k, sizeof k, name));
        if ((s = opt_string(val)) == NULL)
            return opt_fail(cause, where, k,
                "must be a string (without NUL bytes)");
        if (asprintf(&o->env[n], "%s=%s", name, s) < 0) {
            o->env[n] = NULL;
            return opt_fail(cause, where, k, "out of memory");
        }
        n++;
    }
    return 0;
}

static int
opt_kill_grace(struct exec_opts *o, json_object *v, const char *where,
    const char *key, char **cause)
{
    int64_t ms;

    if (!json_object_is_type(v, json_type_int) ||
        (ms = json_object_get_int64(v)) < 0 || ms > EXEC_KILL_GRACE_MAX_MS)
        return opt_fail(cause, where, key,
            "must be an integer from 0 to %d", EXEC_KILL_GRACE_MAX_MS);
    o->kill_grace_ms = (long)ms;
    return 0;
}

static int
opt_output(struct exec_opts *o, json_object *v, const char *where,
    const char *key, char **cause)
{
    const char *s = opt_string(v);

    if (s != NULL && strcmp(s, "cgi") == 0)
        o->output = EXEC_OUTPUT_CGI;
    else if (s != NULL && strcmp(s, "raw") == 0)
        o->output = EXEC_OUTPUT_RAW;
    else
        return opt_fail(cause, where, key, "must be \"cgi\" or \"raw\"");
    return 0;
}

static int
opt_content_type(struct exec_opts *o, json_object *v, const char *where,
    const char *key, char **cause)
{
    const char *s = opt_string(v), *p;

    if (s == NULL || *s == '\0')
        return opt_fail(cause, where, key, "must be a non-empty string");
    for (p = s; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return opt_fail(cause, where, key,
                "must not contain control characters");
    }
    free(o->content_type);
    if ((o->content_type = strdup(s)) == NULL)
        return opt_fail(cause, where, key, "out of memory");
    return 0;
}

/* The exec keys of a route object. */
static const struct exec_key {
    const char  *name;
    int        (*parse)(struct exec_opts *, json_object *, const char *,
                    const char *, char **);
} exec_keys[] = {
    { "argv", opt_argv },
    { "cwd", opt_cwd },
    { "env", opt_env },
    { "kill_grace_ms", opt_kill_grace },
    { "output", opt_output },
    { "content_type", opt_content_type },
};

/* The keys of every route, checked by the config loader. */
static const char *const common_keys[] = {
    "path", "methods", "handler", "deadline_ms", "probe_ms",
};

int
exec_route_build(struct route *rt, json_object *route_obj, const char *where,
    char **cause)
{
    struct exec_opts *o;
    json_object      *pv;
    const char       *path = NULL;
    size_t            i;
    int               common;

    *cause = NULL;
    if (!json_object_is_type(route_obj, json_type_object)) {
        if (asprintf(cause, "%s: must be an object", where) < 0)
            *cause = NULL;
        return -1;
    }
    if ((o = calloc(1, sizeof *o)) == NULL)
        return opt_fail(cause, where, "argv", "out of memory");
    o->kill_grace_ms = EXEC_KILL_GRACE_DEF_MS;
    o->output = EXEC_OUTPUT_CGI;

    json_object_object_foreach(route_obj, key, val) {
        const struct exec_key *k = NULL;

        for (i = 0, common = 0; i < nitems(common_keys); i++)
            common |= strcmp(key, common_keys[i]) == 0;
        if (common)
            continue;
        for (i = 0; i < nitems(exec_keys); i++) {
            if (strcmp(key, exec_keys[i].name) == 0)
                k = &exec_keys[i];
        }
        if (k == NULL) {
            char esc[128];

            opt_fail(cause, where, log_escape(esc, sizeof esc, key),
                "unknown key for handler \"exec\"");
            goto fail;
        }
        if (k->parse(o, val, where, key, cause) != 0)
            goto fail;
    }
    if (o->argv == NULL) {
        opt_fail(cause, where, "argv", "missing (the program to run)");
        goto fail;
    }
    if (o->content_type != NULL && o->output != EXEC_OUTPUT_RAW) {
        opt_fail(cause, where, "content_type",
            "only with \"output\": \"raw\"");
        goto fail;
    }
    if (o->output == EXEC_OUTPUT_RAW && o->content_type == NULL &&
        (o->content_type = strdup("application/octet-stream")) == NULL) {
        opt_fail(cause, where, "content_type", "out of memory");
        goto fail;
    }
    if (json_object_object_get_ex(route_obj, "path", &pv))
        path = opt_string(pv);
    if (path == NULL)
        path = rt->path != NULL ? rt->path : "(unnamed)";
    if ((o->route = strdup(path)) == NULL) {
        opt_fail(cause, where, "path", "out of memory");
        goto fail;
    }

    rt->fn = exec_handler;
    rt->data = o;
    rt->data_free = exec_opts_free;
    rt->handler_name = "exec";
    return 0;
fail:
    exec_opts_free(o);
    return -1;
}

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

struct envv {
    char      **v;                      /* NULL-terminated */
    size_t      n;
    size_t      cap;
    int         failed;                 /* an allocation failed */
};

/* Return the index of variable name (nlen bytes) in e, or -1. */
static ssize_t
env_find(const struct envv *e, const char *name, size_t nlen)
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
env_put_entry(struct envv *e, char *entry, int replace)
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

static void
env_set(struct envv *e, const char *name, const char *value, int replace)
{
    char *entry;

    if (asprintf(&entry, "%s=%s", name, value) < 0) {
        e->failed = 1;
        return;
    }
    env_put_entry(e, entry, replace);
}

static void
env_free(struct envv *e)
{
    size_t i;

    for (i = 0; i < e->n; i++)
        free(e->v[i]);
    free(e->v);
    memset(e, 0, sizeof *e);
}

/* Add an HTTP_* param unless it is HTTP_PROXY or has an odd name. */
static void
env_http(struct envv *e, const char *name, const char *value)
{
    if (strncmp(name, "HTTP_", 5) != 0 || name[5] == '\0' ||
        strcmp(name, "HTTP_PROXY") == 0 || !env_name_ok(name))
        return;
    env_set(e, name, value, 0);
}

/* Build the program's environment; return 0, or -1 on allocation failure. */
static int
env_build(struct envv *e, const struct exec_opts *o, fc_request *req,
    size_t body_len)
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
    env_put_entry(e, strdup(EXEC_PATH_ENV), 1);
    for (pv = o->env; pv != NULL && *pv != NULL; pv++)
        env_put_entry(e, strdup(*pv), 1);
    if (e->failed || e->v == NULL) {
        env_free(e);
        return -1;
    }
    return 0;
}

/* ---- the child ------------------------------------------------------ */

static void
fd_close(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/*
 * Make a close-on-exec pipe whose two ends are both above 2, so that the
 * child's dup2() onto 0, 1 and 2 cannot overwrite one another.  Return 0,
 * or -1 with errno set.
 */
static int
exec_pipe(int p[2])
{
    int i, fd;

    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    for (i = 0; i < 2; i++) {
        if (p[i] > 2)
            continue;
        if ((fd = fcntl(p[i], F_DUPFD_CLOEXEC, 3)) < 0) {
            int saved = errno;

            close(p[0]);
            close(p[1]);
            p[0] = p[1] = -1;
            errno = saved;
            return -1;
        }
        close(p[i]);
        p[i] = fd;
    }
    return 0;
}

static void
fd_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/*
 * Start the program with envp, in a process group of its own, with pipes
 * on 0, 1 and 2 and no other descriptor, no signal blocked (workers block
 * some) and every signal at its default (the server ignores SIGPIPE).
 * glibc leaves its two internal signals (32, 33), which no sigset_t can
 * name, ignored in the child; nothing else.  Return 0, or an errno value.
 */
static int
exec_spawn(struct exec_run *run, char **envp)
{
    const struct exec_opts     *o = run->o;
    posix_spawn_file_actions_t  fa;
    posix_spawnattr_t           attr;
    sigset_t                    mask, def;
    int                         in[2] = { -1, -1 }, out[2] = { -1, -1 };
    int                         err[2] = { -1, -1 }, rc;

    if (exec_pipe(in) != 0 || exec_pipe(out) != 0 || exec_pipe(err) != 0) {
        rc = errno;
        goto fail_pipes;
    }
    if ((rc = posix_spawnattr_init(&attr)) != 0)
        goto fail_pipes;
    if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
        posix_spawnattr_destroy(&attr);
        goto fail_pipes;
    }
    sigemptyset(&mask);
    sigfillset(&def);
    sigdelset(&def, SIGKILL);
    sigdelset(&def, SIGSTOP);
    if ((rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
        POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) != 0 ||
        (rc = posix_spawnattr_setpgroup(&attr, 0)) != 0 ||
        (rc = posix_spawnattr_setsigmask(&attr, &mask)) != 0 ||
        (rc = posix_spawnattr_setsigdefault(&attr, &def)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&fa, in[0], 0)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&fa, out[1], 1)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&fa, err[1], 2)) != 0 ||
        (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0 ||
        (o->cwd != NULL &&
        (rc = posix_spawn_file_actions_addchdir_np(&fa, o->cwd)) != 0))
        goto fail_spawn;
    rc = posix_spawn(&run->pid, o->argv[0], &fa, &attr, o->argv, envp);
fail_spawn:
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        goto fail_pipes;

    close(in[0]);
    close(out[1]);
    close(err[1]);
    run->fd_in = in[1];
    run->fd_out = out[0];
    run->fd_err = err[0];
    fd_nonblock(run->fd_in);
    fd_nonblock(run->fd_out);
    fd_nonblock(run->fd_err);
    /* Close-on-exec is set on every pidfd. */
    run->fd_pid = (int)syscall(SYS_pidfd_open, run->pid, 0);
    return 0;

fail_pipes:
    fd_close(&in[0]);
    fd_close(&in[1]);
    fd_close(&out[0]);
    fd_close(&out[1]);
    fd_close(&err[0]);
    fd_close(&err[1]);
    return rc;
}

/* The cancel callback: SIGTERM to the group now, on the cancelling thread. */
static void
exec_on_cancel(fc_token *tok, enum fc_reason reason, void *arg)
{
    const struct exec_run *run = arg;

    (void)tok;
    (void)reason;
    /* The child is not reaped before this callback is removed. */
    kill(-run->pid, SIGTERM);
}

/* Start stopping the program: SIGTERM now, SIGKILL after the grace. */
static void
exec_stop(struct exec_run *run)
{
    if (run->stopping)
        return;
    run->stopping = 1;
    fd_close(&run->fd_in);
    if (!run->exited)
        kill(-run->pid, SIGTERM);
    run->kill_at = token_now_ns() + (uint64_t)run->o->kill_grace_ms * 1000000u;
}

/* Has the program exited?  It stays a zombie until exec_reap(). */
static void
exec_check_exit(struct exec_run *run)
{
    siginfo_t si;

    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)run->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0) {
        if (errno == ECHILD) {
            log_errorx("req=%llu exec route %s: pid %ld was reaped by "
                "someone else (SIGCHLD ignored?)",
                (unsigned long long)fc_request_id(run->req), run->o->route,
                (long)run->pid);
            run->exited = run->lost = 1;
        }
        return;
    }
    if (si.si_pid == run->pid)
        run->exited = 1;
}

/* ---- output --------------------------------------------------------- */

/* Send our own error, naming the route; return FC_OK or FC_ERROR. */
static int
exec_reply_error(struct exec_run *run, const char *what)
{
    char *msg;
    int   rc;

    run->answered = 1;
    if (fc_response_committed(run->resp))
        return FC_OK;
    if (asprintf(&msg, "exec route %s: %s", run->o->route, what) < 0)
        return FC_ERROR;
    rc = fc_response_error(run->resp, 502, msg);
    free(msg);
    return rc == 0 ? FC_OK : FC_ERROR;
}

/* Put the program's status and headers into the response, once. */
static void
exec_apply_headers(struct exec_run *run)
{
    struct cgi_headers *h = &run->hdr;
    size_t              i;

    if (run->applied)
        return;
    run->applied = 1;
    if (run->o->output == EXEC_OUTPUT_RAW) {
        fc_response_header(run->resp, "Content-Type", run->o->content_type);
        return;
    }
    fc_response_status(run->resp, h->status);
    if (h->content_type != NULL)
        fc_response_header(run->resp, "Content-Type", h->content_type);
    if (h->location != NULL)
        fc_response_header(run->resp, "Location", h->location);
    for (i = 0; i < h->nextra; i++) {
        if (fc_response_header(run->resp, h->extra[i].name,
            h->extra[i].value) != 0)
            log_debug("req=%llu exec: header %s refused",
                (unsigned long long)fc_request_id(run->req),
                h->extra[i].name);
    }
}

/* Send body bytes to the client and flush; a failure cancels the token. */
static void
exec_send(struct exec_run *run, const char *p, size_t n)
{
    if (n == 0 || run->stopping)
        return;
    exec_apply_headers(run);
    if (fc_response_write(run->resp, p, n) == 0 &&
        fc_response_flush(run->resp) == 0)
        run->sent += n;
}

/* Bytes from the program's stdout. */
static void
exec_stdout(struct exec_run *run, const char *p, size_t n)
{
    size_t consumed;
    int    rc;

    if (run->stopping || fc_token_cancelled(run->tok))
        return;
    if (run->o->output == EXEC_OUTPUT_RAW || run->have_headers) {
        exec_send(run, p, n);
        return;
    }
    if (buf_add(&run->hbuf, p, n) != 0) {
        log_errorx("req=%llu exec route %s: out of memory",
            (unsigned long long)fc_request_id(run->req), run->o->route);
        exec_reply_error(run, "bad CGI headers");
        exec_stop(run);
        return;
    }
    rc = cgi_parse_headers(run->hbuf.data, run->hbuf.len, &consumed,
        &run->hdr);
    if (rc == 0)
        return;
    if (rc < 0) {
        char e[256];

        log_warnx("req=%llu exec route %s: %s: bad CGI headers: %s "
            "(output starts \"%s\")",
            (unsigned long long)fc_request_id(run->req), run->o->route,
            run->o->argv[0], run->hdr.error,
            log_escape(e, sizeof e, run->hbuf.data));
        exec_reply_error(run, "bad CGI headers");
        exec_stop(run);
        return;
    }
    run->have_headers = 1;
    exec_send(run, run->hbuf.data + consumed, run->hbuf.len - consumed);
    buf_free(&run->hbuf);
}

/* Log the stderr line in errline, escaped, and empty it. */
static void
exec_stderr_line(struct exec_run *run)
{
    size_t i = 0, o = 0, seg;

    if (run->errlen > 0 && run->errline[run->errlen - 1] == '\r' &&
        !run->errcut)
        run->errlen--;
    run->errline[run->errlen] = '\0';
    /* log_escape() stops at a NUL: escape segment by segment. */
    for (;;) {
        log_escape(run->escaped + o, sizeof run->escaped - o,
            run->errline + i);
        o += strlen(run->escaped + o);
        seg = strlen(run->errline + i);
        i += seg + 1;
        if (i > run->errlen || o + 5 > sizeof run->escaped)
            break;
        memcpy(run->escaped + o, "\\x00", 5);
        o += 4;
    }
    fc_request_log(run->req, "stderr: %s%s", run->escaped,
        run->errcut ? " [cut]" : "");
    run->errlen = 0;
    run->errcut = 0;
}

/* Bytes from the program's stderr, logged line by line. */
static void
exec_stderr(struct exec_run *run, const char *p, size_t n)
{
    const char *nl;
    size_t      take;

    while (n > 0) {
        nl = memchr(p, '\n', n);
        take = nl != NULL ? (size_t)(nl - p) : n;
        if (run->errlen + take > EXEC_STDERR_LINE) {
            size_t room = EXEC_STDERR_LINE - run->errlen;

            memcpy(run->errline + run->errlen, p, room);
            run->errlen += room;
            run->errcut = 1;
        } else {
            memcpy(run->errline + run->errlen, p, take);
            run->errlen += take;
        }
        if (nl == NULL)
            return;
        exec_stderr_line(run);
        p += take + 1;
        n -= take + 1;
    }
}

/*
 * Read once from *fd into the stdout or stderr sink; close it at EOF or on
 * an error.  Return the bytes read, 0 at EOF or when nothing was there.
 */
static ssize_t
exec_read(struct exec_run *run, int *fd, int is_err)
{
    ssize_t n;

    do {
        n = read(*fd, run->io, sizeof run->io);
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    if (n <= 0) {
        fd_close(fd);
        if (is_err && run->errlen > 0)
            exec_stderr_line(run);
        return 0;
    }
    if (is_err)
        exec_stderr(run, run->io, (size_t)n);
    else
        exec_stdout(run, run->io, (size_t)n);
    return n;
}

/* Write more of the body to the program's stdin; close it when done. */
static void
exec_write_body(struct exec_run *run)
{
    size_t  left = run->body_len - run->body_off;
    ssize_t n;

    if (left > EXEC_IO_CHUNK)
        left = EXEC_IO_CHUNK;
    if (left > 0) {
        do {
            n = write(run->fd_in, run->body + run->body_off, left);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            /* EPIPE: the program does not read its stdin; fine. */
            log_debug("req=%llu exec: stdin: %s",
                (unsigned long long)fc_request_id(run->req),
                strerror(errno));
            fd_close(&run->fd_in);
            return;
        }
        run->body_off += (size_t)n;
    }
    if (run->body_off == run->body_len)
        fd_close(&run->fd_in);
}

/* ---- the loop ------------------------------------------------------- */

/* Return the poll() timeout: -1, or ms until the next thing to look at. */
static int
exec_timeout(const struct exec_run *run)
{
    int      t = -1;
    uint64_t now, left;

    if (run->fd_pid < 0 || (run->fd_tok < 0 && !run->stopping))
        t = EXEC_WAIT_POLL_MS;
    if (run->stopping && !run->killed) {
        now = token_now_ns();
        left = run->kill_at > now ? run->kill_at - now : 0;
        left = (left + 999999u) / 1000000u;
        if (t < 0 || left < (uint64_t)t)
            t = left > INT_MAX ? INT_MAX : (int)left;
    }
    return t;
}

/*
 * Run until the program has exited, feeding its stdin, reading its stdout
 * and stderr, and stopping it when the token is cancelled.  Return 0, or
 * -1 if poll() failed (the group is then killed without grace).
 */
static int
exec_loop(struct exec_run *run)
{
    struct pollfd pfd[5];
    int           n, i_in, i_out, i_err, i_pid;

    while (!run->exited) {
        n = 0;
        i_in = i_out = i_err = i_pid = -1;
        /* Readable once cancelled; the token itself is looked at below. */
        if (run->fd_tok >= 0 && !run->stopping)
            pfd[n++] = (struct pollfd){ run->fd_tok, POLLIN, 0 };
        if (run->fd_in >= 0) {
            pfd[n] = (struct pollfd){ run->fd_in, POLLOUT, 0 };
            i_in = n++;
        }
        if (run->fd_out >= 0) {
            pfd[n] = (struct pollfd){ run->fd_out, POLLIN, 0 };
            i_out = n++;
        }
        if (run->fd_err >= 0) {
            pfd[n] = (struct pollfd){ run->fd_err, POLLIN, 0 };
            i_err = n++;
        }
        if (run->fd_pid >= 0) {
            pfd[n] = (struct pollfd){ run->fd_pid, POLLIN, 0 };
            i_pid = n++;
        }
        if (poll(pfd, (nfds_t)n, exec_timeout(run)) < 0) {
            if (errno == EINTR)
                continue;
            log_error("req=%llu exec route %s: poll",
                (unsigned long long)fc_request_id(run->req), run->o->route);
            return -1;
        }

        if (!run->stopping && fc_token_cancelled(run->tok)) {
            fc_request_log(run->req, "exec: cancelled (%s), stopping pid "
                "%ld", fc_reason_name(fc_token_reason(run->tok)),
                (long)run->pid);
            exec_stop(run);
        }
        if (i_in >= 0 && run->fd_in >= 0 && pfd[i_in].revents != 0) {
            if (pfd[i_in].revents & (POLLERR | POLLHUP))
                fd_close(&run->fd_in);
            else
                exec_write_body(run);
        }
        if (i_out >= 0 && pfd[i_out].revents != 0)
            exec_read(run, &run->fd_out, 0);
        if (i_err >= 0 && pfd[i_err].revents != 0)
            exec_read(run, &run->fd_err, 1);
        if (run->stopping && !run->killed && token_now_ns() >= run->kill_at) {
            fc_request_log(run->req, "exec: pid %ld still running after "
                "%ld ms: SIGKILL to its group", (long)run->pid,
                run->o->kill_grace_ms);
            kill(-run->pid, SIGKILL);
            run->killed = 1;
        }
        if (run->fd_pid < 0 || (i_pid >= 0 && pfd[i_pid].revents != 0))
            exec_check_exit(run);
    }
    return 0;
}

/* Read what is left in a pipe after the exit, up to EXEC_DRAIN_MAX. */
static void
exec_drain(struct exec_run *run, int *fd, int is_err)
{
    size_t total = 0;
    ssize_t n;

    while (*fd >= 0 && total < EXEC_DRAIN_MAX &&
        (n = exec_read(run, fd, is_err)) > 0)
        total += (size_t)n;
    fd_close(fd);
}

/*
 * The program has exited or must go: kill what is left of its group (the
 * zombie leader still holds the group id, so it cannot have been reused),
 * drain the pipes, remove the cancel callback, then reap.  Return the
 * wait status, or -1 if it was lost.
 */
static int
exec_reap(struct exec_run *run)
{
    int   st = -1;
    pid_t r;

    if (!run->lost)
        kill(-run->pid, SIGKILL);       /* ESRCH: nothing was left */
    fd_close(&run->fd_in);
    exec_drain(run, &run->fd_out, 0);
    exec_drain(run, &run->fd_err, 1);
    if (run->errlen > 0)
        exec_stderr_line(run);
    /* Waits for the callback if it is running on the watcher now. */
    fc_token_off_cancel(run->tok, run->cb);
    run->cb = 0;
    if (!run->lost) {
        do {
            r = waitpid(run->pid, &st, 0);
        } while (r < 0 && errno == EINTR);
        if (r < 0)
            st = -1;
    }
    fd_close(&run->fd_pid);
    return st;
}

/* Describe a wait status: "exit status 3", "signal 9". */
static const char *
exec_status_text(int st, char *buf, size_t size)
{
    if (st == -1)
        snprintf(buf, size, "unknown status");
    else if (WIFEXITED(st))
        snprintf(buf, size, "exit status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(buf, size, "signal %d (%s)", WTERMSIG(st),
            strsignal(WTERMSIG(st)));
    else
        snprintf(buf, size, "wait status 0x%x", (unsigned)st);
    return buf;
}

/* After the reap: answer what is still to answer; return the result. */
static int
exec_finish(struct exec_run *run, int st)
{
    const struct exec_opts *o = run->o;
    unsigned long long      id = fc_request_id(run->req);
    char                    what[96];
    int                     failed = !(st != -1 && WIFEXITED(st) &&
                                WEXITSTATUS(st) == 0);

    exec_status_text(st, what, sizeof what);
    if (fc_token_cancelled(run->tok)) {
        fc_request_log(run->req, "exec: %s stopped (%s) with %s after %llu "
            "bytes", o->argv[0], fc_reason_name(fc_token_reason(run->tok)),
            what, (unsigned long long)run->sent);
        return FC_CANCELLED;
    }
    if (run->answered)
        return FC_OK;
    if (run->sent == 0 && failed) {
        log_warnx("req=%llu exec route %s: %s failed: %s", id, o->route,
            o->argv[0], what);
        return exec_reply_error(run, "program failed");
    }
    if (o->output == EXEC_OUTPUT_CGI && !run->have_headers) {
        log_warnx("req=%llu exec route %s: %s: bad CGI headers: %s", id,
            o->route, o->argv[0], run->hbuf.len == 0 ? "no output" :
            "output ends inside the header block");
        return exec_reply_error(run, "bad CGI headers");
    }
    if (failed)
        log_warnx("req=%llu exec route %s: %s failed after %llu bytes of "
            "output: %s", id, o->route, o->argv[0],
            (unsigned long long)run->sent, what);
    else
        fc_request_log(run->req, "exec: %s exited with %s, %llu bytes",
            o->argv[0], what, (unsigned long long)run->sent);
    if (!fc_response_committed(run->resp)) {
        exec_apply_headers(run);
        if (fc_response_flush(run->resp) != 0)
            return fc_token_cancelled(run->tok) ? FC_CANCELLED : FC_ERROR;
    }
    return FC_OK;
}

int
exec_handler(fc_request *req, fc_response *resp, fc_token *tok, void *data)
{
    const struct exec_opts *o = data;
    struct exec_run        *run;
    struct envv             env;
    const void             *body;
    size_t                  body_len;
    int                     rc, st;

    if (fc_token_cancelled(tok))
        return FC_CANCELLED;
    if ((run = calloc(1, sizeof *run)) == NULL) {
        log_errorx("req=%llu exec route %s: out of memory",
            (unsigned long long)fc_request_id(req), o->route);
        return FC_ERROR;
    }
    run->o = o;
    run->req = req;
    run->resp = resp;
    run->tok = tok;
    run->fd_in = run->fd_out = run->fd_err = run->fd_pid = -1;
    body = fc_request_body(req, &body_len);
    run->body = body;
    run->body_len = body_len;

    if (env_build(&env, o, req, body_len) != 0) {
        log_errorx("req=%llu exec route %s: out of memory",
            (unsigned long long)fc_request_id(req), o->route);
        rc = exec_reply_error(run, "cannot start program");
        free(run);
        return rc;
    }
    rc = exec_spawn(run, env.v);
    env_free(&env);
    if (rc != 0) {
        log_warnx("req=%llu exec route %s: cannot start %s: %s",
            (unsigned long long)fc_request_id(req), o->route, o->argv[0],
            strerror(rc));
        rc = exec_reply_error(run, "cannot start program");
        free(run);
        return rc;
    }
    log_debug("req=%llu exec: started %s, pid %ld%s",
        (unsigned long long)fc_request_id(req), o->argv[0], (long)run->pid,
        run->fd_pid < 0 ? " (no pidfd: polling)" : "");

    run->fd_tok = fc_token_fd(tok);
    /* Runs at once (and returns 0) if the token is already cancelled. */
    if ((run->cb = fc_token_on_cancel(tok, exec_on_cancel, run)) < 0) {
        log_warnx("req=%llu exec: no cancel callback; the loop will kill",
            (unsigned long long)fc_request_id(req));
        run->cb = 0;
    }
    if (run->body_len == 0)
        fd_close(&run->fd_in);

    if (exec_loop(run) != 0 && !run->exited) {
        kill(-run->pid, SIGKILL);
        run->killed = 1;
    }
    st = exec_reap(run);
    rc = exec_finish(run, st);

    cgi_headers_free(&run->hdr);
    buf_free(&run->hbuf);
    free(run);
    return rc;
}
