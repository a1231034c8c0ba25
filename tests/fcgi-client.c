/* SPDX-License-Identifier: MIT */
/*
 * fcgi-client: a raw FastCGI client used by the fcgi-cancel test suite.
 *
 * It speaks the FastCGI wire protocol by hand (no libfcgi) so that tests
 * can drive the server exactly like a web server would, and also misbehave
 * on purpose: abort a request (FCGI_ABORT_REQUEST), close, half-close or
 * reset the connection after a delay, send oversized parameters, keep a
 * request incomplete, or replay arbitrary raw bytes from a file.
 *
 * Run it without arguments for the option list.  Records are sent padded
 * to a multiple of 8 bytes like nginx does (-Z: unpadded); params use the
 * 4-byte length form from 128 bytes on and are split over as many
 * FCGI_PARAMS records as needed.  The -a/-c/-h/-r delays count from the
 * moment the whole request (or -R file) has been handed to the kernel;
 * with -k -n N they are re-armed for every request.  All I/O is
 * non-blocking and driven by poll(), so a server that stops reading
 * cannot wedge the client (-t still applies).
 *
 * Results are reported on stdout (FCGI_STDOUT content, unless -q) and on
 * stderr: FCGI_STDERR content as is, plus one line per event:
 *   end_request id=ID app_status=N protocol_status=N
 *   record type=N id=N len=N     any other record type received
 *   abort_sent | half_closed | closed | reset
 *   write_error: MSG | read_error: MSG | trailing_bytes=N
 *   eof | timeout
 * Exit codes:
 *   0  FCGI_END_REQUEST received (for every request), or -c / -r fired
 *   1  EOF (or read error) before the expected FCGI_END_REQUEST
 *   2  bad usage
 *   3  overall timeout (-t)
 *   4  connect failure or other local error (e.g. unreadable body file)
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* SOCK_CLOEXEC, asprintf and friends */
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Protocol constants (FastCGI specification 1.0). */
enum {
    FCGI_VERSION_1 = 1,
    FCGI_HEADER_LEN = 8,
    FCGI_MAX_CONTENT = 65535,

    FCGI_BEGIN_REQUEST = 1,
    FCGI_ABORT_REQUEST = 2,
    FCGI_END_REQUEST = 3,
    FCGI_PARAMS = 4,
    FCGI_STDIN = 5,
    FCGI_STDOUT = 6,
    FCGI_STDERR = 7,

    FCGI_RESPONDER = 1,
    FCGI_KEEP_CONN = 1
};

enum {
    EXIT_OK = 0,
    EXIT_EOF = 1,
    EXIT_USAGE = 2,
    EXIT_TIMEOUT = 3,
    EXIT_LOCAL = 4
};

#define MAX_PARAM_SIZE ((uint64_t)1 << 30) /* 1 GiB: plenty for hostile tests */

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */
/* ------------------------------------------------------------------ */

static const char *progname = "fcgi-client";

static void die(int code, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

static void die(int code, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", progname);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL)
        die(EXIT_LOCAL, "out of memory (%zu bytes)", n);
    return q;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = xrealloc(NULL, n + 1);

    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parse a non-negative decimal integer no larger than max; -1 on error. */
static int64_t parse_num(const char *s, int64_t max)
{
    char *end;
    long long v;

    if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < 0 || v > max)
        return -1;
    return v;
}

/* Write everything to a (blocking) file descriptor; returns -1 on error.
 * Callers writing the response ignore errors because stdout may
 * legitimately be closed by the test. */
static int write_fd_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Growable byte buffer with a consumed-prefix offset                   */
/* ------------------------------------------------------------------ */

struct buf {
    unsigned char *data;
    size_t off; /* first unconsumed byte */
    size_t len; /* end of valid data */
    size_t cap;
};

static size_t buf_avail(const struct buf *b)
{
    return b->len - b->off;
}

static void buf_reserve(struct buf *b, size_t extra)
{
    if (b->off > 0 && b->off == b->len) {
        b->off = b->len = 0;
    }
    if (b->len + extra <= b->cap)
        return;
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + extra <= b->cap)
            return;
    }
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < b->len + extra) {
        if (ncap > SIZE_MAX / 2)
            die(EXIT_LOCAL, "buffer too large");
        ncap *= 2;
    }
    b->data = xrealloc(b->data, ncap);
    b->cap = ncap;
}

