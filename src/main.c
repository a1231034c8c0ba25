/* SPDX-License-Identifier: MIT */
/*
 * main.c - fcgi-cancel: command line, listening socket, the pool, and the
 * signals.  The main thread owns the signals (every other thread blocks
 * them): SIGTERM or SIGINT drains the pool (no new connections, running
 * jobs get --grace-ms to finish, then are cancelled with "shutdown"), a
 * second one cancels at once; SIGHUP reloads (reload()): it reads the
 * configuration file again, as -t does, and makes it the next generation
 * (generation.c) if it is good, and reopens the logs.
 */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "generation.h"
#include "handlers/handlers.h"
#include "oslimits.h"
#include "listen.h"
#include "accesslog.h"
#include "log.h"
#include "notify.h"
#include "pool.h"
#include "token.h"
#include "util.h"

#define STRAGGLER_MS 5000   /* after the shutdown cancel, before giving up */

/* Command-line settings; each overrides the file's key when given. */
struct options {
    const char *config;
    int         test;
    const char *listen;
    long        workers;            /* -1: not given */
    long        grace_ms;
    long        max_body_bytes;
    long        read_timeout_ms;
    long        stack_kb;
    int         log_level;
};

static void
usage(FILE *f)
{
    fprintf(f,
"usage: fcgi-cancel [-t] [-c FILE] [options]\n"
"  -c, --config FILE         JSON configuration (default: none, built-in\n"
"                            defaults); the options below override it\n"
"  -t, --test                check the configuration, print OK, exit\n"
"  -l, --listen ADDR         unix:/path/to.sock or tcp:HOST:PORT; without it,\n"
"                            a socket from systemd (LISTEN_FDS) or fd 0\n"
"  -w, --workers N           worker threads (default 32, 1..16384)\n"
"  -g, --grace-ms MS         on SIGTERM, time jobs get to finish before they\n"
"                            are cancelled (default 10000)\n"
"      --max-body-bytes N    larger request bodies get 413 (default 1048576)\n"
"      --read-timeout-ms MS  bound on reading a request (default 30000)\n"
"      --stack-kb N          worker thread stack size (default 1024)\n"
"      --log-level LEVEL     error, warn, info (default) or debug\n"
"  -h, --help                this text\n"
"  -V, --version             the version\n");
}

static int
opt_num(const char *name, const char *arg, long min, long max, long *out)
{
    if (parse_long(arg, min, max, out) != 0) {
        fprintf(stderr, "fcgi-cancel: --%s: \"%s\" is not a number from "
            "%ld to %ld\n", name, arg, min, max);
        return -1;
    }
    return 0;
}

static int
parse_options(int argc, char **argv, struct options *o)
{
    enum { O_MAXBODY = 256, O_READTO, O_STACK, O_LOGLEVEL };
    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' },
        { "test", no_argument, NULL, 't' },
        { "listen", required_argument, NULL, 'l' },
        { "workers", required_argument, NULL, 'w' },
        { "grace-ms", required_argument, NULL, 'g' },
        { "max-body-bytes", required_argument, NULL, O_MAXBODY },
        { "read-timeout-ms", required_argument, NULL, O_READTO },
        { "stack-kb", required_argument, NULL, O_STACK },
        { "log-level", required_argument, NULL, O_LOGLEVEL },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int c;

    while ((c = getopt_long(argc, argv, "c:tl:w:g:hV", longopts, NULL)) !=
        -1) {
        switch (c) {
        case 'c':
            o->config = optarg;
            break;
        case 't':
            o->test = 1;
            break;
        case 'l':
            o->listen = optarg;
            break;
        case 'w':
            if (opt_num("workers", optarg, 1, CONFIG_WORKERS_MAX,
                &o->workers) != 0)
                return -1;
            break;
        case 'g':
            if (opt_num("grace-ms", optarg, 0, CONFIG_MS_MAX,
                &o->grace_ms) != 0)
                return -1;
            break;
        case O_MAXBODY:
            if (opt_num("max-body-bytes", optarg, 0, CONFIG_BODY_MAX,
                &o->max_body_bytes) != 0)
                return -1;
            break;
        case O_READTO:
            if (opt_num("read-timeout-ms", optarg, 0, CONFIG_MS_MAX,
                &o->read_timeout_ms) != 0)
                return -1;
            break;
        case O_STACK:
            if (opt_num("stack-kb", optarg, CONFIG_STACK_KB_MIN,
                CONFIG_STACK_KB_MAX, &o->stack_kb) != 0)
                return -1;
            break;
        case O_LOGLEVEL:
            if ((o->log_level = log_level_parse(optarg)) < 0) {
                fprintf(stderr, "fcgi-cancel: --log-level: \"%s\" is not "
                    "error, warn, info or debug\n", optarg);
                return -1;
            }
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("fcgi-cancel %s\n", PACKAGE_VERSION);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fcgi-cancel: unexpected argument \"%s\"\n",
            argv[optind]);
        return -1;
    }
    return 0;
}

