/* SPDX-License-Identifier: MIT */
/*
 * test_watcher.c - unit tests of the watcher (watcher.c), the thread that
 * cancels a running job's token when its FastCGI connection says the client
 * is gone.  First proto_classify() (proto.c) on its own: how the bytes the
 * watcher peeks at on a connection are read (a record begun, an
 * FCGI_ABORT_REQUEST for the request, anything else).  Then the thread itself against real sockets:
 * socketpairs stand for the front end's connection, and the test plays the
 * front end (close, half-close, TCP reset, ABORT_REQUEST whole or in two
 * halves, stray bytes), checks that the right token is cancelled with the
 * right reason within a bound, or is not cancelled, that an ABORT is
 * consumed and nothing else is, that stray bytes do not make the thread
 * spin, and that deadlines, disarm, re-arm and many slots at once behave;
 * the slow instant (one count per job) and watcher_jobs(), what
 * /status?full lists.
 * Every wait is bounded (fc_token_wait() with a limit); CUnit assertions are
 * made on the main thread only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <fastcgi.h>

#include "fcgi_cancel.h"
#include "log.h"
#include "proto.h"
#include "status.h"
#include "token.h"
#include "util.h"
#include "watcher.h"
#include "unit.h"

/* Arm without probes: these tests are about the connection and deadlines. */
#define ARM(w, slot, fd_, id, tok_, deadline) \
    watcher_arm((w), (slot), &(struct watch){ .fd = (fd_), .reqid = (id), \
        .tok = (tok_), .deadline_ns = (deadline) })

/* Arm a pooled connection (struct watch): conn is its number. */
#define ARM_POOLED(w, slot, fd_, id, tok_, conn_) \
    watcher_arm((w), (slot), &(struct watch){ .fd = (fd_), .reqid = (id), \
        .tok = (tok_), .conn = (conn_), .pooled = 1 })

#define MS          1000000ull      /* nanoseconds in a millisecond */
#define NPAIRS      16
#define REQID       1

/* Sleep ms milliseconds; used for pacing, never as a check. */
static void
nap_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Return the process CPU time in milliseconds, all threads included. */
static double
cpu_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Fill an 8-byte FastCGI record header. */
static void
record_header(unsigned char *h, int type, int reqid, int clen, int plen)
{
    h[0] = FCGI_VERSION_1;
    h[1] = (unsigned char)type;
    h[2] = (unsigned char)(reqid >> 8);
    h[3] = (unsigned char)reqid;
    h[4] = (unsigned char)(clen >> 8);
    h[5] = (unsigned char)clen;
    h[6] = (unsigned char)plen;
    h[7] = 0;
}

/* Write all len bytes of p to fd; return 0 or -1. */
static int
write_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    ssize_t     n;

    while (len > 0) {
        if ((n = send(fd, c, len, MSG_NOSIGNAL)) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

/* A watched connection: sv[0] is armed (the server's), sv[1] the peer. */
struct conn {
    int          sv[2];
    fc_token    *tok;
};

/* Open a socketpair and a token for it; return 0 or -1. */
static int
conn_open(struct conn *c)
{
    c->tok = NULL;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, c->sv) != 0)
        return -1;
    if ((c->tok = token_new(NULL)) == NULL) {
        close(c->sv[0]);
        close(c->sv[1]);
        return -1;
    }
    return 0;
}

/* Close what is still open of c and drop its token. */
static void
conn_close(struct conn *c)
{
    if (c->sv[0] >= 0)
        close(c->sv[0]);
    if (c->sv[1] >= 0)
        close(c->sv[1]);
    c->sv[0] = c->sv[1] = -1;
    token_unref(c->tok);
    c->tok = NULL;
}

/* Close the peer's end, as a front end that drops the connection. */
static void
conn_close_peer(struct conn *c)
{
    close(c->sv[1]);
    c->sv[1] = -1;
}

/* Return a watcher with n slots, failing the test if there is none. */
static struct watcher *
new_watcher(int n)
{
    struct watcher *w;
    char           *cause = NULL;

    if ((w = watcher_new(n, &cause)) == NULL) {
        fprintf(stderr, "watcher_new: %s\n", cause != NULL ? cause : "?");
        free(cause);
    }
    return w;
}

/*
 * Wait up to ms for tok to be cancelled; return the milliseconds from
 * since_ns to the cancel, or -1 if it was not cancelled in time.
 */
static double
cancelled_within(fc_token *tok, long ms, uint64_t since_ns)
{
    if (!fc_token_wait(tok, ms))
        return -1;
    return (double)(token_cancel_ns(tok) - since_ns) / 1e6;
}

