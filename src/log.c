/* SPDX-License-Identifier: MIT */
/*
 * log.c - one line per event, on stderr.  Each line starts with a UTC time
 * with microseconds (tests and benchmarks compute latencies from it), then
 * the level.  When stderr is the systemd journal's stream (JOURNAL_STREAM
 * names its device and inode, see systemd.exec(5)), a line starts instead
 * with the syslog priority, "<3>" to "<7>" (sd-daemon(3)), and carries no
 * time of its own: the journal stamps it, and `journalctl -p` filters it.
 *
 * WRITING
 *
 * One thread at a time writes, whole lines, so lines never interleave.  A
 * thread that logs while none is writing writes its line itself, at once.
 * A thread that logs while another is writing copies its line to the
 * queue and goes on: the writer writes the queue in one write(2) after
 * its own, and again until the queue is empty.  So when thousands of jobs
 * end together (a front end gone), their lines cost a few writes rather
 * than one each, and no thread sleeps on the file's position lock; and
 * when stderr blocks (a pipe nobody reads), only the writer waits, until
 * the queue holds LOG_QUEUE_MAX bytes.  Lines keep the order in which
 * they were queued.  An error or warning line waits until it is written
 * (the process may exit next), and log_flush() waits for every queued
 * line.  A writer that has written LOG_ROUNDS batches hands the writing
 * to the next thread that logs, which waits for the batch in progress
 * (one write, as before this queue), so no request stays a writer for
 * long under a steady stream of lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define LOG_STACK_LINE  512     /* most lines: formatted on the stack */
#define LOG_MAX_LINE    4096    /* longer lines are cut */
#define LOG_QUEUE_MIN   ((size_t)16 * 1024)     /* kept between bursts */
#define LOG_QUEUE_MAX   ((size_t)1024 * 1024)   /* past this, loggers wait */
#define LOG_ROUNDS      8       /* batches a writer writes before it hands over */

_Atomic int log_level = LOG_LEVEL_INFO;

static const char *const level_names[LOG_LEVEL__MAX] = {
    "error", "warn", "info", "debug"
};

/* The syslog priority of each level, as the journal reads "<N>". */
static const char *const level_prefix[LOG_LEVEL__MAX] = {
    "<3>", "<4>", "<6>", "<7>"
};

/* 1 when stderr is the journal's stream; set by log_init(). */
static int journal;

void
log_init(void)
{
    const char         *js = getenv("JOURNAL_STREAM");
    struct stat         st;
    unsigned long long  dev, ino;
    char               *end;

    journal = 0;
    if (js == NULL || fstat(STDERR_FILENO, &st) != 0)
        return;
    errno = 0;
    dev = strtoull(js, &end, 10);
    if (errno != 0 || end == js || *end != ':')
        return;
    js = end + 1;
    ino = strtoull(js, &end, 10);
    if (errno != 0 || end == js || *end != '\0')
        return;
    journal = (unsigned long long)st.st_dev == dev &&
        (unsigned long long)st.st_ino == ino;
}

int
log_journal(void)
{
    return journal;
}

int
log_level_parse(const char *name)
{
    int i;

    for (i = 0; i < LOG_LEVEL__MAX; i++) {
        if (strcmp(name, level_names[i]) == 0)
            return i;
    }
    return -1;
}

/*
 * Format one line into line[size]: the time tv (or the journal's prefix),
 * the tag, the message and strerror(err); cut to fit, newline-ended.
 * Return its length (at most size - 1); *cut says whether it was cut.
 */
static size_t
log_format(char *line, size_t size, const struct timeval *tv,
    const char *prefix, const char *tag, int err, const char *fmt,
    va_list ap, int *cut)
{
    char        stamp[UTC_STAMP_SIZE];
    size_t      n;
    int         r;

    if (journal) {
        r = snprintf(line, size, "%s%s ", prefix, tag);
        n = (size_t)r;
    } else {
        utc_stamp(stamp, tv->tv_sec, (long)tv->tv_usec);
        r = snprintf(line, size, "%s %s ", stamp, tag);
        n = (size_t)r;
    }
    r = vsnprintf(line + n, size - n, fmt, ap);
    if (r < 0)
        r = 0;
    *cut = (size_t)r >= size - n;
    n = *cut ? size - 1 : n + (size_t)r;
    if (err != 0 && n < size - 1) {
        r = snprintf(line + n, size - n, ": %s", strerror(err));
        n = (size_t)r >= size - n ? size - 1 : n + (size_t)r;
    }
    if (n >= size - 1) {                /* no room for the newline */
        n = size - 2;
        *cut = 1;
    }
    line[n++] = '\n';
    return n;
}

/*
 * The queue (see WRITING).  Everything is protected by out_mtx; out_cv is
 * broadcast when a batch is written and when the writer leaves.
 */
static pthread_mutex_t  out_mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t   out_cv = PTHREAD_COND_INITIALIZER;
static struct buf       out_q;          /* lines queued, not yet taken */
static struct buf       out_spare;      /* the batch buffer, between uses */
static int              out_busy;       /* a thread is writing */
static int              out_rounds;     /* batches the writer has written */
static int              out_claim;      /* a logger waits to take over */
static int              out_waiters;    /* threads in out_cv */
static uint64_t         out_taken;      /* batches taken by a writer */
static uint64_t         out_done;       /* batches written */

/* Wait on out_cv (out_mtx held). */
static void
out_wait(void)
{
    out_waiters++;
    pthread_cond_wait(&out_cv, &out_mtx);
    out_waiters--;
}