/* Resolve a group name, or a number; return 0, or -1 if there is none. */
static int
group_id(const char *name, gid_t *gid)
{
    struct group *gr;
    long          n;

    if ((gr = getgrnam(name)) != NULL) {
        *gid = gr->gr_gid;
        return 0;
    }
    if (parse_long(name, 0, INT32_MAX, &n) != 0)
        return -1;
    *gid = (gid_t)n;
    return 0;
}

/* Resolve a user name, or a number; return its entry, or NULL. */
static struct passwd *
user_lookup(const char *name)
{
    struct passwd *pw;
    long           n;

    if ((pw = getpwnam(name)) != NULL)
        return pw;
    if (parse_long(name, 0, INT32_MAX, &n) != 0)
        return NULL;
    return getpwuid((uid_t)n);
}

/*
 * Resolve the names of the configuration, as start-up will: user, group
 * and socket_group.  Return 0, or -1 with *cause set (caller frees):
 * 'socket_group: no such group "x"'.
 */
static int
check_names(const struct config *cfg, char **cause)
{
    const char *what = NULL, *name = NULL;
    char        msg[512];
    gid_t       gid;

    if (cfg->user != NULL && user_lookup(cfg->user) == NULL) {
        what = "user: no such user";
        name = cfg->user;
    } else if (cfg->group != NULL && group_id(cfg->group, &gid) != 0) {
        what = "group: no such group";
        name = cfg->group;
    } else if (cfg->socket_group != NULL &&
        group_id(cfg->socket_group, &gid) != 0) {
        what = "socket_group: no such group";
        name = cfg->socket_group;
    }
    if (what == NULL)
        return 0;
    snprintf(msg, sizeof msg, "%s \"%s\"", what, name);
    *cause = strdup(msg);
    return -1;
}

/*
 * Print a check's cause as "FILE: WHATcause" ("fcgi-cancel: " without a
 * file), and free it.
 */
static void
print_cause(const struct options *o, const char *what, char *cause)
{
    fprintf(stderr, "%s%s%s%s\n", o->config != NULL ? o->config : "",
        o->config != NULL ? ": " : "fcgi-cancel: ", what,
        cause != NULL ? cause : "out of memory");
    free(cause);
}

/*
 * Apply the options given to the configuration cfg read from the file (or
 * the defaults), and check what no single key can.  Return 0, or -1 with
 * *cause set (caller frees; NULL if memory ran out) to the message.
 */
static int
apply_options(const struct options *o, struct config *cfg, char **cause)
{
    char *why = NULL;
    int   n;

    *cause = NULL;
    if (o->listen != NULL) {
        if (config_check_listen(o->listen, &why) != 0) {
            n = asprintf(cause, "fcgi-cancel: --listen %s: %s", o->listen,
                why);
            free(why);
            if (n < 0)
                *cause = NULL;
            return -1;
        }
        free(cfg->listen);
        if ((cfg->listen = strdup(o->listen)) == NULL)
            return -1;
    }
    if (o->workers >= 0)
        cfg->workers = o->workers;
    if (o->grace_ms >= 0)
        cfg->grace_ms = o->grace_ms;
    if (o->max_body_bytes >= 0)
        cfg->max_body_bytes = o->max_body_bytes;
    if (o->read_timeout_ms >= 0)
        cfg->read_timeout_ms = o->read_timeout_ms;
    if (o->stack_kb >= 0)
        cfg->worker_stack_kb = o->stack_kb;
    if (o->log_level >= 0)
        cfg->log_level = o->log_level;
    if (config_check_access(cfg, &why) != 0) {
        n = asprintf(cause, "%s%s%s", o->config != NULL ? o->config : "",
            o->config != NULL ? ": " : "fcgi-cancel: ",
            why != NULL ? why : "out of memory");
        free(why);
        if (n < 0)
            *cause = NULL;
        return -1;
    }
    return 0;
}