/* Return 1 if fd has no byte waiting (recv would block), else 0. */
static int
nothing_waiting(int fd)
{
    char    b;
    ssize_t r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* ---- proto_classify ------------------------------------------------ */

/* No bytes yet: wait for more. */
static void
test_classify_empty(void)
{
    unsigned char b[8];
    size_t        consume = 99;

    record_header(b, FCGI_ABORT_REQUEST, REQID, 0, 0);
    CU_ASSERT_EQUAL(proto_classify(b, 0, REQID, &consume), PROTO_CLASS_MORE);
    CU_ASSERT_EQUAL(consume, 0);
}

/* A header cut anywhere before its 8th byte: wait for more. */
static void
test_classify_partial_header(void)
{
    unsigned char b[8];
    size_t        len, consume;
    int           bad = 0;

    record_header(b, FCGI_ABORT_REQUEST, REQID, 0, 0);
    for (len = 1; len < 8; len++) {
        consume = 99;
        if (proto_classify(b, len, REQID, &consume) != PROTO_CLASS_MORE ||
            consume != 0)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* A first byte that is not FastCGI version 1: stray, from one byte on. */
static void
test_classify_wrong_version(void)
{
    static const unsigned char versions[] = { 0, 2, 0xff, 'G' };
    unsigned char              b[8];
    size_t                     i, consume;

    for (i = 0; i < sizeof versions; i++) {
        record_header(b, FCGI_ABORT_REQUEST, REQID, 0, 0);
        b[0] = versions[i];
        consume = 99;
        CU_ASSERT_EQUAL(proto_classify(b, 1, REQID, &consume), PROTO_CLASS_STRAY);
        CU_ASSERT_EQUAL(proto_classify(b, 8, REQID, &consume), PROTO_CLASS_STRAY);
        CU_ASSERT_EQUAL(consume, 0);
    }
}

/* ABORT for the request: the whole record, content and padding, is consumed. */
static void
test_classify_abort(void)
{
    unsigned char b[8 + 300 + 255 + 16];
    size_t        consume;

    memset(b, 0, sizeof b);
    record_header(b, FCGI_ABORT_REQUEST, REQID, 0, 0);
    consume = 0;
    CU_ASSERT_EQUAL(proto_classify(b, 8, REQID, &consume), PROTO_CLASS_ABORT);
    CU_ASSERT_EQUAL(consume, 8);
    /* Followed by the next record: only the ABORT is consumed. */
    record_header(b + 8, FCGI_BEGIN_REQUEST, 2, 8, 0);
    CU_ASSERT_EQUAL(proto_classify(b, 16, REQID, &consume), PROTO_CLASS_ABORT);
    CU_ASSERT_EQUAL(consume, 8);

    record_header(b, FCGI_ABORT_REQUEST, REQID, 5, 3);
    CU_ASSERT_EQUAL(proto_classify(b, 16, REQID, &consume), PROTO_CLASS_ABORT);
    CU_ASSERT_EQUAL(consume, 16);
    CU_ASSERT_EQUAL(proto_classify(b, 20, REQID, &consume), PROTO_CLASS_ABORT);
    CU_ASSERT_EQUAL(consume, 16);

    /* A two-byte content length and the largest padding. */
    record_header(b, FCGI_ABORT_REQUEST, REQID, 300, 255);
    CU_ASSERT_EQUAL(proto_classify(b, 8 + 300 + 255, REQID, &consume),
        PROTO_CLASS_ABORT);
    CU_ASSERT_EQUAL(consume, 8 + 300 + 255);

    /* A request id that needs both bytes. */
    record_header(b, FCGI_ABORT_REQUEST, 0x1234, 0, 0);
    CU_ASSERT_EQUAL(proto_classify(b, 8, 0x1234, &consume), PROTO_CLASS_ABORT);
    CU_ASSERT_EQUAL(consume, 8);
}

/* ABORT for another request id: stray, nothing consumed. */
static void
test_classify_abort_wrong_id(void)
{
    unsigned char b[8];
    size_t        consume;

    record_header(b, FCGI_ABORT_REQUEST, 2, 0, 0);
    consume = 99;
    CU_ASSERT_EQUAL(proto_classify(b, 8, REQID, &consume), PROTO_CLASS_STRAY);
    CU_ASSERT_EQUAL(consume, 0);
    /* Same low byte, different high byte, and the other way round. */
    record_header(b, FCGI_ABORT_REQUEST, 0x0101, 0, 0);
    CU_ASSERT_EQUAL(proto_classify(b, 8, 0x0001, &consume), PROTO_CLASS_STRAY);
    CU_ASSERT_EQUAL(proto_classify(b, 8, 0x0100, &consume), PROTO_CLASS_STRAY);
    CU_ASSERT_EQUAL(proto_classify(b, 8, 0x0101, &consume), PROTO_CLASS_ABORT);
    record_header(b, FCGI_ABORT_REQUEST, 0, 0, 0);     /* management id */
    CU_ASSERT_EQUAL(proto_classify(b, 8, REQID, &consume), PROTO_CLASS_STRAY);
}

/* An ABORT whose content or padding has not all arrived: wait for more. */
static void
test_classify_abort_split(void)
{
    unsigned char b[8 + 5 + 3];
    size_t        len, consume;
    int           bad = 0;

    memset(b, 0, sizeof b);
    record_header(b, FCGI_ABORT_REQUEST, REQID, 5, 3);
    for (len = 8; len < sizeof b; len++) {
        consume = 99;
        if (proto_classify(b, len, REQID, &consume) != PROTO_CLASS_MORE ||
            consume != 0)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(proto_classify(b, sizeof b, REQID, &consume),
        PROTO_CLASS_ABORT);
    CU_ASSERT_EQUAL(consume, sizeof b);
}

/* Any other record type, even for the request's id: stray. */
static void
test_classify_other_types(void)
{
    static const int types[] = {
        FCGI_BEGIN_REQUEST, FCGI_END_REQUEST, FCGI_PARAMS, FCGI_STDIN,
        FCGI_STDOUT, FCGI_STDERR, FCGI_DATA, FCGI_GET_VALUES,
        FCGI_GET_VALUES_RESULT, FCGI_UNKNOWN_TYPE, 0, 200
    };
    unsigned char b[16];
    size_t        i, consume;
    int           bad = 0;

    memset(b, 0, sizeof b);
    for (i = 0; i < sizeof types / sizeof types[0]; i++) {
        record_header(b, types[i], REQID, 0, 0);
        consume = 99;
        if (proto_classify(b, 8, REQID, &consume) != PROTO_CLASS_STRAY ||
            consume != 0)
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* ---- the watcher thread -------------------------------------------- */

/* The peer closes: FC_CLIENT_GONE within 1 s. */
static void
test_peer_close(void)
{
    struct watcher *w = new_watcher(1);
    struct conn     c;
    uint64_t        t0;
    double          ms;

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&c), 0);
    CU_ASSERT_EQUAL(ARM(w, 0, c.sv[0], REQID, c.tok, 0), 0);
    CU_ASSERT_EQUAL(fc_token_cancelled(c.tok), 0);
    t0 = now_ns();
    conn_close_peer(&c);
    ms = cancelled_within(c.tok, 1000, t0);
    printf("\n    close -> cancel %.3f ms ", ms);
    CU_ASSERT(ms >= 0 && ms < 1000);
    CU_ASSERT_EQUAL(fc_token_reason(c.tok), FC_CLIENT_GONE);
    watcher_disarm(w, 0);
    conn_close(&c);
    watcher_free(w);
}

/* The peer half-closes (shutdown SHUT_WR): FC_CLIENT_GONE. */
static void
test_peer_half_close(void)
{
    struct watcher *w = new_watcher(1);
    struct conn     c;
    uint64_t        t0;
    double          ms;

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&c), 0);
    CU_ASSERT_EQUAL(ARM(w, 0, c.sv[0], REQID, c.tok, 0), 0);
    t0 = now_ns();
    CU_ASSERT_EQUAL(shutdown(c.sv[1], SHUT_WR), 0);
    ms = cancelled_within(c.tok, 1000, t0);
    printf("\n    half-close -> cancel %.3f ms ", ms);
    CU_ASSERT(ms >= 0 && ms < 1000);
    CU_ASSERT_EQUAL(fc_token_reason(c.tok), FC_CLIENT_GONE);
    watcher_disarm(w, 0);
    conn_close(&c);
    watcher_free(w);
}

/* Return a connected TCP loopback pair in fds: [0] accepted, [1] client. */
static int
tcp_pair(int fds[2])
{
    struct sockaddr_in sa;
    socklen_t          len = sizeof sa;
    int                l, one = 1;

    fds[0] = fds[1] = -1;
    if ((l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return -1;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;                /* the kernel picks */
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&sa, &len) != 0 ||
        (fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(fds[1], (struct sockaddr *)&sa, sizeof sa) != 0 ||
        (fds[0] = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0) {
        close(l);
        if (fds[1] >= 0)
            close(fds[1]);
        return -1;
    }
    close(l);
    return 0;
}

/* The peer resets the TCP connection: FC_CLIENT_GONE. */
static void
test_peer_reset(void)
{
    struct watcher *w = new_watcher(1);
    struct linger   lg = { 1, 0 };
    fc_token       *tok = token_new(NULL);
    uint64_t        t0;
    double          ms;
    int             fds[2];

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tok);
    CU_ASSERT_EQUAL_FATAL(tcp_pair(fds), 0);
    CU_ASSERT_EQUAL(ARM(w, 0, fds[0], REQID, tok, 0), 0);
    CU_ASSERT_EQUAL(setsockopt(fds[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg),
        0);
    t0 = now_ns();
    close(fds[1]);                  /* linger {1, 0}: sends RST */
    ms = cancelled_within(tok, 1000, t0);
    printf("\n    reset -> cancel %.3f ms ", ms);
    CU_ASSERT(ms >= 0 && ms < 1000);
    CU_ASSERT_EQUAL(fc_token_reason(tok), FC_CLIENT_GONE);
    watcher_disarm(w, 0);
    close(fds[0]);
    token_unref(tok);
    watcher_free(w);
}

/* ABORT_REQUEST for the request: FC_ABORTED, and the record is consumed. */
static void
test_abort_request(void)
{
    struct watcher *w = new_watcher(1);
    struct conn     c;
    unsigned char   rec[8];
    uint64_t        t0;
    double          ms;
    char            b;

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&c), 0);
    CU_ASSERT_EQUAL(ARM(w, 0, c.sv[0], 7, c.tok, 0), 0);
    record_header(rec, FCGI_ABORT_REQUEST, 7, 0, 0);
    t0 = now_ns();
    CU_ASSERT_EQUAL(write_all(c.sv[1], rec, sizeof rec), 0);
    ms = cancelled_within(c.tok, 1000, t0);
    printf("\n    ABORT_REQUEST -> cancel %.3f ms ", ms);
    CU_ASSERT(ms >= 0 && ms < 1000);
    CU_ASSERT_EQUAL(fc_token_reason(c.tok), FC_ABORTED);
    watcher_disarm(w, 0);
    errno = 0;
    CU_ASSERT_EQUAL(recv(c.sv[0], &b, 1, MSG_DONTWAIT), -1);
    CU_ASSERT(errno == EAGAIN || errno == EWOULDBLOCK);
    conn_close(&c);
    watcher_free(w);
}

/* ABORT followed by the next record: only the ABORT is consumed. */
static void
test_abort_then_next_record(void)
{
    struct watcher *w = new_watcher(1);
    struct conn     c;
    unsigned char   rec[16 + 8], got[sizeof rec];
    ssize_t         n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&c), 0);
    CU_ASSERT_EQUAL(ARM(w, 0, c.sv[0], REQID, c.tok, 0), 0);
    memset(rec, 0, sizeof rec);
    record_header(rec, FCGI_ABORT_REQUEST, REQID, 0, 0);
    record_header(rec + 8, FCGI_BEGIN_REQUEST, 2, 8, 0);
    rec[8 + 8 + 1] = FCGI_RESPONDER;
    CU_ASSERT_EQUAL(write_all(c.sv[1], rec, sizeof rec), 0);
    CU_ASSERT(cancelled_within(c.tok, 1000, now_ns()) >= 0);
    CU_ASSERT_EQUAL(fc_token_reason(c.tok), FC_ABORTED);
    watcher_disarm(w, 0);
    n = recv(c.sv[0], got, sizeof got, MSG_DONTWAIT);
    CU_ASSERT_EQUAL(n, 16);
    CU_ASSERT(n == 16 && memcmp(got, rec + 8, 16) == 0);
    conn_close(&c);
    watcher_free(w);
}

