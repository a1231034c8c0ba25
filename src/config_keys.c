/* SPDX-License-Identifier: MIT */
/*
 * config_keys.c - the key-table engine (see config_keys.h): one reader per
 * type of key, picked from a table by enum config_type, that checks a JSON
 * value and stores it at its offset in the struct being filled; the
 * defaults and the freeing of the same fields; and the few message helpers
 * that every reader of keys shares, so that the same mistake reads the
 * same wherever it is made ("routes[2].steps: must be 0..1000").
 *
 * Nothing here knows the keys themselves: config.c, router.c and each
 * handler own their tables.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "config_keys.h"
#include "log.h"
#include "util.h"

#define PATH_MAX_LEN    512             /* longer paths are truncated */

/* ---- messages ------------------------------------------------------- */

int
config_keys_fail(char **cause, const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    config_keys_vfail(cause, path, fmt, ap);
    va_end(ap);
    return -1;
}

int
config_keys_vfail(char **cause, const char *path, const char *fmt,
    va_list ap)
{
    char *msg;

    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    *cause = NULL;
    if (msg == NULL || path == NULL || *path == '\0') {
        *cause = msg;
        return -1;
    }
    if (asprintf(cause, "%s: %s", path, msg) < 0)
        *cause = NULL;
    free(msg);
    return -1;
}

int
config_keys_refuse(char **why, const char *msg)
{
    *why = strdup(msg);
    return -1;
}

char *
config_keys_names(const char *const *names)
{
    struct buf  b = { 0 };
    size_t      i;

    for (i = 0; names[i] != NULL; i++) {
        if (buf_printf(&b, "%s%s", i == 0 ? "" : names[i + 1] == NULL ?
            " or " : ", ", names[i]) != 0) {
            buf_free(&b);
            return NULL;
        }
    }
    return b.data;
}

int
config_keys_string(json_object *v, const char *path, const char **s,
    char **cause)
{
    if (!json_object_is_type(v, json_type_string))
        return config_keys_fail(cause, path, "must be a string");
    *s = json_object_get_string(v);
    if (strlen(*s) != (size_t)json_object_get_string_len(v))
        return config_keys_fail(cause, path,
            "must not contain a NUL character");
    return 0;
}

/* Set *cause to "out of memory". */
static int
fail_oom(char **cause)
{
    *cause = strdup("out of memory");
    return -1;
}

/*
 * Set *cause to "PATH: must be MUST" if k has its own words for a bad
 * value, else to "PATH: " and the message of fmt.  Return -1.
 */
static int __attribute__((format(printf, 4, 5)))
bad_value(const struct config_key *k, char **cause, const char *path,
    const char *fmt, ...)
{
    va_list ap;

    if (k->must != NULL)
        return config_keys_fail(cause, path, "must be %s", k->must);
    va_start(ap, fmt);
    config_keys_vfail(cause, path, fmt, ap);
    va_end(ap);
    return -1;
}

/* config_keys_string() for k: with k's own words if it has them. */
static int
string_of(const struct config_key *k, json_object *v, const char *path,
    const char **s, char **cause)
{
    if (config_keys_string(v, path, s, cause) == 0)
        return 0;
    if (k->must == NULL)
        return -1;
    free(*cause);
    return config_keys_fail(cause, path, "must be %s", k->must);
}

/* Write where.key into dst, the key escaped as for a log. */
static void
member_path(char *dst, size_t size, const char *where, const char *key)
{
    char k[256];

    log_escape(k, sizeof k, key);
    snprintf(dst, size, "%s%s%s", where, *where == '\0' ? "" : ".",
        *k == '\0' ? "\"\"" : k);
}

/* ---- the readers, one per type --------------------------------------- */

/* CONFIG_INT: a JSON integer within [min, max]. */
static int
set_int(const struct config_key *k, void *base, json_object *v,
    const char *path, char **cause)
{
    int64_t x;

    if (!json_object_is_type(v, json_type_int))
        return bad_value(k, cause, path, "must be an integer");
    /* Beyond int64, json-c saturates: still out of every range here. */
    x = json_object_get_int64(v);
    if (x < k->min || x > k->max)
        return bad_value(k, cause, path, "must be %ld..%ld", k->min, k->max);
    *(long *)(void *)((char *)base + k->offset) = (long)x;
    return 0;
}

/* CONFIG_STRING: a string that check() accepts (or null, if nullable). */
static int
set_string(const struct config_key *k, void *base, json_object *v,
    const char *path, char **cause)
{
    char      **field = (char **)(void *)((char *)base + k->offset);
    const char *s = "";
    char       *why = NULL, *copy = NULL;

    if (k->nullable && json_object_is_type(v, json_type_null)) {
        free(*field);
        *field = NULL;
        return 0;
    }
    if (k->nullable && !json_object_is_type(v, json_type_string))
        return bad_value(k, cause, path, "must be a string or null");
    if (string_of(k, v, path, &s, cause) != 0)
        return -1;
    if (k->check != NULL && k->check(s, &why) != 0) {
        config_keys_fail(cause, path, "%s",
            why != NULL ? why : "out of memory");
        free(why);
        return -1;
    }
    if ((copy = strdup(s)) == NULL)
        return fail_oom(cause);
    free(*field);
    *field = copy;
    return 0;
}

