/* SPDX-License-Identifier: MIT */
/*
 * notify.c - the sd_notify protocol, spoken directly: each message is one
 * datagram of newline-separated VAR=VALUE assignments sent to the AF_UNIX
 * socket named by NOTIFY_SOCKET, a file system path ("/run/...") or an
 * abstract name ("@..." for a leading NUL byte).  No libsystemd: the
 * protocol is small, stable and documented in sd_notify(3), and the
 * server then runs the same with or without it.
 *
 * The server sends READY=1 once the pool accepts, STATUS= with a summary
 * of the counters every second, WATCHDOG=1 every half WATCHDOG_USEC, and
 * STOPPING=1 when it starts draining.  Sends never block for long: a full
 * receiver queue is retried for at most NOTIFY_SEND_MS, then the message
 * is dropped (a lost STATUS or WATCHDOG is harmless; the next one follows).
 *
 * Only the main thread calls this module (it owns the signals and the
 * service manager's view of the process): no locking.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"
#include "status.h"
#include "util.h"

#define NOTIFY_SEND_MS      100         /* retrying a full queue, at most */
#define NOTIFY_RETRY_MS     5           /* between two tries */
#define NOTIFY_STATUS_MS    1000        /* between two STATUS= messages */
#define NOTIFY_MSG_MAX      2048        /* one datagram */
#define NOTIFY_WD_MAX_USEC  86400000000ull  /* longer watchdogs: a day */

static int                  notify_fd = -1;
static struct sockaddr_un   notify_addr;
static socklen_t            notify_addrlen;
static uint64_t             wd_usec;        /* 0: no watchdog */
static uint64_t             next_wd_ns;     /* CLOCK_MONOTONIC */
static uint64_t             next_status_ns; /* CLOCK_MONOTONIC */

/* Parse a positive decimal from all of s into *out; 0 or -1. */
static int
parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;

    if (s == NULL || *s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (v == 0)
        return -1;
    *out = v;
    return 0;
}

/* Read the watchdog variables: the interval if it is meant for us. */
static uint64_t
watchdog_from_env(void)
{
    const char *pid = getenv("WATCHDOG_PID");
    uint64_t    usec, p;

    if (parse_u64(getenv("WATCHDOG_USEC"), &usec) != 0)
        return 0;
    if (pid != NULL && (parse_u64(pid, &p) != 0 || p != (uint64_t)getpid()))
        return 0;
    /* Beyond a day, pinging every half day is as good (and cannot
     * overflow the nanoseconds). */
    return usec > NOTIFY_WD_MAX_USEC ? NOTIFY_WD_MAX_USEC : usec;
}

int
notify_init(void)
{
    const char *env = getenv("NOTIFY_SOCKET");
    char        name[sizeof notify_addr.sun_path + 1], esc[256];
    size_t      len;
    uint64_t    usec = watchdog_from_env();

    if (notify_fd >= 0) {
        close(notify_fd);
        notify_fd = -1;
    }
    wd_usec = 0;
    name[0] = '\0';
    if (env != NULL) {
        /* Copied: unsetenv() may free what getenv() returned. */
        len = strlen(env);
        if (len >= sizeof name)
            len = sizeof name - 1;
        memcpy(name, env, len);
        name[len] = '\0';
    }
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    if (env == NULL || name[0] == '\0')
        return 0;

    len = strlen(name);
    if ((name[0] != '/' && name[0] != '@') || len < 2 ||
        len >= sizeof notify_addr.sun_path) {
        log_warnx("NOTIFY_SOCKET=\"%s\": not an absolute socket path or an "
            "@abstract name that fits; not notifying",
            log_escape(esc, sizeof esc, name));
        return -1;
    }
    memset(&notify_addr, 0, sizeof notify_addr);
    notify_addr.sun_family = AF_UNIX;
    memcpy(notify_addr.sun_path, name, len);
    if (name[0] == '@') {
        /* Abstract: a leading NUL, and no trailing NUL in the length. */
        notify_addr.sun_path[0] = '\0';
        notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
            len);
    } else {
        notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
            len + 1);
    }
    if ((notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
        log_warn("NOTIFY_SOCKET: socket");
        return -1;
    }
    wd_usec = usec;
    next_wd_ns = 0;
    next_status_ns = 0;
    return 1;
}