/*
 * Build the configuration: the file (or the defaults), then the options.
 * The file's modules are not loaded yet (load_modules() does that, after
 * the privilege drop); its text is kept in *src for that.  Return 0, or -1
 * with the reason printed.
 */
static int
load_config(const struct options *o, struct config *cfg,
    struct config_source **src)
{
    char *cause = NULL;

    config_init(cfg);
    *src = NULL;
    if (o->config != NULL) {
        /* Check the routes' keys, load no module yet (we may be root). */
        if ((*src = config_read(o->config, &cause)) == NULL ||
            config_parse(cfg, *src, HANDLER_CHECK_ONLY, &cause) != 0) {
            fprintf(stderr, "%s\n", cause != NULL ? cause : "out of memory");
            free(cause);
            return -1;
        }
    } else if (config_default_routes(cfg) != 0) {
        fprintf(stderr, "fcgi-cancel: out of memory\n");
        return -1;
    }
    if (apply_options(o, cfg, &cause) != 0) {
        fprintf(stderr, "%s\n", cause != NULL ? cause : "out of memory");
        free(cause);
        return -1;
    }
    if (check_names(cfg, &cause) != 0) {
        print_cause(o, "", cause);
        return -1;
    }
    return 0;
}

/* What a reload found changed, for its log line. */
struct reload_note {
    char    text[512];      /* ", KEY" for each key, routes +/- */
    size_t  len;
};

/* Append ", what s" to the note (truncated with "..." when full). */
static void
note_add(struct reload_note *n, const char *what, const char *s)
{
    int k;

    if (n->len >= sizeof n->text - 4)
        return;
    k = snprintf(n->text + n->len, sizeof n->text - n->len, ", %s%s",
        what, s);
    if (k < 0 || (size_t)k >= sizeof n->text - n->len) {
        memcpy(n->text + sizeof n->text - 4, "...", 4);
        n->len = sizeof n->text;
        return;
    }
    n->len += (size_t)k;
}

/* A config_change_cb: note the key, or log that it needs a restart. */
static void
reload_changed(void *arg, const char *key, int restart)
{
    if (restart)
        log_warnx("reload: %s changed: needs a restart (left as it was)",
            key);
    else
        note_add(arg, "", key);
}