/*
 * Be the writer (out_mtx held, out_busy set): write the queue, batch after
 * batch, until it is empty or, past LOG_ROUNDS batches, a logger claims
 * the writing.  Return with out_mtx held.
 */
static void
out_drain(void)
{
    struct buf  b;

    while (out_q.len > 0) {
        if (out_rounds >= LOG_ROUNDS && out_claim) {
            out_claim = 0;              /* the claimer is the writer now */
            pthread_cond_broadcast(&out_cv);
            return;
        }
        /* Take the queue as a batch; the spare becomes the queue. */
        b = out_q;
        out_q = out_spare;
        out_spare = (struct buf){ NULL, 0, 0 };
        out_taken++;
        xmutex_unlock(&out_mtx);
        /* A failure: nowhere left to report it. */
        (void)fd_write_all(STDERR_FILENO, b.data, b.len);
        xmutex_lock(&out_mtx);
        out_rounds++;
        out_done++;
        /* Keep one buffer spare, and none larger than LOG_QUEUE_MIN once
         * a burst is over. */
        if (out_spare.data == NULL && b.size <= LOG_QUEUE_MIN) {
            b.len = 0;
            b.data[0] = '\0';
            out_spare = b;
        } else {
            buf_free(&b);
        }
        if (out_waiters > 0)
            pthread_cond_broadcast(&out_cv);
    }
    out_busy = 0;
    if (out_waiters > 0)
        pthread_cond_broadcast(&out_cv);
}

/* Write line[n], or queue it behind the writer's (see WRITING); with
 * sync, return once it is written. */
static void
out_line(const char *line, size_t n, int sync)
{
    uint64_t    batch;

    xmutex_lock(&out_mtx);
    while (out_busy) {
        if (out_q.len + n > LOG_QUEUE_MAX) {
            out_wait();                 /* stderr is slow: wait for room */
            continue;
        }
        if (buf_add(&out_q, line, n) != 0) {
            out_wait();                 /* no memory: wait for the writer */
            continue;
        }
        batch = out_taken + 1;          /* the next batch taken has it */
        if (out_rounds >= LOG_ROUNDS && !out_claim) {
            /* The writer has written long enough: take over once it ends
             * the batch in progress. */
            out_claim = 1;
            while (out_busy && out_claim)
                out_wait();
            out_claim = 0;              /* handed over, or no writer left */
            out_busy = 1;
            out_rounds = 0;
            out_drain();
        } else {
            while (sync && out_done < batch)
                out_wait();
        }
        xmutex_unlock(&out_mtx);
        return;
    }
    out_busy = 1;
    out_rounds = 0;
    xmutex_unlock(&out_mtx);
    (void)fd_write_all(STDERR_FILENO, line, n);
    xmutex_lock(&out_mtx);
    out_drain();
    xmutex_unlock(&out_mtx);
}

void
log_flush(void)
{
    xmutex_lock(&out_mtx);
    while (out_busy)
        out_wait();
    xmutex_unlock(&out_mtx);
}

/*
 * Write one line at level.  It is formatted on the stack when it fits in
 * LOG_STACK_LINE bytes, else once more into the heap (LOG_MAX_LINE, cut
 * there): a worker's stack pages, once touched, stay its own, so a
 * buffer of LOG_MAX_LINE there would cost every worker that logs a page
 * more (and a page fault, the first time).
 */
static void
log_vline(int level, int err, const char *fmt, va_list ap)
{
    char            small[LOG_STACK_LINE], *line = small, *big = NULL;
    struct timeval  tv;
    va_list         again;
    size_t          n;
    int             cut;

    gettimeofday(&tv, NULL);            /* once, for both formats */
    va_copy(again, ap);
    n = log_format(small, sizeof small, &tv, level_prefix[level],
        level_names[level], err, fmt, ap, &cut);
    if (cut && (big = malloc(LOG_MAX_LINE)) != NULL) {
        line = big;
        n = log_format(big, LOG_MAX_LINE, &tv, level_prefix[level],
            level_names[level], err, fmt, again, &cut);
    }
    va_end(again);
    out_line(line, n, level <= LOG_LEVEL_WARN);
    free(big);
}

void
log_emit(int level, int with_errno, const char *fmt, ...)
{
    va_list ap;
    int     err = with_errno ? errno : 0;

    if (level > log_level)
        return;
    va_start(ap, fmt);
    log_vline(level, err, fmt, ap);
    va_end(ap);
}

/* Return 1 if log_escape() writes c as it is, 0 if as \xHH. */
static int
log_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
}

char *
log_escape(char *dst, size_t size, const char *src)
{
    static const char hex[] = "0123456789abcdef";
    const char       *p;
    size_t            o = 0, full = 0, room;
    unsigned char     c;

    if (size == 0)
        return dst;
    if (src == NULL)
        src = "";
    for (p = src; *p != '\0'; p++)
        full += log_plain((unsigned char)*p) ? 1 : 4;
    /* All of it if it fits; else what fits before "..." (if that fits). */
    room = full < size ? full : size >= 4 ? size - 4 : 0;
    for (; (c = (unsigned char)*src) != '\0'; src++) {
        if (o + (log_plain(c) ? 1 : 4) > room)
            break;
        if (log_plain(c)) {
            dst[o++] = (char)c;
        } else {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    if (full >= size && size >= 4) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
    return dst;
}