static void buf_append(struct buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void buf_append_byte(struct buf *b, unsigned char c)
{
    buf_append(b, &c, 1);
}

static void buf_consume(struct buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        b->off = b->len = 0;
}

static void buf_clear(struct buf *b)
{
    b->off = b->len = 0;
}

/* ------------------------------------------------------------------ */
/* FastCGI encoding                                                     */
/* ------------------------------------------------------------------ */

static int opt_pad = 1; /* pad records to a multiple of 8, as nginx does */

static void put_record(struct buf *b, int type, unsigned id,
                       const void *content, size_t len)
{
    static const unsigned char zeros[8];
    unsigned char hdr[FCGI_HEADER_LEN];
    size_t pad = opt_pad ? (8 - len % 8) % 8 : 0;

    hdr[0] = FCGI_VERSION_1;
    hdr[1] = (unsigned char)type;
    hdr[2] = (unsigned char)(id >> 8);
    hdr[3] = (unsigned char)id;
    hdr[4] = (unsigned char)(len >> 8);
    hdr[5] = (unsigned char)len;
    hdr[6] = (unsigned char)pad;
    hdr[7] = 0;
    buf_append(b, hdr, sizeof hdr);
    buf_append(b, content, len);
    buf_append(b, zeros, pad);
}

/* Emit data as a stream of records of at most 65535 content bytes, then
 * (if terminate) the empty record that closes the stream. */
static void put_stream(struct buf *b, int type, unsigned id,
                       const unsigned char *data, size_t len, int terminate)
{
    while (len > 0) {
        size_t chunk = len > FCGI_MAX_CONTENT ? FCGI_MAX_CONTENT : len;

        put_record(b, type, id, data, chunk);
        data += chunk;
        len -= chunk;
    }
    if (terminate)
        put_record(b, type, id, NULL, 0);
}

static void put_nv_len(struct buf *b, size_t n)
{
    if (n < 128) {
        buf_append_byte(b, (unsigned char)n);
    } else {
        uint32_t v = (uint32_t)n | 0x80000000u;

        buf_append_byte(b, (unsigned char)(v >> 24));
        buf_append_byte(b, (unsigned char)(v >> 16));
        buf_append_byte(b, (unsigned char)(v >> 8));
        buf_append_byte(b, (unsigned char)v);
    }
}

/* ------------------------------------------------------------------ */
/* Parameters                                                           */
/* ------------------------------------------------------------------ */

struct param {
    char *name;
    char *value;
    size_t value_len;
};

struct params {
    struct param *v;
    size_t n;
};

static void params_del(struct params *ps, const char *name)
{
    for (size_t i = 0; i < ps->n; i++) {
        if (strcmp(ps->v[i].name, name) == 0) {
            free(ps->v[i].name);
            free(ps->v[i].value);
            memmove(&ps->v[i], &ps->v[i + 1], (ps->n - i - 1) * sizeof *ps->v);
            ps->n--;
            return;
        }
    }
}

/* Set NAME to VALUE (takes ownership of value), replacing an existing
 * entry in place so that the order of defaults is kept. */
static void params_set_owned(struct params *ps, const char *name,
                             char *value, size_t value_len)
{
    for (size_t i = 0; i < ps->n; i++) {
        if (strcmp(ps->v[i].name, name) == 0) {
            free(ps->v[i].value);
            ps->v[i].value = value;
            ps->v[i].value_len = value_len;
            return;
        }
    }
    ps->v = xrealloc(ps->v, (ps->n + 1) * sizeof *ps->v);
    ps->v[ps->n].name = xstrndup(name, strlen(name));
    ps->v[ps->n].value = value;
    ps->v[ps->n].value_len = value_len;
    ps->n++;
}

static void params_set(struct params *ps, const char *name, const char *value)
{
    size_t n = strlen(value);

    params_set_owned(ps, name, xstrndup(value, n), n);
}

static void params_encode(const struct params *ps, struct buf *out)
{
    for (size_t i = 0; i < ps->n; i++) {
        size_t nl = strlen(ps->v[i].name);

        put_nv_len(out, nl);
        put_nv_len(out, ps->v[i].value_len);
        buf_append(out, ps->v[i].name, nl);
        buf_append(out, ps->v[i].value, ps->v[i].value_len);
    }
}

/* User parameter operations, applied in command-line order after the
 * defaults have been filled in. */
enum param_op_kind { OP_SET, OP_FILL, OP_DROP };

struct param_op {
    enum param_op_kind kind;
    char *name;
    char *value;   /* OP_SET */
    uint64_t size; /* OP_FILL */
};

/* ------------------------------------------------------------------ */
/* Options                                                              */
/* ------------------------------------------------------------------ */

struct options {
    const char *addr;
    const char *uri;
    const char *method;
    struct param_op *ops;
    size_t nops;
    unsigned char *body;
    size_t body_len;
    int have_body;
    unsigned id;
    int keep_conn;
    long nreq;
    int64_t abort_ms, close_ms, half_ms, reset_ms, finish_ms;
    const char *raw_file;
    int stall;
    int64_t timeout_ms;
    int quiet;
    const char *dump_file;
};

/* -s ADDR: the local IP address of a TCP connection (e.g. 127.0.0.2). */
static const char *opt_source;

static void usage(void) __attribute__((noreturn));

static void usage(void)
{
    fprintf(stderr,
        "usage: %s [options] ADDR\n"
        "       %s [options] -w FILE\n"
        "  ADDR is unix:/path/to.sock or tcp:HOST:PORT\n"
        "  -u URI        request URI (default /ping)\n"
        "  -m METHOD     request method (default GET)\n"
        "  -p NAME=VALUE extra/overriding param (repeatable)\n"
        "  -P NAME:SIZE  param whose value is SIZE bytes of 'x' (k/m suffix ok)\n"
        "  -x NAME       drop a (default) param\n"
        "  -B STRING     request body\n"
        "  -b FILE       request body from FILE ('-' = stdin)\n"
        "  -i ID         request id (default 1)\n"
        "  -k            set FCGI_KEEP_CONN\n"
        "  -n N          with -k: N requests in sequence on one connection;\n"
        "                with -R: wait for N END_REQUEST records\n"
        "  -a MS         send FCGI_ABORT_REQUEST MS ms after the request is sent\n"
        "  -c MS         close the socket MS ms after the request is sent, exit 0\n"
        "  -h MS         shutdown(SHUT_WR) MS ms after the request is sent\n"
        "  -r MS         reset (SO_LINGER 0 + close) MS ms after sending, exit 0\n"
        "  -R FILE       send the raw bytes of FILE instead of a request\n"
        "                (and nothing else; -S is then a no-op)\n"
        "  -S            stall: do not send the final empty FCGI_STDIN record\n"
        "  -L MS         send that record MS ms after the rest (implies -S)\n"
        "  -s ADDR       TCP: connect from this local IP address\n"
        "  -Z            do not pad records to a multiple of 8 bytes\n"
        "  -t MS         overall timeout (default 30000, 0 = none), exit 3\n"
        "  -q            do not print the response body\n"
        "  -w FILE       write the bytes that would be sent to FILE ('-' =\n"
        "                stdout) and exit without connecting (no ADDR)\n",
        progname, progname);
    exit(EXIT_USAGE);
}

static void read_file_all(const char *path, unsigned char **data, size_t *len)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY);
    struct buf b = { 0 };

    if (fd < 0)
        die(EXIT_LOCAL, "cannot open %s: %s", path, strerror(errno));
    for (;;) {
        buf_reserve(&b, 65536);
        ssize_t n = read(fd, b.data + b.len, b.cap - b.len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            die(EXIT_LOCAL, "cannot read %s: %s", path, strerror(errno));
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
    }
    if (fd != STDIN_FILENO)
        close(fd);
    *data = b.data;
    *len = b.len;
}

