/* SPDX-License-Identifier: MIT */
/*
 * work.h - the recipe's demo job: `steps` steps of `step_ms`, sleeping or
 * burning CPU, watching the token in one of three styles.
 */
#ifndef HANDLERS_WORK_H
#define HANDLERS_WORK_H

#include "fcgi_cancel.h"

enum work_style {
    WORK_POLL,          /* poll fc_token_cancelled() (/cancel_tg) */
    WORK_CALLBACK,      /* steps under an on_cancel callback (/cancel_tg_dependency) */
    WORK_WAIT,          /* wait on the token (/cancel_event) */
    WORK_IGNORE         /* never look at the token: a straggler, for tests */
};

enum work_mode {
    WORK_SLEEP,
    WORK_CPU
};

#define WORK_MAX_STEPS      1000
#define WORK_MAX_STEP_MS    600000

/* A route's options: its style and defaults. */
struct work_opts {
    enum work_style  style;
    char            *task_param;    /* default of ?task_param */
    long             steps;
    long             step_ms;
    enum work_mode   mode;
};

/* One job, as the request's query asks for it. */
struct work_job {
    long             steps;
    long             step_ms;
    enum work_mode   mode;
};

/* Return options with the recipe's defaults, or NULL on failure. */
struct work_opts *work_opts_new(enum work_style style, const char *task_param);
void              work_opts_free(void *opts);

/* Return the style's name ("poll", "callback", "wait"). */
const char       *work_style_name(enum work_style style);

/*
 * Fill job from the query values (each NULL when absent) over the route's
 * defaults.  Return 0, or -1 with *err set to a static message.
 */
int               work_parse(const struct work_opts *o, const char *steps,
                      const char *step_ms, const char *mode,
                      struct work_job *job, const char **err);

/* The handler; data is a struct work_opts. */
int               work_handler(fc_request *req, fc_response *resp,
                      fc_token *tok, void *data);

#endif /* HANDLERS_WORK_H */
