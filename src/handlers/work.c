/* SPDX-License-Identifier: MIT */
/*
 * work.c - the recipe's demo job, "huge work": `steps` steps (default 5) of
 * `step_ms` (default 1000), each logged as "Working... i", then
 * {"result": "Work completed for <task_param>"}.  mode=sleep sleeps;
 * mode=cpu burns the CPU, looking at the token at least every millisecond.
 *
 * The three routes of the recipe watch the token in three styles:
 *   poll      (/cancel_tg)            look at fc_token_cancelled() while it
 *                                     sleeps in slices of at most 1 ms;
 *   callback  (/cancel_tg_dependency) run the steps inside a scope that an
 *                                     fc_token_on_cancel() callback stops,
 *                                     the way a task group cancels its tasks;
 *   wait      (/cancel_event)         sleep in fc_token_wait(), which
 *                                     returns at once on cancel.
 * A fourth style, "ignore", never looks at the token: the job runs on after
 * a cancel, as a badly written one would (/status lists it as a straggler).
 * Apart from the server's clock and log helpers, it uses only the public
 * API, as a module would.  Its row in the handler registry, handler_work
 * (at the end), holds its route options and the recipe's three routes.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "handlers/handlers.h"
#include "handlers/work.h"
#include "log.h"
#include "util.h"

/* The scope of the callback style: stopped by the cancel callback. */
struct scope {
    pthread_mutex_t  mtx;
    pthread_cond_t   cond;      /* signalled when stop is set */
    _Atomic int      stop;      /* set once by scope_cancel() */
};

/* The names of enum work_style and enum work_mode, in their order. */
static const char *const style_names[] = {
    "poll", "callback", "wait", "ignore", NULL
};
static const char *const mode_names[] = { "sleep", "cpu", NULL };

_Static_assert(sizeof(enum work_style) == sizeof(int) &&
    sizeof(enum work_mode) == sizeof(int), "CONFIG_ENUM stores an int");

/* A work route's options, into a struct work_opts. */
static const struct config_key work_keys[] = {
    { .name = "style", .type = CONFIG_ENUM,
      .offset = offsetof(struct work_opts, style),
      .def = WORK_POLL, .names = style_names },
    { .name = "task_param", .type = CONFIG_STRING,
      .offset = offsetof(struct work_opts, task_param),
      .def_str = "default" },
    { .name = "steps", .type = CONFIG_INT,
      .offset = offsetof(struct work_opts, steps),
      .min = 0, .max = WORK_MAX_STEPS, .def = 5 },
    { .name = "step_ms", .type = CONFIG_INT,
      .offset = offsetof(struct work_opts, step_ms),
      .min = 0, .max = WORK_MAX_STEP_MS, .def = 1000 },
    { .name = "mode", .type = CONFIG_ENUM,
      .offset = offsetof(struct work_opts, mode),
      .def = WORK_SLEEP, .names = mode_names },
};

const char *
work_style_name(enum work_style style)
{
    return style_names[style];
}

struct work_opts *
work_opts_new(enum work_style style, const char *task_param)
{
    struct work_opts *o;

    if ((o = calloc(1, sizeof *o)) == NULL)
        return NULL;
    /* A default task_param that could not be copied is NULL: replaced
     * below anyway. */
    (void)config_keys_defaults(work_keys, nitems(work_keys), o);
    free(o->task_param);
    if ((o->task_param = strdup(task_param)) == NULL) {
        free(o);
        return NULL;
    }
    o->style = style;
    return o;
}

void
work_opts_free(void *opts)
{
    struct work_opts *o = opts;

    if (o != NULL) {
        free(o->task_param);
        free(o);
    }
}

static int
parse_num(const char *s, long max, long *out)
{
    char *end;
    long  v;

    if (s == NULL)
        return 0;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return -1;
    *out = v;
    return 0;
}

