/* SPDX-License-Identifier: MIT */
/*
 * config_keys.h - the key-table engine: a const table of struct config_key
 * (name, type, place in a struct, bounds, default) says how to read the
 * members of a JSON object into a C struct, with the error messages every
 * key shares ("PATH: must be 1..4096").
 *
 * config.c reads the top-level keys with it, router.c the keys every route
 * has, and the handler registry (handlers/handlers.c) each handler's route
 * options, from the table in the handler's struct handler_def.
 */
#ifndef CONFIG_KEYS_H
#define CONFIG_KEYS_H

#include <stdarg.h>
#include <stddef.h>

#include <json-c/json.h>

enum config_type {
    CONFIG_INT,         /* long, a JSON integer in [min, max] */
    CONFIG_STRING,      /* char *, owned; check() may refuse the value */
    CONFIG_ENUM,        /* int: the index of the JSON string in names */
    CONFIG_MODE,        /* mode_t, a JSON string of octal digits <= max */
    CONFIG_STRV,        /* char **, NULL-terminated, owned: an array of
                           strings with min..max elements (max 0: any) */
    CONFIG_CUSTOM,      /* set() reads the JSON value; nothing is stored
                           by default nor freed by config_keys_free() */
    CONFIG_TYPE__MAX
};

/*
 * The checker of a CONFIG_STRING.  Return 0, or -1 with *why set to what is
 * wrong (caller frees).
 */
typedef int (*config_check_cb)(const char *value, char **why);

/*
 * The reader of a key with a set(): store what v says into base.  Return
 * 0, or -1 with *cause set to "PATH: what is wrong" (caller frees), where
 * PATH is path or a path below it (path "[1]", path ".x").
 */
typedef int (*config_set_cb)(void *base, json_object *v, const char *path,
    char **cause);

/* Return 1 if config_keys_read() is to leave the member name alone. */
typedef int (*config_skip_cb)(const char *name);

/* One key: its name, its type, where it goes in the struct it fills. */
struct config_key {
    const char         *name;
    enum config_type    type;
    size_t              offset;     /* offsetof() the field in base */
    long                min;        /* CONFIG_INT; CONFIG_STRV: elements */
    long                max;        /* CONFIG_INT, CONFIG_MODE, CONFIG_STRV */
    long                def;        /* CONFIG_INT, CONFIG_ENUM, CONFIG_MODE */
    const char         *def_str;    /* CONFIG_STRING; copied, may be NULL */
    const char *const  *names;      /* CONFIG_ENUM; NULL-terminated */
    int                 nullable;   /* CONFIG_STRING: null stores NULL */
    config_check_cb     check;      /* CONFIG_STRING; NULL: any string */
    config_set_cb       set;        /* CONFIG_CUSTOM; with another type, it
                                       reads the value instead of the
                                       type's reader, and the type still
                                       says how the field is defaulted and
                                       freed */
    const char         *must;       /* NULL, or what a bad value must be
                                       ("an integer from 0 to 9"), said in
                                       place of the type's words (not for
                                       an element of a CONFIG_STRV, nor
                                       for what check() refuses) */
};

/*
 * Store the default of each key into base (CONFIG_CUSTOM keys are left
 * alone).  Return 0, or -1 if memory ran out copying a def_str.
 */
int     config_keys_defaults(const struct config_key *keys, size_t n,
            void *base);

/* Free the strings and string vectors that the keys stored in base. */
void    config_keys_free(const struct config_key *keys, size_t n,
            void *base);

/*
 * Return 1 if the field of key k holds the same value in a and b (two
 * structs the keys filled), else 0; CONFIG_CUSTOM keys are always equal.
 */
int     config_keys_equal(const struct config_key *k, const void *a,
            const void *b);

/*
 * Store a copy of src's value of key k into dst, in place of (and
 * freeing) dst's; CONFIG_CUSTOM keys are left alone.  Return 0, or -1 if
 * memory ran out (dst unchanged).
 */
int     config_keys_copy(const struct config_key *k, void *dst,
            const void *src);

/* Return the key called name in keys, or NULL. */
const struct config_key *config_keys_find(const struct config_key *keys,
            size_t n, const char *name);

/*
 * Read the members of obj, in their order in the file, into base with
 * keys.  where is obj's path ("" for the top, "routes[2]"); a member is
 * named WHERE.KEY in messages.  A member that keys does not name is left
 * alone if skip (NULL: none) says so, else it is an error ("WHERE.KEY:
 * unknown key").  Return 0, or -1 with *cause set (caller frees) to
 * "WHERE.KEY: what is wrong".  What was stored before an error stays in
 * base, for config_keys_free().
 */
int     config_keys_read(const struct config_key *keys, size_t n,
            void *base, json_object *obj, const char *where,
            config_skip_cb skip, char **cause);

/* A config_skip_cb that leaves every unknown member alone. */
int     config_keys_skip_all(const char *name);

/* ---- messages, for the readers of keys ------------------------------ */

/*
 * Set *cause (caller frees) to "PATH: message", or to "message" if path is
 * NULL or "".  Return -1.
 */
int     config_keys_fail(char **cause, const char *path, const char *fmt,
            ...) __attribute__((format(printf, 3, 4)));

/* config_keys_fail() with a va_list. */
int     config_keys_vfail(char **cause, const char *path, const char *fmt,
            va_list ap) __attribute__((format(printf, 3, 0)));

/* For a config_check_cb: set *why to a copy of msg.  Return -1. */
int     config_keys_refuse(char **why, const char *msg);

/* Return "a, b or c" for the NULL-terminated names (caller frees), or NULL
 * if memory ran out. */
char   *config_keys_names(const char *const *names);

/*
 * Set *s to the string of v.  Return 0, or -1 with *cause set to "PATH:
 * must be a string" (or "must not contain a NUL character").
 */
int     config_keys_string(json_object *v, const char *path, const char **s,
            char **cause);

#endif /* CONFIG_KEYS_H */
