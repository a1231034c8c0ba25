/* SPDX-License-Identifier: MIT */
/*
 * hold.c - the HTTP load and measuring helper of bench/run.  One binary,
 * four commands; HOST is an IPv4 address, PATH may hold one "%d", replaced
 * by the request's index (from 0), e.g. "/cancel_event?task_param=h-%d".
 * Requests are "GET PATH HTTP/1.1" with "Connection: close".
 *
 *   hold hold [-t SEC] N HOST PORT PATH
 *       Open N connections, send one request on each, print "sent N", and
 *       keep them open (reading and dropping whatever comes back) until
 *       SEC seconds have passed (default 600) or SIGTERM/SIGINT; then
 *       close them all (FIN) and print "held=N answered=A closed_by_peer=C"
 *       (A: connections that got response bytes, C: the peer closed).
 *
 *   hold abandon [-c CLOSE_MS] [-g GAP_MS] COUNT HOST PORT PATH
 *       COUNT times, one after another: connect, send, wait CLOSE_MS
 *       (default 50) reading and dropping response bytes, close, print
 *       "INDEX closed_at_ms=EPOCH_MS early=0|1 close_ms=MS" (CLOCK_REALTIME,
 *       read just before close(); early=1: response bytes came before the
 *       close; close_ms: how long close() took, clock to clock: more than
 *       a fraction of a millisecond means this client was preempted there),
 *       then wait GAP_MS (default 20).
 *
 *   hold waste [-c CLOSE_MS] [-w WINDOW_MS] [-b BASE_MS] HOST PORT PATH PID...
 *       CPU burnt by the process trees of the PIDs (every descendant, even
 *       one that lives between two samples only partly: each process's
 *       threads' sum_exec_runtime from /proc/P/task/T/schedstat, as last
 *       seen; sampled every SAMPLE_MS):
 *         idle rate over BASE_MS (default 1000) before the request; the
 *         request is sent; sampled just before the close at CLOSE_MS
 *         (default 1500); the connection is closed; sampled until
 *         WINDOW_MS (default 4500) later.  Prints "during_ms=D
 *         after_ms=A raw_after_ms=R idle_ms_per_s=I early=0|1" where
 *         A = R - I * WINDOW_MS / 1000 (CPU burnt after the close, idle
 *         rate removed), D the CPU between send and close, early=1 if
 *         response bytes came before the close.
 *
 *   hold cpu PID...
 *       Print "tree_ns=X busy_ns=Y": the CPU of the process trees of the
 *       PIDs (the live threads' sum_exec_runtime, plus cutime + cstime:
 *       the children they reaped) and of the whole machine (non-idle time of
 *       /proc/stat), both since boot; two samples give the share of the
 *       machine that something else used meanwhile.
 *
 * Exit status: 0 ok, 1 error, 2 usage.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLI_PROG "hold"
#include "cli.h"

#define SAMPLE_MS 25     /* the waste sampler's interval */

static void __attribute__((noreturn))
usage(void)
{
    fprintf(stderr,
        "usage: hold hold [-t SEC] N HOST PORT PATH\n"
        "       hold abandon [-c CLOSE_MS] [-g GAP_MS] COUNT HOST PORT PATH\n"
        "       hold waste [-c CLOSE_MS] [-w WINDOW_MS] [-b BASE_MS] "
        "HOST PORT PATH PID...\n"
        "       hold cpu PID...\n");
    exit(2);
}

static void
sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !cli_stop)
        ;
}

/* ---- HTTP ------------------------------------------------------------ */

static struct sockaddr_in target;

static void
set_target(const char *host, const char *port)
{
    memset(&target, 0, sizeof target);
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)cli_num(port, 1, 65535));
    if (inet_pton(AF_INET, host, &target.sin_addr) != 1) {
        fprintf(stderr, "hold: not an IPv4 address: %s\n", host);
        exit(2);
    }
}