static int64_t opt_ms(const char *arg, char opt)
{
    int64_t v = parse_num(arg, INT32_MAX);

    if (v < 0) {
        fprintf(stderr, "%s: -%c needs a number of milliseconds\n",
                progname, opt);
        usage();
    }
    return v;
}

static uint64_t parse_size(const char *s)
{
    char *end;
    unsigned long long v;
    uint64_t mult = 1;

    if (*s == '\0' || *s == '-' || *s == '+')
        return UINT64_MAX;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        return UINT64_MAX;
    if (*end == 'k' || *end == 'K') {
        mult = 1024;
        end++;
    } else if (*end == 'm' || *end == 'M') {
        mult = 1024 * 1024;
        end++;
    }
    if (*end != '\0' || v > MAX_PARAM_SIZE / mult)
        return UINT64_MAX;
    return (uint64_t)v * mult;
}

static void add_op(struct options *o, struct param_op op)
{
    o->ops = xrealloc(o->ops, (o->nops + 1) * sizeof *o->ops);
    o->ops[o->nops++] = op;
}

static void parse_options(int argc, char **argv, struct options *o)
{
    int c;
    int64_t v;

    memset(o, 0, sizeof *o);
    o->uri = "/ping";
    o->method = "GET";
    o->id = 1;
    o->nreq = 1;
    o->abort_ms = o->close_ms = o->half_ms = o->reset_ms = -1;
    o->finish_ms = -1;
    o->timeout_ms = 30000;

    opterr = 0;
    while ((c = getopt(argc, argv, ":u:m:p:P:x:B:b:i:kn:a:c:h:r:R:s:SL:Zt:qw:")) != -1) {
        switch (c) {
        case 'u':
            o->uri = optarg;
            break;
        case 'm':
            if (*optarg == '\0')
                usage();
            o->method = optarg;
            break;
        case 'p': {
            const char *eq = strchr(optarg, '=');
            struct param_op op = { .kind = OP_SET };

            if (eq == NULL || eq == optarg) {
                fprintf(stderr, "%s: -p needs NAME=VALUE\n", progname);
                usage();
            }
            op.name = xstrndup(optarg, (size_t)(eq - optarg));
            op.value = xstrndup(eq + 1, strlen(eq + 1));
            add_op(o, op);
            break;
        }
        case 'P': {
            const char *colon = strrchr(optarg, ':');
            struct param_op op = { .kind = OP_FILL };

            if (colon == NULL || colon == optarg ||
                (op.size = parse_size(colon + 1)) == UINT64_MAX) {
                fprintf(stderr, "%s: -P needs NAME:SIZE (SIZE <= 1 GiB)\n",
                        progname);
                usage();
            }
            op.name = xstrndup(optarg, (size_t)(colon - optarg));
            add_op(o, op);
            break;
        }
        case 'x': {
            struct param_op op = { .kind = OP_DROP };

            if (*optarg == '\0')
                usage();
            op.name = xstrndup(optarg, strlen(optarg));
            add_op(o, op);
            break;
        }
        case 'B':
            if (o->have_body)
                die(EXIT_USAGE, "only one of -B / -b may be given");
            o->body_len = strlen(optarg);
            o->body = (unsigned char *)xstrndup(optarg, o->body_len);
            o->have_body = 1;
            break;
        case 'b':
            if (o->have_body)
                die(EXIT_USAGE, "only one of -B / -b may be given");
            read_file_all(optarg, &o->body, &o->body_len);
            o->have_body = 1;
            break;
        case 'i':
            v = parse_num(optarg, 65535);
            if (v < 0) {
                fprintf(stderr, "%s: -i needs an id in 0..65535\n", progname);
                usage();
            }
            o->id = (unsigned)v;
            break;
        case 'k':
            o->keep_conn = 1;
            break;
        case 'n':
            v = parse_num(optarg, 1000000);
            if (v < 1) {
                fprintf(stderr, "%s: -n needs a count >= 1\n", progname);
                usage();
            }
            o->nreq = (long)v;
            break;
        case 'a':
            o->abort_ms = opt_ms(optarg, 'a');
            break;
        case 'c':
            o->close_ms = opt_ms(optarg, 'c');
            break;
        case 'h':
            o->half_ms = opt_ms(optarg, 'h');
            break;
        case 'r':
            o->reset_ms = opt_ms(optarg, 'r');
            break;
        case 'R':
            o->raw_file = optarg;
            break;
        case 'S':
            o->stall = 1;
            break;
        case 'L':
            o->finish_ms = opt_ms(optarg, 'L');
            o->stall = 1;
            break;
        case 's':
            opt_source = optarg;
            break;
        case 'Z':
            opt_pad = 0;
            break;
        case 't':
            o->timeout_ms = opt_ms(optarg, 't');
            break;
        case 'q':
            o->quiet = 1;
            break;
        case 'w':
            o->dump_file = optarg;
            break;
        case ':':
            fprintf(stderr, "%s: option -%c needs an argument\n",
                    progname, optopt);
            usage();
        default:
            fprintf(stderr, "%s: unknown option -%c\n", progname, optopt);
            usage();
        }
    }
    if (o->dump_file != NULL && optind == argc) {
        o->addr = NULL;
    } else if (optind != argc - 1) {
        fprintf(stderr, "%s: exactly one ADDR is required\n", progname);
        usage();
    } else {
        o->addr = argv[optind];
    }
    if (o->nreq > 1 && !o->keep_conn && o->raw_file == NULL) {
        fprintf(stderr, "%s: -n N (N > 1) needs -k\n", progname);
        usage();
    }
}

