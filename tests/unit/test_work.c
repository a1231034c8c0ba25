/* SPDX-License-Identifier: MIT */
/*
 * test_work.c - unit tests of the demo job's arguments (handlers/work.c):
 * work_parse() with its defaults and limits, the names of the job
 * styles, and the answer's JSON for any task_param.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>

#include "handlers/work.h"
#include "memstream.h"
#include "unit.h"

/* Parse with the recipe's defaults; return work_parse()'s result. */
static int
work_try(const char *steps, const char *step_ms, const char *mode,
    struct work_job *job, const char **err)
{
    struct work_opts *o = work_opts_new(WORK_POLL, "t");
    int               rc;

    if (o == NULL)
        return -99;
    *err = NULL;
    rc = work_parse(o, steps, step_ms, mode, job, err);
    work_opts_free(o);
    return rc;
}

/* Nothing given: the recipe's 5 steps of 1000 ms, sleeping. */
static void
test_work_defaults(void)
{
    struct work_opts *o = work_opts_new(WORK_CALLBACK, "default_x");
    struct work_job   job;
    const char       *err = NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    CU_ASSERT_STRING_EQUAL(o->task_param, "default_x");
    CU_ASSERT_EQUAL(o->style, WORK_CALLBACK);
    CU_ASSERT_EQUAL(work_parse(o, NULL, NULL, NULL, &job, &err), 0);
    CU_ASSERT_EQUAL(job.steps, 5);
    CU_ASSERT_EQUAL(job.step_ms, 1000);
    CU_ASSERT_EQUAL(job.mode, WORK_SLEEP);
    CU_ASSERT_PTR_NULL(err);
    work_opts_free(o);
    work_opts_free(NULL);
    CU_ASSERT_STRING_EQUAL(work_style_name(WORK_POLL), "poll");
    CU_ASSERT_STRING_EQUAL(work_style_name(WORK_CALLBACK), "callback");
    CU_ASSERT_STRING_EQUAL(work_style_name(WORK_WAIT), "wait");
}

/* steps: 0 to 1000; anything else is an error that names steps. */
static void
test_work_steps(void)
{
    static const char *const bad[] = {
        "1001", "abc", "-1", "5x", "", " 5", "+5", "5 ", "0x10", "1e3",
        "99999999999999999999999"
    };
    struct work_job job;
    const char     *err;
    size_t          i;

    CU_ASSERT_EQUAL(work_try("0", NULL, NULL, &job, &err), 0);
    CU_ASSERT_EQUAL(job.steps, 0);
    CU_ASSERT_EQUAL(work_try("1000", NULL, NULL, &job, &err), 0);
    CU_ASSERT_EQUAL(job.steps, 1000);
    CU_ASSERT_EQUAL(work_try("7", NULL, NULL, &job, &err), 0);
    CU_ASSERT_EQUAL(job.steps, 7);
    CU_ASSERT_EQUAL(job.step_ms, 1000);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (work_try(bad[i], NULL, NULL, &job, &err) != -1 || err == NULL ||
            strstr(err, "steps") == NULL) {
            fprintf(stderr, "\n    steps=\"%s\" accepted", bad[i]);
            CU_FAIL("bad steps accepted");
        }
    }
}

/* step_ms: 0 to 600000. */
static void
test_work_step_ms(void)
{
    struct work_job job;
    const char     *err;

    CU_ASSERT_EQUAL(work_try(NULL, "600000", NULL, &job, &err), 0);
    CU_ASSERT_EQUAL(job.step_ms, 600000);
    CU_ASSERT_EQUAL(work_try(NULL, "0", NULL, &job, &err), 0);
    CU_ASSERT_EQUAL(job.step_ms, 0);
    CU_ASSERT_EQUAL(job.steps, 5);
    CU_ASSERT_EQUAL(work_try(NULL, "600001", NULL, &job, &err), -1);
    CU_ASSERT(err != NULL && strstr(err, "step_ms") != NULL);
    CU_ASSERT_EQUAL(work_try(NULL, "-5", NULL, &job, &err), -1);
    CU_ASSERT_EQUAL(work_try(NULL, "1.5", NULL, &job, &err), -1);
}

