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

static void
log_vline(int fd, const char *prefix, const char *tag, int err,
    const char *fmt, va_list ap)
{
    char            line[4096];
    struct timeval  tv;
    struct tm       tm;
    size_t          n;
    int             r;

    if (journal) {
        r = snprintf(line, sizeof line, "%s%s ", prefix, tag);
        n = (size_t)r;
    } else {
        gettimeofday(&tv, NULL);
        utc_tm(tv.tv_sec, &tm);
        n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
        r = snprintf(line + n, sizeof line - n, ".%06ldZ %s ",
            (long)tv.tv_usec, tag);
        n += (size_t)r;
    }
    r = vsnprintf(line + n, sizeof line - n, fmt, ap);
    if (r < 0)
        r = 0;
    n = (size_t)r >= sizeof line - n ? sizeof line - 1 : n + (size_t)r;
    if (err != 0 && n < sizeof line - 1) {
        r = snprintf(line + n, sizeof line - n, ": %s", strerror(err));
        n = (size_t)r >= sizeof line - n ? sizeof line - 1 : n + (size_t)r;
    }
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    if (write(fd, line, n) < 0) {
        /* nowhere left to report it */
    }
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
