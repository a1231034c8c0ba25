/* SPDX-License-Identifier: MIT */
/*
 * accesslog.c - the access log, written without a system call per request.
 *
 * DESIGN
 *
 * A worker formats its line into one of ACCESSLOG_SHARDS buffers (struct
 * shard); a thread takes a shard round-robin the first time it logs and
 * keeps it, so a shard is shared by few threads (with the default 32
 * workers, two) and the memory is the same for 16 threads or 10,000.  A
 * shard's buffer is written when it passes BUF_FLUSH bytes, when the flusher
 * thread finds its oldest line older than FLUSH_AGE_MS, and on
 * accesslog_flush() (SIGHUP, exit).  The flusher wakes every FLUSH_AGE_MS,
 * so no line waits more than about twice that (100 ms).  Each write is
 * whole lines, and the writes to one destination are serialized by
 * dest_mtx, so lines never interleave (not even on a pipe or the
 * journal's stream socket, where a long write is not atomic).  Before
 * accesslog_open() and after accesslog_close(), nothing is buffered.
 *
 * Locks, in the order they are taken:
 *   sh->mtx    protects one shard's buffer (bytes, len, first_ns);
 *   dest_mtx   protects dest_fd and dest_path, and serializes writes.
 * list_mtx protects the flusher's start and stop (flusher_on) and is
 * never held with the others.  The format, `off` and `buffering` are
 * atomics read with relaxed order: a line formatted just before a change
 * is still a whole line.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "accesslog.h"
#include "log.h"
#include "utf8.h"
#include "util.h"

#define ACCESSLOG_SHARDS 16
#define BUF_SIZE        ((size_t)64 * 1024)
#define BUF_FLUSH       ((size_t)32 * 1024) /* write once past this */
#define LINE_MAX_LEN    8192            /* longer lines are cut */
#define LINE_STACK_LEN  1024            /* most lines: formatted on the stack */
#define FLUSH_AGE_MS    50

const char *const accesslog_format_names[] = {
    "default", "combined", "json", NULL
};

/* Formatted lines waiting for one destination. */
struct lbuf {
    size_t              len;
    uint64_t            first_ns;       /* monotonic time of the oldest line */
    char                data[BUF_SIZE];
};

/* The buffer a few threads share; see DESIGN. */
struct shard {
    pthread_mutex_t     mtx;
    struct lbuf         access;         /* to the access log's destination */
};

static struct shard     shards[ACCESSLOG_SHARDS];
static pthread_once_t   shards_once = PTHREAD_ONCE_INIT;
static _Atomic unsigned next_shard;
static _Thread_local struct shard *my_shard;
static _Atomic int      buffering;      /* between open and close */
static pthread_mutex_t  list_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_t        flusher;
static int              flusher_on;     /* protected by list_mtx */
static pthread_cond_t   flusher_cond = PTHREAD_COND_INITIALIZER;

static pthread_mutex_t  dest_mtx = PTHREAD_MUTEX_INITIALIZER;
static int              dest_fd = -1;   /* -1 stderr, -2 off; dest_mtx */
static char            *dest_path;      /* protected by dest_mtx */
static _Atomic int      format = ACCESSLOG_DEFAULT;
static _Atomic int      off;            /* "off": skip formatting */

/* Write len bytes of whole lines to the access log's destination (a
 * failure: nowhere left to report it); dest_mtx is held. */
static void
dest_write(const char *p, size_t len)
{
    if (dest_fd != -2)
        (void)fd_write_all(dest_fd == -1 ? STDERR_FILENO : dest_fd, p, len);
}

/* Write and empty b; the shard's mtx is held. */
static void
lbuf_flush(struct lbuf *b)
{
    if (b->len == 0)
        return;
    xmutex_lock(&dest_mtx);
    dest_write(b->data, b->len);
    xmutex_unlock(&dest_mtx);
    b->len = 0;
}

/* Append a line (shorter than the buffer) to b, the shard's mtx held,
 * writing b first if it is full. */
