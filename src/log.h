/* SPDX-License-Identifier: MIT */
/*
 * log.h - the server log, on stderr (a file, or the journal).
 */
#ifndef LOG_H
#define LOG_H

#include <stdatomic.h>
#include <stddef.h>

enum log_level {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN,
    LOG_LEVEL_INFO,
    LOG_LEVEL_DEBUG,
    LOG_LEVEL__MAX
};

/* The level in force; main.c changes it at start-up and on a reload. */
extern _Atomic int log_level;

/* Parse "error", "warn", "info" or "debug"; return the level or -1. */
int     log_level_parse(const char *name);

/* Emit one line at level; with_errno appends ": strerror(errno)". */
void    log_emit(int level, int with_errno, const char *fmt, ...)
            __attribute__((format(printf, 3, 4)));

/*
 * Return once every line logged so far is written (lines that a thread
 * logged while another was writing wait in a queue; see log.c).
 */
void    log_flush(void);

/*
 * Look whether stderr is the systemd journal's stream (JOURNAL_STREAM);
 * call once at start-up, before other threads log.
 */
void    log_init(void);

/* Return 1 if lines carry "<N>" priorities for the journal, else 0. */
int     log_journal(void);

/*
 * Copy src into dst (of size bytes) with control characters, quotes,
 * backslashes and bytes >= 0x7f written as \xHH, truncated with "..." if it
 * does not fit; return dst.  For strings that come from clients.
 */
char   *log_escape(char *dst, size_t size, const char *src);

/* The level is checked before anything is formatted. */
#define log_errorx(...) log_emit(LOG_LEVEL_ERROR, 0, __VA_ARGS__)
#define log_error(...)  log_emit(LOG_LEVEL_ERROR, 1, __VA_ARGS__)
#define log_warnx(...)  do { if (log_level >= LOG_LEVEL_WARN) \
    log_emit(LOG_LEVEL_WARN, 0, __VA_ARGS__); } while (0)
#define log_warn(...)   do { if (log_level >= LOG_LEVEL_WARN) \
    log_emit(LOG_LEVEL_WARN, 1, __VA_ARGS__); } while (0)
#define log_info(...)   do { if (log_level >= LOG_LEVEL_INFO) \
    log_emit(LOG_LEVEL_INFO, 0, __VA_ARGS__); } while (0)
#define log_debug(...)  do { if (log_level >= LOG_LEVEL_DEBUG) \
    log_emit(LOG_LEVEL_DEBUG, 0, __VA_ARGS__); } while (0)

#endif /* LOG_H */
