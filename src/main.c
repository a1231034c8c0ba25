/* SPDX-License-Identifier: MIT */
/*
 * main.c - fcgi-cancel: command line, listening socket, the pool, and the
 * signals.  The main thread owns the signals (every other thread blocks
 * them): SIGTERM or SIGINT drains the pool (no new connections, running
 * jobs get --grace-ms to finish, then are cancelled with "shutdown"), a
 * second one cancels at once; SIGHUP is logged.
 */
#include <errno.h>
#include <fcgiapp.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"
#include "pool.h"
#include "router.h"
#include "token.h"
#include "util.h"

#define STRAGGLER_MS 5000   /* after the shutdown cancel, before giving up */

struct options {
    const char *listen;
    long        workers;
    long        grace_ms;
    long        max_body_bytes;
    long        read_timeout_ms;
    long        stack_kb;
    int         log_level;
};

static void
usage(FILE *f)
{
    fprintf(f,
"usage: fcgi-cancel [options]\n"
"  -l, --listen ADDR         unix:/path/to.sock or tcp:HOST:PORT; without it,\n"
"                            a socket from systemd (LISTEN_FDS) or fd 0\n"
"  -w, --workers N           worker threads (default 32, 1..4096)\n"
"  -g, --grace-ms MS         on SIGTERM, time jobs get to finish before they\n"
"                            are cancelled (default 10000)\n"
"      --max-body-bytes N    larger request bodies get 413 (default 1048576)\n"
"      --read-timeout-ms MS  bound on reading a request (default 30000)\n"
"      --stack-kb N          worker thread stack size (default 1024)\n"
"      --log-level LEVEL     error, warn, info (default) or debug\n"
"  -h, --help                this text\n"
"  -V, --version             the version\n");
}

static int
opt_num(const char *name, const char *arg, long min, long max, long *out)
{
    if (parse_long(arg, min, max, out) != 0) {
        fprintf(stderr, "fcgi-cancel: --%s: \"%s\" is not a number from "
            "%ld to %ld\n", name, arg, min, max);
        return -1;
    }
    return 0;
}

static int
parse_options(int argc, char **argv, struct options *o)
{
    enum { O_MAXBODY = 256, O_READTO, O_STACK, O_LOGLEVEL };
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "workers", required_argument, NULL, 'w' },
        { "grace-ms", required_argument, NULL, 'g' },
        { "max-body-bytes", required_argument, NULL, O_MAXBODY },
        { "read-timeout-ms", required_argument, NULL, O_READTO },
        { "stack-kb", required_argument, NULL, O_STACK },
        { "log-level", required_argument, NULL, O_LOGLEVEL },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int c;

    while ((c = getopt_long(argc, argv, "l:w:g:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            o->listen = optarg;
            break;
        case 'w':
            if (opt_num("workers", optarg, 1, 4096, &o->workers) != 0)
                return -1;
            break;
        case 'g':
            if (opt_num("grace-ms", optarg, 0, 86400000, &o->grace_ms) != 0)
                return -1;
            break;
        case O_MAXBODY:
            if (opt_num("max-body-bytes", optarg, 0, 1L << 40,
                &o->max_body_bytes) != 0)
                return -1;
            break;
        case O_READTO:
            if (opt_num("read-timeout-ms", optarg, 0, 86400000,
                &o->read_timeout_ms) != 0)
                return -1;
            break;
        case O_STACK:
            if (opt_num("stack-kb", optarg, 64, 65536, &o->stack_kb) != 0)
                return -1;
            break;
        case O_LOGLEVEL:
            if ((o->log_level = log_level_parse(optarg)) < 0) {
                fprintf(stderr, "fcgi-cancel: --log-level: \"%s\" is not "
                    "error, warn, info or debug\n", optarg);
                return -1;
            }
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("fcgi-cancel %s\n", PACKAGE_VERSION);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fcgi-cancel: unexpected argument \"%s\"\n",
            argv[optind]);
        return -1;
    }
    return 0;
}

