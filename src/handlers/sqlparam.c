/* SPDX-License-Identifier: MIT */
/*
 * sqlparam.c - where the values of an sql route's $1..$n come from, read
 * from the route's "params" when the configuration is loaded and resolved
 * for each request (see sqlparam.h).  The query scan knows just enough
 * of PostgreSQL's lexer (strings, E'' strings, quoted identifiers,
 * dollar quotes, nested comments, identifiers holding '$') to find the
 * parameters and a second statement; PostgreSQL itself checks the rest.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/sqlparam.h"
#include "util.h"

static const char *const sqlparam_sources[SQLPARAM_SOURCE__MAX] = {
    [SQLPARAM_ARG] = "arg",
    [SQLPARAM_BODY] = "body",
    [SQLPARAM_PARAM] = "param",
};

/* Set *cause to "path: message"; return -1. */
static int __attribute__((format(printf, 3, 4)))
sqlparam_fail(char **cause, const char *path, const char *fmt, ...)
{
    struct buf  b = { 0 };
    va_list     ap;

    va_start(ap, fmt);
    if ((path != NULL && buf_printf(&b, "%s: ", path) != 0) ||
        buf_vprintf(&b, fmt, ap) != 0) {
        buf_free(&b);
        b.data = strdup("out of memory");
    }
    va_end(ap);
    *cause = b.data;
    return -1;
}

/* Return the text a JSON value is bound as: NULL for null (SQL NULL). */
static char *
json_text(json_object *v, int *nomem)
{
    const char *s;
    char       *t;

    *nomem = 0;
    if (v == NULL)
        return NULL;
    if (json_object_is_type(v, json_type_string))
        s = json_object_get_string(v);
    else
        s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
    if ((t = strdup(s != NULL ? s : "")) == NULL)
        *nomem = 1;
    return t;
}

/* Read one element of "params" (at path) into p. */
static int
sqlparam_parse_one(struct sqlparam *p, json_object *e, const char *path,
    char **cause)
{
    json_object    *v;
    const char     *key;
    int             i, found = 0, nomem;

    if (json_object_is_type(e, json_type_string)) {
        p->source = SQLPARAM_ARG;
        if (*json_object_get_string(e) == '\0')
            return sqlparam_fail(cause, path, "must not be empty");
        if ((p->name = strdup(json_object_get_string(e))) == NULL)
            return sqlparam_fail(cause, NULL, "out of memory");
        return 0;
    }
    if (!json_object_is_type(e, json_type_object))
        return sqlparam_fail(cause, path, "must be a query argument's name "
            "or an object with \"arg\", \"body\" or \"param\"");
    json_object_object_foreach(e, k, val) {
        for (i = 0; i < SQLPARAM_SOURCE__MAX; i++) {
            if (strcmp(k, sqlparam_sources[i]) == 0)
                break;
        }
        if (i < SQLPARAM_SOURCE__MAX) {
            if (found++)
                return sqlparam_fail(cause, path, "must have one of "
                    "\"arg\", \"body\" and \"param\", not two");
            if (!json_object_is_type(val, json_type_string) ||
                *json_object_get_string(val) == '\0')
                return sqlparam_fail(cause, path, "\"%s\" must be a "
                    "non-empty string", k);
            p->source = (enum sqlparam_source)i;
            if ((p->name = strdup(json_object_get_string(val))) == NULL)
                return sqlparam_fail(cause, NULL, "out of memory");
        } else if (strcmp(k, "default") != 0) {
            key = k;
            return sqlparam_fail(cause, path, "unknown key \"%s\" (arg, "
                "body, param or default)", key);
        }
    }
    if (!found)
        return sqlparam_fail(cause, path, "must have \"arg\", \"body\" or "
            "\"param\"");
    if (json_object_object_get_ex(e, "default", &v)) {
        p->has_default = 1;
        p->def = json_text(v, &nomem);
        if (nomem)
            return sqlparam_fail(cause, NULL, "out of memory");
    }
    return 0;
}

