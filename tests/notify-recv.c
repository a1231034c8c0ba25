/* SPDX-License-Identifier: MIT */
/*
 * notify-recv: the service manager's end of the sd_notify protocol, for the
 * fcgi-cancel tests.  It binds an AF_UNIX datagram socket (a path, or an
 * abstract name written "@name", as in NOTIFY_SOCKET) and appends every
 * datagram it receives to OUTFILE as one line, newlines inside a datagram
 * written as the two characters "\n".  With -t each line starts with the
 * CLOCK_MONOTONIC time of its arrival in milliseconds and a blank, so a
 * test can measure the intervals between watchdog pings.
 *
 * OUTFILE is created (truncated) only once the socket is bound: a test
 * waits for it to exist before it starts the sender.  SIGTERM or SIGINT
 * ends it (exit 0, a path socket removed); after -a SECONDS (default 300)
 * it gives up (exit 3), so a forgotten receiver does not linger.
 *
 * usage: notify-recv [-t] [-a SECONDS] SOCKET OUTFILE
 * Exit codes: 0 signalled, 1 I/O error, 2 bad usage, 3 alarm.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* ppoll */
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DGRAM_MAX   65536

static volatile sig_atomic_t got_signal;

static void
on_signal(int sig)
{
    got_signal = sig;
}

static void
usage(void)
{
    fprintf(stderr, "usage: notify-recv [-t] [-a SECONDS] SOCKET OUTFILE\n"
        "  SOCKET is /path or @abstract-name\n");
    exit(2);
}

/* Write all of len bytes of p to fd; 0 or -1. */
static int
write_all(int fd, const char *p, size_t len)
{
    ssize_t w;

    while (len > 0) {
        if ((w = write(fd, p, len)) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    static char         dgram[DGRAM_MAX], line[DGRAM_MAX * 2 + 64];
    struct sockaddr_un  sun;
    struct sigaction    sa;
    struct pollfd       pfd;
    struct timespec     ts;
    sigset_t            block, none;
    socklen_t           alen;
    const char         *name, *out;
    size_t              nlen, o;
    ssize_t             r, i;
    long                secs = 300;
    char               *end;
    int                 c, stamp = 0, fd, ofd, abstract;

    while ((c = getopt(argc, argv, "ta:")) != -1) {
        switch (c) {
        case 't':
            stamp = 1;
            break;
        case 'a':
            secs = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || secs < 0 || secs > 86400)
                usage();
            break;
        default:
            usage();
        }
    }
    if (argc - optind != 2)
        usage();
    name = argv[optind];
    out = argv[optind + 1];
    nlen = strlen(name);
    abstract = name[0] == '@';
    if ((name[0] != '/' && !abstract) || nlen < 2 ||
        nlen >= sizeof sun.sun_path) {
        fprintf(stderr, "notify-recv: %s: not /path or @name that fits\n",
            name);
        return 2;
    }

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGALRM, &sa, NULL);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGALRM);
    /* Delivered only inside ppoll(): no signal is lost between checks. */
    sigprocmask(SIG_BLOCK, &block, NULL);
    sigemptyset(&none);
    if (secs > 0)
        alarm((unsigned)secs);

    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, name, nlen);
    if (abstract) {
        sun.sun_path[0] = '\0';
        alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + nlen);
    } else {
        alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + nlen +
            1);
        unlink(name);
    }
    if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(fd, (struct sockaddr *)&sun, alen) != 0) {
        fprintf(stderr, "notify-recv: %s: %s\n", name, strerror(errno));
        return 1;
    }
    if ((ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND |
        O_CLOEXEC, 0644)) < 0) {
        fprintf(stderr, "notify-recv: %s: %s\n", out, strerror(errno));
        if (!abstract)
            unlink(name);
        return 1;
    }

    pfd.fd = fd;
    pfd.events = POLLIN;
    while (!got_signal) {
        if (ppoll(&pfd, 1, NULL, &none) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        while ((r = recv(fd, dgram, sizeof dgram, MSG_DONTWAIT)) >= 0) {
            o = 0;
            if (stamp) {
                clock_gettime(CLOCK_MONOTONIC, &ts);
                o = (size_t)snprintf(line, sizeof line, "%lld.%03ld ",
                    (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                    ts.tv_nsec / 1000 % 1000);
            }
            for (i = 0; i < r; i++) {
                if (dgram[i] == '\n') {
                    line[o++] = '\\';
                    line[o++] = 'n';
                } else {
                    line[o++] = dgram[i];
                }
            }
            line[o++] = '\n';
            if (write_all(ofd, line, o) != 0) {
                fprintf(stderr, "notify-recv: %s: %s\n", out,
                    strerror(errno));
                got_signal = -1;
                break;
            }
        }
    }
    if (!abstract)
        unlink(name);
    close(ofd);
    if (got_signal == SIGALRM)
        return 3;
    return got_signal < 0 ? 1 : 0;
}
