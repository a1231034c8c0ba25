/* SPDX-License-Identifier: MIT */
/*
 * log.c - one line per event, written with a single write(2) so that lines
 * of different threads never interleave.  Each line starts with a UTC time
 * with microseconds (tests and benchmarks compute latencies from it), then
 * the level.  When stderr is the systemd journal's stream (JOURNAL_STREAM
 * names its device and inode, see systemd.exec(5)), a line starts instead
 * with the syslog priority, "<3>" to "<7>" (sd-daemon(3)), and carries no
 * time of its own: the journal stamps it, and `journalctl -p` filters it.
 */
#include <errno.h>
#include <fcntl.h>
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
 * Write one line to fd.  It is formatted on the stack when it fits in
 * LOG_STACK_LINE bytes, else once more into the heap (LOG_MAX_LINE, cut
 * there): a worker's stack pages, once touched, stay its own, so a
 * buffer of LOG_MAX_LINE there would cost every worker that logs a page
 * more (and a page fault, the first time).
 */
static void
log_vline(int fd, const char *prefix, const char *tag, int err,
    const char *fmt, va_list ap)
{
    char            small[LOG_STACK_LINE], *line = small, *big = NULL;
    struct timeval  tv;
    va_list         again;
    size_t          n;
    int             cut;

    gettimeofday(&tv, NULL);            /* once, for both formats */
    va_copy(again, ap);
    n = log_format(small, sizeof small, &tv, prefix, tag, err, fmt, ap,
        &cut);
    if (cut && (big = malloc(LOG_MAX_LINE)) != NULL) {
        line = big;
        n = log_format(big, LOG_MAX_LINE, &tv, prefix, tag, err, fmt,
            again, &cut);
    }
    va_end(again);
    if (write(fd, line, n) < 0) {
        /* nowhere left to report it */
    }
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
    log_vline(STDERR_FILENO, level_prefix[level], level_names[level], err,
        fmt, ap);
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