/* ------------------------------------------------------------------ */
/* Request construction                                                 */
/* ------------------------------------------------------------------ */

static void build_params(const struct options *o, struct params *ps)
{
    const char *q = strchr(o->uri, '?');
    size_t path_len = q ? (size_t)(q - o->uri) : strlen(o->uri);
    char *path = xstrndup(o->uri, path_len);

    params_set(ps, "GATEWAY_INTERFACE", "CGI/1.1");
    params_set(ps, "SERVER_PROTOCOL", "HTTP/1.1");
    params_set(ps, "REQUEST_METHOD", o->method);
    params_set(ps, "REQUEST_URI", o->uri);
    params_set(ps, "DOCUMENT_URI", path);
    params_set(ps, "SCRIPT_NAME", path);
    params_set(ps, "QUERY_STRING", q ? q + 1 : "");
    params_set(ps, "REMOTE_ADDR", "127.0.0.1");
    params_set(ps, "SERVER_NAME", "localhost");
    params_set(ps, "SERVER_PORT", "80");
    free(path);

    if (o->have_body) {
        char lenbuf[32];

        snprintf(lenbuf, sizeof lenbuf, "%zu", o->body_len);
        params_set(ps, "CONTENT_LENGTH", lenbuf);
        /* Only a default: an explicit -p CONTENT_TYPE=... wins below. */
        params_set(ps, "CONTENT_TYPE", "application/octet-stream");
    }

    for (size_t i = 0; i < o->nops; i++) {
        const struct param_op *op = &o->ops[i];

        switch (op->kind) {
        case OP_SET:
            params_set(ps, op->name, op->value);
            break;
        case OP_FILL: {
            char *val = xrealloc(NULL, (size_t)op->size + 1);

            memset(val, 'x', (size_t)op->size);
            val[op->size] = '\0';
            params_set_owned(ps, op->name, val, (size_t)op->size);
            break;
        }
        case OP_DROP:
            params_del(ps, op->name);
            break;
        }
    }
}