/* ABORT for another id: not cancelled, and the bytes are left in place. */
static void
test_abort_wrong_id(void)
{
    struct watcher *w = new_watcher(1);
    struct conn     c;
    unsigned char   rec[8], got[16];
    ssize_t         n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&c), 0);
    CU_ASSERT_EQUAL(ARM(w, 0, c.sv[0], REQID, c.tok, 0), 0);
    record_header(rec, FCGI_ABORT_REQUEST, REQID + 1, 0, 0);
    CU_ASSERT_EQUAL(write_all(c.sv[1], rec, sizeof rec), 0);
    CU_ASSERT_EQUAL(fc_token_wait(c.tok, 100), 0);
    n = recv(c.sv[0], got, sizeof got, MSG_PEEK | MSG_DONTWAIT);
    CU_ASSERT_EQUAL(n, 8);
    CU_ASSERT(n == 8 && memcmp(got, rec, 8) == 0);
    /* Still watched: a close after that is noticed. */
    conn_close_peer(&c);
    CU_ASSERT(cancelled_within(c.tok, 1000, now_ns()) >= 0);
    CU_ASSERT_EQUAL(fc_token_reason(c.tok), FC_CLIENT_GONE);
    watcher_disarm(w, 0);
    conn_close(&c);
    watcher_free(w);
}