static void
lbuf_put(struct lbuf *b, const char *line, size_t len)
{
    if (b->len + len > sizeof b->data)
        lbuf_flush(b);
    if (b->len == 0)
        b->first_ns = now_ns();
    memcpy(b->data + b->len, line, len);
    b->len += len;
    if (b->len >= BUF_FLUSH)
        lbuf_flush(b);
}

static void
shards_init(void)
{
    size_t i;

    for (i = 0; i < ACCESSLOG_SHARDS; i++)
        xmutex_init(&shards[i].mtx);
}

/* Return the calling thread's shard, taken round-robin on first use. */
static struct shard *
shard_get(void)
{
    if (my_shard == NULL) {
        pthread_once(&shards_once, shards_init);
        my_shard = &shards[atomic_fetch_add_explicit(&next_shard, 1,
            memory_order_relaxed) % ACCESSLOG_SHARDS];
    }
    return my_shard;
}

/* Write every buffer holding a line older than min_age_ns. */
static void
flush_older(uint64_t min_age_ns)
{
    uint64_t     now = now_ns();
    size_t       i;

    pthread_once(&shards_once, shards_init);
    for (i = 0; i < ACCESSLOG_SHARDS; i++) {
        struct shard *sh = &shards[i];

        xmutex_lock(&sh->mtx);
        if (sh->access.len > 0 && now - sh->access.first_ns >= min_age_ns)
            lbuf_flush(&sh->access);
        xmutex_unlock(&sh->mtx);
    }
}

/* The flusher thread: writes lines that waited FLUSH_AGE_MS. */
static void *
flusher_main(void *arg)
{
    struct timespec ts;

    (void)arg;
    xmutex_lock(&list_mtx);
    while (flusher_on) {
        timespec_after_ms(&ts, FLUSH_AGE_MS);
        pthread_cond_timedwait(&flusher_cond, &list_mtx, &ts);
        if (!flusher_on)
            break;
        xmutex_unlock(&list_mtx);
        flush_older((uint64_t)FLUSH_AGE_MS * 1000000u);
        xmutex_lock(&list_mtx);
    }
    xmutex_unlock(&list_mtx);
    return NULL;
}

void
accesslog_flush(void)
{
    flush_older(0);
}

int
accesslog_open(const char *path, enum accesslog_format fmt)
{
    pthread_condattr_t  ca;
    sigset_t            all, old;
    char               *copy = NULL;
    int                 fd, oldfd, same = path == dest_path;

    if (path == NULL || strcmp(path, "off") == 0) {
        fd = path == NULL ? -1 : -2;
    } else if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
        0640)) < 0) {
        return -1;
    }
    if (path != NULL && !same && (copy = strdup(path)) == NULL) {
        if (fd >= 0)
            close(fd);
        errno = ENOMEM;
        return -1;
    }
    accesslog_flush();
    xmutex_lock(&dest_mtx);
    oldfd = dest_fd;
    dest_fd = fd;
    if (!same) {
        free(dest_path);
        dest_path = copy;
    }
    xmutex_unlock(&dest_mtx);
    if (oldfd >= 0)
        close(oldfd);
    atomic_store_explicit(&format, (int)fmt, memory_order_relaxed);
    atomic_store_explicit(&off, fd == -2, memory_order_relaxed);

    xmutex_lock(&list_mtx);
    if (!flusher_on) {
        /* The flusher's timed wait runs on CLOCK_MONOTONIC, as
         * timespec_after_ms() reckons; it takes no signal. */
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_destroy(&flusher_cond);
        pthread_cond_init(&flusher_cond, &ca);
        pthread_condattr_destroy(&ca);
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        flusher_on = pthread_create(&flusher, NULL, flusher_main, NULL) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    /* Without a flusher nothing is buffered: lines go out at once. */
    atomic_store_explicit(&buffering, flusher_on, memory_order_relaxed);
    xmutex_unlock(&list_mtx);
    return 0;
}

