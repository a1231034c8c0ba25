/* SPDX-License-Identifier: MIT */
/*
 * badabi.c - a test module built for another ABI version (7): the loader
 * must refuse it, naming both versions.
 */
#include "fcgi_cancel.h"

FC_API const unsigned int fc_module_abi = 7;

FC_API int badabi_handler(fc_request *, fc_response *, fc_token *, void *);

int
badabi_handler(fc_request *req, fc_response *resp, fc_token *tok, void *data)
{
    return FC_ERROR;
}