/* Are two strings (either may be NULL) the same? */
static int
str_same(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Is there a route with path (and prefix) in r? */
static int
route_in(const struct router *r, const struct route *rt)
{
    size_t i;

    for (i = 0; i < r->n; i++) {
        if (r->routes[i].prefix == rt->prefix &&
            strcmp(r->routes[i].path, rt->path) == 0)
            return 1;
    }
    return 0;
}

/* Note the routes of b that a has not ("+/x"), and those gone ("-/y"). */
static void
note_routes(struct reload_note *n, const struct router *a,
    const struct router *b)
{
    size_t i;

    for (i = 0; i < b->n; i++) {
        if (!route_in(a, &b->routes[i]))
            note_add(n, "route +", b->routes[i].path);
    }
    for (i = 0; i < a->n; i++) {
        if (!route_in(b, &a->routes[i]))
            note_add(n, "route -", a->routes[i].path);
    }
}

/*
 * Apply the log settings of next (NULL: none, the ones in force stay; the
 * current ones are cur's): the level, and the access log, opened anew if
 * its file or format changed, else reopened (after logrotate).  Return 0,
 * or -1 (logged) if the new access log cannot be opened: nothing changed
 * then (the old one was not reopened either).
 */
static int
reload_logs(const struct config *next, const struct config *cur)
{
    if (next != NULL &&
        (next->access_log_format != cur->access_log_format ||
        !str_same(next->access_log, cur->access_log))) {
        if (accesslog_open(next->access_log,
            (enum accesslog_format)next->access_log_format) != 0) {
            log_error("reload: access_log: %s", next->access_log != NULL ?
                next->access_log : "stderr");
            return -1;
        }
        log_info("SIGHUP: access log opened anew: %s (%s)",
            next->access_log != NULL ? next->access_log : "stderr",
            accesslog_format_names[next->access_log_format]);
    } else if (accesslog_reopen() != 0) {
        log_warn("SIGHUP: cannot reopen the access log");
    } else {
        log_info("SIGHUP: logs reopened");
    }
    if (next != NULL)
        log_level = next->log_level;
    return 0;
}

/*
 * SIGHUP.  Without a configuration file, reopen the logs.  With one, read
 * it again with the code -t runs (config_load(): the modules are loaded
 * now, as the user the server is), apply the options, and if all is well
 * make it the next generation: requests that start from now on use it,
 * those running finish with theirs.  Keys that need a restart keep their
 * value (logged); a bad file is refused with -t's message and the current
 * generation goes on serving.
 */
static void
reload(const struct options *o)
{
    struct reload_note  note = { .len = 0 };
    struct generation  *cur, *g;
    struct config       next;
    char               *cause = NULL;
    uint64_t            n;

    if (o->config == NULL) {
        reload_logs(NULL, NULL);
        log_info("reload: no configuration file (-c) to read again");
        return;
    }
    cur = gen_get();
    config_init(&next);
    if (config_load(&next, o->config, &cause) != 0 ||
        apply_options(o, &next, &cause) != 0 ||
        config_compare(&next, &cur->cfg, reload_changed, &note) != 0) {
        log_errorx("reload: refused, generation %llu goes on serving: %s",
            (unsigned long long)cur->number,
            cause != NULL ? cause : "out of memory");
        reload_logs(NULL, NULL);
        goto out;
    }
    note_routes(&note, &cur->cfg.routes, &next.routes);
    if ((g = gen_new(&next, &cause)) == NULL) {
        log_errorx("reload: refused, generation %llu goes on serving: %s",
            (unsigned long long)cur->number,
            cause != NULL ? cause : "out of memory");
        reload_logs(NULL, NULL);
        goto out;
    }
    if (reload_logs(&g->cfg, &cur->cfg) != 0) {
        log_errorx("reload: refused, generation %llu goes on serving",
            (unsigned long long)cur->number);
        gen_put(g);             /* never published: freed here */
        reload_logs(NULL, NULL);
        goto out;
    }
    n = gen_publish(g);
    log_info("reload: generation %llu: %zu routes; %s%s",
        (unsigned long long)n, g->cfg.routes.n,
        note.len > 0 ? "changed: " : "nothing changed",
        note.len > 0 ? note.text + 2 : "");
out:
    free(cause);
    config_free(&next);
    gen_put(cur);
}

/*
 * Load the modules of the configuration's module routes: parse its text
 * again, this time loading them (and running their fc_module_init()), as
 * the user the server now is, and take the routes of that parse.  Errors
 * read as in the first parse (FILE:LINE:COL: ...).  Return 0, or -1
 * (printed).
 */
static int
load_modules(struct config *cfg, const struct config_source *src)
{
    struct config  tmp;
    struct router  r;
    char          *cause = NULL;

    if (src == NULL)
        return 0;
    config_init(&tmp);
    if (config_parse(&tmp, src, 0, &cause) != 0) {
        fprintf(stderr, "%s\n", cause != NULL ? cause : "out of memory");
        free(cause);
        config_free(&tmp);
        return -1;
    }
    r = cfg->routes;
    cfg->routes = tmp.routes;
    tmp.routes = r;
    config_free(&tmp);
    return 0;
}

/*
 * Become user (and group, or the user's group) after binding: started as
 * root, the server keeps no root privilege.  Return 0, or -1 (printed).
 */
static int
drop_privileges(const char *user, const char *group)
{
    struct passwd *pw = NULL;
    gid_t          gid;

    if (user == NULL && group == NULL)
        return 0;
    if (user != NULL && (pw = user_lookup(user)) == NULL) {
        fprintf(stderr, "fcgi-cancel: user: no such user \"%s\"\n", user);
        return -1;
    }
    if (group != NULL) {
        if (group_id(group, &gid) != 0) {
            fprintf(stderr, "fcgi-cancel: group: no such group \"%s\"\n",
                group);
            return -1;
        }
    } else {
        gid = pw->pw_gid;
    }
    if (setgroups(0, NULL) != 0 || setgid(gid) != 0 ||
        (pw != NULL && setuid(pw->pw_uid) != 0)) {
        fprintf(stderr, "fcgi-cancel: cannot become %s%s%s: %s\n",
            user != NULL ? user : "", group != NULL ? ":" : "",
            group != NULL ? group : "", strerror(errno));
        return -1;
    }
    /* Make sure there is no way back. */
    if (pw != NULL && pw->pw_uid != 0 && setuid(0) == 0) {
        fprintf(stderr, "fcgi-cancel: could regain root after dropping it\n");
        return -1;
    }
    return 0;
}

/* Give the unix socket at path the group name (or number); 0 or -1. */
static int
socket_chgrp(const char *path, const char *name)
{
    gid_t gid;

    if (group_id(name, &gid) != 0) {
        fprintf(stderr, "fcgi-cancel: socket_group: no such group \"%s\"\n",
            name);
        return -1;
    }
    if (chown(path, (uid_t)-1, gid) != 0) {
        fprintf(stderr, "fcgi-cancel: socket_group: %s: %s\n", path,
            strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * For -t: check that the server could take the listen address now (NULL:
 * a socket passed by systemd or as fd 0, which there is nothing to check
 * of).  Return 0 if it could, or if -t cannot tell (why is printed); -1
 * if it could not (printed as FILE: listen: ...).
 */
static int
test_listen(const struct options *o, const char *listen)
{
    char *cause = NULL;
    int   rc;

    if (listen == NULL || (rc = listen_probe(listen, &cause)) == 0)
        return 0;
    print_cause(o, "listen: ", cause);
    return rc > 0 ? 0 : -1;
}

/*
 * Wait up to ms for the pool to go idle (with arriving: and for requests
 * that have begun to arrive), answering a second TERM/INT.
 */
static int
wait_idle(struct pool *p, const sigset_t *set, long ms, int arriving,
    int *again)
{
    struct timespec ts = { 0, 5 * 1000000L };
    uint64_t        end = now_ns() + (uint64_t)ms * 1000000u;
    int             sig;

    while (pool_busy(p) > 0 || (arriving && pool_arriving(p) > 0)) {
        if (now_ns() >= end)
            return -1;
        notify_tick("draining");
        sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            *again = 1;
            return -1;
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct options      o = { NULL, 0, NULL, -1, -1, -1, -1, -1, -1 };
    struct config       cfg;
    struct pool_config  pc;
    struct pool        *pool;
    struct sigaction    sa;
    fc_token           *server_tok;
    sigset_t            set;
    struct config_source *src = NULL;
    struct generation  *gen;
    char               *cause = NULL, *unix_path = NULL;
    int                 lfd, sig, again = 0, busy;
    size_t              nroutes;
    long                grace_ms;

    log_init();
    /* Blocks of 128 KiB and more (request params and bodies, up to
     * max_params_bytes and max_body_bytes) are mmapped and handed back
     * when freed.  glibc's default raises this threshold after such a
     * free, and a flood of large requests then leaves its memory in the
     * arenas long after it is gone. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    if (parse_options(argc, argv, &o) != 0)
        return 1;
    if (load_config(&o, &cfg, &src) != 0) {
        config_source_free(src);
        config_free(&cfg);
        return 1;
    }
    if (o.test) {
        /* The address first, as start-up binds it before the drop; then
         * modules are loaded as the user it would be. */
        if (test_listen(&o, cfg.listen) != 0 ||
            (geteuid() == 0 && drop_privileges(cfg.user, cfg.group) != 0) ||
            load_modules(&cfg, src) != 0) {
            config_source_free(src);
            config_free(&cfg);
            return 1;
        }
        printf("OK\n");
        config_source_free(src);
        config_free(&cfg);
        return 0;
    }
    log_level = cfg.log_level;
    notify_init();
    if (accesslog_open(cfg.access_log,
        (enum accesslog_format)cfg.access_log_format) != 0) {
        fprintf(stderr, "fcgi-cancel: access_log: %s: %s\n", cfg.access_log,
            strerror(errno));
        goto fail;
    }

    /* The pool reads and writes FastCGI records itself (proto.c): no
     * FCGX_Init(), which would install signal handlers of its own. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    /* Blocked here, inherited blocked by every thread: main owns them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    if (cfg.listen != NULL) {
        lfd = listen_open(cfg.listen, cfg.socket_mode, SOMAXCONN, &unix_path,
            &cause);
    } else if ((lfd = listen_inherited()) < 0) {
        cause = strdup("no --listen given, and no listening socket was "
            "passed (by systemd or as fd 0)");
    }
    if (lfd < 0) {
        fprintf(stderr, "fcgi-cancel: %s\n", cause);
        free(cause);
        goto fail;
    }
    if (unix_path != NULL && cfg.socket_group != NULL &&
        socket_chgrp(unix_path, cfg.socket_group) != 0)
        goto fail_listen;
    if (drop_privileges(cfg.user, cfg.group) != 0 ||
        load_modules(&cfg, src) != 0)
        goto fail_listen;
    config_source_free(src);
    src = NULL;
    if ((server_tok = token_new(NULL)) == NULL) {
        fprintf(stderr, "fcgi-cancel: out of memory\n");
        goto fail_listen;
    }
    oslimits_check(cfg.workers);
    pc.workers = (int)cfg.workers;
    pc.stack_size = (size_t)cfg.worker_stack_kb * 1024;
    pc.max_connections = cfg.max_connections;
    pc.max_arriving_bytes = (size_t)cfg.max_arriving_bytes;
    pc.peer_timeout_ms = cfg.peer_timeout_ms;
    nroutes = cfg.routes.n;
    /* The configuration becomes generation 1 (cfg is left empty). */
    if ((gen = gen_new(&cfg, &cause)) == NULL) {
        fprintf(stderr, "fcgi-cancel: %s\n", cause);
        free(cause);
        token_unref(server_tok);
        goto fail_listen;
    }
    gen_publish(gen);
    if ((pool = pool_new(lfd, &pc, server_tok, &cause)) == NULL) {
        fprintf(stderr, "fcgi-cancel: %s\n", cause);
        free(cause);
        token_unref(server_tok);
        gen_shutdown();
        goto fail_listen;
    }
    log_info("fcgi-cancel %s serving on %s with %d workers, %zu routes, "
        "configuration generation %llu", PACKAGE_VERSION,
        gen->cfg.listen != NULL ? gen->cfg.listen :
        (lfd == 0 ? "fd 0" : "fd 3"), pc.workers, nroutes,
        (unsigned long long)gen->number);

    notify_ready();
    for (;;) {
        struct timespec tick;
        long            ms;

        /* Wake at least once a second for STATUS= and the watchdog. */
        notify_tick("serving");
        ms = notify_tick_ms();
        tick.tv_sec = ms / 1000;
        tick.tv_nsec = ms % 1000 * 1000000L;
        sig = sigtimedwait(&set, NULL, &tick);
        pool_tick(pool);
        if (sig == SIGHUP) {
            reload(&o);
            continue;
        }
        if (sig == SIGTERM || sig == SIGINT)
            break;
    }

    notify_stopping();
    gen = gen_get();        /* grace_ms may have changed with a reload */
    grace_ms = gen->cfg.grace_ms;
    gen_put(gen);
    log_info("%s: draining, %d busy, grace %ld ms",
        sig == SIGTERM ? "SIGTERM" : "SIGINT", pool_busy(pool), grace_ms);
    pool_drain(pool);
    close(lfd);
    if (unix_path != NULL)
        unlink(unix_path);
    if (wait_idle(pool, &set, grace_ms, 1, &again) != 0) {
        log_info("%s: cancelling %d jobs with reason shutdown",
            again ? "signal repeated" : "grace period over", pool_busy(pool));
        token_cancel(server_tok, FC_SHUTDOWN);
        if (wait_idle(pool, &set, STRAGGLER_MS, 0, &again) != 0 &&
            (busy = pool_busy(pool)) > 0) {
            log_errorx("%d jobs ignore their token; exiting without them",
                busy);
            accesslog_flush();
            _exit(1);
        }
    }
    pool_free(pool);
    token_unref(server_tok);
    gen_shutdown();         /* the last generation, and its modules */
    config_free(&cfg);
    accesslog_close();
    free(unix_path);
    log_info("exit");
    log_flush();
    return 0;

fail_listen:
    close(lfd);
    if (unix_path != NULL)
        unlink(unix_path);
    free(unix_path);
fail:
    config_source_free(src);
    config_free(&cfg);
    accesslog_close();
    log_flush();
    return 1;
}