int
sqlparam_parse(struct sqlparams *ps, json_object *v, const char *path,
    char **cause)
{
    char    epath[512];
    size_t  i, n;

    if (!json_object_is_type(v, json_type_array))
        return sqlparam_fail(cause, path, "must be an array");
    if ((n = json_object_array_length(v)) > SQLPARAM_MAX)
        return sqlparam_fail(cause, path, "more than %d params",
            SQLPARAM_MAX);
    sqlparam_free(ps);
    if (n == 0)
        return 0;
    if ((ps->v = calloc(n, sizeof *ps->v)) == NULL)
        return sqlparam_fail(cause, NULL, "out of memory");
    ps->n = n;
    for (i = 0; i < n; i++) {
        snprintf(epath, sizeof epath, "%s[%zu]", path, i);
        if (sqlparam_parse_one(&ps->v[i], json_object_array_get_idx(v, i),
            epath, cause) != 0)
            return -1;
    }
    return 0;
}

void
sqlparam_free(struct sqlparams *ps)
{
    size_t i;

    for (i = 0; i < ps->n; i++) {
        free(ps->v[i].name);
        free(ps->v[i].def);
    }
    free(ps->v);
    ps->v = NULL;
    ps->n = 0;
}

/* Can c be part of an identifier (after its first character)? */
static int
ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '$' ||
        (unsigned char)c >= 0x80;
}

/* Return the end of the comment that opens at q[i] ("/ *"), nested as in
 * PostgreSQL, or 0 if it is not closed. */
static size_t
skip_comment(const char *q, size_t len, size_t i)
{
    int depth = 0;

    while (i + 1 < len) {
        if (q[i] == '/' && q[i + 1] == '*') {
            depth++;
            i += 2;
        } else if (q[i] == '*' && q[i + 1] == '/') {
            i += 2;
            if (--depth == 0)
                return i;
        } else {
            i++;
        }
    }
    return 0;
}

/* Return the end of the quoted text opening at q[i] (quote q[i]; quote
 * doubled inside; backslash escapes if bs), or 0 if it is not closed. */
static size_t
skip_quoted(const char *q, size_t len, size_t i, int bs)
{
    char quote = q[i];

    for (i++; i < len; i++) {
        /* An escaped character, or a doubled quote: skip two. */
        if ((bs && q[i] == '\\') ||
            (q[i] == quote && i + 1 < len && q[i + 1] == quote))
            i++;
        else if (q[i] == quote)
            return i + 1;
    }
    return 0;
}

/* At q[i] == '$' (not inside an identifier): if a dollar quote opens
 * here, return its end (0 if not closed) and set *quoted. */
static size_t
skip_dollar(const char *q, size_t len, size_t i, int *quoted)
{
    size_t      j = i + 1;
    const char *end;

    *quoted = 0;
    if (j < len && (isalpha((unsigned char)q[j]) || q[j] == '_' ||
        (unsigned char)q[j] >= 0x80)) {
        while (j < len && ident_char(q[j]) && q[j] != '$')
            j++;
    }
    if (j >= len || q[j] != '$')
        return i + 1;
    *quoted = 1;
    j++;                                /* the tag is q[i..j) */
    end = memmem(q + j, len - j, q + i, j - i);
    return end != NULL ? (size_t)(end - q) + (j - i) : 0;
}