/* CONFIG_ENUM: one of the names, stored as its index. */
static int
set_enum(const struct config_key *k, void *base, json_object *v,
    const char *path, char **cause)
{
    const char *s = "";
    char       *list;
    int         i;

    if (string_of(k, v, path, &s, cause) != 0)
        return -1;
    for (i = 0; k->names[i] != NULL; i++) {
        if (strcmp(s, k->names[i]) == 0) {
            *(int *)(void *)((char *)base + k->offset) = i;
            return 0;
        }
    }
    if ((list = config_keys_names(k->names)) == NULL)
        return fail_oom(cause);
    bad_value(k, cause, path, "must be %s", list);
    free(list);
    return -1;
}

/* CONFIG_MODE: a string of up to 8 octal digits, at most max. */
static int
set_mode(const struct config_key *k, void *base, json_object *v,
    const char *path, char **cause)
{
    const char *s = NULL;
    size_t      len = 0, i;
    long        mode = 0;

    if (json_object_is_type(v, json_type_string)) {
        s = json_object_get_string(v);
        len = (size_t)json_object_get_string_len(v);
    }
    for (i = 0; s != NULL && i < len && len <= 8; i++) {
        if (s[i] < '0' || s[i] > '7')
            break;
        mode = mode * 8 + (s[i] - '0');
    }
    if (s == NULL || len == 0 || len > 8 || i < len || mode > k->max)
        return bad_value(k, cause, path, "must be a string of octal digits "
            "from \"0000\" to \"%04lo\"", (unsigned long)k->max);
    *(mode_t *)(void *)((char *)base + k->offset) = (mode_t)mode;
    return 0;
}

/* CONFIG_STRV: an array of min..max strings. */
static int
set_strv(const struct config_key *k, void *base, json_object *v,
    const char *path, char **cause)
{
    char      ***field = (char ***)(void *)((char *)base + k->offset);
    char        epath[PATH_MAX_LEN], **vec;
    const char *s = "";
    size_t      n, i;

    if (!json_object_is_type(v, json_type_array))
        return bad_value(k, cause, path, "must be an array of strings");
    n = json_object_array_length(v);
    if ((long)n < k->min)
        return k->min == 1 ? bad_value(k, cause, path, "must not be empty") :
            bad_value(k, cause, path, "must have at least %ld elements",
            k->min);
    if (k->max > 0 && (long)n > k->max)
        return bad_value(k, cause, path, "must have at most %ld elements",
            k->max);
    if ((vec = calloc(n + 1, sizeof *vec)) == NULL)
        return fail_oom(cause);
    for (i = 0; i < n; i++) {
        snprintf(epath, sizeof epath, "%s[%zu]", path, i);
        if (config_keys_string(json_object_array_get_idx(v, i), epath, &s,
            cause) != 0) {
            strv_free(vec);
            return -1;
        }
        if ((vec[i] = strdup(s)) == NULL) {
            strv_free(vec);
            return fail_oom(cause);
        }
    }
    strv_free(*field);
    *field = vec;
    return 0;
}

/* CONFIG_CUSTOM: the key's own reader. */
static int
set_custom(const struct config_key *k, void *base, json_object *v,
    const char *path, char **cause)
{
    return k->set(base, v, path, cause);
}

/* How each type is read, by enum config_type. */
static int (*const setters[CONFIG_TYPE__MAX])(const struct config_key *,
    void *, json_object *, const char *, char **) = {
    [CONFIG_INT] = set_int,
    [CONFIG_STRING] = set_string,
    [CONFIG_ENUM] = set_enum,
    [CONFIG_MODE] = set_mode,
    [CONFIG_STRV] = set_strv,
    [CONFIG_CUSTOM] = set_custom,
};

/* ---- tables ---------------------------------------------------------- */

const struct config_key *
config_keys_find(const struct config_key *keys, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    }
    return NULL;
}

int
config_keys_skip_all(const char *name)
{
    (void)name;
    return 1;
}

int
config_keys_read(const struct config_key *keys, size_t n, void *base,
    json_object *obj, const char *where, config_skip_cb skip, char **cause)
{
    const struct config_key *k;
    char                     path[PATH_MAX_LEN];

    json_object_object_foreach(obj, name, v) {
        member_path(path, sizeof path, where, name);
        if ((k = config_keys_find(keys, n, name)) == NULL) {
            if (skip != NULL && skip(name))
                continue;
            return config_keys_fail(cause, path, "unknown key");
        }
        if ((k->set != NULL ? k->set(base, v, path, cause) :
            setters[k->type](k, base, v, path, cause)) != 0)
            return -1;
    }
    return 0;
}