int
accesslog_reopen(void)
{
    char   *path;
    int     rc;

    xmutex_lock(&dest_mtx);
    path = dest_path != NULL ? strdup(dest_path) : NULL;
    xmutex_unlock(&dest_mtx);
    if (path == NULL || strcmp(path, "off") == 0) {
        free(path);
        accesslog_flush();
        return 0;
    }
    rc = accesslog_open(path,
        (enum accesslog_format)atomic_load_explicit(&format,
        memory_order_relaxed));
    free(path);
    return rc;
}

void
accesslog_close(void)
{
    int on;

    xmutex_lock(&list_mtx);
    atomic_store_explicit(&buffering, 0, memory_order_relaxed);
    on = flusher_on;
    flusher_on = 0;
    pthread_cond_signal(&flusher_cond);
    xmutex_unlock(&list_mtx);
    if (on)
        pthread_join(flusher, NULL);
    accesslog_flush();
    xmutex_lock(&dest_mtx);
    if (dest_fd >= 0)
        close(dest_fd);
    dest_fd = -1;
    free(dest_path);
    dest_path = NULL;
    xmutex_unlock(&dest_mtx);
    atomic_store_explicit(&off, 0, memory_order_relaxed);
}

/* ---- formats -------------------------------------------------------- */

/* Return s, or "-" for NULL or "". */
static const char *
dash(const char *s)
{
    return s != NULL && *s != '\0' ? s : "-";
}

/* Return the request's arrival time (now if unknown) in seconds since
 * the epoch, and its microseconds in *usec. */
static int64_t
entry_time(const struct accesslog_entry *e, long *usec)
{
    struct timespec ts;

    if (e->start_real_ns > 0) {
        *usec = (long)(e->start_real_ns % 1000000000 / 1000);
        return e->start_real_ns / 1000000000;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    *usec = ts.tv_nsec / 1000;
    return ts.tv_sec;
}

/* A line being built in p[size]: what fits, and the length it would
 * have, as snprintf() counts it. */
struct line {
    char   *p;
    size_t  size;
    size_t  n;
};

/* Append len bytes of s (what fits, a NUL kept room for). */
static void
line_put(struct line *l, const char *s, size_t len)
{
    size_t k;

    if (l->n + 1 < l->size) {
        k = l->size - 1 - l->n;
        memcpy(l->p + l->n, s, len < k ? len : k);
    }
    l->n += len;
}

/* Append the string s. */
static void
line_str(struct line *l, const char *s)
{
    line_put(l, s, strlen(s));
}

/* Append v in decimal, at least width digits (zero-padded). */
static void
line_num(struct line *l, uint64_t v, int width)
{
    char    d[20];
    int     i = (int)sizeof d;

    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 || (int)sizeof d - i < width);
    line_put(l, d + i, sizeof d - (size_t)i);
}

/* End the line with a NUL; return its length as snprintf() would. */
static int
line_end(struct line *l)
{
    if (l->size > 0)
        l->p[l->n < l->size ? l->n : l->size - 1] = '\0';
    return l->n > INT_MAX ? INT_MAX : (int)l->n;
}

/* Append a duration of ns in ms with three decimals, rounded: what "%.3f"
 * of ns / 1e6 writes, without the floating-point formatter. */
static void
line_ms(struct line *l, uint64_t ns)
{
    uint64_t us = (ns + 500) / 1000;

    line_num(l, us / 1000, 1);
    line_put(l, ".", 1);
    line_num(l, us % 1000, 3);
}

/* line_ms() into d[32]; return d. */
static const char *
duration_ms(char *d, uint64_t ns)
{
    struct line l = { d, 32, 0 };

    line_ms(&l, ns);
    line_end(&l);
    return d;
}

/*
 * Today's format: "TIME access req=ID METHOD "PATH?Q" STATUS D.DDDms",
 * appended piece by piece: the line of every request, so no printf.
 */
