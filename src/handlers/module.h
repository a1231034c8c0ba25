/* SPDX-License-Identifier: MIT */
/*
 * module.h - the module handler: a route served by a shared object that
 * is loaded with dlopen() and written against fcgi_cancel.h alone.
 *
 * A route names the object ("module", an absolute path), the handler in
 * it ("symbol") and the options handed to its fc_module_init() ("options",
 * a JSON object, {} by default).  The object is loaded when the route is
 * built (so at start-up and by -t; main.c parses the file a second time
 * for that, after the privilege drop, the first time with
 * HANDLER_CHECK_ONLY), with RTLD_NOW | RTLD_LOCAL: an unresolved symbol is
 * an error then, not in the middle of a request, and two modules do not
 * see each other's symbols.  The module finds the fc_* functions in the
 * daemon, which exports them and nothing else.
 *
 * Its row in the registry is handler_module (handlers/handlers.h).  A
 * build error names the route's key, e.g.
 *   routes[3].module: /x.so: cannot open shared object file: No such ...
 *   routes[3].module: /x.so: ABI version 7, this server speaks 1
 *   routes[3].symbol: /x.so: undefined symbol: x_handler
 *   routes[3].options: /x.so: fc_module_init failed: <its message>
 * and leaves the module unloaded.  When the route is freed, the module's
 * fc_module_fini() is called with the route's data and the module is
 * unloaded.
 */
#ifndef HANDLERS_MODULE_H
#define HANDLERS_MODULE_H

#include "fcgi_cancel.h"

/*
 * The handler of module routes; data is the route's options.  Return what
 * the module's handler returns (FC_OK after a 500 for a route built with
 * HANDLER_CHECK_ONLY).
 */
int     module_handler(fc_request *req, fc_response *resp, fc_token *tok,
            void *data);

#endif /* HANDLERS_MODULE_H */
