/* SPDX-License-Identifier: MIT */
/*
 * oslimits.c - the operating system's limits that stand between the server
 * and its --workers: descriptors (one per connection in flight),
 * threads (one per worker: RLIMIT_NPROC, kernel.threads-max,
 * kernel.pid_max, the cgroup's pids.max, systemd's TasksMax), and memory
 * mappings (two per worker stack, its guard page included:
 * vm.max_map_count).  At start-up the soft descriptor limit is raised to
 * the hard one, and each limit still too low is named in a warning with
 * the value to raise it to, before the pool starts its threads (where a
 * limit would otherwise show only as "cannot start worker N").
 *
 * One more thing scales with the workers: the kernel's futex hash.  Since
 * Linux 6.16 a threaded process gets a hash of its own, sized for its
 * CPUs (16 buckets on a small machine), not for its threads; with 10,000
 * workers asleep on their tokens, ~600 waiters share a bucket, and every
 * wake-up (a token's cancel, a contended mutex) walks them under the
 * bucket's lock.  So the hash is given a slot per worker (PR_FUTEX_HASH);
 * an older kernel, which refuses the call, has one hash for the whole
 * system (256 buckets per CPU) instead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "oslimits.h"
#include "log.h"

/* Descriptors the server holds besides its connections (listener, epoll
 * sets, timers, log files, a job's pipes): a margin. */
#define LIMITS_FD_SPARE         64
/* Mappings besides the worker stacks (the binary, libraries, malloc). */
#define LIMITS_MAP_SPARE        1024
/* Threads besides the workers (main, watcher, log flusher, spare). */
#define LIMITS_THREAD_SPARE     8
/* Bounds of the futex hash's slots (the kernel's own floor and ceiling). */
#define LIMITS_FUTEX_SLOTS_MIN  16
#define LIMITS_FUTEX_SLOTS_MAX  131072

/* prctl(2) of Linux 6.16, absent from older headers. */
#ifndef PR_FUTEX_HASH
#define PR_FUTEX_HASH           78
#define PR_FUTEX_HASH_SET_SLOTS 1
#endif

/* Read one number from a file of /proc or /sys; -1 if none ("max": -1). */
static long long
oslimits_read(const char *path)
{
    char        line[64], *end;
    FILE       *f;
    long long   v = -1;

    if ((f = fopen(path, "r")) == NULL)
        return -1;
    if (fgets(line, sizeof line, f) != NULL) {
        errno = 0;
        v = strtoll(line, &end, 10);
        if (errno != 0 || end == line || v < 0)
            v = -1;
    }
    fclose(f);
    return v;
}

/* Return the pids.max of this process's cgroup (v2), or -1 for none. */
static long long
oslimits_cgroup_pids(void)
{
    char        line[512], path[600];
    FILE       *f;
    long long   v = -1;

    if ((f = fopen("/proc/self/cgroup", "r")) == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "0::", 3) != 0)
            continue;
        line[strcspn(line, "\n")] = '\0';
        snprintf(path, sizeof path, "/sys/fs/cgroup%s/pids.max", line + 3);
        v = oslimits_read(path);
        break;
    }
    fclose(f);
    return v;
}

/* Give the process's futex hash a slot per thread (see the top). */
static void
oslimits_futex_hash(long workers)
{
    unsigned long slots = LIMITS_FUTEX_SLOTS_MIN;

    while (slots < (unsigned long)workers + LIMITS_THREAD_SPARE &&
        slots < LIMITS_FUTEX_SLOTS_MAX)
        slots *= 2;
    if (prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, slots, 0UL, 0UL) != 0)
        log_debug("limits: futex hash of %lu slots not set (a kernel "
            "before 6.16 hashes all processes together)", slots);
}

int
oslimits_check(long workers)
{
    struct rlimit   rl;
    long long       need, v;
    int             n = 0;

    /* Descriptors: raise the soft limit as far as the hard one allows. */
    need = workers + LIMITS_FD_SPARE;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                log_warn("limits: raising RLIMIT_NOFILE");
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        if (rl.rlim_cur != RLIM_INFINITY && (long long)rl.rlim_cur < need) {
            log_warnx("limits: RLIMIT_NOFILE is %llu: fewer connections than "
                "%ld workers can be served at once; raise it to %lld or more "
                "(ulimit -n, systemd LimitNOFILE=)",
                (unsigned long long)rl.rlim_cur, workers, need);
            n++;
        }
    }
    /* Threads. */
    need = workers + LIMITS_THREAD_SPARE;
    if (geteuid() != 0 && getrlimit(RLIMIT_NPROC, &rl) == 0 &&
        rl.rlim_cur != RLIM_INFINITY && (long long)rl.rlim_cur < need) {
        log_warnx("limits: RLIMIT_NPROC is %llu (threads of the user, all "
            "its processes): not enough for %ld workers; raise it above %lld "
            "(ulimit -u, systemd LimitNPROC=)",
            (unsigned long long)rl.rlim_cur, workers, need);
        n++;
    }
    if ((v = oslimits_read("/proc/sys/kernel/threads-max")) >= 0 && v < need) {
        log_warnx("limits: kernel.threads-max is %lld: not enough for %ld "
            "workers; raise it above %lld (sysctl)", v, workers, need);
        n++;
    }
    if ((v = oslimits_read("/proc/sys/kernel/pid_max")) >= 0 && v < need) {
        log_warnx("limits: kernel.pid_max is %lld: not enough for %ld "
            "workers (one id per thread); raise it above %lld (sysctl)",
            v, workers, need);
        n++;
    }
    if ((v = oslimits_cgroup_pids()) >= 0 && v < need) {
        log_warnx("limits: the cgroup's pids.max is %lld: not enough for %ld "
            "workers; raise it above %lld (systemd TasksMax=)",
            v, workers, need);
        n++;
    }
    /* Mappings: a worker's stack and its guard page. */
    need = 2 * workers + LIMITS_MAP_SPARE;
    if ((v = oslimits_read("/proc/sys/vm/max_map_count")) >= 0 && v < need) {
        log_warnx("limits: vm.max_map_count is %lld: not enough for %ld "
            "worker stacks (two mappings each); raise it to %lld or more "
            "(sysctl)", v, workers, need);
        n++;
    }
    oslimits_futex_hash(workers);
    return n;
}
