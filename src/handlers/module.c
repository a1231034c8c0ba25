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
 * main thread; module_handler() reads the route's struct only.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "handlers/module.h"
#include "log.h"
#include "router.h"
#include "util.h"

#define MODULE_SYMBOL_MAX   255         /* longest handler name */
#define MODULE_ERROR_MAX    512         /* an init message, escaped */

typedef int (*module_init_cb)(void *, void **, char **);
typedef void (*module_fini_cb)(void *);

/* A route's module; read-only once built, shared by every worker. */
struct module_route {
    char               *file;           /* the "module" path */
    void               *dl;             /* dlopen() handle */
    fc_handler_cb       fn;             /* the "symbol" */
    module_fini_cb      fini;           /* NULL: none */
    void               *data;           /* from fc_module_init() */
};

/* The route keys of a module route, as read from the file. */
struct module_opts {
    char               *module;
    char               *symbol;
    json_object        *options;        /* borrowed from the route object */
};

/* Set by module_defer(): build module routes without loading them. */
static int module_deferred;

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

/* Set *cause to "<path>: <message>"; return -1. */
static int __attribute__((format(printf, 3, 4)))
module_fail(char **cause, const char *path, const char *fmt, ...)
{
    struct buf  b = { 0 };
    va_list     ap;

    va_start(ap, fmt);
    if (buf_printf(&b, "%s: ", path) != 0 || buf_vprintf(&b, fmt, ap) != 0) {
        buf_free(&b);
        b.data = strdup("out of memory");
    }
    va_end(ap);
    *cause = b.data;
    return -1;
}

/* "module": an absolute path (dlopen() would search for a bare name). */
static int
check_module(const char *s, char **why)
{
    if (*s != '/')
        *why = strdup("must be an absolute path");
    return *s != '/' ? -1 : 0;
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
    if (!ok)
        *why = strdup("must be the name of a C function");
    return ok ? 0 : -1;
}

/* "options": an object, handed to fc_module_init() as it is. */
static int
set_options(void *base, json_object *v, const char *path, char **cause)
{
    struct module_opts *mo = base;

    if (!json_object_is_type(v, json_type_object))
        return module_fail(cause, path, "must be an object");
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
        return module_fail(cause, path, "%s", e);
    return module_fail(cause, path, "%s: %s", file, e);
}

/* Unload m's module and free m (fc_module_fini() is the caller's). */
static void
module_close(struct module_route *m)
{
    if (m->dl != NULL && dlclose(m->dl) != 0)
        log_warnx("module %s: dlclose: %s", m->file, dlerror());
    free(m->file);
    free(m);
}

/*
 * Load m->file into m: the ABI check, the handler, fc_module_init() with
 * mo->options (an init failure is reported at "options" if options_given,
 * else at "module").  Return 0, or -1 with *cause set; m->dl is then for
 * the caller to close.
 */
static int
module_load(struct module_route *m, const struct module_opts *mo,
    int options_given, const char *where, char **cause)
{
    const unsigned int *abi;
    struct stat         st;
    module_init_cb      init;
    void               *sym;
    char                path[64], *err = NULL, esc[MODULE_ERROR_MAX];
    int                 rc;

    snprintf(path, sizeof path, "%s.module", where);
    /* dlopen() would read a FIFO or a device: refuse them first.  A stat()
     * that fails is left to dlopen() to report, in its words. */
    if (stat(m->file, &st) == 0 && !S_ISREG(st.st_mode))
        return module_fail(cause, path, "%s: not a regular file", m->file);
    dlerror();
    if ((m->dl = dlopen(m->file, RTLD_NOW | RTLD_LOCAL)) == NULL)
        return dl_fail(cause, path, m->file);
    /* dlsym() on a handle searches the module and its dependencies, not
     * the daemon nor other modules: what it finds is the module's own. */
    if ((abi = dlsym(m->dl, "fc_module_abi")) == NULL)
        return module_fail(cause, path, "%s: no fc_module_abi symbol (not "
            "an fcgi-cancel module? define it with FC_MODULE_DECLARE())",
            m->file);
    if (*abi != FC_ABI_VERSION)
        return module_fail(cause, path, "%s: ABI version %u, this server "
            "speaks %d", m->file, *abi, FC_ABI_VERSION);

    snprintf(path, sizeof path, "%s.symbol", where);
    dlerror();
    if ((sym = dlsym(m->dl, mo->symbol)) == NULL)
        return dl_fail(cause, path, m->file);
    /* POSIX guarantees that a function's address survives a void *. */
    m->fn = (fc_handler_cb)sym;
    m->fini = (module_fini_cb)dlsym(m->dl, "fc_module_fini");

    if ((init = (module_init_cb)dlsym(m->dl, "fc_module_init")) == NULL)
        return 0;
    snprintf(path, sizeof path, "%s.%s", where,
        options_given ? "options" : "module");
    rc = init(mo->options, &m->data, &err);
    if (rc == 0) {
        free(err);
        return 0;
    }
    module_fail(cause, path, "%s: fc_module_init failed%s%s", m->file,
        err != NULL ? ": " : "",
        err != NULL ? log_escape(esc, sizeof esc, err) : "");
    free(err);
    return -1;
}

void
module_defer(int on)
{
    module_deferred = on;
}

/* The handler of a route built by module_defer(1): never served. */
static int
module_unloaded(fc_request *req, fc_response *resp, fc_token *tok,
    void *data)
{
    (void)req;
    (void)tok;
    (void)data;
    fc_response_error(resp, 500, "module not loaded");
    return FC_OK;
}

int
module_route_build(struct route *rt, json_object *route_obj,
    const char *where, char **cause)
{
    struct module_opts   mo = { 0 };
    struct module_route *m = NULL;
    json_object         *empty = NULL;
    int                  ret = -1;

    *cause = NULL;
    /* No key has a string default: this cannot fail. */
    config_keys_defaults(module_keys, nitems(module_keys), &mo);
    if (config_route_options(module_keys, nitems(module_keys), &mo,
        route_obj, where, cause) != 0)
        goto out;
    if (mo.module == NULL || mo.symbol == NULL) {
        module_fail(cause, where, "missing key \"%s\"",
            mo.module == NULL ? "module" : "symbol");
        goto out;
    }
    if (mo.options == NULL &&
        (mo.options = empty = json_object_new_object()) == NULL) {
        module_fail(cause, where, "out of memory");
        goto out;
    }
    if (module_deferred) {
        /* Checked, not loaded: a route of a configuration that is parsed
         * again (main.c), never served. */
        rt->fn = module_unloaded;
        rt->handler_name = "module";
        ret = 0;
        goto out;
    }
    if ((m = calloc(1, sizeof *m)) == NULL ||
        (m->file = strdup(mo.module)) == NULL) {
        free(m);
        m = NULL;
        module_fail(cause, where, "out of memory");
        goto out;
    }
    if (module_load(m, &mo, empty == NULL, where, cause) != 0) {
        module_close(m);
        goto out;
    }
    rt->fn = module_handler;
    rt->data = m;
    rt->data_free = module_route_free;
    rt->handler_name = "module";
    ret = 0;
out:
    json_object_put(empty);
    config_keys_free(module_keys, nitems(module_keys), &mo);
    return ret;
}

void
module_route_free(void *data)
{
    struct module_route *m = data;

    if (m == NULL)
        return;
    if (m->fini != NULL)
        m->fini(m->data);
    module_close(m);
}

int
module_handler(fc_request *req, fc_response *resp, fc_token *tok,
    void *data)
{
    const struct module_route *m = data;

    return m->fn(req, resp, tok, m->data);
}
