/* SPDX-License-Identifier: MIT */
/*
 * whoami.c - a test module that says which user ran its fc_module_init()
 * and which runs its handler: "init=UID handler=UID".  Its init refuses
 * to run as root, so a server that loads modules before it drops its
 * privileges does not start.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fcgi_cancel.h"

FC_MODULE_DECLARE();

FC_API int whoami_handler(fc_request *, fc_response *, fc_token *, void *);

int
fc_module_init(void *options, void **data, char **error)
{
    (void)options;
    if (geteuid() == 0) {
        *error = strdup("fc_module_init ran as root");
        return -1;
    }
    *data = (void *)(uintptr_t)geteuid();
    return 0;
}

int
whoami_handler(fc_request *req, fc_response *resp, fc_token *tok,
    void *data)
{
    (void)req;
    (void)tok;
    return fc_response_printf(resp, "init=%lu handler=%lu\n",
        (unsigned long)(uintptr_t)data, (unsigned long)geteuid()) < 0 ?
        FC_ERROR : FC_OK;
}
