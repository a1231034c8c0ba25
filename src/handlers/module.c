/* SPDX-License-Identifier: MIT */
/*
 * module.c - the module handler: loads a route's shared object, checks
 * that it was built for this server's ABI, finds its handler and runs its
 * fc_module_init(); each request then goes to that handler with the data
 * its init returned (see module.h and fcgi_cancel.h for the contract).
 *
 * One load per route: two routes naming the same object share it (dlopen
 * counts references) but each gets its own fc_module_init() call and data,
 * and its own fc_module_fini() and dlclose() when the routes are freed.
 * Everything here runs while the configuration is loaded or freed, on the
 * main thread; module_handler() reads the route's struct only.  With
 * HANDLER_CHECK_ONLY (main.c's first parse, as root) the keys are checked
 * and nothing is loaded: such a route answers 500.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "handlers/handlers.h"
#include "handlers/module.h"
#include "log.h"
#include "util.h"

#define MODULE_SYMBOL_MAX   255         /* longest handler name */
#define MODULE_ERROR_MAX    512         /* an init message, escaped */


typedef int (*module_init_cb)(void *, void **, char **);
typedef void (*module_fini_cb)(void *);

/* A module route's options; read-only once built, shared by every worker. */
struct module_opts {
    char               *module;         /* the "module" path */
    char               *symbol;
    json_object        *options;        /* borrowed from the route object,
                                           while it is built */
    void               *dl;             /* dlopen() handle; NULL: not
                                           loaded (HANDLER_CHECK_ONLY) */
    fc_handler_cb       fn;             /* the "symbol" */
    module_fini_cb      fini;           /* NULL: none, or not inited */
    void               *data;           /* from fc_module_init() */
};

static int check_module(const char *, char **);
static int check_symbol(const char *, char **);
static int set_options(void *, json_object *, const char *, char **);

static const struct config_key module_keys[] = {
    { .name = "module", .type = CONFIG_STRING,
      .offset = offsetof(struct module_opts, module),
      .check = check_module },
    { .name = "symbol", .type = CONFIG_STRING,
      .offset = offsetof(struct module_opts, symbol),
      .check = check_symbol },
    { .name = "options", .type = CONFIG_CUSTOM, .set = set_options },
};

/* "module": an absolute path (dlopen() would search for a bare name). */
static int
check_module(const char *s, char **why)
{
    return *s != '/' ? config_keys_refuse(why, "must be an absolute path") :
        0;
}

/* "symbol": a C identifier. */
static int
check_symbol(const char *s, char **why)
{
    size_t i, len = strlen(s);
    int    ok = len > 0 && len <= MODULE_SYMBOL_MAX &&
        (isalpha((unsigned char)s[0]) || s[0] == '_');

    for (i = 1; ok && i < len; i++)
        ok = isalnum((unsigned char)s[i]) || s[i] == '_';
    return ok ? 0 : config_keys_refuse(why,
        "must be the name of a C function");
}

/* "options": an object, handed to fc_module_init() as it is. */
static int
set_options(void *base, json_object *v, const char *path, char **cause)
{
    struct module_opts *mo = base;

    if (!json_object_is_type(v, json_type_object))
        return config_keys_fail(cause, path, "must be an object");
    mo->options = v;
    return 0;
}

/* Set *cause to "<path>: <dlerror()>", with the file in front if missing. */
static int
dl_fail(char **cause, const char *path, const char *file)
{
    const char *e = dlerror();
    size_t      len = strlen(file);

    if (e == NULL)
        e = "unknown dynamic loader error";
    if (strncmp(e, file, len) == 0 && e[len] == ':')
        return config_keys_fail(cause, path, "%s", e);
    return config_keys_fail(cause, path, "%s: %s", file, e);
}

/*
 * Load m->module into m: the ABI check, the handler, fc_module_init() with
 * m->options (an init failure is reported at "options" if options_given,
 * else at "module").  Return 0, or -1 with *cause set; m->dl is then for
 * module_fini() to close.
 */