int
config_keys_defaults(const struct config_key *keys, size_t n, void *base)
{
    size_t  i;
    char   *field;

    for (i = 0; i < n; i++) {
        field = (char *)base + keys[i].offset;
        switch (keys[i].type) {
        case CONFIG_INT:
            *(long *)(void *)field = keys[i].def;
            break;
        case CONFIG_ENUM:
            *(int *)(void *)field = (int)keys[i].def;
            break;
        case CONFIG_MODE:
            *(mode_t *)(void *)field = (mode_t)keys[i].def;
            break;
        case CONFIG_STRING:
            *(char **)(void *)field = NULL;
            if (keys[i].def_str != NULL &&
                (*(char **)(void *)field = strdup(keys[i].def_str)) == NULL)
                return -1;
            break;
        case CONFIG_STRV:
            *(char ***)(void *)field = NULL;
            break;
        case CONFIG_CUSTOM:
        case CONFIG_TYPE__MAX:
            break;
        }
    }
    return 0;
}

void
config_keys_free(const struct config_key *keys, size_t n, void *base)
{
    size_t  i;
    char   *field;

    for (i = 0; i < n; i++) {
        field = (char *)base + keys[i].offset;
        if (keys[i].type == CONFIG_STRING) {
            free(*(char **)(void *)field);
            *(char **)(void *)field = NULL;
        } else if (keys[i].type == CONFIG_STRV) {
            strv_free(*(char ***)(void *)field);
            *(char ***)(void *)field = NULL;
        }
    }
}

/* Are two strings (either may be NULL) the same? */
static int
str_same(const char *a, const char *b)
{
    return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int
config_keys_equal(const struct config_key *k, const void *a, const void *b)
{
    const char  *fa = (const char *)a + k->offset;
    const char  *fb = (const char *)b + k->offset;
    char *const *va, *const *vb;
    size_t       i;

    switch (k->type) {
    case CONFIG_INT:
        return *(const long *)(const void *)fa ==
            *(const long *)(const void *)fb;
    case CONFIG_ENUM:
        return *(const int *)(const void *)fa ==
            *(const int *)(const void *)fb;
    case CONFIG_MODE:
        return *(const mode_t *)(const void *)fa ==
            *(const mode_t *)(const void *)fb;
    case CONFIG_STRING:
        return str_same(*(char *const *)(const void *)fa,
            *(char *const *)(const void *)fb);
    case CONFIG_STRV:
        va = *(char **const *)(const void *)fa;
        vb = *(char **const *)(const void *)fb;
        for (i = 0; va != NULL && vb != NULL && va[i] != NULL &&
            vb[i] != NULL; i++) {
            if (strcmp(va[i], vb[i]) != 0)
                return 0;
        }
        /* Both ended together (NULL and empty are both "none"). */
        return (va == NULL || va[i] == NULL) && (vb == NULL || vb[i] == NULL);
    case CONFIG_CUSTOM:
    case CONFIG_TYPE__MAX:
        break;
    }
    return 1;
}

int
config_keys_copy(const struct config_key *k, void *dst, const void *src)
{
    char        *fd = (char *)dst + k->offset;
    const char  *fs = (const char *)src + k->offset;
    char *const *vs;
    char       **vec;
    const char  *s;
    size_t       i, n;

    switch (k->type) {
    case CONFIG_INT:
        *(long *)(void *)fd = *(const long *)(const void *)fs;
        return 0;
    case CONFIG_ENUM:
        *(int *)(void *)fd = *(const int *)(const void *)fs;
        return 0;
    case CONFIG_MODE:
        *(mode_t *)(void *)fd = *(const mode_t *)(const void *)fs;
        return 0;
    case CONFIG_STRING:
        s = *(char *const *)(const void *)fs;
        if (s != NULL && (s = strdup(s)) == NULL)
            return -1;
        free(*(char **)(void *)fd);
        *(char **)(void *)fd = (char *)s;
        return 0;
    case CONFIG_STRV:
        vs = *(char **const *)(const void *)fs;
        vec = NULL;
        if (vs != NULL) {
            for (n = 0; vs[n] != NULL; n++)
                ;
            if ((vec = calloc(n + 1, sizeof *vec)) == NULL)
                return -1;
            for (i = 0; i < n; i++) {
                if ((vec[i] = strdup(vs[i])) == NULL) {
                    strv_free(vec);
                    return -1;
                }
            }
        }
        strv_free(*(char ***)(void *)fd);
        *(char ***)(void *)fd = vec;
        return 0;
    case CONFIG_CUSTOM:
    case CONFIG_TYPE__MAX:
        break;
    }
    return 0;
}