/* Stray bytes never cancel, and the thread does not spin on them. */
static void
test_stray_bytes_no_spin(void)
{
    static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    struct watcher   *w = new_watcher(1);
    struct conn       c;
    double            cpu0, cpu;
    char              got[sizeof junk];
    ssize_t           n;

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&c), 0);
    CU_ASSERT_EQUAL(ARM(w, 0, c.sv[0], REQID, c.tok, 0), 0);
    CU_ASSERT_EQUAL(write_all(c.sv[1], junk, sizeof junk - 1), 0);
    cpu0 = cpu_ms();
    CU_ASSERT_EQUAL(fc_token_wait(c.tok, 200), 0);
    cpu = cpu_ms() - cpu0;
    printf("\n    CPU over 200 ms with stray bytes waiting: %.3f ms ", cpu);
    CU_ASSERT(cpu < 50.0);
    n = recv(c.sv[0], got, sizeof got, MSG_PEEK | MSG_DONTWAIT);
    CU_ASSERT_EQUAL(n, (ssize_t)(sizeof junk - 1));
    watcher_disarm(w, 0);
    conn_close(&c);
    watcher_free(w);
}

/* An ABORT written in two halves 20 ms apart: FC_ABORTED after the second. */
static void
test_abort_in_two_halves(void)
{
    struct watcher *w = new_watcher(1);
    struct conn     c;
    unsigned char   rec[8];

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&c), 0);
    CU_ASSERT_EQUAL(ARM(w, 0, c.sv[0], REQID, c.tok, 0), 0);
    record_header(rec, FCGI_ABORT_REQUEST, REQID, 0, 0);
    CU_ASSERT_EQUAL(write_all(c.sv[1], rec, 4), 0);
    CU_ASSERT_EQUAL(fc_token_wait(c.tok, 20), 0);       /* not on half */
    CU_ASSERT_EQUAL(write_all(c.sv[1], rec + 4, 4), 0);
    CU_ASSERT(cancelled_within(c.tok, 1000, now_ns()) >= 0);
    CU_ASSERT_EQUAL(fc_token_reason(c.tok), FC_ABORTED);
    watcher_disarm(w, 0);
    CU_ASSERT(nothing_waiting(c.sv[0]));
    conn_close(&c);
    watcher_free(w);
}

/* An ABORT with content, in three pieces: cancelled only when all is there. */
static void
test_abort_content_in_pieces(void)
{
    struct watcher *w = new_watcher(1);
    struct conn     c;
    unsigned char   rec[8 + 4 + 2];

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&c), 0);
    CU_ASSERT_EQUAL(ARM(w, 0, c.sv[0], REQID, c.tok, 0), 0);
    memset(rec, 0, sizeof rec);
    record_header(rec, FCGI_ABORT_REQUEST, REQID, 4, 2);
    CU_ASSERT_EQUAL(write_all(c.sv[1], rec, 5), 0);     /* part header */
    CU_ASSERT_EQUAL(fc_token_wait(c.tok, 20), 0);
    CU_ASSERT_EQUAL(write_all(c.sv[1], rec + 5, 6), 0); /* part content */
    CU_ASSERT_EQUAL(fc_token_wait(c.tok, 20), 0);
    CU_ASSERT_EQUAL(write_all(c.sv[1], rec + 11, 3), 0);
    CU_ASSERT(cancelled_within(c.tok, 1000, now_ns()) >= 0);
    CU_ASSERT_EQUAL(fc_token_reason(c.tok), FC_ABORTED);
    watcher_disarm(w, 0);
    CU_ASSERT(nothing_waiting(c.sv[0]));
    conn_close(&c);
    watcher_free(w);
}

/* A deadline 50 ms ahead: FC_DEADLINE between 50 and 500 ms. */
static void
test_deadline(void)
{
    struct watcher *w = new_watcher(1);
    struct conn     c;
    uint64_t        t0;
    double          ms;

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&c), 0);
    t0 = now_ns();
    CU_ASSERT_EQUAL(ARM(w, 0, c.sv[0], REQID, c.tok, t0 + 50 * MS),
        0);
    ms = cancelled_within(c.tok, 2000, t0);
    printf("\n    deadline of 50 ms -> cancel at %.3f ms ", ms);
    CU_ASSERT(ms >= 50.0 && ms < 500.0);
    CU_ASSERT_EQUAL(fc_token_reason(c.tok), FC_DEADLINE);
    watcher_disarm(w, 0);
    conn_close(&c);
    watcher_free(w);
}