static int
module_load(struct module_opts *m, int options_given, const char *where,
    char **cause)
{
    const unsigned int *abi;
    struct stat         st;
    module_init_cb      init;
    module_fini_cb      fini;
    void               *sym;
    char                path[64], *err = NULL, esc[MODULE_ERROR_MAX];

    snprintf(path, sizeof path, "%s.module", where);
    /* dlopen() would read a FIFO or a device: refuse them first.  A stat()
     * that fails is left to dlopen() to report, in its words. */
    if (stat(m->module, &st) == 0 && !S_ISREG(st.st_mode))
        return config_keys_fail(cause, path, "%s: not a regular file",
            m->module);
    dlerror();
    if ((m->dl = dlopen(m->module, RTLD_NOW | RTLD_LOCAL)) == NULL)
        return dl_fail(cause, path, m->module);
    /* dlsym() on a handle searches the module and its dependencies, not
     * the daemon nor other modules: what it finds is the module's own. */
    if ((abi = dlsym(m->dl, "fc_module_abi")) == NULL)
        return config_keys_fail(cause, path, "%s: no fc_module_abi symbol (not "
            "an fcgi-cancel module? define it with FC_MODULE_DECLARE())",
            m->module);
    if (*abi != FC_ABI_VERSION)
        return config_keys_fail(cause, path, "%s: ABI version %u, this server "
            "speaks %d", m->module, *abi, FC_ABI_VERSION);

    snprintf(path, sizeof path, "%s.symbol", where);
    dlerror();
    if ((sym = dlsym(m->dl, m->symbol)) == NULL)
        return dl_fail(cause, path, m->module);
    /* POSIX guarantees that a function's address survives a void *. */
    m->fn = (fc_handler_cb)sym;
    fini = (module_fini_cb)dlsym(m->dl, "fc_module_fini");

    if ((init = (module_init_cb)dlsym(m->dl, "fc_module_init")) != NULL) {
        snprintf(path, sizeof path, "%s.%s", where,
            options_given ? "options" : "module");
        if (init(m->options, &m->data, &err) != 0) {
            config_keys_fail(cause, path, "%s: fc_module_init failed%s%s",
                m->module, err != NULL ? ": " : "",
                err != NULL ? log_escape(esc, sizeof esc, err) : "");
            free(err);
            return -1;
        }
        free(err);
    }
    m->fini = fini;             /* inited: fini it when the route goes */
    return 0;
}

/* The builder of module routes: both keys, then the load (see module.h). */
static int
module_build(void *opts, json_object *route_obj,
    const struct handler_ctx *ctx, char **cause)
{
    struct module_opts  *m = opts;
    json_object         *empty = NULL;
    int                  ret;

    (void)route_obj;
    if (m->module == NULL || m->symbol == NULL)
        return config_keys_fail(cause, ctx->where, "missing key \"%s\"",
            m->module == NULL ? "module" : "symbol");
    /* Checked, not loaded: a route of a configuration that is parsed
     * again (main.c), never served. */
    if (ctx->flags & HANDLER_CHECK_ONLY)
        return 0;
    if (m->options == NULL &&
        (m->options = empty = json_object_new_object()) == NULL)
        return config_keys_fail(cause, ctx->where, "out of memory");
    ret = module_load(m, empty == NULL, ctx->where, cause);
    m->options = NULL;          /* the route object's: not kept */
    json_object_put(empty);
    return ret;
}

/* Call the module's fc_module_fini() with the route's data, unload it. */
static void
module_fini(void *opts)
{
    struct module_opts *m = opts;

    if (m->fini != NULL)
        m->fini(m->data);
    if (m->dl != NULL && dlclose(m->dl) != 0)
        log_warnx("module %s: dlclose: %s", m->module, dlerror());
    m->dl = NULL;
}

int
module_handler(fc_request *req, fc_response *resp, fc_token *tok,
    void *data)
{
    const struct module_opts *m = data;

    if (m->fn == NULL) {        /* built with HANDLER_CHECK_ONLY */
        fc_response_error(resp, 500, "module not loaded");
        return FC_OK;
    }
    return m->fn(req, resp, tok, m->data);
}

const struct handler_def handler_module = {
    .name = "module",
    .keys = module_keys,
    .nkeys = nitems(module_keys),
    .opts_size = sizeof(struct module_opts),
    .build = module_build,
    .handler = module_handler,
    .fini = module_fini,
};