static int
format_default(char *line, size_t size, const struct accesslog_entry *e)
{
    struct line l = { line, size, 0 };
    char        ts[UTC_STAMP_SIZE], epath[1024], eq[1024];
    const char *q = e->query != NULL ? e->query : "";

    if (!log_journal()) {
        struct timespec now;

        clock_gettime(CLOCK_REALTIME, &now);
        line_put(&l, ts, utc_stamp(ts, now.tv_sec, now.tv_nsec / 1000));
        line_put(&l, " ", 1);
    } else {
        line_put(&l, "<6>", 3);
    }
    line_str(&l, "access req=");
    line_num(&l, e->id, 1);
    line_put(&l, " ", 1);
    line_str(&l, dash(e->method));
    line_put(&l, " \"", 2);
    line_str(&l, log_escape(epath, sizeof epath, e->path));
    if (*q != '\0') {
        line_put(&l, "?", 1);
        line_str(&l, log_escape(eq, sizeof eq, q));
    }
    line_put(&l, "\" ", 2);
    line_num(&l, e->status > 0 ? (uint64_t)e->status : 0, 1);
    line_put(&l, " ", 1);
    line_ms(&l, e->duration_ns);
    line_put(&l, "ms", 2);
    if (e->reason != NULL) {
        line_put(&l, " reason=", 8);
        line_str(&l, e->reason);
    }
    line_put(&l, "\n", 1);
    return line_end(&l);
}

/*
 * The combined format of Apache and nginx, then the duration in seconds
 * and the cancel reason ("-" if none), as nginx users append
 * $request_time: tools that read combined ignore what follows.
 */
static int
format_combined(char *line, size_t size, const struct accesslog_entry *e)
{
    char        when[40], addr[64], user[128], req[2048], epath[1024],
                eq[1024], ref[1024], ua[1024];
    struct tm   tm;
    long        usec;
    const char *q = e->query != NULL ? e->query : "";

    utc_tm(entry_time(e, &usec), &tm);
    strftime(when, sizeof when, "%d/%b/%Y:%H:%M:%S +0000", &tm);
    snprintf(req, sizeof req, "%s %s%s%s %s",
        log_escape(addr, sizeof addr, dash(e->method)),
        log_escape(epath, sizeof epath, e->path != NULL ? e->path : "/"),
        *q != '\0' ? "?" : "", log_escape(eq, sizeof eq, q),
        log_escape(user, sizeof user, dash(e->protocol)));
    return snprintf(line, size, "%s%s - %s [%s] \"%s\" %d %llu \"%s\" \"%s\" "
        "%.3f %s\n", log_journal() ? "<6>" : "",
        log_escape(addr, sizeof addr, dash(e->remote_addr)),
        log_escape(user, sizeof user, dash(e->remote_user)), when, req,
        e->status, (unsigned long long)e->bytes,
        log_escape(ref, sizeof ref, dash(e->referer)),
        log_escape(ua, sizeof ua, dash(e->user_agent)),
        (double)e->duration_ns / 1e9, dash(e->reason));
}

/* Add key: s (valid UTF-8, or null) to o. */
static void
json_str(json_object *o, const char *key, const char *s)
{
    struct buf  b = { NULL, 0, 0 };

    if (s == NULL) {
        json_object_object_add(o, key, NULL);
        return;
    }
    if (utf8_sanitize(&b, s, strlen(s)) == 0)
        json_object_object_add(o, key,
            json_object_new_string_len(b.data != NULL ? b.data : "",
            (int)b.len));
    buf_free(&b);
}

