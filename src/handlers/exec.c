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
 *
 * The route's options are a key table on the config_keys engine, checked
 * by exec_build(); handler_exec (at the end) is the handler's row in the
 * registry.  The CGI header parser and the environment are in cgi.c; the
 * rest stays one file (a little over 900 lines) because the spawn, the
 * output and the loop all work on one struct exec_run, in an order (reap
 * last) that is easier to check when it is read in one place.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stddef.h>
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

#include "expo.h"
#include "handlers/cgi.h"
#include "handlers/exec.h"
#include "handlers/handlers.h"
#include "log.h"
#include "util.h"

#define EXEC_WAIT_POLL_MS   10          /* without a pidfd */
#define EXEC_IO_CHUNK       65536       /* one read or write */
#define EXEC_DRAIN_MAX      (4 << 20)   /* read after the exit, per pipe */
#define EXEC_STDERR_LINE    1024        /* longer stderr lines are cut */
#define EXEC_ESCAPED_LINE   (EXEC_STDERR_LINE * 4 + 8)

enum exec_output {
    EXEC_OUTPUT_CGI,
    EXEC_OUTPUT_RAW
};

/* A route's options; read-only once built (but for running), shared by
 * every worker. */
struct exec_opts {
    char               *route;          /* the route's path, for messages;
                                           set by exec_build() */
    char              **argv;           /* NULL-terminated */
    char               *cwd;            /* NULL: the server's */
    char              **env;            /* "NAME=VALUE", NULL-terminated */
    long                kill_grace_ms;
    enum exec_output    output;
    char               *content_type;   /* raw output only */
    _Atomic long        running;        /* programs started, not reaped:
                                           relaxed, a gauge for /metrics */
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

/* ---- options ------------------------------------------------------- */

#define EXEC_STR(x)         #x
#define EXEC_XSTR(x)        EXEC_STR(x)

static const char *const output_names[] = { "cgi", "raw", NULL };

_Static_assert(sizeof(enum exec_output) == sizeof(int),
    "CONFIG_ENUM stores an int");

static int check_cwd(const char *, char **);
static int check_content_type(const char *, char **);
static int set_env(void *, json_object *, const char *, char **);

/* An exec route's options, into a struct exec_opts. */
static const struct config_key exec_keys[] = {
    { .name = "argv", .type = CONFIG_STRV,
      .offset = offsetof(struct exec_opts, argv),
      .min = 1, .must = "a non-empty array of strings" },
    { .name = "cwd", .type = CONFIG_STRING,
      .offset = offsetof(struct exec_opts, cwd),
      .check = check_cwd, .must = "a directory name" },
    { .name = "env", .type = CONFIG_STRV,
      .offset = offsetof(struct exec_opts, env), .set = set_env },
    { .name = "kill_grace_ms", .type = CONFIG_INT,
      .offset = offsetof(struct exec_opts, kill_grace_ms),
      .min = 0, .max = EXEC_KILL_GRACE_MAX_MS,
      .def = EXEC_KILL_GRACE_DEF_MS,
      .must = "an integer from 0 to " EXEC_XSTR(EXEC_KILL_GRACE_MAX_MS) },
    { .name = "output", .type = CONFIG_ENUM,
      .offset = offsetof(struct exec_opts, output),
      .def = EXEC_OUTPUT_CGI, .names = output_names,
      .must = "\"cgi\" or \"raw\"" },
    { .name = "content_type", .type = CONFIG_STRING,
      .offset = offsetof(struct exec_opts, content_type),
      .check = check_content_type, .must = "a non-empty string" },
};

/* "cwd": a directory. */
static int
check_cwd(const char *s, char **why)
{
    struct stat st;
    int         err = 0;

    if (*s == '\0')
        return config_keys_refuse(why, "must be a directory name");
    if (stat(s, &st) != 0)
        err = errno;
    else if (!S_ISDIR(st.st_mode))
        err = ENOTDIR;
    if (err == 0)
        return 0;
    if (asprintf(why, "%s: %s", s, strerror(err)) < 0)
        *why = NULL;
    return -1;
}

/* "content_type": a header value, without control characters. */
static int
check_content_type(const char *s, char **why)
{
    const char *p;

    if (*s == '\0')
        return config_keys_refuse(why, "must be a non-empty string");
    for (p = s; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return config_keys_refuse(why,
                "must not contain control characters");
    }
    return 0;
}

/*
 * "env": an object of string values, into "NAME=VALUE" strings.  A JSON
 * object has one member per name, so this runs once per route; what it
 * stored before an error is freed with the other keys.
 */
static int
set_env(void *base, json_object *v, const char *path, char **cause)
{
    struct exec_opts   *o = base;
    const char         *s;
    size_t              n = 0;
    char                k[256], esc[256];

    if (!json_object_is_type(v, json_type_object))
        return config_keys_fail(cause, path,
            "must be an object of string values");
    if ((o->env = calloc((size_t)json_object_object_length(v) + 1,
        sizeof *o->env)) == NULL)
        return config_keys_fail(cause, path, "out of memory");
    json_object_object_foreach(v, name, val) {
        snprintf(k, sizeof k, "%s.%s", path, name);
        if (!cgi_env_name_ok(name))
            return config_keys_fail(cause, path,
                "\"%s\" is not a variable name",
                log_escape(esc, sizeof esc, name));
        if (config_keys_string(val, k, &s, cause) != 0) {
            free(*cause);
            return config_keys_fail(cause, k,
                "must be a string (without NUL bytes)");
        }
        if (asprintf(&o->env[n], "%s=%s", name, s) < 0) {
            o->env[n] = NULL;
            return config_keys_fail(cause, k, "out of memory");
        }
        n++;
    }
    return 0;
}

/*
 * The builder of exec routes: what single keys cannot check (argv[0] is an
 * executable file, content_type goes with raw output), and the route's
 * path for messages.
 */
static int
exec_build(void *opts, json_object *route_obj, const struct handler_ctx *ctx,
    char **cause)
{
    struct exec_opts   *o = opts;
    struct stat         st;
    const char         *s;
    char                k[64];

    (void)route_obj;
    snprintf(k, sizeof k, "%s.argv", ctx->where);
    if (o->argv == NULL)
        return config_keys_fail(cause, k, "missing (the program to run)");
    s = o->argv[0];
    snprintf(k, sizeof k, "%s.argv[0]", ctx->where);
    if (*s != '/')
        return config_keys_fail(cause, k, "\"%s\" is not an absolute path",
            s);
    if (stat(s, &st) != 0)
        return config_keys_fail(cause, k, "%s: %s", s, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return config_keys_fail(cause, k, "%s: not a regular file", s);
    if (faccessat(AT_FDCWD, s, X_OK, AT_EACCESS) != 0)
        return config_keys_fail(cause, k, "%s: %s", s, strerror(errno));
    snprintf(k, sizeof k, "%s.content_type", ctx->where);
    if (o->content_type != NULL && o->output != EXEC_OUTPUT_RAW)
        return config_keys_fail(cause, k, "only with \"output\": \"raw\"");
    if (o->output == EXEC_OUTPUT_RAW && o->content_type == NULL &&
        (o->content_type = strdup("application/octet-stream")) == NULL)
        return config_keys_fail(cause, k, "out of memory");
    if ((o->route = strdup(ctx->path)) == NULL)
        return config_keys_fail(cause, ctx->where, "out of memory");
    return 0;
}

/* Free what exec_build() added to the options. */
static void
exec_fini(void *opts)
{
    struct exec_opts *o = opts;

    free(o->route);
    o->route = NULL;
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
    run->kill_at = now_ns() + (uint64_t)run->o->kill_grace_ms * 1000000u;
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
        now = now_ns();
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
        if (run->stopping && !run->killed && now_ns() >= run->kill_at) {
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
    struct exec_opts       *mo = data;     /* for the running count */
    const struct exec_opts *o = data;
    struct exec_run        *run;
    struct cgi_env          env;
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

    if (cgi_env_build(&env, req, body_len, o->env) != 0) {
        log_errorx("req=%llu exec route %s: out of memory",
            (unsigned long long)fc_request_id(req), o->route);
        rc = exec_reply_error(run, "cannot start program");
        free(run);
        return rc;
    }
    rc = exec_spawn(run, env.v);
    cgi_env_free(&env);
    if (rc != 0) {
        log_warnx("req=%llu exec route %s: cannot start %s: %s",
            (unsigned long long)fc_request_id(req), o->route, o->argv[0],
            strerror(rc));
        rc = exec_reply_error(run, "cannot start program");
        free(run);
        return rc;
    }
    atomic_fetch_add_explicit(&mo->running, 1, memory_order_relaxed);
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
    atomic_fetch_sub_explicit(&mo->running, 1, memory_order_relaxed);
    rc = exec_finish(run, st);

    cgi_headers_free(&run->hdr);
    buf_free(&run->hbuf);
    free(run);
    return rc;
}

/* The metrics() hook: the programs each exec route runs now. */
static void
exec_metrics(struct expo *e, const struct handler_route *routes, size_t n)
{
    size_t i;

    expo_family(e, "fcgi_cancel_exec_children", EXPO_GAUGE,
        "Programs of exec routes running now (started, not yet reaped).");
    for (i = 0; i < n; i++) {
        struct exec_opts   *o = routes[i].opts;
        const char         *l[] = { "route", routes[i].route, NULL };

        expo_sample(e, l, (double)atomic_load_explicit(&o->running,
            memory_order_relaxed));
    }
}

const struct handler_def handler_exec = {
    .name = "exec",
    .keys = exec_keys,
    .nkeys = nitems(exec_keys),
    .opts_size = sizeof(struct exec_opts),
    .build = exec_build,
    .handler = exec_handler,
    .fini = exec_fini,
    .metrics = exec_metrics,
};
