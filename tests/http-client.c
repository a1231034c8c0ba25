/* SPDX-License-Identifier: MIT */
/*
 * http-client: a tiny HTTP/1.1 client for the fcgi-cancel test suite that
 * can abandon its request on purpose.
 *
 * It sends one `GET PATH HTTP/1.1` (with `Connection: close`) to HOST:PORT
 * (normally nginx in front of the server under test).  Without -c/-r it
 * prints the whole response (status line, headers, body) to stdout.  With
 * -c MS it closes the socket (FIN) MS ms after the request was sent, with
 * -r MS it resets it (SO_LINGER {1,0} + close, i.e. TCP RST); in both cases
 * it prints `closed_at_ms=<CLOCK_REALTIME epoch ms with 3 decimals>` so a
 * test can measure how long the server took to notice the client was gone.
 * While waiting it reads and discards any response bytes, so that a plain
 * close really sends a FIN (Linux turns close() with unread data into RST);
 * `received=N eof=0|1` on stderr tells whether anything came back first.
 *
 * Exit codes: 0 success, 1 connect error, 2 bad usage, 3 timeout (-t),
 * 4 other I/O error.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* SOCK_CLOEXEC, asprintf and friends */
#endif

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_CONNECT = 1, EXIT_USAGE = 2, EXIT_TIMEOUT = 3,
       EXIT_IO = 4 };

static const char *progname = "http-client";

static void usage(void) __attribute__((noreturn));

static void usage(void)
{
    fprintf(stderr,
            "usage: %s [-c MS | -r MS] [-t MS] HOST PORT PATH\n"
            "  -c MS  close (FIN) MS ms after sending the request\n"
            "  -r MS  reset (SO_LINGER 0, RST) MS ms after sending\n"
            "  -t MS  overall timeout (default 30000, 0 = none), exit 3\n",
            progname);
    exit(EXIT_USAGE);
}

static int64_t parse_ms(const char *s)
{
    char *end;
    long long v;

    if (*s == '\0' || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > INT32_MAX)
        return -1;
    return v;
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

static void timed_out(void) __attribute__((noreturn));

static void timed_out(void)
{
    fputs("timeout\n", stderr);
    exit(EXIT_TIMEOUT);
}

/* Poll timeout in ms until deadline (-1 = none). */
static int poll_left(int64_t deadline)
{
    int64_t left;

    if (deadline < 0)
        return -1;
    left = deadline - mono_ms();
    if (left <= 0)
        return 0;
    return left > INT_MAX ? INT_MAX : (int)left;
}

static int connect_to(const char *host, const char *port, int64_t timeout_ms)
{
    struct addrinfo hints, *res, *ai;
    int fd = -1, rc, err = 0;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot resolve %s:%s: %s\n", progname, host,
                port, gai_strerror(rc));
        exit(EXIT_CONNECT);
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (timeout_ms > 0) {
            struct timeval tv = { .tv_sec = (time_t)(timeout_ms / 1000),
                                  .tv_usec = (suseconds_t)(timeout_ms % 1000)
                                             * 1000 };

            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        if (err == EINPROGRESS || err == EAGAIN)
            timed_out();
        fprintf(stderr, "%s: connect %s:%s: %s\n", progname, host, port,
                strerror(err));
        exit(EXIT_CONNECT);
    }
    return fd;
}

int main(int argc, char **argv)
{
    int64_t close_ms = -1, timeout_ms = 30000;
    int reset = 0, c, fd;
    int64_t start = mono_ms(), deadline;
    char *req;
    int reqlen;

    signal(SIGPIPE, SIG_IGN);
    opterr = 0;
    while ((c = getopt(argc, argv, ":c:r:t:")) != -1) {
        switch (c) {
        case 'c':
        case 'r':
            if (close_ms >= 0) {
                fprintf(stderr, "%s: only one of -c / -r\n", progname);
                usage();
            }
            close_ms = parse_ms(optarg);
            if (close_ms < 0)
                usage();
            reset = (c == 'r');
            break;
        case 't':
            timeout_ms = parse_ms(optarg);
            if (timeout_ms < 0)
                usage();
            break;
        default:
            usage();
        }
    }
    if (argc - optind != 3)
        usage();

    const char *host = argv[optind], *port = argv[optind + 1];
    const char *path = argv[optind + 2];

    if (*path == '\0')
        usage();
    reqlen = asprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\n"
                      "Connection: close\r\n\r\n", path, host);
    if (reqlen < 0) {
        fprintf(stderr, "%s: out of memory\n", progname);
        return EXIT_IO;
    }

    deadline = timeout_ms > 0 ? start + timeout_ms : -1;
    fd = connect_to(host, port, timeout_ms);

    /* The request is small: a blocking send (bounded by SO_SNDTIMEO) is
     * enough. */
    for (size_t off = 0; off < (size_t)reqlen;) {
        ssize_t n = send(fd, req + off, (size_t)reqlen - off, MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                timed_out();
            fprintf(stderr, "%s: send: %s\n", progname, strerror(errno));
            return EXIT_IO;
        }
        off += (size_t)n;
    }
    free(req);

    int64_t close_at = close_ms >= 0 ? mono_ms() + close_ms : -1;
    size_t received = 0;
    int eof = 0;
    char buf[65536];

    for (;;) {
        int64_t until = deadline;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        int rc;

        if (close_at >= 0 && (until < 0 || close_at < until))
            until = close_at;
        if (close_at >= 0 && mono_ms() >= close_at)
            break;
        if (deadline >= 0 && mono_ms() >= deadline)
            timed_out();
        if (eof) {
            /* Peer closed first: just wait for our own close time. */
            if (close_at < 0)
                break;
            (void)poll(NULL, 0, poll_left(until));
            continue;
        }
        rc = poll(&pfd, 1, poll_left(until));
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "%s: poll: %s\n", progname, strerror(errno));
            return EXIT_IO;
        }
        if (rc == 0)
            continue;
        ssize_t n = recv(fd, buf, sizeof buf, 0);

        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            fprintf(stderr, "%s: recv: %s\n", progname, strerror(errno));
            if (close_at < 0)
                return EXIT_IO;
            eof = 1;
            continue;
        }
        if (n == 0) {
            eof = 1;
            continue;
        }
        received += (size_t)n;
        if (close_at < 0)
            write_all(STDOUT_FILENO, buf, (size_t)n);
    }

    if (close_at < 0) {
        close(fd);
        return EXIT_OK;
    }

    if (reset) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };

        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    close(fd);
    printf("closed_at_ms=%lld.%03ld\n",
           (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
           (ts.tv_nsec / 1000) % 1000);
    fprintf(stderr, "received=%zu eof=%d\n", received, eof);
    return EXIT_OK;
}