/* One JSON object per line, every string valid UTF-8. */
static int
format_json(char *line, size_t size, const struct accesslog_entry *e)
{
    json_object *o = json_object_new_object();
    long         usec;
    char         when[UTC_STAMP_SIZE], dur[32];
    int          len;
    int64_t      sec;

    if (o == NULL)
        return -1;
    sec = entry_time(e, &usec);
    utc_stamp(when, sec, usec);
    json_object_object_add(o, "time", json_object_new_string(when));
    json_object_object_add(o, "id", json_object_new_uint64(e->id));
    json_str(o, "remote_addr", e->remote_addr);
    json_str(o, "method", e->method);
    json_str(o, "path", e->path);
    json_str(o, "query", e->query != NULL && *e->query != '\0' ?
        e->query : NULL);
    json_str(o, "protocol", e->protocol);
    json_object_object_add(o, "status", json_object_new_int(e->status));
    json_object_object_add(o, "bytes", json_object_new_uint64(e->bytes));
    json_str(o, "referer", e->referer);
    json_str(o, "user_agent", e->user_agent);
    json_str(o, "route", e->route);
    /* Three decimals, not json-c's seventeen digits. */
    json_object_object_add(o, "duration_ms",
        json_object_new_double_s((double)e->duration_ns / 1e6,
        duration_ms(dur, e->duration_ns)));
    json_str(o, "reason", e->reason);
    len = snprintf(line, size, "%s%s\n", log_journal() ? "<6>" : "",
        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
        JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
    return len;
}

static int (*const formats[ACCESSLOG_FORMAT__MAX])(char *, size_t,
    const struct accesslog_entry *) = {
    format_default, format_combined, format_json
};

/*
 * accesslog_write() in format fmt.  A line is formatted on the stack
 * when it fits in LINE_STACK_LEN bytes,
 * else once more into the heap: a worker's stack pages, once touched,
 * stay its own, so a buffer of LINE_MAX_LEN there would cost every worker
 * that logs two more pages (and a page fault each, the first time).
 */
static void
accesslog_write_fmt(const struct accesslog_entry *e, int fmt)
{
    char          small[LINE_STACK_LEN], *line = small, *big = NULL;
    struct shard *sh;
    int           n;
    size_t        len, size = sizeof small;

    n = formats[fmt](line, size, e);
    if (n >= (int)size && (big = malloc(LINE_MAX_LEN)) != NULL) {
        line = big;
        size = LINE_MAX_LEN;
        n = formats[fmt](line, size, e);
    }
    if (n <= 0)
        goto out;
    if ((size_t)n >= size) {            /* cut, but still one line */
        len = size - 1;
        line[len - 1] = '\n';
    } else {
        len = (size_t)n;
    }
    if (!atomic_load_explicit(&buffering, memory_order_relaxed)) {
        xmutex_lock(&dest_mtx);
        dest_write(line, len);
        xmutex_unlock(&dest_mtx);
        goto out;
    }
    sh = shard_get();
    xmutex_lock(&sh->mtx);
    lbuf_put(&sh->access, line, len);
    xmutex_unlock(&sh->mtx);
out:
    free(big);
}

void
accesslog_write(const struct accesslog_entry *e)
{
    if (atomic_load_explicit(&off, memory_order_relaxed))
        return;
    accesslog_write_fmt(e, atomic_load_explicit(&format,
        memory_order_relaxed));
}

void
accesslog_request(const fc_request *req, const char *route, int status,
    uint64_t bytes, uint64_t duration_ns, const char *reason)
{
    struct accesslog_entry  e;
    struct timespec         now;
    int                     fmt;

    if (atomic_load_explicit(&off, memory_order_relaxed))
        return;
    fmt = atomic_load_explicit(&format, memory_order_relaxed);
    clock_gettime(CLOCK_REALTIME, &now);
    memset(&e, 0, sizeof e);
    e.id = fc_request_id(req);
    e.start_real_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec -
        (int64_t)duration_ns;
    e.method = fc_request_method(req);
    e.path = fc_request_path(req);
    e.query = fc_request_param(req, "QUERY_STRING");
    /* Each lookup walks the params: only for the formats that show them. */
    if (fmt != ACCESSLOG_DEFAULT) {
        e.remote_addr = fc_request_param(req, "REMOTE_ADDR");
        e.remote_user = fc_request_param(req, "REMOTE_USER");
        e.protocol = fc_request_param(req, "SERVER_PROTOCOL");
        e.referer = fc_request_param(req, "HTTP_REFERER");
        e.user_agent = fc_request_param(req, "HTTP_USER_AGENT");
    }
    e.route = route;
    e.status = status;
    e.bytes = bytes;
    e.duration_ns = duration_ns;
    e.reason = reason;
    accesslog_write_fmt(&e, fmt);
}
