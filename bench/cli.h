/* SPDX-License-Identifier: MIT */
/*
 * cli.h - what the command-line helpers of bench/ (hold.c, pgwatch.c)
 * share: number arguments, a stop flag that SIGTERM and SIGINT set, the
 * clocks.  Header-only, static inline: each helper is one .c file that
 * bench/lib.sh's bench_cc compiles alone.  A helper defines CLI_PROG (its
 * name, for messages) before including it.
 */
#ifndef BENCH_CLI_H
#define BENCH_CLI_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef CLI_PROG
#error "define CLI_PROG before including cli.h"
#endif

/* Set by SIGTERM and SIGINT once cli_catch_stop() ran: end what runs. */
static volatile sig_atomic_t cli_stop;

/* The handler of SIGTERM and SIGINT: sets cli_stop. */
static inline void
cli_on_signal(int sig)
{
    (void)sig;
    cli_stop = 1;
}

/* Have SIGTERM and SIGINT set cli_stop instead of ending the process. */
static inline void
cli_catch_stop(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cli_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
}

/* s as a number from min to max; otherwise a message and exit 2. */
static inline long
cli_num(const char *s, long min, long max)
{
    char *end;
    long  v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *s == '\0' || *end != '\0' || v < min || v > max) {
        fprintf(stderr, CLI_PROG ": not a number from %ld to %ld: %s\n",
            min, max, s);
        exit(2);
    }
    return v;
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t
cli_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* CLOCK_REALTIME in milliseconds since the epoch (with a fraction). */
static inline double
cli_real_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

#endif