int
work_parse(const struct work_opts *o, const char *steps, const char *step_ms,
    const char *mode, struct work_job *job, const char **err)
{
    job->steps = o->steps;
    job->step_ms = o->step_ms;
    job->mode = o->mode;
    if (parse_num(steps, WORK_MAX_STEPS, &job->steps) != 0) {
        *err = "steps must be an integer from 0 to 1000";
        return -1;
    }
    if (parse_num(step_ms, WORK_MAX_STEP_MS, &job->step_ms) != 0) {
        *err = "step_ms must be an integer from 0 to 600000";
        return -1;
    }
    if (mode != NULL) {
        if (strcmp(mode, "sleep") == 0) {
            job->mode = WORK_SLEEP;
        } else if (strcmp(mode, "cpu") == 0) {
            job->mode = WORK_CPU;
        } else {
            *err = "mode must be sleep or cpu";
            return -1;
        }
    }
    return 0;
}

/* Is the job to stop?  How depends on the style (see the file comment). */
static int
should_stop(enum work_style style, fc_token *tok, struct scope *sc)
{
    switch (style) {
    case WORK_POLL:
        return fc_token_cancelled(tok);
    case WORK_CALLBACK:
        /* Acquire: pairs with scope_cancel()'s release. */
        return atomic_load_explicit(&sc->stop, memory_order_acquire);
    case WORK_WAIT:
        return fc_token_wait(tok, 0);
    case WORK_IGNORE:
        return 0;
    }
    return 1;
}

/* Burn the CPU for ms, looking at the stop condition every ~50 us. */
static int
burn(enum work_style style, fc_token *tok, struct scope *sc, long ms,
    volatile uint64_t *sink)
{
    uint64_t end = now_ns() + (uint64_t)ms * 1000000u, x = *sink;
    int      i;

    while (now_ns() < end) {
        for (i = 0; i < 20000; i++)     /* ~20-50 us on current CPUs */
            x = x * 6364136223846793005u + 1442695040888963407u;
        *sink = x;
        if (should_stop(style, tok, sc))
            return 1;
    }
    return 0;
}

/* Sleep ms in the route's style; return 1 if stopped by a cancel. */
static int
nap(enum work_style style, fc_token *tok, struct scope *sc, long ms)
{
    struct timespec ts;
    uint64_t        end = now_ns() + (uint64_t)ms * 1000000u, now;
    int             stopped = 0;

    switch (style) {
    case WORK_POLL:
        while (!(stopped = fc_token_cancelled(tok)) && (now = now_ns()) < end) {
            uint64_t left = end - now;

            ts.tv_sec = 0;
            ts.tv_nsec = (long)(left < 1000000u ? left : 1000000u);
            nanosleep(&ts, NULL);
        }
        return stopped;
    case WORK_CALLBACK:
        timespec_after_ms(&ts, ms);
        pthread_mutex_lock(&sc->mtx);
        while (!atomic_load_explicit(&sc->stop, memory_order_relaxed) &&
            pthread_cond_timedwait(&sc->cond, &sc->mtx, &ts) != ETIMEDOUT)
            ;
        stopped = atomic_load_explicit(&sc->stop, memory_order_relaxed);
        pthread_mutex_unlock(&sc->mtx);
        return stopped;
    case WORK_WAIT:
        return fc_token_wait(tok, ms);
    case WORK_IGNORE:
        ts.tv_sec = ms / 1000;
        ts.tv_nsec = (ms % 1000) * 1000000L;
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        return 0;
    }
    return 1;
}

/* The cancel callback of the callback style: stop the scope. */
static void
scope_cancel(fc_token *tok, enum fc_reason reason, void *arg)
{
    struct scope *sc = arg;

    pthread_mutex_lock(&sc->mtx);
    /* Release: the job's acquire load then sees a consistent scope. */
    atomic_store_explicit(&sc->stop, 1, memory_order_release);
    pthread_cond_signal(&sc->cond);
    pthread_mutex_unlock(&sc->mtx);
}

