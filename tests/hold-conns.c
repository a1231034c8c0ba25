/* SPDX-License-Identifier: MIT */
/*
 * hold-conns: open many connections to a FastCGI server, optionally send
 * the same few bytes on each (half a record header, say), and hold them,
 * noting which ones the server closes and when.  Used by
 * tests/integration/hostile.sh for "500 idle connections" and "200
 * connections that send half a header and stall", by flood.sh for
 * floods of requests that never end, and by bench table 7 (10,000 jobs
 * whose connections it closes at once, stamping each close).
 *
 *   hold-conns [-n N] [-d FILE [-k K] [-i MARK] | -p BYTES] [-s SECONDS]
 *              [-r READY] [-c CLOSES] [-e] [-N] [-H] ADDR
 *
 *   ADDR        unix:/path/to.sock or tcp:HOST:PORT (numeric host)
 *   -n N        connections (default 1)
 *   -d FILE     send the bytes of FILE on each connection once it is open
 *   -k K        send only the first K bytes of FILE
 *   -i MARK     in the bytes of FILE, write each occurrence of MARK as the
 *               connection's number (0 to N-1), zero-padded to MARK's
 *               length, so that each request can be told apart (say, in
 *               its query string) while its length stays the same
 *   -p BYTES    send a FastCGI request that never ends: FCGI_BEGIN_REQUEST,
 *               then FCGI_PARAMS records with one param whose value is
 *               declared one byte longer than the BYTES bytes sent of it
 *   -s SECONDS  hold them this long at most (default 10), then close them
 *   -r READY    create the file READY once every connection is open and
 *               its bytes are sent (a test polls for it)
 *   -e          end early once the server has closed every connection
 *   -N          never read: leave what the server sends unread (a client
 *               that stops reading its answers); closes are not seen
 *   -H          half-close (shutdown SHUT_WR) once the bytes are sent
 *   -c CLOSES   on SIGUSR1, close every connection at once, one after the
 *               other in their order, and end; then write to the file
 *               CLOSES one line per connection closed, "NUMBER EPOCH_MS",
 *               the connection's number and CLOCK_REALTIME just before
 *               its close(), in ms with three decimals (a benchmark joins
 *               them with the server's log lines)
 *
 * Otherwise whatever the server sends is read and thrown away.  Sending
 * gives up after 5 s if the server stops reading.  At the end one line
 * goes to stdout:
 *   connected=N failed=F closed_by_peer=C open_at_end=O
 *   close_ms_min=A close_ms_median=B close_ms_max=C
 * (with -c, closed_by_self=S after closed_by_peer; open_at_end is then
 * 0)
 * where the close times count from the moment the connection's bytes were
 * sent (or it was connected, without -d) to the EOF or reset seen.
 * Exit codes: 0 done, 1 some connection could not be made, 2 bad usage,
 * 4 other local error.  An alarm() ends the program if it hangs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS  5000
#define MAX_CONNS           100000

/* Set by SIGUSR1 when -c is given: close them all now. */
static volatile sig_atomic_t close_now;

struct conn {
    int      fd;
    int64_t  t_sent;    /* ms, CLOCK_MONOTONIC */
    int64_t  t_closed;  /* 0: still open */
};

static void usage(void) __attribute__((noreturn));

static void
usage(void)
{
    fprintf(stderr, "usage: hold-conns [-n N] [-d FILE [-k K] [-i MARK] | "
        "-p BYTES] [-s SECONDS] [-r READY] [-c CLOSES] [-e] [-N] [-H] "
        "ADDR\n");
    exit(2);
}