int
sqlparam_check_query(const char *q, size_t n, char **why)
{
    unsigned char   used[SQLPARAM_MAX + 1] = { 0 };
    size_t          len = strlen(q), i = 0, j, k;
    int             after_end = 0, quoted;

    while (i < len) {
        char c = q[i];

        if (c == '-' && i + 1 < len && q[i + 1] == '-') {
            while (i < len && q[i] != '\n')
                i++;
            continue;
        }
        if (c == '/' && i + 1 < len && q[i + 1] == '*') {
            if ((i = skip_comment(q, len, i)) == 0)
                return sqlparam_fail(why, NULL, "has a comment that is "
                    "not closed");
            continue;
        }
        if (isspace((unsigned char)c)) {
            i++;
            continue;
        }
        if (after_end)
            return sqlparam_fail(why, NULL, "must be one statement (text "
                "after the ';')");
        if (c == ';') {
            after_end = 1;
            i++;
            continue;
        }
        if (c == '\'' || c == '"') {
            int bs = c == '\'' && i > 0 && (q[i - 1] == 'E' ||
                q[i - 1] == 'e') && (i < 2 || !ident_char(q[i - 2]));

            if ((i = skip_quoted(q, len, i, bs)) == 0)
                return sqlparam_fail(why, NULL, "has a %s that is not "
                    "closed", c == '"' ? "quoted identifier" : "string");
            continue;
        }
        if (ident_char(c) && c != '$') {
            while (i < len && ident_char(q[i]))
                i++;
            continue;
        }
        if (c == '$' && i + 1 < len && isdigit((unsigned char)q[i + 1])) {
            for (j = i + 1, k = 0; j < len && isdigit((unsigned char)q[j]);
                j++)
                k = k > 100000 ? k : k * 10 + (size_t)(q[j] - '0');
            if (k == 0 || k > n)
                return sqlparam_fail(why, NULL, "uses $%zu, but params "
                    "has %zu %s", k, n, n == 1 ? "entry" : "entries");
            used[k] = 1;
            i = j;
            continue;
        }
        if (c == '$') {
            if ((j = skip_dollar(q, len, i, &quoted)) == 0)
                return sqlparam_fail(why, NULL, "has a dollar-quoted "
                    "string that is not closed");
            i = j;
            continue;
        }
        i++;
    }
    for (k = 1; k <= n; k++) {
        if (!used[k])
            return sqlparam_fail(why, NULL, "does not use $%zu (params has "
                "%zu %s)", k, n, n == 1 ? "entry" : "entries");
    }
    return 0;
}

/* Parse the body (len bytes, not NUL-terminated); NULL if it is not JSON. */
static json_object *
sqlparam_body(const char *data, size_t len)
{
    struct json_tokener *tok;
    json_object         *o = NULL;
    size_t               end;

    if (len == 0 || len > INT32_MAX || (tok = json_tokener_new()) == NULL)
        return NULL;
    o = json_tokener_parse_ex(tok, data, (int)len);
    end = json_tokener_get_parse_end(tok);
    while (end < len && isspace((unsigned char)data[end]))
        end++;
    if (json_tokener_get_error(tok) != json_tokener_success || end != len) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

void
sqlparam_values_free(char **values, size_t n)
{
    size_t i;

    for (i = 0; values != NULL && i < n; i++)
        free(values[i]);
    free(values);
}

int
sqlparam_resolve(const struct sqlparams *ps, fc_request *req,
    char ***values, char **why)
{
    json_object    *body = NULL, *v;
    const void     *data;
    const char     *s;
    char          **vals;
    size_t          i, len;
    int             nomem = 0, rc = -1, found;

    *why = NULL;
    *values = NULL;
    if ((vals = calloc(ps->n + 1, sizeof *vals)) == NULL)
        return -1;
    for (i = 0; i < ps->n; i++) {
        const struct sqlparam *p = &ps->v[i];

        found = 0;
        switch (p->source) {
        case SQLPARAM_ARG:
        case SQLPARAM_PARAM:
            s = p->source == SQLPARAM_ARG ? fc_request_query(req, p->name) :
                fc_request_param(req, p->name);
            if (s != NULL) {
                found = 1;
                if ((vals[i] = strdup(s)) == NULL)
                    goto out;
            }
            break;
        case SQLPARAM_BODY:
            if (body == NULL) {
                data = fc_request_body(req, &len);
                body = sqlparam_body(data, len);
                if (body == NULL ||
                    !json_object_is_type(body, json_type_object)) {
                    sqlparam_fail(why, NULL, "the body must be a JSON "
                        "object");
                    goto out;
                }
            }
            if (json_object_object_get_ex(body, p->name, &v)) {
                found = 1;
                vals[i] = json_text(v, &nomem);
                if (nomem)
                    goto out;
            }
            break;
        default:
            goto out;
        }
        if (found)
            continue;
        if (!p->has_default) {
            sqlparam_fail(why, NULL, "missing %s \"%s\"", p->source ==
                SQLPARAM_BODY ? "body field" : p->source == SQLPARAM_ARG ?
                "query argument" : "request param", p->name);
            goto out;
        }
        if (p->def != NULL && (vals[i] = strdup(p->def)) == NULL)
            goto out;
    }
    *values = vals;
    vals = NULL;
    rc = 0;
out:
    json_object_put(body);
    sqlparam_values_free(vals, ps->n);
    return rc;
}