/* A deadline already past when armed cancels at once. */
static void
test_deadline_past(void)
{
    struct watcher *w = new_watcher(1);
    struct conn     c;
    uint64_t        t0;
    double          ms;

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&c), 0);
    t0 = now_ns();
    CU_ASSERT_EQUAL(ARM(w, 0, c.sv[0], REQID, c.tok, t0 - 10 * MS), 0);
    ms = cancelled_within(c.tok, 1000, t0);
    CU_ASSERT(ms >= -10.0 && ms < 500.0);
    CU_ASSERT_EQUAL(fc_token_reason(c.tok), FC_DEADLINE);
    watcher_disarm(w, 0);
    conn_close(&c);
    watcher_free(w);
}

/* Deadlines of several slots fire in their own order, each on time. */
static void
test_deadlines_several(void)
{
    static const long  after[] = { 300, 60, 150, 0 };  /* 0: none */
    struct watcher    *w = new_watcher(4);
    struct conn        c[4];
    uint64_t           t0;
    double             ms[4];
    int                i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    t0 = now_ns();
    for (i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL_FATAL(conn_open(&c[i]), 0);
        CU_ASSERT_EQUAL(ARM(w, i, c[i].sv[0], REQID, c[i].tok,
            after[i] ? t0 + (uint64_t)after[i] * MS : 0), 0);
    }
    for (i = 0; i < 3; i++)
        ms[i] = cancelled_within(c[i].tok, 2000, t0);
    printf("\n    deadlines 300/60/150 ms -> %.1f/%.1f/%.1f ms ", ms[0], ms[1],
        ms[2]);
    for (i = 0; i < 3; i++) {
        CU_ASSERT(ms[i] >= (double)after[i] && ms[i] < after[i] + 450.0);
        CU_ASSERT_EQUAL(fc_token_reason(c[i].tok), FC_DEADLINE);
    }
    /* In deadline order, not in slot order: the timer follows the earliest. */
    CU_ASSERT(ms[1] < ms[2] && ms[2] < ms[0]);
    CU_ASSERT_EQUAL(fc_token_cancelled(c[3].tok), 0);
    for (i = 0; i < 4; i++) {
        watcher_disarm(w, i);
        conn_close(&c[i]);
    }
    watcher_free(w);
}

/* A disarmed slot's earlier deadline does not stop a later one firing. */
static void
test_deadline_after_disarmed_one(void)
{
    struct watcher *w = new_watcher(2);
    struct conn     a, b;
    uint64_t        t0;
    double          ms;

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&a), 0);
    CU_ASSERT_EQUAL_FATAL(conn_open(&b), 0);
    t0 = now_ns();
    CU_ASSERT_EQUAL(ARM(w, 0, a.sv[0], REQID, a.tok, t0 + 60 * MS), 0);
    watcher_disarm(w, 0);
    CU_ASSERT_EQUAL(ARM(w, 1, b.sv[0], REQID, b.tok, t0 + 150 * MS),
        0);
    ms = cancelled_within(b.tok, 2000, t0);
    CU_ASSERT(ms >= 150.0 && ms < 600.0);
    CU_ASSERT_EQUAL(fc_token_reason(b.tok), FC_DEADLINE);
    CU_ASSERT_EQUAL(fc_token_cancelled(a.tok), 0);
    watcher_disarm(w, 1);
    conn_close(&a);
    conn_close(&b);
    watcher_free(w);
}

/* Disarmed before its deadline: never cancelled. */
static void
test_disarm_before_deadline(void)
{
    struct watcher *w = new_watcher(1);
    struct conn     c;

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&c), 0);
    CU_ASSERT_EQUAL(ARM(w, 0, c.sv[0], REQID, c.tok,
        now_ns() + 50 * MS), 0);
    watcher_disarm(w, 0);
    CU_ASSERT_EQUAL(fc_token_wait(c.tok, 150), 0);
    conn_close(&c);
    watcher_free(w);
}

/* Disarmed, then the peer closes: not cancelled. */
static void
test_disarm_then_close(void)
{
    struct watcher *w = new_watcher(1);
    struct conn     c;
    unsigned char   rec[8];

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&c), 0);
    CU_ASSERT_EQUAL(ARM(w, 0, c.sv[0], REQID, c.tok, 0), 0);
    watcher_disarm(w, 0);
    record_header(rec, FCGI_ABORT_REQUEST, REQID, 0, 0);
    CU_ASSERT_EQUAL(write_all(c.sv[1], rec, sizeof rec), 0);
    conn_close_peer(&c);
    CU_ASSERT_EQUAL(fc_token_wait(c.tok, 100), 0);
    /* The ABORT is left for libfcgi to read. */
    CU_ASSERT_EQUAL(recv(c.sv[0], rec, sizeof rec, MSG_DONTWAIT), 8);
    conn_close(&c);
    watcher_free(w);
}

/* Re-armed after a disarm, the slot serves its new token only. */
static void
test_rearm_new_token(void)
{
    struct watcher *w = new_watcher(1);
    struct conn     a, b;
    fc_token       *next;

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&a), 0);
    CU_ASSERT_EQUAL_FATAL(conn_open(&b), 0);

    /* Another connection on the same slot. */
    CU_ASSERT_EQUAL(ARM(w, 0, a.sv[0], REQID, a.tok, 0), 0);
    watcher_disarm(w, 0);
    CU_ASSERT_EQUAL(ARM(w, 0, b.sv[0], 2, b.tok, 0), 0);
    conn_close_peer(&a);
    CU_ASSERT_EQUAL(fc_token_wait(a.tok, 100), 0);
    CU_ASSERT_EQUAL(fc_token_cancelled(b.tok), 0);

    /* The next request of a kept connection: same fd, new token. */
    watcher_disarm(w, 0);
    next = token_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(next);
    CU_ASSERT_EQUAL(ARM(w, 0, b.sv[0], 3, next, 0), 0);
    conn_close_peer(&b);
    CU_ASSERT(cancelled_within(next, 1000, now_ns()) >= 0);
    CU_ASSERT_EQUAL(fc_token_reason(next), FC_CLIENT_GONE);
    CU_ASSERT_EQUAL(fc_token_cancelled(b.tok), 0);
    CU_ASSERT_EQUAL(fc_token_cancelled(a.tok), 0);
    watcher_disarm(w, 0);
    token_unref(next);
    conn_close(&a);
    conn_close(&b);
    watcher_free(w);
}

