/* SPDX-License-Identifier: MIT */
/*
 * notify.h - readiness, status and watchdog messages for systemd (or any
 * service manager that speaks the sd_notify datagram protocol), without
 * libsystemd.  Every call is a silent no-op when the process was not
 * started with NOTIFY_SOCKET.  The main thread alone calls these: the
 * module keeps its state in plain statics.
 */
#ifndef NOTIFY_H
#define NOTIFY_H

#include <stdint.h>

/*
 * Read NOTIFY_SOCKET ("/path" or "@abstract"), WATCHDOG_USEC and
 * WATCHDOG_PID, remove them (with LISTEN_* they must not reach children),
 * and open the datagram socket.  Return 1 if messages will be sent, 0 if
 * there is no socket (not under a service manager), -1 if NOTIFY_SOCKET
 * is set but unusable (a warning was logged; later calls are no-ops).
 */
int         notify_init(void);

/*
 * Send one datagram, fmt formatted: newline-separated VAR=VALUE
 * assignments.  Return 1 if it was sent, 0 if there is no socket, -1 with
 * errno set if it could not be sent (the receiver's queue stayed full for
 * 100 ms, or it is gone).
 */
int         notify_send(const char *fmt, ...)
                __attribute__((format(printf, 1, 2)));

/* "READY=1": the pool is running and accepting.  As notify_send(). */
int         notify_ready(void);

/* "STOPPING=1": draining has begun.  As notify_send(). */
int         notify_stopping(void);

/* "STATUS=<text>", one line (newlines become blanks).  As notify_send(). */
int         notify_status(const char *fmt, ...)
                __attribute__((format(printf, 1, 2)));

/* "WATCHDOG=1".  As notify_send(). */
int         notify_watchdog(void);

/*
 * Return the watchdog interval the manager asked for (WATCHDOG_USEC, for
 * this process if WATCHDOG_PID is set), in microseconds; 0 if there is no
 * watchdog or no socket to ping it on.
 */
uint64_t    notify_watchdog_usec(void);

/*
 * Send what is due now: WATCHDOG=1 every half watchdog interval, and once
 * a second the one-line summary of the counters,
 *   STATUS=<state>: N in flight, M cancelled (client_gone A, aborted B,
 *   write_error C, deadline D, shutdown E)
 * state being e.g. "serving" or "draining".  Cheap when nothing is due.
 */
void        notify_tick(const char *state);

/*
 * Return how long the caller may sleep before notify_tick() has something
 * due, in milliseconds: from 1 to 1000.
 */
long        notify_tick_ms(void);

#endif /* NOTIFY_H */