/* Append one complete request (BEGIN_REQUEST, PARAMS stream, STDIN
 * stream) to out. */
static void build_request(const struct options *o, const struct buf *penc,
                          struct buf *out)
{
    unsigned char begin[8] = { 0 };

    begin[0] = 0;
    begin[1] = FCGI_RESPONDER;
    begin[2] = o->keep_conn ? FCGI_KEEP_CONN : 0;
    put_record(out, FCGI_BEGIN_REQUEST, o->id, begin, sizeof begin);
    put_stream(out, FCGI_PARAMS, o->id, penc->data + penc->off,
               buf_avail(penc), 1);
    put_stream(out, FCGI_STDIN, o->id, o->body, o->body_len, !o->stall);
}

/* ------------------------------------------------------------------ */
/* Connection                                                           */
/* ------------------------------------------------------------------ */

static void set_sndtimeo(int fd, int64_t ms)
{
    struct timeval tv;

    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static void connect_failed(int err, const char *addr)
    __attribute__((noreturn));

static void connect_failed(int err, const char *addr)
{
    if (err == EINPROGRESS || err == EAGAIN || err == ETIMEDOUT) {
        fprintf(stderr, "timeout\n");
        exit(EXIT_TIMEOUT);
    }
    die(EXIT_LOCAL, "connect %s: %s", addr, strerror(err));
}

/* Connect (blocking, bounded by timeout_ms via SO_SNDTIMEO); returns the
 * socket in non-blocking mode and sets *is_tcp. */
/* Bind fd to opt_source, if given, for family; exit on failure. */
static void bind_source(int fd, int family)
{
    struct sockaddr_in6 s6;
    struct sockaddr_in s4;

    if (opt_source == NULL)
        return;
    if (family == AF_INET) {
        memset(&s4, 0, sizeof s4);
        s4.sin_family = AF_INET;
        if (inet_pton(AF_INET, opt_source, &s4.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *)&s4, sizeof s4) != 0)
            die(EXIT_LOCAL, "cannot bind to source %s", opt_source);
    } else {
        memset(&s6, 0, sizeof s6);
        s6.sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, opt_source, &s6.sin6_addr) != 1 ||
            bind(fd, (struct sockaddr *)&s6, sizeof s6) != 0)
            die(EXIT_LOCAL, "cannot bind to source %s", opt_source);
    }
}