/* Send len bytes of msg, retrying a full queue for NOTIFY_SEND_MS. */
static int
notify_write(const char *msg, size_t len)
{
    struct timespec pause = { 0, NOTIFY_RETRY_MS * 1000000L };
    uint64_t        end = now_ns() + NOTIFY_SEND_MS * 1000000ull;

    for (;;) {
        if (sendto(notify_fd, msg, len, MSG_DONTWAIT | MSG_NOSIGNAL,
            (const struct sockaddr *)&notify_addr, notify_addrlen) >= 0)
            return 1;
        if (errno == EINTR)
            continue;
        if ((errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) ||
            now_ns() >= end)
            return -1;
        nanosleep(&pause, NULL);
    }
}

/* Format into buf (size bytes); return the length, or -1 if too long. */
static int __attribute__((format(printf, 3, 0)))
notify_format(char *buf, size_t size, const char *fmt, va_list ap)
{
    int n = vsnprintf(buf, size, fmt, ap);

    if (n < 0 || (size_t)n >= size) {
        errno = EMSGSIZE;
        return -1;
    }
    return n;
}

int
notify_send(const char *fmt, ...)
{
    char    msg[NOTIFY_MSG_MAX];
    va_list ap;
    int     n;

    if (notify_fd < 0)
        return 0;
    va_start(ap, fmt);
    n = notify_format(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    return notify_write(msg, (size_t)n);
}

int
notify_ready(void)
{
    return notify_send("READY=1");
}

int
notify_stopping(void)
{
    next_status_ns = 0;     /* the next tick says "draining" at once */
    return notify_send("STOPPING=1");
}

int
notify_watchdog(void)
{
    return notify_send("WATCHDOG=1");
}

int
notify_status(const char *fmt, ...)
{
    char    text[NOTIFY_MSG_MAX - 8], *p;
    va_list ap;

    if (notify_fd < 0)
        return 0;
    va_start(ap, fmt);
    /* Too long: sent cut, a status line is better cut than missing. */
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    for (p = text; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    return notify_send("STATUS=%s", text);
}

uint64_t
notify_watchdog_usec(void)
{
    return notify_fd >= 0 ? wd_usec : 0;
}

/* Send the one-line summary of the counters, after state. */
static void
notify_summary(const char *state)
{
    char        reasons[512];
    size_t      off = 0;
    int         i, n;

    reasons[0] = '\0';
    for (i = FC_REASON_NONE + 1; i < FC_REASON__MAX; i++) {
        n = snprintf(reasons + off, sizeof reasons - off, "%s%s %" PRIu64,
            off == 0 ? "" : ", ", fc_reason_name((enum fc_reason)i),
            atomic_load_explicit(&stats.by_reason[i], memory_order_relaxed));
        if (n < 0 || (size_t)n >= sizeof reasons - off)
            break;
        off += (size_t)n;
    }
    notify_status("%s: %" PRId64 " in flight, %" PRIu64 " cancelled (%s)",
        state, atomic_load_explicit(&stats.in_flight, memory_order_relaxed),
        atomic_load_explicit(&stats.cancelled, memory_order_relaxed),
        reasons);
}

void
notify_tick(const char *state)
{
    uint64_t now;

    if (notify_fd < 0)
        return;
    now = now_ns();
    if (wd_usec > 0 && now >= next_wd_ns) {
        notify_watchdog();
        next_wd_ns = now + wd_usec * 1000u / 2;
    }
    if (now >= next_status_ns) {
        notify_summary(state);
        next_status_ns = now + NOTIFY_STATUS_MS * 1000000ull;
    }
}

long
notify_tick_ms(void)
{
    uint64_t now, next;
    long     ms;

    if (notify_fd < 0)
        return NOTIFY_STATUS_MS;
    now = now_ns();
    next = next_status_ns;
    if (wd_usec > 0 && next_wd_ns < next)
        next = next_wd_ns;
    if (next <= now)
        return 1;
    ms = (long)((next - now + 999999u) / 1000000u);
    return ms > NOTIFY_STATUS_MS ? NOTIFY_STATUS_MS : ms;
}
