/* SPDX-License-Identifier: MIT */
/*
 * util.c - helpers shared by every module.  A failed pthread_mutex_lock is
 * a programming error (a destroyed or corrupt mutex): abort at once rather
 * than run on without the lock.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

static void
mutex_fatal(const char *what, int rc)
{
    fprintf(stderr, "fcgi-cancel: fatal: %s: %s\n", what, strerror(rc));
    abort();
}

void
xmutex_init(pthread_mutex_t *m)
{
    int rc;

    if ((rc = pthread_mutex_init(m, NULL)) != 0)
        mutex_fatal("pthread_mutex_init", rc);
}

void
xmutex_destroy(pthread_mutex_t *m)
{
    int rc;

    if ((rc = pthread_mutex_destroy(m)) != 0)
        mutex_fatal("pthread_mutex_destroy", rc);
}

void
xmutex_lock(pthread_mutex_t *m)
{
    int rc;

    if ((rc = pthread_mutex_lock(m)) != 0)
        mutex_fatal("pthread_mutex_lock", rc);
}

void
xmutex_unlock(pthread_mutex_t *m)
{
    int rc;

    if ((rc = pthread_mutex_unlock(m)) != 0)
        mutex_fatal("pthread_mutex_unlock", rc);
}

int
buf_reserve(struct buf *b, size_t extra)
{
    size_t  need, size;
    char   *p;

    if (extra > SIZE_MAX - b->len - 1)
        return -1;
    need = b->len + extra + 1;
    if (need <= b->size)
        return 0;
    size = b->size ? b->size : 256;
    while (size < need)
        size = size > SIZE_MAX / 2 ? need : size * 2;
    if ((p = realloc(b->data, size)) == NULL)
        return -1;
    b->data = p;
    b->size = size;
    return 0;
}

int
buf_add(struct buf *b, const void *p, size_t len)
{
    if (buf_reserve(b, len) != 0)
        return -1;
    if (len > 0)
        memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    size_t  room = b->data != NULL ? b->size - b->len : 0;
    int     n;

    /* Into the room there is, once; again only if it did not fit. */
    va_copy(ap2, ap);
    n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return -1;
    if ((size_t)n >= room) {
        if (buf_reserve(b, (size_t)n) != 0) {
            if (b->data != NULL)
                b->data[b->len] = '\0';
            return -1;
        }
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    }
    b->len += (size_t)n;
    return 0;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int     rc;

    va_start(ap, fmt);
    rc = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void
buf_consume(struct buf *b, size_t n)
{
    if (n == 0)
        return;
    if (n < b->len)
        memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void
buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->size = 0;
}

int
fd_write_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    ssize_t     n;

    while (len > 0) {
        if ((n = write(fd, c, len)) < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct tm *
utc_tm(int64_t sec, struct tm *tm)
{
    int64_t days = sec / 86400, rem = sec % 86400, z, era, doe, yoe, doy;
    int64_t mp, y;
    int     leap;

    if (rem < 0) {
        rem += 86400;
        days--;
    }
    /* Civil date of a day count, in eras of 400 years from 0000-03-01. */
    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);     /* from March 1 */
    mp = (5 * doy + 2) / 153;
    y = yoe + era * 400 + (mp >= 10);
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    memset(tm, 0, sizeof *tm);
    tm->tm_year = (int)(y - 1900);
    tm->tm_mon = (int)(mp < 10 ? mp + 2 : mp - 10);
    tm->tm_mday = (int)(doy - (153 * mp + 2) / 5 + 1);
    tm->tm_yday = (int)(doy >= 306 ? doy - 306 : doy + 59 + leap);
    tm->tm_wday = (int)(((days + 4) % 7 + 7) % 7);     /* 1970-01-01: Thu */
    tm->tm_hour = (int)(rem / 3600);
    tm->tm_min = (int)(rem / 60 % 60);
    tm->tm_sec = (int)(rem % 60);
    tm->tm_zone = "GMT";
    return tm;
}

/* Write the n decimal digits of v (zero-padded) at p. */
static void
digits(char *p, int n, long v)
{
    while (n-- > 0) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

size_t
utc_stamp(char *out, int64_t sec, long usec)
{
    static _Thread_local int64_t    last = INT64_MIN;
    static _Thread_local char       text[20];   /* "YYYY-MM-DDTHH:MM:SS" */
    struct tm                       tm;

    if (sec != last) {
        utc_tm(sec, &tm);
        digits(text, 4, (long)tm.tm_year + 1900);
        text[4] = '-';
        digits(text + 5, 2, tm.tm_mon + 1);
        text[7] = '-';
        digits(text + 8, 2, tm.tm_mday);
        text[10] = 'T';
        digits(text + 11, 2, tm.tm_hour);
        text[13] = ':';
        digits(text + 14, 2, tm.tm_min);
        text[16] = ':';
        digits(text + 17, 2, tm.tm_sec);
        last = sec;
    }
    memcpy(out, text, 19);
    out[19] = '.';
    digits(out + 20, 6, usec);
    out[26] = 'Z';
    out[27] = '\0';
    return 27;
}

void
timespec_after_ms(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int
parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long  v;

    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

void
strv_free(char **v)
{
    size_t i;

    for (i = 0; v != NULL && v[i] != NULL; i++)
        free(v[i]);
    free(v);
}