static int open_conn(const char *addr, int64_t timeout_ms, int *is_tcp)
{
    int fd;

    if (strncmp(addr, "unix:", 5) == 0) {
        struct sockaddr_un sun;
        const char *path = addr + 5;

        if (*path == '\0' || strlen(path) >= sizeof sun.sun_path)
            die(EXIT_USAGE, "bad unix socket path in %s", addr);
        memset(&sun, 0, sizeof sun);
        sun.sun_family = AF_UNIX;
        memcpy(sun.sun_path, path, strlen(path));
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die(EXIT_LOCAL, "socket: %s", strerror(errno));
        if (timeout_ms > 0)
            set_sndtimeo(fd, timeout_ms);
        if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
            connect_failed(errno, addr);
        *is_tcp = 0;
    } else if (strncmp(addr, "tcp:", 4) == 0) {
        const char *hp = addr + 4;
        const char *colon = strrchr(hp, ':');
        struct addrinfo hints, *res, *ai;
        char *host;
        int rc, err = 0;

        if (colon == NULL || colon == hp || colon[1] == '\0')
            die(EXIT_USAGE, "bad tcp address %s (want tcp:HOST:PORT)", addr);
        if (hp[0] == '[' && colon[-1] == ']')
            host = xstrndup(hp + 1, (size_t)(colon - hp - 2));
        else
            host = xstrndup(hp, (size_t)(colon - hp));
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        rc = getaddrinfo(host, colon + 1, &hints, &res);
        if (rc != 0)
            die(EXIT_LOCAL, "cannot resolve %s: %s", addr, gai_strerror(rc));
        fd = -1;
        for (ai = res; ai != NULL; ai = ai->ai_next) {
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
                        ai->ai_protocol);
            if (fd < 0) {
                err = errno;
                continue;
            }
            if (timeout_ms > 0)
                set_sndtimeo(fd, timeout_ms);
            bind_source(fd, ai->ai_family);
            if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                break;
            err = errno;
            close(fd);
            fd = -1;
        }
        freeaddrinfo(res);
        free(host);
        if (fd < 0)
            connect_failed(err, addr);
        *is_tcp = 1;
    } else {
        fprintf(stderr, "%s: ADDR must start with unix: or tcp:\n", progname);
        usage();
    }
    set_sndtimeo(fd, 0);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
        die(EXIT_LOCAL, "fcntl: %s", strerror(errno));
    return fd;
}

/* ------------------------------------------------------------------ */
/* Main loop                                                            */
/* ------------------------------------------------------------------ */

struct timer {
    int64_t delay; /* -1 = disabled */
    int fired;
};

enum { T_ABORT, T_CLOSE, T_HALF, T_RESET, T_FINISH, T_COUNT };

struct client {
    const struct options *o;
    int fd;
    int is_tcp;
    struct buf out, in;
    struct buf penc;       /* encoded params, reused for -n */
    int request_queued;    /* a request is queued or in flight */
    int64_t sent_at;       /* -1 until the queued request is fully sent */
    struct timer timers[T_COUNT];
    int shut_pending, shut_done;
    int write_dead;
    long ends_seen;
};

static void arm_request(struct client *cl)
{
    cl->request_queued = 1;
    cl->sent_at = -1;
    for (int i = 0; i < T_COUNT; i++)
        cl->timers[i].fired = 0;
}

static void exit_closed(struct client *cl, int reset)
{
    if (reset && cl->is_tcp) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };

        setsockopt(cl->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(cl->fd);
    fputs(reset ? "reset\n" : "closed\n", stderr);
    exit(EXIT_OK);
}

