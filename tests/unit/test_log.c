/* SPDX-License-Identifier: MIT */
/*
 * test_log.c - unit tests of the escaping of client strings for the logs
 * (log_escape() in log.c): which bytes become \xHH, and the cut with "..."
 * at every buffer size, each checked in a heap buffer of exactly that size;
 * the length of the lines log_emit() writes, short, long (formatted on the
 * heap) and cut; the queue of lines logged while another thread writes
 * (stderr a full pipe: nobody else waits, nothing is lost, each thread's
 * lines in order, an error line returns only once written); and the
 * lock-free UTC calendar of the log lines' stamps (utc_tm() in util.c)
 * against the C library's gmtime_r().
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "log.h"
#include "unit.h"
#include "util.h"

/* Escape src into a heap buffer of exactly size bytes (1 if 0); caller frees. */
static char *
escape_exact(size_t size, const char *src)
{
    char *dst = malloc(size > 0 ? size : 1);

    if (dst != NULL) {
        memset(dst, '#', size > 0 ? size : 1);
        log_escape(dst, size, src);
    }
    return dst;
}

/* A string that fits is copied whole: never cut, never "...". */
static void
test_log_escape_fits(void)
{
    char   buf[16];
    size_t size;

    for (size = 4; size <= 6; size++)
        CU_ASSERT_STRING_EQUAL(log_escape(buf, size, "abc"), "abc");
    CU_ASSERT_STRING_EQUAL(log_escape(buf, 5, "\n"), "\\x0a");
    CU_ASSERT_STRING_EQUAL(log_escape(buf, 5, "abcde"), "a...");
}

/* Control characters, quotes, backslashes and high bytes become \xHH. */
static void
test_log_escape_chars(void)
{
    char buf[128];

    CU_ASSERT_STRING_EQUAL(log_escape(buf, sizeof buf, "plain /a?b=c 1~"),
        "plain /a?b=c 1~");
    CU_ASSERT_STRING_EQUAL(log_escape(buf, sizeof buf, "a\nb\rc\td\x01\x1f"),
        "a\\x0ab\\x0dc\\x09d\\x01\\x1f");
    CU_ASSERT_STRING_EQUAL(log_escape(buf, sizeof buf, "say \"hi\""),
        "say \\x22hi\\x22");
    CU_ASSERT_STRING_EQUAL(log_escape(buf, sizeof buf, "back\\slash"),
        "back\\x5cslash");
    CU_ASSERT_STRING_EQUAL(log_escape(buf, sizeof buf, "\x7f\x80\xff\xc3\xa9"),
        "\\x7f\\x80\\xff\\xc3\\xa9");
    CU_ASSERT_STRING_EQUAL(log_escape(buf, sizeof buf, ""), "");
    CU_ASSERT_STRING_EQUAL(log_escape(buf, sizeof buf, NULL), "");
    CU_ASSERT_PTR_EQUAL(log_escape(buf, sizeof buf, "x"), buf);
}

/*
 * Every size from 0 to 40 against a long input, each in a heap buffer of
 * exactly that size (ASan): never a byte outside it, always terminated, a
 * prefix of the full escape cut between two escapes, with "..." when cut.
 */
