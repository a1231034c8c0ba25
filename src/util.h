/* SPDX-License-Identifier: MIT */
/*
 * util.h - small helpers shared by every module: mutexes that abort on
 * misuse, a growable byte buffer, the monotonic clock and a strict number
 * parser.
 */
#ifndef UTIL_H
#define UTIL_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define nitems(a) (sizeof(a) / sizeof((a)[0]))

void    xmutex_init(pthread_mutex_t *m);
void    xmutex_destroy(pthread_mutex_t *m);
void    xmutex_lock(pthread_mutex_t *m);
void    xmutex_unlock(pthread_mutex_t *m);

/* A growable byte buffer; always NUL-terminated after data[len]. */
struct buf {
    char   *data;
    size_t  len;
    size_t  size;
};

/* Make room for extra more bytes (and the NUL); 0, or -1 if out of memory. */
int     buf_reserve(struct buf *b, size_t extra);
/* Append len bytes; return 0, or -1 on allocation failure. */
int     buf_add(struct buf *b, const void *p, size_t len);
/* Append formatted text; return 0, or -1 on failure. */
int     buf_printf(struct buf *b, const char *fmt, ...)
            __attribute__((format(printf, 2, 3)));
int     buf_vprintf(struct buf *b, const char *fmt, va_list ap)
            __attribute__((format(printf, 2, 0)));
/* Drop the first n bytes (n <= len), keeping the rest and the memory. */
void    buf_consume(struct buf *b, size_t n);
/* Free the buffer's memory and empty it. */
void    buf_free(struct buf *b);

/*
 * Write len bytes to the blocking descriptor fd, going on after short
 * writes and EINTR; return 0, or -1 (errno set) on another error.
 */
int     fd_write_all(int fd, const void *p, size_t len);

/* Return CLOCK_MONOTONIC nanoseconds now: the clock of every deadline. */
uint64_t now_ns(void);
/* Free a NULL-terminated string vector and its strings (NULL is fine). */
void    strv_free(char **v);

struct timespec;
struct tm;

/*
 * Fill *tm with the UTC time of sec, as gmtime_r() does but without its
 * lock: glibc's gmtime_r() takes the time zone's lock, which thousands of
 * threads that log at once queue on.  Return tm.
 */
struct tm *utc_tm(int64_t sec, struct tm *tm);

/* Bytes of utc_stamp()'s text, its NUL included. */
#define UTC_STAMP_SIZE  28

/*
 * Write sec and usec as "YYYY-MM-DDTHH:MM:SS.uuuuuuZ" (UTC) and a NUL into
 * out, which has UTC_STAMP_SIZE bytes.  Each thread keeps the text of the
 * last second it wrote, so a line of the same second costs no date
 * arithmetic and no strftime().  Return the length, 27.
 */
size_t  utc_stamp(char *out, int64_t sec, long usec);

/* Set *ts to CLOCK_MONOTONIC now plus ms (for pthread_cond_timedwait). */
void    timespec_after_ms(struct timespec *ts, long ms);

/* Parse a decimal integer in [min, max] from all of s; return 0 or -1. */
int     parse_long(const char *s, long min, long max, long *out);

#endif /* UTIL_H */