/* Re-armed after its connection was found gone, the slot works again. */
static void
test_rearm_after_cancel(void)
{
    struct watcher *w = new_watcher(1);
    struct conn     a, b;
    unsigned char   rec[8];

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&a), 0);
    CU_ASSERT_EQUAL_FATAL(conn_open(&b), 0);
    CU_ASSERT_EQUAL(ARM(w, 0, a.sv[0], REQID, a.tok, 0), 0);
    conn_close_peer(&a);
    CU_ASSERT(cancelled_within(a.tok, 1000, now_ns()) >= 0);
    watcher_disarm(w, 0);

    CU_ASSERT_EQUAL(ARM(w, 0, b.sv[0], 9, b.tok, 0), 0);
    record_header(rec, FCGI_ABORT_REQUEST, 9, 0, 0);
    CU_ASSERT_EQUAL(write_all(b.sv[1], rec, sizeof rec), 0);
    CU_ASSERT(cancelled_within(b.tok, 1000, now_ns()) >= 0);
    CU_ASSERT_EQUAL(fc_token_reason(b.tok), FC_ABORTED);
    CU_ASSERT_EQUAL(fc_token_reason(a.tok), FC_CLIENT_GONE);
    watcher_disarm(w, 0);
    conn_close(&a);
    conn_close(&b);
    watcher_free(w);
}

/* 16 slots armed at once; closing every other peer cancels exactly those. */
static void
test_many_slots(void)
{
    struct watcher *w = new_watcher(NPAIRS);
    struct conn     c[NPAIRS];
    uint64_t        t0;
    int             i, late = 0, wrong = 0, extra = 0;

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    for (i = 0; i < NPAIRS; i++) {
        CU_ASSERT_EQUAL_FATAL(conn_open(&c[i]), 0);
        CU_ASSERT_EQUAL(ARM(w, i, c[i].sv[0], i + 1, c[i].tok, 0), 0);
    }
    t0 = now_ns();
    for (i = 1; i < NPAIRS; i += 2)
        conn_close_peer(&c[i]);
    for (i = 1; i < NPAIRS; i += 2) {
        if (cancelled_within(c[i].tok, 1000, t0) < 0)
            late++;
        else if (fc_token_reason(c[i].tok) != FC_CLIENT_GONE)
            wrong++;
    }
    CU_ASSERT_EQUAL(fc_token_wait(c[0].tok, 100), 0);
    for (i = 0; i < NPAIRS; i += 2)
        extra += fc_token_cancelled(c[i].tok);
    CU_ASSERT_EQUAL(late, 0);
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(extra, 0);
    for (i = 0; i < NPAIRS; i++) {
        watcher_disarm(w, i);
        conn_close(&c[i]);
    }
    watcher_free(w);
}

/* The thread a cancel callback ran on. */
struct seen {
    _Atomic int      calls;
    pthread_t        thread;
};

/* Record the thread. */
static void
seen_cb(fc_token *tok, enum fc_reason reason, void *arg)
{
    struct seen *s = arg;

    (void)tok;
    (void)reason;
    s->thread = pthread_self();
    atomic_fetch_add(&s->calls, 1);
}

/* The token's callbacks run once, on the watcher's thread, not ours. */
static void
test_callback_on_watcher_thread(void)
{
    struct watcher *w = new_watcher(1);
    struct conn     c;
    struct seen     s = { 0 };

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&c), 0);
    CU_ASSERT(fc_token_on_cancel(c.tok, seen_cb, &s) > 0);
    CU_ASSERT_EQUAL(ARM(w, 0, c.sv[0], REQID, c.tok,
        now_ns() + 100 * MS), 0);
    conn_close_peer(&c);
    CU_ASSERT(cancelled_within(c.tok, 1000, now_ns()) >= 0);
    /* The deadline passes as well: the first cancel won, nothing reruns. */
    CU_ASSERT_EQUAL(fc_token_wait(c.tok, 0), 1);
    nap_ms(150);
    watcher_disarm(w, 0);
    CU_ASSERT_EQUAL(atomic_load(&s.calls), 1);
    CU_ASSERT(!pthread_equal(s.thread, pthread_self()));
    CU_ASSERT_EQUAL(fc_token_reason(c.tok), FC_CLIENT_GONE);
    conn_close(&c);
    watcher_free(w);
}

/* An fd that epoll refuses: arm returns -1, and the deadline still applies. */
static void
test_unwatchable_fd_deadline(void)
{
    struct watcher *w;
    fc_token       *tok;
    uint64_t        t0;
    double          ms;
    int             fd, saved = log_level;

    /* The refusal is logged as a warning; quiet before the thread starts. */
    log_level = LOG_LEVEL_ERROR;
    w = new_watcher(1);
    tok = token_new(NULL);
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CU_ASSERT_FATAL(w != NULL && tok != NULL && fd >= 0);
    t0 = now_ns();
    CU_ASSERT_EQUAL(ARM(w, 0, fd, REQID, tok, t0 + 50 * MS), -1);
    ms = cancelled_within(tok, 2000, t0);
    CU_ASSERT(ms >= 50.0 && ms < 500.0);
    CU_ASSERT_EQUAL(fc_token_reason(tok), FC_DEADLINE);
    watcher_disarm(w, 0);
    watcher_free(w);                /* joins the thread */
    log_level = saved;
    close(fd);
    token_unref(tok);
}

