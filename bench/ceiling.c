/* SPDX-License-Identifier: MIT */
/*
 * ceiling.c - the ceiling of a FastCGI backend behind nginx, for the bench:
 * one thread, one epoll loop, non-blocking unix-socket connections, and a
 * FastCGI responder that does nothing but the protocol.  It reads each
 * request whole (BEGIN_REQUEST, the PARAMS stream, the STDIN stream up to
 * its empty record) without looking at the parameters, answers every
 * request with the same small JSON (one STDOUT record, the empty STDOUT
 * record and END_REQUEST, in one write) and honours FCGI_KEEP_CONN: the
 * connection stays open for the next request when nginx asked for it, and
 * is closed after the reply otherwise.  No routing, no cancellation, no
 * logging, no threads: what nginx costs when its upstream costs nothing,
 * the best any FastCGI server can do on the same nginx.  bench/README.md
 * says how the tables use it.
 *
 * The parser streams: it keeps, per connection, only the header of the
 * record being read and the flags of BEGIN_REQUEST, and skips every other
 * byte, so one shared read buffer serves all connections.  Management
 * records (request id 0), ABORT_REQUEST and DATA are read and ignored; a
 * second request on a connection before the first one's reply (which
 * nginx never sends) is answered in turn, each with its own request id.
 *
 * usage: ceiling [-b BACKLOG] SOCKET_PATH
 *   BACKLOG   listen backlog (default 4096)
 * The socket is created mode 0666 (a stale file is replaced).  SIGTERM or
 * SIGINT ends the process (default action).  Errors after start-up close
 * the connection concerned, silently.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fastcgi.h>                 /* the protocol's constants (libfcgi) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

enum {
    READ_BUF   = 64 * 1024,          /* one read(2) at the most */
    MAX_EVENTS = 256                 /* events per epoll_wait(2) */
};

/* The reply's STDOUT content: the same answer as bare-responder's. */
static const char body[] =
    "Content-Type: application/json\r\n"
    "\r\n"
    "{\"ok\":true}";

/*
 * The whole reply, built once by reply_init(): STDOUT header, body, empty
 * STDOUT, END_REQUEST (app status 0, FCGI_REQUEST_COMPLETE: all zeros);
 * the request id is patched in at the three offsets of reply_id[] for
 * each request.
 */
static unsigned char reply[(size_t)3 * FCGI_HEADER_LEN + sizeof body - 1 + 8];
static size_t        reply_id[3];

/* One connection: its parser state and its unsent output.  Owned by the
 * loop, freed by conn_close(). */
struct conn {
    int            fd;
    unsigned char  hdr[FCGI_HEADER_LEN]; /* the record header being read */
    size_t         hdr_len;              /* bytes of it read so far */
    size_t         body_left;            /* content + padding still to skip */
    size_t         body_read;            /* content bytes of it read so far */
    unsigned char  flags;                /* BEGIN_REQUEST's flags byte */
    int            keep;                 /* FCGI_KEEP_CONN of the request */
    int            closing;              /* close once out is sent */
    int            want_out;             /* registered for EPOLLOUT */
    unsigned char *out;                  /* unsent output, out_off.. */
    size_t         out_off, out_len, out_cap;
};

static int           ep;
static unsigned char rbuf[READ_BUF];

/* Put a record header for TYPE and content length LEN at P (id 0). */
static void
header_put(unsigned char *p, unsigned char type, size_t len)
{
    p[0] = FCGI_VERSION_1;
    p[1] = type;
    p[2] = 0;
    p[3] = 0;
    p[4] = (unsigned char)(len >> 8);
    p[5] = (unsigned char)(len & 0xff);
    p[6] = 0;
    p[7] = 0;
}