static void handle_record(struct client *cl, int version, int type,
                          unsigned id, const unsigned char *c, size_t clen)
{
    const struct options *o = cl->o;

    if (version != FCGI_VERSION_1) {
        fprintf(stderr, "record type=%d id=%u len=%zu version=%d\n",
                type, id, clen, version);
        return;
    }
    switch (type) {
    case FCGI_STDOUT:
        if (!o->quiet)
            (void)write_fd_all(STDOUT_FILENO, c, clen);
        break;
    case FCGI_STDERR:
        (void)write_fd_all(STDERR_FILENO, c, clen);
        break;
    case FCGI_END_REQUEST: {
        uint32_t app = 0;
        int proto = -1;

        if (clen >= 5) {
            app = (uint32_t)c[0] << 24 | (uint32_t)c[1] << 16 |
                  (uint32_t)c[2] << 8 | c[3];
            proto = c[4];
        }
        fprintf(stderr, "end_request id=%u app_status=%" PRIu32
                " protocol_status=%d\n", id, app, proto);
        cl->ends_seen++;
        if (cl->ends_seen >= o->nreq)
            exit(EXIT_OK);
        if (o->raw_file == NULL) {
            /* Next request on the same (kept) connection. */
            build_request(o, &cl->penc, &cl->out);
            arm_request(cl);
        }
        break;
    }
    default:
        fprintf(stderr, "record type=%d id=%u len=%zu\n", type, id, clen);
        break;
    }
}

static void parse_input(struct client *cl)
{
    while (buf_avail(&cl->in) >= FCGI_HEADER_LEN) {
        const unsigned char *h = cl->in.data + cl->in.off;
        unsigned id = (unsigned)h[2] << 8 | h[3];
        size_t clen = (size_t)h[4] << 8 | h[5];
        size_t plen = h[6];

        if (buf_avail(&cl->in) < FCGI_HEADER_LEN + clen + plen)
            return;
        handle_record(cl, h[0], h[1], id, h + FCGI_HEADER_LEN, clen);
        buf_consume(&cl->in, FCGI_HEADER_LEN + clen + plen);
    }
}

static void report_eof(struct client *cl)
{
    if (buf_avail(&cl->in) > 0)
        fprintf(stderr, "trailing_bytes=%zu\n", buf_avail(&cl->in));
    fputs("eof\n", stderr);
    close(cl->fd);
    exit(EXIT_EOF);
}

static void do_write(struct client *cl)
{
    while (buf_avail(&cl->out) > 0) {
        ssize_t n = send(cl->fd, cl->out.data + cl->out.off,
                         buf_avail(&cl->out), MSG_NOSIGNAL);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            fprintf(stderr, "write_error: %s\n", strerror(errno));
            cl->write_dead = 1;
            buf_clear(&cl->out);
            return;
        }
        buf_consume(&cl->out, (size_t)n);
    }
}

/* Returns 0 on EOF. */
static int do_read(struct client *cl)
{
    for (;;) {
        buf_reserve(&cl->in, 65536 + 512);
        ssize_t n = recv(cl->fd, cl->in.data + cl->in.len,
                         cl->in.cap - cl->in.len, 0);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 1;
            fprintf(stderr, "read_error: %s\n", strerror(errno));
            return 0;
        }
        if (n == 0)
            return 0;
        cl->in.len += (size_t)n;
        parse_input(cl);
    }
}

static void fire_timers(struct client *cl, int64_t now)
{
    const struct options *o = cl->o;
    struct timer *t = cl->timers;

    if (cl->sent_at < 0)
        return;
    if (!t[T_CLOSE].fired && t[T_CLOSE].delay >= 0 &&
        now >= cl->sent_at + t[T_CLOSE].delay)
        exit_closed(cl, 0);
    if (!t[T_RESET].fired && t[T_RESET].delay >= 0 &&
        now >= cl->sent_at + t[T_RESET].delay)
        exit_closed(cl, 1);
    if (!t[T_ABORT].fired && t[T_ABORT].delay >= 0 &&
        now >= cl->sent_at + t[T_ABORT].delay) {
        t[T_ABORT].fired = 1;
        if (!cl->write_dead && !cl->shut_done) {
            put_record(&cl->out, FCGI_ABORT_REQUEST, o->id, NULL, 0);
            fputs("abort_sent\n", stderr);
        }
    }
    if (!t[T_FINISH].fired && t[T_FINISH].delay >= 0 &&
        now >= cl->sent_at + t[T_FINISH].delay) {
        t[T_FINISH].fired = 1;
        if (!cl->write_dead && !cl->shut_done) {
            put_record(&cl->out, FCGI_STDIN, o->id, NULL, 0);
            fputs("stdin_end_sent\n", stderr);
        }
    }
    if (!t[T_HALF].fired && t[T_HALF].delay >= 0 &&
        now >= cl->sent_at + t[T_HALF].delay) {
        t[T_HALF].fired = 1;
        cl->shut_pending = 1;
    }
}