/* Wait up to ms for the pool to go idle, answering a second TERM/INT. */
static int
wait_idle(struct pool *p, const sigset_t *set, long ms, int *again)
{
    struct timespec ts = { 0, 5 * 1000000L };
    uint64_t        end = token_now_ns() + (uint64_t)ms * 1000000u;
    int             sig;

    while (pool_busy(p) > 0) {
        if (token_now_ns() >= end)
            return -1;
        sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            *again = 1;
            return -1;
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct options      o = { NULL, 32, 10000, 1048576, 30000, 1024,
                            LOG_LEVEL_INFO };
    struct pool_config  pc;
    struct router       router = { 0 };
    struct pool        *pool;
    struct sigaction    sa;
    fc_token           *server_tok;
    sigset_t            set;
    char               *cause = NULL, *unix_path = NULL;
    int                 lfd, sig, again = 0, busy;

    if (parse_options(argc, argv, &o) != 0)
        return 1;
    log_level = o.log_level;

    /* FCGX_Init() installs its own signal handlers: set ours after it. */
    if (FCGX_Init() != 0) {
        fprintf(stderr, "fcgi-cancel: FCGX_Init failed\n");
        return 1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    /* Blocked here, inherited blocked by every thread: main owns them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    if (o.listen != NULL) {
        lfd = listen_open(o.listen, 0660, 1024, &unix_path, &cause);
    } else if ((lfd = listen_inherited()) < 0) {
        cause = strdup("no --listen given, and no listening socket was "
            "passed (by systemd or as fd 0)");
    }
    if (lfd < 0) {
        fprintf(stderr, "fcgi-cancel: %s\n", cause);
        free(cause);
        return 1;
    }
    if (router_defaults(&router) != 0) {
        fprintf(stderr, "fcgi-cancel: out of memory\n");
        return 1;
    }
    if ((server_tok = token_new(NULL)) == NULL) {
        fprintf(stderr, "fcgi-cancel: out of memory\n");
        return 1;
    }
    pc.workers = (int)o.workers;
    pc.max_body_bytes = (size_t)o.max_body_bytes;
    pc.read_timeout_ms = o.read_timeout_ms;
    pc.stack_size = (size_t)o.stack_kb * 1024;
    if ((pool = pool_new(lfd, &pc, &router, server_tok, &cause)) == NULL) {
        fprintf(stderr, "fcgi-cancel: %s\n", cause);
        free(cause);
        if (unix_path != NULL)
            unlink(unix_path);
        return 1;
    }
    log_info("fcgi-cancel %s serving on %s with %d workers", PACKAGE_VERSION,
        o.listen != NULL ? o.listen : (lfd == 0 ? "fd 0" : "fd 3"),
        pc.workers);

    for (;;) {
        sig = sigwaitinfo(&set, NULL);
        if (sig == SIGHUP) {
            log_info("SIGHUP: logging to stderr, nothing to reopen");
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }

    log_info("%s: draining, %d busy, grace %ld ms",
        sig == SIGTERM ? "SIGTERM" : "SIGINT", pool_busy(pool), o.grace_ms);
    pool_drain(pool);
    close(lfd);
    if (unix_path != NULL)
        unlink(unix_path);
    if (wait_idle(pool, &set, o.grace_ms, &again) != 0) {
        log_info("%s: cancelling %d jobs with reason shutdown",
            again ? "signal repeated" : "grace period over", pool_busy(pool));
        token_cancel(server_tok, FC_SHUTDOWN);
        if (wait_idle(pool, &set, STRAGGLER_MS, &again) != 0 &&
            (busy = pool_busy(pool)) > 0) {
            log_errorx("%d jobs ignore their token; exiting without them",
                busy);
            _exit(1);
        }
    }
    pool_free(pool);
    router_free(&router);
    token_unref(server_tok);
    free(unix_path);
    log_info("exit");
    return 0;
}