/* Build the reply template and the offsets of its request ids. */
static void
reply_init(void)
{
    size_t n = 0;

    reply_id[0] = n + 2;
    header_put(reply + n, FCGI_STDOUT, sizeof body - 1);
    n += FCGI_HEADER_LEN;
    memcpy(reply + n, body, sizeof body - 1);
    n += sizeof body - 1;
    reply_id[1] = n + 2;
    header_put(reply + n, FCGI_STDOUT, 0);
    n += FCGI_HEADER_LEN;
    reply_id[2] = n + 2;
    header_put(reply + n, FCGI_END_REQUEST, 8);
    n += FCGI_HEADER_LEN;
    memset(reply + n, 0, 8);
}

/* Append the reply to request ID to C's output; return 0, or -1 when out
 * of memory. */
static int
conn_reply(struct conn *c, unsigned char id_hi, unsigned char id_lo)
{
    unsigned char *p;
    size_t         i, cap;

    if (c->out_len + sizeof reply > c->out_cap) {
        cap = c->out_cap != 0 ? c->out_cap * 2 : 1024;
        while (cap < c->out_len + sizeof reply)
            cap *= 2;
        if ((p = realloc(c->out, cap)) == NULL)
            return -1;
        c->out = p;
        c->out_cap = cap;
    }
    p = c->out + c->out_len;
    memcpy(p, reply, sizeof reply);
    for (i = 0; i < 3; i++) {
        p[reply_id[i]] = id_hi;
        p[reply_id[i] + 1] = id_lo;
    }
    c->out_len += sizeof reply;
    return 0;
}

/* The record in C's header is complete: act on it; return 0, or -1 when
 * the connection must close at once. */
static int
conn_record(struct conn *c)
{
    size_t len = (size_t)c->hdr[4] << 8 | c->hdr[5];

    if (c->hdr[1] == FCGI_BEGIN_REQUEST) {
        c->keep = (c->flags & FCGI_KEEP_CONN) != 0;
    } else if (c->hdr[1] == FCGI_STDIN && len == 0 &&
               (c->hdr[2] != 0 || c->hdr[3] != 0)) {
        if (conn_reply(c, c->hdr[2], c->hdr[3]) != 0)
            return -1;
        if (!c->keep)
            c->closing = 1;
    }
    c->hdr_len = 0;
    return 0;
}

/* Parse N bytes at P for C, stopping after a reply that ends the
 * connection; return 0, or -1 when the connection must close at once. */
static int
conn_parse(struct conn *c, const unsigned char *p, size_t n)
{
    size_t k, len;

    while (n > 0 && !c->closing) {
        if (c->hdr_len < FCGI_HEADER_LEN) {
            k = FCGI_HEADER_LEN - c->hdr_len;
            k = k < n ? k : n;
            memcpy(c->hdr + c->hdr_len, p, k);
            c->hdr_len += k;
            p += k;
            n -= k;
            if (c->hdr_len < FCGI_HEADER_LEN)
                break;
            c->body_left = ((size_t)c->hdr[4] << 8 | c->hdr[5]) + c->hdr[6];
            c->body_read = 0;
            if (c->body_left == 0 && conn_record(c) != 0)
                return -1;
            continue;
        }
        k = c->body_left < n ? c->body_left : n;
        len = (size_t)c->hdr[4] << 8 | c->hdr[5];
        /* The flags: the third content byte of BEGIN_REQUEST. */
        if (c->hdr[1] == FCGI_BEGIN_REQUEST && c->body_read <= 2 &&
            c->body_read + k > 2 && len > 2)
            c->flags = p[2 - c->body_read];
        c->body_read += k;
        c->body_left -= k;
        p += k;
        n -= k;
        if (c->body_left == 0 && conn_record(c) != 0)
            return -1;
    }
    return 0;
}

/* Close C's socket (which removes it from the epoll set) and free C. */
static void
conn_close(struct conn *c)
{
    close(c->fd);
    free(c->out);
    free(c);
}

/* Register C for EPOLLOUT when WANT, for EPOLLIN otherwise; return 0 or
 * -1. */