static void
test_log_escape_truncation(void)
{
    static const char src[] = "GET \"/a\x01\x02\" \\ \n\xff tail of the "
        "request line that is much longer than forty bytes";
    char              full[sizeof src * 4], boundary[sizeof src * 4];
    const char       *p;
    size_t            size, flen, plen, o;
    int               bad_nul = 0, bad_prefix = 0, bad_dots = 0;
    int               bad_cut = 0, bad_whole = 0, bad_zero = 0;

    log_escape(full, sizeof full, src);
    flen = strlen(full);
    CU_ASSERT_FATAL(flen > 40);
    /* Where a cut may fall: between the escapes of two source bytes. */
    memset(boundary, 0, sizeof boundary);
    for (p = src, o = 0; *p != '\0'; p++) {
        boundary[o] = 1;
        o += (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') ? 1 : 4;
    }
    boundary[o] = 1;
    CU_ASSERT_EQUAL_FATAL(o, flen);

    for (size = 0; size <= 40; size++) {
        char *out = escape_exact(size, src);

        CU_ASSERT_PTR_NOT_NULL_FATAL(out);
        if (size == 0) {
            bad_zero += out[0] != '#';      /* nothing written at all */
            free(out);
            continue;
        }
        if (memchr(out, '\0', size) == NULL) {
            bad_nul++;
            free(out);
            continue;
        }
        plen = strlen(out);
        if (size >= 4) {
            if (plen < 3 || strcmp(out + plen - 3, "...") != 0) {
                bad_dots++;
                free(out);
                continue;
            }
            plen -= 3;
        }
        if (strncmp(out, full, plen) != 0)
            bad_prefix++;
        else if (!boundary[plen])
            bad_cut++;
        free(out);
    }

    /* Room for all of it and the reserve for "...": not cut at all. */
    for (size = flen + 4; size <= flen + 8; size++) {
        char *out = escape_exact(size, src);

        CU_ASSERT_PTR_NOT_NULL_FATAL(out);
        if (strcmp(out, full) != 0)
            bad_whole++;
        free(out);
    }
    CU_ASSERT_EQUAL(bad_zero, 0);
    CU_ASSERT_EQUAL(bad_nul, 0);
    CU_ASSERT_EQUAL(bad_dots, 0);
    CU_ASSERT_EQUAL(bad_prefix, 0);
    CU_ASSERT_EQUAL(bad_cut, 0);
    CU_ASSERT_EQUAL(bad_whole, 0);
}

/*
 * Return the length of the line log_emit() writes for an info message of
 * len bytes (its last byte '\n' if it ends in one; -1 if none came), with
 * stderr sent to a file meanwhile.
 */
static long
emitted(size_t len, int *newline, int *whole)
{
    char    *msg = malloc(len + 1), *got = malloc(8192);
    FILE    *f = tmpfile();
    int      saved = dup(STDERR_FILENO);
    long     n = -1;

    *newline = *whole = 0;
    if (msg != NULL && got != NULL && f != NULL && saved >= 0) {
        memset(msg, 'm', len);
        msg[len] = '\0';
        dup2(fileno(f), STDERR_FILENO);
        log_emit(LOG_LEVEL_INFO, 0, "%s", msg);
        dup2(saved, STDERR_FILENO);
        rewind(f);
        n = (long)fread(got, 1, 8192, f);
        *newline = n > 0 && got[n - 1] == '\n';
        *whole = n > (long)len && strstr(got, msg) != NULL;
    }
    if (saved >= 0)
        close(saved);
    if (f != NULL)
        fclose(f);
    free(msg);
    free(got);
    return n;
}

/* A line of any length is written whole up to 4 KiB (around 512 bytes,
 * where it leaves the stack for the heap, too), and cut there. */
static void
test_log_line_length(void)
{
    static const size_t lens[] = { 10, 400, 476, 477, 478, 479, 480, 600, 4000 };
    size_t  i;
    long    n;
    int     newline, whole;

    for (i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        n = emitted(lens[i], &newline, &whole);
        CU_ASSERT(n > (long)lens[i] && n < (long)lens[i] + 64);
        CU_ASSERT(newline);
        CU_ASSERT(whole);
    }
    n = emitted(5000, &newline, &whole);
    CU_ASSERT_EQUAL(n, 4095);
    CU_ASSERT(newline);
    CU_ASSERT(!whole);
}

/* Return 1 if utc_tm() and gmtime_r() agree on every field at sec. */
static int
utc_agrees(time_t sec)
{
    struct tm a, b;

    utc_tm((int64_t)sec, &a);
    gmtime_r(&sec, &b);
    return a.tm_year == b.tm_year && a.tm_mon == b.tm_mon &&
        a.tm_mday == b.tm_mday && a.tm_hour == b.tm_hour &&
        a.tm_min == b.tm_min && a.tm_sec == b.tm_sec &&
        a.tm_wday == b.tm_wday && a.tm_yday == b.tm_yday;
}

/*
 * utc_tm() is gmtime_r(): each second around the edges that bite (the
 * epoch, leap days, 2000 and 2100, before 1970), and one instant in every
 * 7 h 1 min 13 s over 1900-2200.
 */
static void
test_utc_tm(void)
{
    static const int64_t edges[] = {
        0, 951782400, 951868800, 4107542400, 4107456000, 1709164800,
        -86400, -2208988800, 1796601600,
    };
    struct tm   tm;
    int64_t     t;
    size_t      i;
    int         bad = 0, d;

    for (i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        for (d = -2; d <= 2; d++)
            bad += !utc_agrees((time_t)(edges[i] + d));
    }
    for (t = -2208988800LL; t < 7258118400LL; t += 25273)
        bad += !utc_agrees((time_t)t);
    CU_ASSERT_EQUAL(bad, 0);
    utc_tm(951825600, &tm);             /* 2000-02-29T12:00:00Z */
    CU_ASSERT_EQUAL(tm.tm_year, 100);
    CU_ASSERT_EQUAL(tm.tm_mon, 1);
    CU_ASSERT_EQUAL(tm.tm_mday, 29);
    CU_ASSERT_EQUAL(tm.tm_hour, 12);
}

/* Return 1 if utc_stamp() writes what strftime() and "%06ld" write. */
static int
stamp_agrees(time_t sec, long usec)
{
    struct tm   tm;
    char        a[UTC_STAMP_SIZE], b[64];
    size_t      n;

    gmtime_r(&sec, &tm);
    n = strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(b + n, sizeof b - n, ".%06ldZ", usec);
    return utc_stamp(a, (int64_t)sec, usec) == 27 && strcmp(a, b) == 0;
}

/*
 * utc_stamp() is strftime()'s text: the same second twice in a row (its
 * kept text), the next second, a second far away and back, the edges of
 * microseconds, one instant in every 7 h 1 min 13 s over 1970-2200.
 */
static void
test_utc_stamp(void)
{
    int64_t t;
    int     bad = 0;

    bad += !stamp_agrees(951825599, 999999);    /* 2000-02-29T11:59:59 */
    bad += !stamp_agrees(951825599, 0);
    bad += !stamp_agrees(951825600, 1);
    bad += !stamp_agrees(4107542400, 500000);   /* 2100-03-01 */
    bad += !stamp_agrees(951825600, 123456);
    bad += !stamp_agrees(0, 0);
    for (t = 0; t < 7258118400LL; t += 25273)
        bad += !stamp_agrees((time_t)t, (long)(t % 1000000));
    CU_ASSERT_EQUAL(bad, 0);
}

/* buf_printf() appends in the room there is, and grows when it must:
 * short pieces across the first allocation, then one of 5,000 bytes. */
static void
test_buf_printf(void)
{
    struct buf  b = { NULL, 0, 0 };
    char        want[6000];
    size_t      n = 0;
    int         i;

    for (i = 0; i < 100; i++) {
        CU_ASSERT_EQUAL_FATAL(buf_printf(&b, "%d,", i), 0);
        n += (size_t)snprintf(want + n, sizeof want - n, "%d,", i);
    }
    CU_ASSERT_EQUAL(b.len, n);
    CU_ASSERT_EQUAL(strcmp(b.data, want), 0);
    CU_ASSERT_EQUAL_FATAL(buf_printf(&b, "%5000s", "x"), 0);
    CU_ASSERT_EQUAL(b.len, n + 5000);
    CU_ASSERT_EQUAL(strncmp(b.data, want, n), 0);
    CU_ASSERT_EQUAL(b.data[b.len - 1], 'x');
    CU_ASSERT_EQUAL(b.data[b.len], '\0');
    CU_ASSERT_EQUAL(strlen(b.data), b.len);
    buf_free(&b);
}

/* ---- the queue of lines (log.c, WRITING) ---------------------------- */

#define Q_THREADS   4
#define Q_LINES     200

static _Atomic int q_done;          /* threads that logged all their lines */
static _Atomic int q_error_state;   /* 1: about to log, 2: returned */

static void *
q_logger(void *arg)
{
    int t = (int)(long)arg, i;

    for (i = 0; i < Q_LINES; i++)
        log_emit(LOG_LEVEL_INFO, 0, "q t%d l%d", t, i);
    atomic_fetch_add(&q_done, 1);
    return NULL;
}

static void *
q_error_logger(void *arg)
{
    (void)arg;
    atomic_store(&q_error_state, 1);
    log_emit(LOG_LEVEL_ERROR, 0, "q error line");
    atomic_store(&q_error_state, 2);
    return NULL;
}

/* Wait up to ms for *v to reach at least want; return 1 if it did. */
static int
q_wait(_Atomic int *v, int want, int ms)
{
    struct timespec tick = { 0, 1000000 };

    while (atomic_load(v) < want && ms-- > 0)
        nanosleep(&tick, NULL);
    return atomic_load(v) >= want;
}

/*
 * stderr is a pipe that nobody reads, full: the first thread to log blocks
 * in its write, and the others' lines wait in the queue while they go on
 * (before the queue, each blocked in its own write).  An error line waits
 * until it is written.  Once the pipe is read, every line comes out whole,
 * each thread's in the order it logged them.
 */
static void
test_log_queue(void)
{
    pthread_t   th[Q_THREADS], eth;
    int         p[2], saved, fl, t, i, next[Q_THREADS] = { 0 };
    int         bad = 0, lines = 0, errors = 0;
    size_t      filler = 0, len = 0, size = 1 << 20;
    char       *got = malloc(size), chunk[4096], *line, *end;
    ssize_t     n;

    CU_ASSERT_FATAL(got != NULL);
    CU_ASSERT_FATAL(pipe(p) == 0);
    fcntl(p[1], F_SETPIPE_SZ, 4096);
    /* Fill the pipe. */
    fl = fcntl(p[1], F_GETFL);
    fcntl(p[1], F_SETFL, fl | O_NONBLOCK);
    memset(chunk, 'x', sizeof chunk);
    while ((n = write(p[1], chunk, sizeof chunk)) > 0 ||
        (n < 0 && errno == EINTR))
        filler += n > 0 ? (size_t)n : 0;
    fcntl(p[1], F_SETFL, fl);
    saved = dup(STDERR_FILENO);
    dup2(p[1], STDERR_FILENO);
    atomic_store(&q_done, 0);
    atomic_store(&q_error_state, 0);
    for (t = 0; t < Q_THREADS; t++)
        CU_ASSERT_FATAL(pthread_create(&th[t], NULL, q_logger,
            (void *)(long)t) == 0);
    /* All but the writer are through, with the pipe still full. */
    CU_ASSERT(q_wait(&q_done, Q_THREADS - 1, 10000));
    CU_ASSERT_EQUAL(atomic_load(&q_done), Q_THREADS - 1);
    CU_ASSERT_FATAL(pthread_create(&eth, NULL, q_error_logger, NULL) == 0);
    CU_ASSERT(q_wait(&q_error_state, 1, 10000));
    {
        struct timespec settle = { 0, 100000000 };  /* it cannot return */

        nanosleep(&settle, NULL);
    }
    CU_ASSERT_EQUAL(atomic_load(&q_error_state), 1);
    /* Read it all: the filler, Q_THREADS * Q_LINES lines, the error. */
    fl = fcntl(p[0], F_GETFL);
    fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
    for (i = 0; i < 20000; i++) {
        struct timespec tick = { 0, 1000000 };

        while (len < size - 1 && (n = read(p[0], got + len,
            size - 1 - len)) > 0)
            len += (size_t)n;
        if (atomic_load(&q_done) == Q_THREADS &&
            atomic_load(&q_error_state) == 2)
            break;
        nanosleep(&tick, NULL);
    }
    for (t = 0; t < Q_THREADS; t++)
        pthread_join(th[t], NULL);
    pthread_join(eth, NULL);
    log_flush();
    while ((n = read(p[0], got + len, size - 1 - len)) > 0)
        len += (size_t)n;
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(p[0]);
    close(p[1]);
    got[len] = '\0';
    CU_ASSERT_FATAL(len > filler);
    for (i = 0; i < (int)filler; i++)
        bad += got[i] != 'x';
    for (line = got + filler; *line != '\0'; line = end + 1) {
        int tt, ll;
        char *q;

        if ((end = strchr(line, '\n')) == NULL) {
            bad++;                      /* a line without its end */
            break;
        }
        *end = '\0';
        if (strstr(line, " error q error line") != NULL) {
            errors++;
            continue;
        }
        if ((q = strstr(line, " info q t")) == NULL ||
            sscanf(q, " info q t%d l%d", &tt, &ll) != 2 ||
            tt < 0 || tt >= Q_THREADS || ll != next[tt]) {
            bad++;
            continue;
        }
        next[tt]++;
        lines++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(lines, Q_THREADS * Q_LINES);
    CU_ASSERT_EQUAL(errors, 1);
    free(got);
}

static CU_TestInfo log_tests[] = {
    { "log_escape characters", test_log_escape_chars },
    { "log_escape: what fits is not cut", test_log_escape_fits },
    { "log_escape truncation, sizes 0..40", test_log_escape_truncation },
    { "log_emit: lines whole up to 4 KiB, cut there", test_log_line_length },
    { "utc_tm agrees with gmtime_r", test_utc_tm },
    { "utc_stamp agrees with strftime", test_utc_stamp },
    { "buf_printf appends and grows", test_buf_printf },
    { "log_emit: lines queued while another thread writes", test_log_queue },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "log escaping", NULL, NULL, NULL, NULL, log_tests },
    CU_SUITE_INFO_NULL
};

int
main(void)
{
    return unit_run("test_log", suites, 60);
}