/* Connect and send the request for index i; the socket, or -1. */
static int
open_request(const char *path_fmt, long i)
{
    char    path[1024], req[1400];
    int     fd, n, one = 1;
    ssize_t w;
    size_t  off = 0;

    /* path_fmt holds at most one %d: checked by check_path(). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(path, sizeof path, path_fmt, (int)i);
#pragma GCC diagnostic pop
    n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: bench\r\n"
        "Connection: close\r\n\r\n", path);
    if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        perror("hold: socket");
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&target, sizeof target) != 0) {
        perror("hold: connect");
        close(fd);
        return -1;
    }
    while (off < (size_t)n) {
        if ((w = write(fd, req + off, (size_t)n - off)) < 0) {
            if (errno == EINTR)
                continue;
            perror("hold: write");
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    return fd;
}

/* A path format may hold one "%d" and no other conversion. */
static void
check_path(const char *p)
{
    int conv = 0;

    if (*p != '/')
        usage();
    for (; *p != '\0'; p++) {
        if (*p != '%')
            continue;
        if (p[1] == 'd' && conv == 0) {
            conv = 1;
            p++;
        } else {
            fprintf(stderr, "hold: PATH may hold one %%d and no other %%\n");
            exit(2);
        }
    }
}

/* Read what is there; 1 if bytes came, 0 if nothing, -1 on EOF/error. */
static int
drain(int fd)
{
    char    buf[4096];
    ssize_t r;
    int     got = 0;

    for (;;) {
        r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (r > 0) {
            got = 1;
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return got;
        return -1;
    }
}

static void
raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int
cmd_hold(int argc, char **argv)
{
    struct pollfd  *pfd;
    char           *answered, *eof;
    long            n, i, secs = 600, nans = 0, neof = 0, open_n;
    uint64_t        end;
    int             c, r;

    while ((c = getopt(argc, argv, "+t:")) != -1) {
        if (c == 't')
            secs = cli_num(optarg, 1, 86400);
        else
            usage();
    }
    if (argc - optind != 4)
        usage();
    n = cli_num(argv[optind], 1, 100000);
    set_target(argv[optind + 1], argv[optind + 2]);
    check_path(argv[optind + 3]);
    raise_nofile();
    pfd = calloc((size_t)n, sizeof *pfd);
    answered = calloc((size_t)n, 1);
    eof = calloc((size_t)n, 1);
    if (pfd == NULL || answered == NULL || eof == NULL) {
        free(pfd);
        free(answered);
        free(eof);
        return 1;
    }
    for (i = 0; i < n && !cli_stop; i++) {
        if ((pfd[i].fd = open_request(argv[optind + 3], i)) < 0) {
            while (i-- > 0)
                close(pfd[i].fd);
            free(pfd);
            free(answered);
            free(eof);
            return 1;
        }
        pfd[i].events = POLLIN;
    }
    open_n = i;
    printf("sent %ld\n", open_n);
    fflush(stdout);
    end = cli_mono_ns() + (uint64_t)secs * 1000000000u;
    while (!cli_stop && cli_mono_ns() < end) {
        if (poll(pfd, (nfds_t)open_n, 100) <= 0)
            continue;
        for (i = 0; i < open_n; i++) {
            if (pfd[i].fd < 0 || pfd[i].revents == 0)
                continue;
            r = drain(pfd[i].fd);
            if (r > 0 && !answered[i]) {
                answered[i] = 1;
                nans++;
            }
            if (r < 0) {
                if (!eof[i]) {
                    eof[i] = 1;
                    neof++;
                }
                close(pfd[i].fd);
                pfd[i].fd = -1;     /* poll() ignores it */
            }
        }
    }
    for (i = 0; i < open_n; i++) {
        if (pfd[i].fd >= 0)
            close(pfd[i].fd);
    }
    printf("held=%ld answered=%ld closed_by_peer=%ld\n", open_n, nans, neof);
    free(pfd);
    free(answered);
    free(eof);
    return 0;
}

/* Wait ms on fd, dropping response bytes; 1 if some came. */
static int
wait_on(int fd, long ms)
{
    struct pollfd   p = { fd, POLLIN, 0 };
    uint64_t        end = cli_mono_ns() + (uint64_t)ms * 1000000u, now;
    int             got = 0, r, open_ = 1;

    while ((now = cli_mono_ns()) < end) {
        if (!open_) {
            sleep_ms((long)((end - now) / 1000000u) + 1);
            break;
        }
        if (poll(&p, 1, (int)((end - now + 999999u) / 1000000u)) <= 0)
            continue;
        r = drain(fd);
        if (r > 0)
            got = 1;
        if (r < 0)
            open_ = 0;
    }
    return got;
}

static int
cmd_abandon(int argc, char **argv)
{
    long    count, close_ms = 50, gap_ms = 20, i;
    double  t, t2;
    int     c, fd, early;

    while ((c = getopt(argc, argv, "+c:g:")) != -1) {
        if (c == 'c')
            close_ms = cli_num(optarg, 0, 600000);
        else if (c == 'g')
            gap_ms = cli_num(optarg, 0, 600000);
        else
            usage();
    }
    if (argc - optind != 4)
        usage();
    count = cli_num(argv[optind], 1, 1000000);
    set_target(argv[optind + 1], argv[optind + 2]);
    check_path(argv[optind + 3]);
    for (i = 0; i < count && !cli_stop; i++) {
        if ((fd = open_request(argv[optind + 3], i)) < 0)
            return 1;
        early = wait_on(fd, close_ms);
        t = cli_real_ms();
        close(fd);
        t2 = cli_real_ms();
        printf("%ld closed_at_ms=%.3f early=%d close_ms=%.3f\n", i, t, early,
            t2 - t);
        fflush(stdout);
        sleep_ms(gap_ms);
    }
    return 0;
}

/* ---- CPU accounting -------------------------------------------------- */

static long clk_tck;

/* State, parent, cutime + cstime (ns) of pid from /proc/pid/stat. */
static int
proc_stat(long pid, long *ppid, uint64_t *child_ns)
{
    char                path[64], buf[1024], *p;
    unsigned long long  cut = 0, cst = 0;
    FILE               *f;
    size_t              n;
    int                 field;

    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: skip to the last
     * ')'.  Then: state(3) ppid(4) ... cutime(16) cstime(17). */
    if ((p = strrchr(buf, ')')) == NULL)
        return -1;
    p += 2;
    for (field = 3; *p != '\0' && field <= 17; field++) {
        if (field == 4)
            *ppid = strtol(p, NULL, 10);
        else if (field == 16)
            cut = strtoull(p, NULL, 10);
        else if (field == 17)
            cst = strtoull(p, NULL, 10);
        while (*p != '\0' && *p != ' ')
            p++;
        while (*p == ' ')
            p++;
    }
    if (field <= 17)
        return -1;
    *child_ns = (uint64_t)(cut + cst) * (1000000000u / (uint64_t)clk_tck);
    return 0;
}

/* Sum of sum_exec_runtime of the live threads of pid. */
static uint64_t
threads_ns(long pid)
{
    char                path[96];
    struct dirent      *de;
    char                line[128];
    uint64_t            sum = 0;
    DIR                *d;
    FILE               *f;

    snprintf(path, sizeof path, "/proc/%ld/task", pid);
    if ((d = opendir(path)) == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%ld/task/%.20s/schedstat", pid,
            de->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        if (fgets(line, sizeof line, f) != NULL)
            sum += strtoull(line, NULL, 10);
        fclose(f);
    }
    closedir(d);
    return sum;
}

/* A process of the trees: its pid and its reaped children's CPU. */
struct proc {
    long        pid, ppid;
    uint64_t    child_ns;
};

/* The live processes of the trees of the roots; their number in *n. */
static struct proc *
tree_procs(const long *roots, int nroots, size_t *n)
{
    struct proc     *v = NULL, *nv, e;
    struct dirent   *de;
    size_t           size = 0, i, j, k;
    char            *in;
    int              changed, r;
    DIR             *d;

    *n = 0;
    if ((d = opendir("/proc")) == NULL)
        return NULL;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        e.pid = strtol(de->d_name, NULL, 10);
        if (proc_stat(e.pid, &e.ppid, &e.child_ns) != 0)
            continue;
        if (*n == size) {
            size = size ? size * 2 : 512;
            if ((nv = realloc(v, size * sizeof *v)) == NULL)
                break;
            v = nv;
        }
        v[(*n)++] = e;
    }
    closedir(d);
    if ((in = calloc(*n + 1, 1)) == NULL) {
        free(v);
        *n = 0;
        return NULL;
    }
    for (i = 0; i < *n; i++) {
        for (r = 0; r < nroots; r++) {
            if (v[i].pid == roots[r])
                in[i] = 1;
        }
    }
    do {
        changed = 0;
        for (i = 0; i < *n; i++) {
            if (in[i])
                continue;
            for (j = 0; j < *n; j++) {
                if (in[j] && v[j].pid == v[i].ppid) {
                    in[i] = 1;
                    changed = 1;
                    break;
                }
            }
        }
    } while (changed);
    for (i = k = 0; i < *n; i++) {
        if (in[i])
            v[k++] = v[i];
    }
    *n = k;
    free(in);
    return v;
}

/* CPU of the trees (live threads + reaped children), in ns. */
static uint64_t
tree_ns(const long *roots, int nroots)
{
    struct proc *v;
    uint64_t     sum = 0;
    size_t       n, i;

    v = tree_procs(roots, nroots, &n);
    for (i = 0; i < n; i++)
        sum += threads_ns(v[i].pid) + v[i].child_ns;
    free(v);
    return sum;
}

/*
 * A sampler that follows every process of the trees, even one that exits
 * between two samples and is reaped by a parent that does not account for
 * it (fcgiwrap ignores SIGCHLD, so its CGI children's CPU never reaches
 * its cutime): the CPU of each process's threads, as last seen, from the
 * moment the sampler starts.  Sampled every few ms; what a process burns
 * after its last sample is missed (at most one interval).
 */
struct seen {
    long        pid;
    uint64_t    base;       /* its CPU at the start (0 if born later) */
    uint64_t    last;       /* its CPU at the last sample */
};

struct sampler {
    struct seen *v;
    size_t       n, size;
    int          started;
};

static void
sampler_sample(struct sampler *s, const long *roots, int nroots)
{
    struct proc *p;
    struct seen *ns;
    size_t       n, i, j;
    uint64_t     cpu;

    p = tree_procs(roots, nroots, &n);
    for (i = 0; i < n; i++) {
        cpu = threads_ns(p[i].pid);
        for (j = 0; j < s->n && s->v[j].pid != p[i].pid; j++)
            ;
        if (j == s->n) {
            if (s->n == s->size) {
                s->size = s->size ? s->size * 2 : 64;
                if ((ns = realloc(s->v, s->size * sizeof *ns)) == NULL)
                    exit(1);
                s->v = ns;
            }
            s->v[j].pid = p[i].pid;
            s->v[j].base = s->started ? 0 : cpu;
            s->v[j].last = 0;
            s->n++;
        }
        if (cpu >= s->v[j].last)
            s->v[j].last = cpu;
    }
    s->started = 1;
    free(p);
}

/* CPU burnt since the first sample, in ns. */
static uint64_t
sampler_total(const struct sampler *s)
{
    uint64_t sum = 0;
    size_t   i;

    for (i = 0; i < s->n; i++) {
        if (s->v[i].last > s->v[i].base)
            sum += s->v[i].last - s->v[i].base;
    }
    return sum;
}

/* Non-idle CPU time of the machine since boot, in ns (/proc/stat). */
static uint64_t
busy_ns(void)
{
    unsigned long long  f[10] = { 0 };
    char                line[512], *p, *end;
    FILE               *fp;
    int                 n;

    if ((fp = fopen("/proc/stat", "r")) == NULL)
        return 0;
    p = fgets(line, sizeof line, fp);
    fclose(fp);
    if (p == NULL || strncmp(line, "cpu ", 4) != 0)
        return 0;
    for (n = 0, p = line + 4; n < 10; n++, p = end) {
        f[n] = strtoull(p, &end, 10);
        if (end == p)
            break;
    }
    if (n < 8)
        return 0;
    /* user nice system [idle iowait] irq softirq steal (guest is in user) */
    return (uint64_t)(f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) *
        (1000000000u / (uint64_t)clk_tck);
}

static long *
pid_args(int argc, char **argv, int from, int *n)
{
    long   *v;
    int     i;

    *n = argc - from;
    if (*n < 1)
        usage();
    if ((v = calloc((size_t)*n, sizeof *v)) == NULL)
        exit(1);
    for (i = 0; i < *n; i++)
        v[i] = cli_num(argv[from + i], 1, 1L << 30);
    return v;
}

static int
cmd_cpu(int argc, char **argv)
{
    long    *roots;
    int      n;

    roots = pid_args(argc, argv, 1, &n);
    printf("tree_ns=%llu busy_ns=%llu\n",
        (unsigned long long)tree_ns(roots, n),
        (unsigned long long)busy_ns());
    free(roots);
    return 0;
}

static int
cmd_waste(int argc, char **argv)
{
    struct sampler  base = { 0 }, during = { 0 }, after = { 0 };
    long            close_ms = 1500, window_ms = 4500, base_ms = 1000;
    long           *roots;
    uint64_t        end;
    double          idle_per_s, raw_after;
    int             c, fd, nroots, early;

    while ((c = getopt(argc, argv, "+c:w:b:")) != -1) {
        if (c == 'c')
            close_ms = cli_num(optarg, 0, 600000);
        else if (c == 'w')
            window_ms = cli_num(optarg, 1, 600000);
        else if (c == 'b')
            base_ms = cli_num(optarg, 100, 600000);
        else
            usage();
    }
    if (argc - optind < 4)
        usage();
    set_target(argv[optind], argv[optind + 1]);
    check_path(argv[optind + 2]);
    roots = pid_args(argc, argv, optind + 3, &nroots);

    /* The idle rate of the trees. */
    sampler_sample(&base, roots, nroots);
    sleep_ms(base_ms);
    sampler_sample(&base, roots, nroots);
    idle_per_s = (double)sampler_total(&base) / 1e6 * 1000.0 /
        (double)base_ms;

    sampler_sample(&during, roots, nroots);
    if ((fd = open_request(argv[optind + 2], 0)) < 0) {
        free(roots);
        return 1;
    }
    early = wait_on(fd, close_ms);
    sampler_sample(&during, roots, nroots);
    sampler_sample(&after, roots, nroots);
    close(fd);
    end = cli_mono_ns() + (uint64_t)window_ms * 1000000u;
    while (cli_mono_ns() < end && !cli_stop) {
        sleep_ms(SAMPLE_MS);
        sampler_sample(&after, roots, nroots);
    }

    raw_after = (double)sampler_total(&after) / 1e6;
    printf("during_ms=%.3f after_ms=%.3f raw_after_ms=%.3f "
        "idle_ms_per_s=%.3f early=%d\n",
        (double)sampler_total(&during) / 1e6,
        raw_after - idle_per_s * (double)window_ms / 1000.0, raw_after,
        idle_per_s, early);
    free(roots);
    free(base.v);
    free(during.v);
    free(after.v);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    clk_tck = sysconf(_SC_CLK_TCK);
    if (clk_tck <= 0)
        clk_tck = 100;
    cli_catch_stop();
    signal(SIGPIPE, SIG_IGN);
    argc--;
    argv++;
    if (strcmp(argv[0], "hold") == 0)
        return cmd_hold(argc, argv);
    if (strcmp(argv[0], "abandon") == 0)
        return cmd_abandon(argc, argv);
    if (strcmp(argv[0], "waste") == 0)
        return cmd_waste(argc, argv);
    if (strcmp(argv[0], "cpu") == 0)
        return cmd_cpu(argc, argv);
    usage();
}