static int64_t next_deadline(const struct client *cl, int64_t overall)
{
    int64_t d = overall;

    if (cl->sent_at < 0)
        return d;
    for (int i = 0; i < T_COUNT; i++) {
        const struct timer *t = &cl->timers[i];

        if (t->delay >= 0 && !t->fired) {
            int64_t at = cl->sent_at + t->delay;

            if (d < 0 || at < d)
                d = at;
        }
    }
    return d;
}

int main(int argc, char **argv)
{
    struct options o;
    struct client cl;
    struct params ps = { 0 };
    int64_t start = now_ms();
    int64_t overall;

    signal(SIGPIPE, SIG_IGN);
    parse_options(argc, argv, &o);

    memset(&cl, 0, sizeof cl);
    cl.o = &o;
    cl.timers[T_ABORT].delay = o.abort_ms;
    cl.timers[T_CLOSE].delay = o.close_ms;
    cl.timers[T_HALF].delay = o.half_ms;
    cl.timers[T_RESET].delay = o.reset_ms;
    cl.timers[T_FINISH].delay = o.finish_ms;

    if (o.raw_file != NULL) {
        unsigned char *raw;
        size_t raw_len;

        read_file_all(o.raw_file, &raw, &raw_len);
        buf_append(&cl.out, raw, raw_len);
        free(raw);
    } else {
        build_params(&o, &ps);
        params_encode(&ps, &cl.penc);
        build_request(&o, &cl.penc, &cl.out);
    }
    arm_request(&cl);

    if (o.dump_file != NULL) {
        int dfd = strcmp(o.dump_file, "-") == 0
                      ? STDOUT_FILENO
                      : open(o.dump_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        if (dfd < 0)
            die(EXIT_LOCAL, "cannot create %s: %s", o.dump_file,
                strerror(errno));
        if (write_fd_all(dfd, cl.out.data + cl.out.off,
                         buf_avail(&cl.out)) < 0 ||
            (dfd != STDOUT_FILENO && close(dfd) < 0))
            die(EXIT_LOCAL, "cannot write %s: %s", o.dump_file,
                strerror(errno));
        exit(EXIT_OK);
    }

    overall = o.timeout_ms > 0 ? start + o.timeout_ms : -1;
    cl.fd = open_conn(o.addr, o.timeout_ms, &cl.is_tcp);

    for (;;) {
        int64_t now = now_ms();
        int64_t deadline;
        struct pollfd pfd;
        int timeout, rc;

        if (overall >= 0 && now >= overall) {
            fputs("timeout\n", stderr);
            exit(EXIT_TIMEOUT);
        }
        if (cl.request_queued && cl.sent_at < 0 &&
            (buf_avail(&cl.out) == 0 || cl.write_dead))
            cl.sent_at = now;
        fire_timers(&cl, now);
        if (cl.shut_pending && !cl.shut_done &&
            (buf_avail(&cl.out) == 0 || cl.write_dead)) {
            shutdown(cl.fd, SHUT_WR);
            cl.shut_done = 1;
            fputs("half_closed\n", stderr);
        }

        pfd.fd = cl.fd;
        pfd.events = POLLIN;
        if (buf_avail(&cl.out) > 0 && !cl.write_dead && !cl.shut_done)
            pfd.events |= POLLOUT;
        pfd.revents = 0;

        deadline = next_deadline(&cl, overall);
        if (deadline < 0) {
            timeout = -1;
        } else {
            int64_t left = deadline - now;

            timeout = left < 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
        }
        rc = poll(&pfd, 1, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            die(EXIT_LOCAL, "poll: %s", strerror(errno));
        }
        if (rc == 0)
            continue;
        if (pfd.revents & POLLOUT)
            do_write(&cl);
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (!do_read(&cl))
                report_eof(&cl);
        }
    }
}