static void
die(int code, const char *what)
{
    fprintf(stderr, "hold-conns: %s: %s\n", what, strerror(errno));
    exit(code);
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The SIGUSR1 handler of -c. */
static void
on_usr1(int sig)
{
    (void)sig;
    close_now = 1;
}

/* Return CLOCK_REALTIME in ns. */
static int64_t
real_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Write number i, zero-padded, over each occurrence of mark in b[0..len). */
static void
mark_index(char *b, size_t len, const char *mark, long i)
{
    size_t  ml = strlen(mark), off;
    char    num[32];

    snprintf(num, sizeof num, "%0*ld", (int)ml, i);
    if (strlen(num) != ml)
        usage();                    /* MARK too short for N */
    for (off = 0; ml > 0 && off + ml <= len; off++) {
        if (memcmp(b + off, mark, ml) == 0) {
            memcpy(b + off, num, ml);
            off += ml - 1;
        }
    }
}

/*
 * Close every open connection of c[0..n) in order, noting CLOCK_REALTIME
 * before each close(), and write the "NUMBER EPOCH_MS" lines to path.
 * Return how many it closed.
 */
static int
close_all_stamped(struct conn *c, long n, const char *path)
{
    int64_t *at;
    FILE    *f;
    long     i;
    int      done = 0;

    if ((at = calloc((size_t)n, sizeof *at)) == NULL)
        die(4, "calloc");
    for (i = 0; i < n; i++) {
        if (c[i].fd < 0 || c[i].t_closed != 0)
            continue;
        at[i] = real_ns();
        close(c[i].fd);
        c[i].fd = -1;
        done++;
    }
    if ((f = fopen(path, "we")) == NULL)
        die(4, path);
    for (i = 0; i < n; i++) {
        if (at[i] != 0)
            fprintf(f, "%ld %" PRId64 ".%03" PRId64 "\n", i,
                at[i] / 1000000, at[i] / 1000 % 1000);
    }
    if (fclose(f) != 0)
        die(4, path);
    free(at);
    return done;
}

static long
number(const char *s, long min, long max)
{
    char *end;
    long  v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        usage();
    return v;
}

/* Read FILE whole; its length in *len. */
static char *
slurp(const char *path, size_t *len)
{
    char   *b = NULL;
    size_t  n = 0, cap = 0;
    ssize_t r;
    int     fd;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        die(4, path);
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            if ((b = realloc(b, cap)) == NULL)
                die(4, "realloc");
        }
        if ((r = read(fd, b + n, cap - n)) < 0) {
            if (errno == EINTR)
                continue;
            die(4, path);
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return b;
}

/* Append the bytes of a FastCGI record header to b at *n. */
static void
record_header(char *b, size_t *n, int type, size_t len)
{
    const unsigned char h[8] = { 1, (unsigned char)type, 0, 1,
        (unsigned char)(len >> 8), (unsigned char)len, 0, 0 };

    memcpy(b + *n, h, sizeof h);
    *n += sizeof h;
}

/*
 * The bytes of -p: FCGI_BEGIN_REQUEST (id 1, responder), then FCGI_PARAMS
 * records of at most 65528 bytes carrying the pair "P" = value of
 * bytes + 1 bytes, cut after bytes bytes of the value.  Its length in *len.
 */
static char *
endless_request(size_t bytes, size_t *len)
{
    size_t  content = 1 + 4 + 1 + bytes, off = 0, chunk, n = 0;
    size_t  vlen = bytes + 1;
    char   *b, *c;

    if ((b = malloc(16 + content + (content / 65528 + 1) * 8)) == NULL ||
        (c = malloc(content)) == NULL)
        die(4, "malloc");
    record_header(b, &n, 1, 8);
    memcpy(b + n, "\0\1\0\0\0\0\0\0", 8);
    n += 8;
    c[0] = 1;
    c[1] = (char)(0x80 | (vlen >> 24));
    c[2] = (char)(vlen >> 16);
    c[3] = (char)(vlen >> 8);
    c[4] = (char)vlen;
    c[5] = 'P';
    memset(c + 6, 'x', bytes);
    while (off < content) {
        chunk = content - off < 65528 ? content - off : 65528;
        record_header(b, &n, 4, chunk);
        memcpy(b + n, c + off, chunk);
        n += chunk;
        off += chunk;
    }
    free(c);
    *len = n;
    return b;
}

/* Connect one socket to addr (blocking, bounded); -1 on failure. */
static int
connect_one(const char *addr)
{
    struct sockaddr_storage ss;
    struct timeval          tv = { CONNECT_TIMEOUT_MS / 1000, 0 };
    socklen_t               sl;
    int                     fd, family;

    memset(&ss, 0, sizeof ss);
    if (strncmp(addr, "unix:", 5) == 0) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&ss;

        if (strlen(addr + 5) >= sizeof sun->sun_path)
            usage();
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, addr + 5);
        sl = sizeof *sun;
        family = AF_UNIX;
    } else if (strncmp(addr, "tcp:", 4) == 0) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        const char         *colon = strrchr(addr + 4, ':');
        char                host[64];

        if (colon == NULL || (size_t)(colon - addr - 4) >= sizeof host)
            usage();
        memcpy(host, addr + 4, (size_t)(colon - addr - 4));
        host[colon - addr - 4] = '\0';
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)number(colon + 1, 1, 65535));
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            usage();
        sl = sizeof *sin;
        family = AF_INET;
    } else {
        usage();
    }
    if ((fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    /* A unix connect blocks while the backlog is full: bound it. */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Send len bytes of p on fd (blocking, bounded by SO_SNDTIMEO). */
static int
send_all(int fd, const char *p, size_t len)
{
    ssize_t w;

    while (len > 0) {
        w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
    struct rlimit   rl;
    struct conn    *c;
    struct pollfd  *pfd;
    const char     *data_file = NULL, *ready = NULL, *mark = NULL;
    const char     *closes = NULL;
    char           *data = NULL, *tmpl = NULL, sink[4096];
    size_t          dlen = 0;
    long            n = 1, k = -1, secs = 10, endless = -1;
    int64_t         end, t, *lat;
    int             opt, early = 0, failed = 0, connected = 0, closed = 0;
    int             noread = 0, half = 0, self = 0;
    int             i, np, rc;

    while ((opt = getopt(argc, argv, "n:d:k:i:p:s:r:c:eNH")) != -1) {
        switch (opt) {
        case 'n': n = number(optarg, 1, MAX_CONNS); break;
        case 'd': data_file = optarg; break;
        case 'k': k = number(optarg, 0, 1L << 30); break;
        case 'i': mark = optarg; break;
        case 'c': closes = optarg; break;
        case 'p': endless = number(optarg, 0, 1L << 26); break;
        case 's': secs = number(optarg, 0, 86400); break;
        case 'r': ready = optarg; break;
        case 'e': early = 1; break;
        case 'N': noread = 1; break;
        case 'H': half = 1; break;
        default: usage();
        }
    }
    if (optind != argc - 1 || (endless >= 0 && data_file != NULL) ||
        (mark != NULL && (data_file == NULL || *mark == '\0')))
        usage();
    signal(SIGPIPE, SIG_IGN);
    if (closes != NULL)
        signal(SIGUSR1, on_usr1);
    alarm((unsigned)secs + 60);     /* watchdog */

    if (data_file != NULL) {
        data = slurp(data_file, &dlen);
        if (k >= 0 && (size_t)k < dlen)
            dlen = (size_t)k;
    } else if (endless >= 0) {
        data = endless_request((size_t)endless, &dlen);
    }
    if (mark != NULL) {
        if ((tmpl = malloc(dlen + 1)) == NULL)
            die(4, "malloc");
        memcpy(tmpl, data, dlen);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 16) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)n + 16 ? rl.rlim_max :
            (rlim_t)n + 16;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if ((c = calloc((size_t)n, sizeof *c)) == NULL ||
        (pfd = calloc((size_t)n, sizeof *pfd)) == NULL ||
        (lat = calloc((size_t)n, sizeof *lat)) == NULL)
        die(4, "calloc");

    for (i = 0; i < n; i++) {
        if ((c[i].fd = connect_one(argv[optind])) < 0) {
            failed++;
            continue;
        }
        connected++;
        if (mark != NULL) {
            memcpy(data, tmpl, dlen);
            mark_index(data, dlen, mark, i);
        }
        if (dlen > 0 && send_all(c[i].fd, data, dlen) != 0) {
            /* the server closed it already: counted as closed below */
        }
        if (half)
            shutdown(c[i].fd, SHUT_WR);
        c[i].t_sent = now_ms();
    }
    if (ready != NULL) {
        int fd = open(ready, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        if (fd < 0)
            die(4, ready);
        close(fd);
    }

    end = now_ms() + secs * 1000;
    while (noread && now_ms() < end && !close_now)
        usleep(10000);
    while ((t = now_ms()) < end && !(early && closed == connected) &&
        !close_now) {
        for (i = 0, np = 0; i < n; i++) {
            if (c[i].fd >= 0 && c[i].t_closed == 0) {
                pfd[np].fd = c[i].fd;
                pfd[np].events = POLLIN;
                pfd[np].revents = 0;
                np++;
            }
        }
        if (np == 0) {
            usleep(10000);
            continue;
        }
        rc = poll(pfd, (nfds_t)np, (int)(end - t < 100 ? end - t : 100));
        if (rc < 0 && errno != EINTR)
            die(4, "poll");
        if (rc <= 0)
            continue;
        t = now_ms();
        for (i = 0, np = 0; i < n; i++) {
            ssize_t r;

            if (c[i].fd < 0 || c[i].t_closed != 0)
                continue;
            if (pfd[np++].revents == 0)
                continue;
            /* Drain what the server sent; EOF or an error is its close. */
            do
                r = recv(c[i].fd, sink, sizeof sink, MSG_DONTWAIT);
            while (r > 0);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
                c[i].t_closed = t;
                lat[closed++] = t - c[i].t_sent;
            }
        }
    }
    if (close_now)
        self = close_all_stamped(c, n, closes);
    for (i = 0; i < n; i++) {
        if (c[i].fd >= 0)
            close(c[i].fd);
    }
    qsort(lat, (size_t)closed, sizeof *lat, cmp_i64);
    printf("connected=%d failed=%d closed_by_peer=%d", connected, failed,
        closed);
    if (closes != NULL)
        printf(" closed_by_self=%d", self);
    printf(" open_at_end=%d close_ms_min=%" PRId64 " close_ms_median=%"
        PRId64 " close_ms_max=%" PRId64 "\n", connected - closed - self,
        closed ? lat[0] : -1,
        closed ? lat[closed / 2] : -1, closed ? lat[closed - 1] : -1);
    free(c);
    free(pfd);
    free(lat);
    free(data);
    free(tmpl);
    return failed > 0 ? 1 : 0;
}
