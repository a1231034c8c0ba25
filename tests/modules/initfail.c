/* SPDX-License-Identifier: MIT */
/*
 * initfail.c - a test module whose fc_module_init() fails: with the
 * "message" option as its error (none if the option is null), after
 * storing data that the loader must not hand to fc_module_fini().
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fcgi_cancel.h"

FC_MODULE_DECLARE();

FC_API int initfail_finis;

FC_API int initfail_handler(fc_request *, fc_response *, fc_token *, void *);

int
fc_module_init(void *options, void **data, char **error)
{
    json_object *v;

    *data = (void *)"must not reach fini";
    if (!json_object_object_get_ex(options, "message", &v))
        *error = strdup("no database at localhost:5432");
    else if (!json_object_is_type(v, json_type_null))
        *error = strdup(json_object_get_string(v));
    return -1;
}

void
fc_module_fini(void *data)
{
    initfail_finis++;
}

int
initfail_handler(fc_request *req, fc_response *resp, fc_token *tok,
    void *data)
{
    return FC_ERROR;
}
