/* SPDX-License-Identifier: MIT */
/*
 * bare-responder.c - the floor of a libfcgi application server, for
 * bench/run: N threads, each looping on FCGX_Accept_r() under one accept
 * mutex (the pattern of libfcgi's threaded example, as most libfcgi servers
 * deploy it), answering every request with the same small JSON and nothing
 * else: no routing, no logging, no cancel watcher.
 *
 * Whatever a libfcgi-based server does on top of this costs throughput;
 * fcgi-cancel is measured against it.
 *
 * usage: bare-responder [-n THREADS] [-b BACKLOG] SOCKET_PATH
 *   THREADS   worker threads (default 16)
 *   BACKLOG   listen backlog (default 4096)
 * The socket is created mode 0666 (a stale file is replaced).  SIGTERM or
 * SIGINT ends the process (default action).
 */
#include <errno.h>
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char reply[] =
    "Content-Type: application/json\r\n"
    "\r\n"
    "{\"ok\":true}";

static pthread_mutex_t  accept_mtx = PTHREAD_MUTEX_INITIALIZER;
static int              listen_fd;

static void *
serve(void *arg)
{
    FCGX_Request rq;
    int          rc;

    (void)arg;
    if (FCGX_InitRequest(&rq, listen_fd, 0) != 0) {
        fprintf(stderr, "bare-responder: FCGX_InitRequest failed\n");
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&accept_mtx);
        rc = FCGX_Accept_r(&rq);
        pthread_mutex_unlock(&accept_mtx);
        if (rc < 0)
            break;
        FCGX_PutStr(reply, (int)sizeof reply - 1, rq.out);
        FCGX_Finish_r(&rq);
    }
    return NULL;
}

static long
num_arg(const char *s, long min, long max, const char *what)
{
    char *end;
    long  v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "bare-responder: %s: not a number from %ld to %ld: "
            "%s\n", what, min, max, s);
        exit(2);
    }
    return v;
}

int
main(int argc, char **argv)
{
    pthread_t      *threads;
    pthread_attr_t  attr;
    long            n = 16, backlog = 4096, i;
    int             c, rc;

    while ((c = getopt(argc, argv, "n:b:")) != -1) {
        switch (c) {
        case 'n':
            n = num_arg(optarg, 1, 4096, "-n");
            break;
        case 'b':
            backlog = num_arg(optarg, 1, 65535, "-b");
            break;
        default:
            fprintf(stderr, "usage: bare-responder [-n THREADS] "
                "[-b BACKLOG] SOCKET_PATH\n");
            return 2;
        }
    }
    if (optind + 1 != argc || argv[optind][0] != '/') {
        fprintf(stderr, "bare-responder: one absolute socket path needed\n");
        return 2;
    }
    if (FCGX_Init() != 0) {
        fprintf(stderr, "bare-responder: FCGX_Init failed\n");
        return 1;
    }
    /* After FCGX_Init(), which installs its own handlers. */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);

    unlink(argv[optind]);
    if ((listen_fd = FCGX_OpenSocket(argv[optind], (int)backlog)) < 0) {
        fprintf(stderr, "bare-responder: cannot listen on %s\n",
            argv[optind]);
        return 1;
    }
    chmod(argv[optind], 0666);

    if ((threads = calloc((size_t)n, sizeof *threads)) == NULL)
        return 1;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, (size_t)256 * 1024);
    for (i = 0; i < n; i++) {
        if ((rc = pthread_create(&threads[i], &attr, serve, NULL)) != 0) {
            fprintf(stderr, "bare-responder: thread %ld: %s\n", i,
                strerror(rc));
            return 1;
        }
    }
    pthread_attr_destroy(&attr);
    for (i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    return 0;
}