static int
conn_want_out(struct conn *c, int want)
{
    struct epoll_event ev;

    if (c->want_out == want)
        return 0;
    ev.events = want ? EPOLLOUT : EPOLLIN;
    ev.data.ptr = c;
    c->want_out = want;
    return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Send what C has to send; return 1 when all is sent, 0 when the socket
 * is full (EPOLLOUT armed), -1 on an error. */
static int
conn_flush(struct conn *c)
{
    ssize_t w;

    while (c->out_off < c->out_len) {
        w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return conn_want_out(c, 1) == 0 ? 0 : -1;
        if (w <= 0)
            return -1;
        c->out_off += (size_t)w;
    }
    c->out_off = c->out_len = 0;
    return conn_want_out(c, 0) == 0 ? 1 : -1;
}

/* Handle an epoll event for C: read and parse, or send what is pending;
 * frees C when its connection ends. */
static void
conn_event(struct conn *c, unsigned events)
{
    ssize_t r;
    int     f;

    if (!c->want_out) {
        r = read(c->fd, rbuf, sizeof rbuf);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0 || conn_parse(c, rbuf, (size_t)r) != 0) {
            conn_close(c);
            return;
        }
    } else if ((events & (EPOLLERR | EPOLLHUP)) != 0 &&
               (events & EPOLLOUT) == 0) {
        conn_close(c);
        return;
    }
    if (c->out_len == 0)
        return;
    f = conn_flush(c);
    if (f < 0 || (f == 1 && c->closing))
        conn_close(c);
}

/* Accept one connection on LFD and add it to the epoll set (errors drop
 * it). */
static void
accept_one(int lfd)
{
    struct epoll_event ev;
    struct conn       *c;
    int                fd;

    fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if ((c = calloc(1, sizeof *c)) == NULL) {
        close(fd);
        return;
    }
    c->fd = fd;
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
        conn_close(c);
}

/* Listen on the unix socket PATH (mode 0666, a stale file replaced);
 * return the non-blocking listening socket, or -1 (reported). */
static int
listen_unix(const char *path, int backlog)
{
    struct sockaddr_un sa;
    int                fd;

    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "ceiling: socket path too long: %s\n", path);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("ceiling: socket");
        return -1;
    }
    unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        chmod(path, 0666) != 0 || listen(fd, backlog) != 0) {
        fprintf(stderr, "ceiling: cannot listen on %s: %s\n", path,
            strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int
main(int argc, char **argv)
{
    struct epoll_event ev, evs[MAX_EVENTS];
    long               backlog = 4096;
    char              *end;
    int                c, lfd, n, i;

    while ((c = getopt(argc, argv, "b:")) != -1) {
        if (c == 'b') {
            errno = 0;
            backlog = strtol(optarg, &end, 10);
            if (errno == 0 && *optarg != '\0' && *end == '\0' &&
                backlog >= 1 && backlog <= 65535)
                continue;
            fprintf(stderr, "ceiling: -b: not a number from 1 to 65535: "
                "%s\n", optarg);
        }
        fprintf(stderr, "usage: ceiling [-b BACKLOG] SOCKET_PATH\n");
        return 2;
    }
    if (optind + 1 != argc || argv[optind][0] != '/') {
        fprintf(stderr, "ceiling: one absolute socket path needed\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    reply_init();
    if ((lfd = listen_unix(argv[optind], (int)backlog)) < 0)
        return 1;
    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0) {
        perror("ceiling: epoll_create1");
        return 1;
    }
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;              /* NULL: the listening socket */
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) != 0) {
        perror("ceiling: epoll_ctl");
        return 1;
    }
    for (;;) {
        n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("ceiling: epoll_wait");
            return 1;
        }
        for (i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL)
                accept_one(lfd);
            else
                conn_event(evs[i].data.ptr, evs[i].events);
        }
    }
}