/* A watcher with nothing armed starts and stops cleanly, many times. */
static void
test_new_free(void)
{
    int i, ok = 0;

    for (i = 0; i < 20; i++) {
        struct watcher *w = new_watcher(1 + i);

        if (w != NULL) {
            ok++;
            watcher_free(w);
        }
    }
    CU_ASSERT_EQUAL(ok, 20);
    watcher_free(NULL);
}

/* What watcher_jobs() reported, copied. */
struct seen_job {
    uint64_t        id;
    char            route[32], method[16], client[32];
    uint64_t        elapsed_ns;
    enum fc_reason  reason;
};

struct seen_jobs {
    struct seen_job j[4];
    int             n;
};

/* A watcher_job_cb: copy the job into the struct seen_jobs arg. */
static void
see_job(void *arg, const struct watcher_job *job)
{
    struct seen_jobs *s = arg;
    struct seen_job  *j;

    if (s->n >= 4)
        return;
    j = &s->j[s->n++];
    j->id = job->id;
    snprintf(j->route, sizeof j->route, "%s", job->route ? job->route : "-");
    snprintf(j->method, sizeof j->method, "%s",
        job->method ? job->method : "-");
    snprintf(j->client, sizeof j->client, "%s",
        job->client ? job->client : "-");
    j->elapsed_ns = job->elapsed_ns;
    j->reason = job->reason;
}

/* Is stats.slow at least 1 yet? */
static int
slow_counted(void)
{
    return atomic_load(&stats.slow) >= 1;
}

/*
 * A job past its slow instant is counted once (and gets its line); the
 * jobs in flight are listed with their route, method, client, elapsed
 * time and cancel reason; only the cancelled one is a straggler.
 */
static void
test_slow_and_jobs(void)
{
    struct watcher *w = new_watcher(2);
    struct conn     a, b;
    struct seen_jobs seen = { .n = 0 };
    uint64_t        t0;
    int             i;

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&a), 0);
    CU_ASSERT_EQUAL_FATAL(conn_open(&b), 0);
    stats_init(2);
    t0 = now_ns();
    CU_ASSERT_EQUAL(watcher_arm(w, 0, &(struct watch){ .fd = a.sv[0],
        .reqid = REQID, .id = 7, .tok = a.tok, .route = "/r",
        .method = "GET", .client = "10.0.0.1", .start_ns = t0,
        .slow_ns = t0 + 50 * MS }), 0);
    CU_ASSERT_EQUAL(watcher_arm(w, 1, &(struct watch){ .fd = b.sv[0],
        .reqid = REQID, .id = 8, .tok = b.tok, .route = "/q",
        .method = "POST", .start_ns = t0 }), 0);
    token_cancel(b.tok, FC_ABORTED);
    for (i = 0; i < 200 && !slow_counted(); i++)
        nap_ms(10);
    CU_ASSERT_EQUAL(atomic_load(&stats.slow), 1);
    CU_ASSERT(now_ns() - t0 >= 50 * MS);
    nap_ms(100);                            /* once, not at every tick */
    CU_ASSERT_EQUAL(atomic_load(&stats.slow), 1);
    CU_ASSERT_FALSE(fc_token_cancelled(a.tok));     /* slow goes on */

    CU_ASSERT_EQUAL(watcher_jobs(w, 0, see_job, &seen), 2);
    CU_ASSERT_EQUAL_FATAL(seen.n, 2);
    CU_ASSERT_EQUAL(seen.j[0].id, 7);
    CU_ASSERT_STRING_EQUAL(seen.j[0].route, "/r");
    CU_ASSERT_STRING_EQUAL(seen.j[0].method, "GET");
    CU_ASSERT_STRING_EQUAL(seen.j[0].client, "10.0.0.1");
    CU_ASSERT(seen.j[0].elapsed_ns >= 150 * MS);
    CU_ASSERT_EQUAL(seen.j[0].reason, FC_REASON_NONE);
    CU_ASSERT_EQUAL(seen.j[1].id, 8);
    CU_ASSERT_STRING_EQUAL(seen.j[1].client, "-");
    CU_ASSERT_EQUAL(seen.j[1].reason, FC_ABORTED);
    seen.n = 0;
    CU_ASSERT_EQUAL(watcher_jobs(w, 1, see_job, &seen), 1);
    CU_ASSERT_EQUAL(seen.j[0].id, 8);
    CU_ASSERT_EQUAL(watcher_stragglers(w, NULL, NULL), 1);

    watcher_disarm(w, 0);
    watcher_disarm(w, 1);
    CU_ASSERT_EQUAL(watcher_jobs(w, 0, NULL, NULL), 0);
    conn_close(&a);
    conn_close(&b);
    watcher_free(w);
}

/* ---- pooled connections ------------------------------------------ */

/* A pooled connection's abort reaches the watcher through the poller's
 * watcher_poke(), which cancels on the caller's thread; the watcher's own
 * thread does not wake for its bytes while a slot is free. */