/* mode: sleep or cpu; anything else is an error that names mode. */
static void
test_work_mode(void)
{
    struct work_job job;
    const char     *err;

    CU_ASSERT_EQUAL(work_try(NULL, NULL, "sleep", &job, &err), 0);
    CU_ASSERT_EQUAL(job.mode, WORK_SLEEP);
    CU_ASSERT_EQUAL(work_try(NULL, NULL, "cpu", &job, &err), 0);
    CU_ASSERT_EQUAL(job.mode, WORK_CPU);
    CU_ASSERT_EQUAL(work_try(NULL, NULL, "fast", &job, &err), -1);
    CU_ASSERT(err != NULL && strstr(err, "mode") != NULL);
    CU_ASSERT_EQUAL(work_try(NULL, NULL, "", &job, &err), -1);
    CU_ASSERT_EQUAL(work_try(NULL, NULL, "CPU", &job, &err), -1);
    CU_ASSERT_EQUAL(work_try("3", "10", "cpu", &job, &err), 0);
    CU_ASSERT(job.steps == 3 && job.step_ms == 10 && job.mode == WORK_CPU);
}

/*
 * The body of the work handler's answer to query qs (caller frees), after
 * checking that it parses with a strict UTF-8 JSON parser.
 */
static char *
work_body(const char *qs)
{
    struct work_opts    *o = work_opts_new(WORK_WAIT, "default_t");
    char                 env[256], *envp[] = { env, NULL }, *body;
    json_object         *j;
    int                  status, result;

    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    snprintf(env, sizeof env, "QUERY_STRING=%s", qs);
    body = memstream_run(work_handler, o, envp, &status, &result);
    CU_ASSERT_EQUAL(result, FC_OK);
    CU_ASSERT_PTR_NOT_NULL(j = memstream_json_strict(body));
    json_object_put(j);
    work_opts_free(o);
    return body;
}

/*
 * {"result": "Work completed for <task_param>"} is valid UTF-8 JSON for
 * any task_param: ill-formed bytes are U+FFFD, a NUL is \u0000, the last
 * of repeated ones wins, as FastAPI answers.
 */
static void
test_work_result_json(void)
{
    static const struct {
        const char *qs, *body;
    } t[] = {
        { "steps=0", "{\"result\":\"Work completed for default_t\"}" },
        { "steps=0&task_param=%FF%FE",
          "{\"result\":\"Work completed for \xef\xbf\xbd\xef\xbf\xbd\"}" },
        { "steps=0&task_param=a%00b",
          "{\"result\":\"Work completed for a\\u0000b\"}" },
        { "steps=0&task_param=1&task_param=2",
          "{\"result\":\"Work completed for 2\"}" },
        { "task_param=%22%5C%0A&steps=0",
          "{\"result\":\"Work completed for \\\"\\\\\\n\"}" },
        { "steps=0&task_param=%C3%A9t%C3%A9",
          "{\"result\":\"Work completed for \xc3\xa9t\xc3\xa9\"}" },
        { "steps=0&mode=%FF", "{\"error\":\"mode must be sleep or cpu\","
          "\"status\":400}" },
    };
    size_t i;
    char  *body;

    for (i = 0; i < sizeof t / sizeof t[0]; i++) {
        body = work_body(t[i].qs);
        if (strcmp(body, t[i].body) != 0) {
            fprintf(stderr, "\n    %s: %s", t[i].qs, body);
            CU_FAIL("unexpected body");
        }
        free(body);
    }
}

static CU_TestInfo work_tests[] = {
    { "defaults", test_work_defaults },
    { "steps", test_work_steps },
    { "step_ms", test_work_step_ms },
    { "mode", test_work_mode },
    { "the answer is UTF-8 JSON", test_work_result_json },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "work_parse", NULL, NULL, NULL, NULL, work_tests },
    CU_SUITE_INFO_NULL
};

int
main(void)
{
    return unit_run("test_work", suites, 60);
}
