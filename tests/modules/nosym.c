/* SPDX-License-Identifier: MIT */
/*
 * nosym.c - a shared object that is not an fcgi-cancel module: it has a
 * handler but no fc_module_abi symbol (no FC_MODULE_DECLARE()).
 */
#include "fcgi_cancel.h"

FC_API int nosym_handler(fc_request *, fc_response *, fc_token *, void *);

int
nosym_handler(fc_request *req, fc_response *resp, fc_token *tok, void *data)
{
    return FC_ERROR;
}