static void
test_pooled_poke(void)
{
    struct watcher *w = new_watcher(2);
    struct conn     c;
    unsigned char   rec[8];

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&c), 0);
    CU_ASSERT_EQUAL(ARM_POOLED(w, 0, c.sv[0], 7, c.tok, 1), 0);
    record_header(rec, FCGI_ABORT_REQUEST, 7, 0, 0);
    CU_ASSERT_EQUAL(write_all(c.sv[1], rec, sizeof rec), 0);
    CU_ASSERT_EQUAL(fc_token_wait(c.tok, 100), 0);
    CU_ASSERT_FALSE(nothing_waiting(c.sv[0]));
    watcher_poke(w, c.sv[0]);
    CU_ASSERT_TRUE(fc_token_cancelled(c.tok));
    CU_ASSERT_EQUAL(fc_token_reason(c.tok), FC_ABORTED);
    CU_ASSERT_TRUE(nothing_waiting(c.sv[0]));
    watcher_disarm(w, 0);
    conn_close(&c);
    watcher_free(w);
}

/* Bytes poked while no slot is armed with the connection (they came
 * between the worker's last read and the arm) are peeked at by the arm. */
static void
test_pooled_bytes_before_arm(void)
{
    struct watcher *w = new_watcher(2);
    struct conn     c;
    unsigned char   rec[8];
    fc_token       *next;

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&c), 0);
    CU_ASSERT_EQUAL(ARM_POOLED(w, 0, c.sv[0], 7, c.tok, 1), 0);
    watcher_disarm(w, 0);
    record_header(rec, FCGI_ABORT_REQUEST, 8, 0, 0);
    CU_ASSERT_EQUAL(write_all(c.sv[1], rec, sizeof rec), 0);
    watcher_poke(w, c.sv[0]);
    next = token_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(next);
    CU_ASSERT_EQUAL(ARM_POOLED(w, 0, c.sv[0], 8, next, 1), 0);
    CU_ASSERT_TRUE(fc_token_cancelled(next));
    CU_ASSERT_EQUAL(fc_token_reason(next), FC_ABORTED);
    CU_ASSERT_FALSE(fc_token_cancelled(c.tok));
    watcher_disarm(w, 0);
    token_unref(next);
    conn_close(&c);
    watcher_free(w);
}

/* When the arm of another job takes the last slot, no worker is left to
 * wait for events: the watcher watches the pooled connections' bytes
 * itself, and finds an abort that came before. */
static void
test_pooled_exhausted(void)
{
    struct watcher *w = new_watcher(2);
    struct conn     a, b;
    unsigned char   rec[8];

    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(conn_open(&a), 0);
    CU_ASSERT_EQUAL_FATAL(conn_open(&b), 0);
    CU_ASSERT_EQUAL(ARM_POOLED(w, 0, a.sv[0], 7, a.tok, 1), 0);
    record_header(rec, FCGI_ABORT_REQUEST, 7, 0, 0);
    CU_ASSERT_EQUAL(write_all(a.sv[1], rec, sizeof rec), 0);
    CU_ASSERT_EQUAL(fc_token_wait(a.tok, 100), 0);
    CU_ASSERT_EQUAL(ARM_POOLED(w, 1, b.sv[0], 7, b.tok, 2), 0);
    CU_ASSERT(cancelled_within(a.tok, 1000, now_ns()) >= 0);
    CU_ASSERT_EQUAL(fc_token_reason(a.tok), FC_ABORTED);
    CU_ASSERT_FALSE(fc_token_cancelled(b.tok));
    watcher_disarm(w, 0);
    watcher_disarm(w, 1);
    conn_close(&a);
    conn_close(&b);
    watcher_free(w);
}

static CU_TestInfo classify_tests[] = {
    { "empty", test_classify_empty },
    { "partial header", test_classify_partial_header },
    { "wrong version", test_classify_wrong_version },
    { "ABORT for the request", test_classify_abort },
    { "ABORT for another id", test_classify_abort_wrong_id },
    { "ABORT content split", test_classify_abort_split },
    { "other record types", test_classify_other_types },
    CU_TEST_INFO_NULL
};

static CU_TestInfo thread_tests[] = {
    { "start and stop", test_new_free },
    { "peer closes", test_peer_close },
    { "peer half-closes", test_peer_half_close },
    { "peer resets (TCP)", test_peer_reset },
    { "ABORT_REQUEST", test_abort_request },
    { "ABORT then the next record", test_abort_then_next_record },
    { "ABORT for another id", test_abort_wrong_id },
    { "stray bytes, no spin", test_stray_bytes_no_spin },
    { "ABORT in two halves", test_abort_in_two_halves },
    { "ABORT with content in pieces", test_abort_content_in_pieces },
    { "callback on the watcher thread", test_callback_on_watcher_thread },
    { "16 slots, every other peer closes", test_many_slots },
    CU_TEST_INFO_NULL
};

static CU_TestInfo pooled_tests[] = {
    { "an abort through watcher_poke()", test_pooled_poke },
    { "bytes poked before the arm", test_pooled_bytes_before_arm },
    { "every slot armed: the watcher sees bytes", test_pooled_exhausted },
    CU_TEST_INFO_NULL
};

static CU_TestInfo deadline_tests[] = {
    { "deadline", test_deadline },
    { "deadline already past", test_deadline_past },
    { "several deadlines", test_deadlines_several },
    { "deadline after a disarmed earlier one",
        test_deadline_after_disarmed_one },
    { "unwatchable fd, deadline applies", test_unwatchable_fd_deadline },
    { "disarm before the deadline", test_disarm_before_deadline },
    { "disarm then close", test_disarm_then_close },
    { "re-arm with a new token", test_rearm_new_token },
    { "re-arm after a cancel", test_rearm_after_cancel },
    { "slow instant, jobs in flight", test_slow_and_jobs },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "proto_classify", NULL, NULL, NULL, NULL, classify_tests },
    { "watcher thread", NULL, NULL, NULL, NULL, thread_tests },
    { "watcher deadlines and slots", NULL, NULL, NULL, NULL, deadline_tests },
    { "pooled connections", NULL, NULL, NULL, NULL, pooled_tests },
    CU_SUITE_INFO_NULL
};

int
main(void)
{
    return unit_run("test_watcher", suites, 60);
}
