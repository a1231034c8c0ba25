/* SPDX-License-Identifier: MIT */
/*
 * pgwatch.c - the PostgreSQL poller of bench/run's table 9: it watches the
 * backends of one application_name in pg_stat_activity through ONE libpq
 * connection, a prepared statement run every INTERVAL_US, and prints each
 * change.
 *
 *   pgwatch [-i INTERVAL_US] [-t SEC] CONNINFO APPLICATION_NAME
 *       Print "REALTIME_MS PID STATE" when the state of a backend of that
 *       application_name changes ("active", "idle", "idle in
 *       transaction", ...; "none" when the backend is gone), its first
 *       poll included, REALTIME_MS being CLOCK_REALTIME read just after
 *       the answer came (comparable with bench/hold's closed_at_ms).
 *       Starts a poll every INTERVAL_US (default 1000; at once after a
 *       poll that took longer) until SEC seconds have passed (default
 *       600) or SIGTERM/SIGINT, then prints "polls=N period_ms=P
 *       mean_poll_ms=M max_poll_ms=X" (P: the mean time from one poll to
 *       the next; M and X: how long a poll took, from sending it to its
 *       answer: with P, the resolution of the times printed).
 *
 * A poll is one round trip on the kept connection: no new connection, no
 * new backend, no psql per poll.  Each statement is its own transaction,
 * so each sees a fresh copy of the backends' status.
 *
 * Exit status: 0 ok, 1 error (the connection failed), 2 usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define CLI_PROG "pgwatch"
#include "cli.h"

#define PGWATCH_MAX 1024    /* backends followed at once */

/* A backend seen: its pid, its last state, whether this poll saw it. */
struct backend {
    long    pid;
    char    state[32];
    int     seen;
};

static struct backend   known[PGWATCH_MAX];
static int              nknown;

/* Print the usage line and exit 2. */
static void __attribute__((noreturn))
usage(void)
{
    fprintf(stderr,
        "usage: pgwatch [-i INTERVAL_US] [-t SEC] CONNINFO APPLICATION_NAME\n");
    exit(2);
}

/* Sleep until the CLOCK_MONOTONIC time at_ns (or a signal stops the loop). */
static void
sleep_until(uint64_t at_ns)
{
    struct timespec ts = { (time_t)(at_ns / 1000000000u),
                           (long)(at_ns % 1000000000u) };

    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
        EINTR && !cli_stop)
        ;
}

/* Record a backend's state seen at now_ms; print it if new or changed. */
static void
pgwatch_row(double now_ms, long pid, const char *state)
{
    struct backend *b;
    int             i;

    for (i = 0; i < nknown && known[i].pid != pid; i++)
        ;
    if (i == nknown) {
        if (nknown == PGWATCH_MAX)
            return;
        nknown++;
        known[i].pid = pid;
        known[i].state[0] = '\0';
    }
    b = &known[i];
    b->seen = 1;
    if (strcmp(b->state, state) != 0) {
        printf("%.3f %ld %s\n", now_ms, pid, state);
        snprintf(b->state, sizeof b->state, "%s", state);
    }
}

/* Print "none" for the backends this poll did not see, and forget them;
 * clear the others' seen flag. */
static void
pgwatch_gone(double now_ms)
{
    int i, k;

    for (i = k = 0; i < nknown; i++) {
        if (!known[i].seen) {
            printf("%.3f %ld none\n", now_ms, known[i].pid);
            continue;
        }
        known[i].seen = 0;
        known[k++] = known[i];
    }
    nknown = k;
}

int
main(int argc, char **argv)
{
    const char      *values[1];
    long             interval_us = 1000, secs = 600, polls = 0;
    uint64_t         start, end, next, t0, took, sum = 0, max = 0;
    PGresult        *res;
    PGconn          *conn;
    double           now;
    int              c, i;

    while ((c = getopt(argc, argv, "i:t:")) != -1) {
        if (c == 'i')
            interval_us = cli_num(optarg, 0, 1000000);
        else if (c == 't')
            secs = cli_num(optarg, 1, 86400);
        else
            usage();
    }
    if (argc - optind != 2)
        usage();
    values[0] = argv[optind + 1];

    cli_catch_stop();

    conn = PQconnectdb(argv[optind]);
    if (PQstatus(conn) != CONNECTION_OK) {
        fprintf(stderr, "pgwatch: %s", PQerrorMessage(conn));
        PQfinish(conn);
        return 1;
    }
    res = PQprepare(conn, "state",
        "select pid, coalesce(state, 'none') from pg_stat_activity "
        "where application_name = $1", 1, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "pgwatch: %s", PQerrorMessage(conn));
        PQclear(res);
        PQfinish(conn);
        return 1;
    }
    PQclear(res);

    start = next = cli_mono_ns();
    end = start + (uint64_t)secs * 1000000000u;
    while (!cli_stop && (t0 = cli_mono_ns()) < end) {
        res = PQexecPrepared(conn, "state", 1, values, NULL, NULL, 0);
        took = cli_mono_ns() - t0;
        now = cli_real_ms();
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            fprintf(stderr, "pgwatch: %s", PQerrorMessage(conn));
            PQclear(res);
            PQfinish(conn);
            return 1;
        }
        polls++;
        sum += took;
        if (took > max)
            max = took;
        for (i = 0; i < PQntuples(res); i++)
            pgwatch_row(now, strtol(PQgetvalue(res, i, 0), NULL, 10),
                PQgetvalue(res, i, 1));
        pgwatch_gone(now);
        fflush(stdout);
        PQclear(res);
        /* The next poll INTERVAL_US after this one started (at once if
         * this one took longer). */
        next += (uint64_t)interval_us * 1000u;
        if (next < cli_mono_ns())
            next = cli_mono_ns();
        else
            sleep_until(next);
    }
    printf("polls=%ld period_ms=%.3f mean_poll_ms=%.3f max_poll_ms=%.3f\n",
        polls, polls ? (double)(cli_mono_ns() - start) /
        (double)polls / 1e6 : 0.0,
        polls ? (double)sum / (double)polls / 1e6 : 0.0, (double)max / 1e6);
    PQfinish(conn);
    return 0;
}
