/* SPDX-License-Identifier: MIT */
/*
 * good.c - a test module that does everything right: it declares its ABI,
 * reads a "greeting" option in fc_module_init(), answers through the
 * public API, and counts its init and fini calls in exported counters that
 * tests/unit/test_module.c reads through a dlopen() handle of its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fcgi_cancel.h"

FC_MODULE_DECLARE();

FC_API int good_inits;
FC_API int good_finis;
FC_API char good_last_fini[64];

FC_API int good_handler(fc_request *, fc_response *, fc_token *, void *);

int
fc_module_init(void *options, void **data, char **error)
{
    json_object *v;
    const char  *g = "hello";

    if (json_object_object_get_ex(options, "greeting", &v))
        g = json_object_get_string(v);
    if ((*data = strdup(g)) == NULL)
        return -1;
    good_inits++;
    return 0;
}

void
fc_module_fini(void *data)
{
    snprintf(good_last_fini, sizeof good_last_fini, "%s",
        data != NULL ? (const char *)data : "(null)");
    free(data);
    good_finis++;
}

/*
 * Answer "<greeting> <?who>" as text/plain; with ?wait=MS, first sleep on
 * the token and return FC_CANCELLED if it is cancelled meanwhile.
 */
int
good_handler(fc_request *req, fc_response *resp, fc_token *tok, void *data)
{
    const char *who = fc_request_query(req, "who");
    const char *wait = fc_request_query(req, "wait");

    if (wait != NULL && fc_token_wait(tok, atol(wait)))
        return FC_CANCELLED;
    if (fc_response_status(resp, 201) != 0 ||
        fc_response_header(resp, "Content-Type", "text/plain") != 0 ||
        fc_response_printf(resp, "%s %s", (const char *)data,
        who != NULL ? who : "nobody") != 0)
        return FC_ERROR;
    return FC_OK;
}
