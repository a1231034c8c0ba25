/* SPDX-License-Identifier: MIT */
/*
 * module.h - the module handler: a route served by a shared object that
 * is loaded with dlopen() and written against fcgi_cancel.h alone.
 *
 * A route names the object ("module", an absolute path), the handler in
 * it ("symbol") and the options handed to its fc_module_init() ("options",
 * a JSON object, {} by default).  The object is loaded when the
 * configuration is (so at start-up and by -t; main.c parses the file a
 * second time for that, after the privilege drop, the first time with
 * module_defer(1)), with RTLD_NOW | RTLD_LOCAL:
 * an unresolved symbol is an error then, not in the middle of a request,
 * and two modules do not see each other's symbols.  The module finds the
 * fc_* functions in the daemon, which exports them and nothing else.
 */
#ifndef HANDLERS_MODULE_H
#define HANDLERS_MODULE_H

#include <json-c/json.h>

#include "fcgi_cancel.h"

struct route;

/*
 * Read the keys "module", "symbol" and "options" of route_obj (the common
 * route keys are left to the caller, any other key is an error), load the
 * module, check its fc_module_abi against FC_ABI_VERSION, find the handler,
 * call the module's fc_module_init() if it has one, and make rt a module
 * route: rt->fn, rt->data and rt->data_free are set.  Return 0, or -1 with
 * *cause set (caller frees) to "<where>.<key>: what is wrong", e.g.
 *   routes[3].module: /x.so: cannot open shared object file: No such ...
 *   routes[3].module: /x.so: ABI version 7, this server speaks 1
 *   routes[3].symbol: /x.so: undefined symbol: x_handler
 *   routes[3].options: /x.so: fc_module_init failed: <its message>
 * and rt unchanged (the module unloaded).
 */
int     module_route_build(struct route *rt, json_object *route_obj,
            const char *where, char **cause);

/*
 * With on, module_route_build() checks a route's keys but loads nothing
 * (the route's handler answers 500: it is not meant to be served).
 */
void    module_defer(int on);

/*
 * Free what module_route_build() stored in rt->data: call the module's
 * fc_module_fini() with the route's data, then unload the module.
 */
void    module_route_free(void *data);

/*
 * The handler of module routes; data is what module_route_build() stored.
 * Return what the module's handler returns.
 */
int     module_handler(fc_request *req, fc_response *resp, fc_token *tok,
            void *data);

#endif /* HANDLERS_MODULE_H */