int
work_handler(fc_request *req, fc_response *resp, fc_token *tok, void *data)
{
    const struct work_opts  *o = data;
    struct work_job          job;
    struct scope             sc;
    pthread_condattr_t       ca;
    volatile uint64_t        sink = 1;
    json_object             *res;
    const char              *task, *err;
    char                     etask[256];
    struct buf               msg = { 0 };
    size_t                   task_len;
    long                     i;
    int                      handle = -1, stopped = 0, rc;

    if (work_parse(o, fc_request_query(req, "steps"),
        fc_request_query(req, "step_ms"), fc_request_query(req, "mode"),
        &job, &err) != 0)
        return fc_response_error(resp, 400, err) == 0 ? FC_OK : FC_ERROR;
    if ((task = fc_request_query_len(req, "task_param", &task_len)) == NULL) {
        task = o->task_param;
        task_len = strlen(task);
    }

    if (o->style == WORK_CALLBACK) {
        pthread_mutex_init(&sc.mtx, NULL);
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&sc.cond, &ca);
        pthread_condattr_destroy(&ca);
        atomic_init(&sc.stop, 0);
        if ((handle = fc_token_on_cancel(tok, scope_cancel, &sc)) < 0) {
            pthread_cond_destroy(&sc.cond);
            pthread_mutex_destroy(&sc.mtx);
            return FC_ERROR;
        }
    }

    fc_request_log(req, "job start task_param=\"%s\" steps=%ld step_ms=%ld "
        "mode=%s style=%s", log_escape(etask, sizeof etask, task), job.steps,
        job.step_ms, job.mode == WORK_CPU ? "cpu" : "sleep",
        work_style_name(o->style));
    for (i = 0; i < job.steps && !stopped; i++) {
        if ((stopped = should_stop(o->style, tok, &sc)))
            break;
        fc_request_log(req, "Working... %ld", i);
        stopped = job.mode == WORK_CPU ?
            burn(o->style, tok, &sc, job.step_ms, &sink) :
            nap(o->style, tok, &sc, job.step_ms);
    }

    if (o->style == WORK_CALLBACK) {
        /* Waits for the callback if it is running on the watcher now. */
        fc_token_off_cancel(tok, handle);
        pthread_cond_destroy(&sc.cond);
        pthread_mutex_destroy(&sc.mtx);
    }
    if (stopped) {
        fc_request_log(req, "job stopped in step %ld of %ld", i, job.steps);
        return FC_CANCELLED;
    }

    /* task holds valid UTF-8 and maybe NULs (fc_request_query_len()):
     * json-c writes those as \u0000. */
    if (buf_add(&msg, "Work completed for ", 19) != 0 ||
        buf_add(&msg, task, task_len) != 0) {
        buf_free(&msg);
        return FC_ERROR;
    }
    res = json_object_new_object();
    json_object_object_add(res, "result",
        json_object_new_string_len(msg.data, (int)msg.len));
    buf_free(&msg);
    rc = fc_response_json(resp, 200, res);
    json_object_put(res);
    return rc == 0 ? FC_OK : FC_ERROR;
}

/* The recipe's three routes, one per style of watching the token. */
static const char *const work_default_routes[] = {
    "{\"path\": \"/cancel_tg\", \"methods\": [\"GET\", \"HEAD\"], "
    "\"handler\": \"work\", \"style\": \"poll\", "
    "\"task_param\": \"default_for_cancel_tg\"}",
    "{\"path\": \"/cancel_tg_dependency\", "
    "\"methods\": [\"GET\", \"HEAD\"], \"handler\": \"work\", "
    "\"style\": \"callback\", "
    "\"task_param\": \"default_for_cancel_tg_dependency\"}",
    "{\"path\": \"/cancel_event\", \"methods\": [\"GET\", \"HEAD\"], "
    "\"handler\": \"work\", \"style\": \"wait\", "
    "\"task_param\": \"default_for_cancel_tg_dependency\"}",
    NULL
};

const struct handler_def handler_work = {
    .name = "work",
    .keys = work_keys,
    .nkeys = nitems(work_keys),
    .opts_size = sizeof(struct work_opts),
    .handler = work_handler,
    .default_routes = work_default_routes,
};
