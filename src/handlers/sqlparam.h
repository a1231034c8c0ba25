/* SPDX-License-Identifier: MIT */
/*
 * sqlparam.h - the parameters of an sql route: where the value of each
 * $n of its query comes from (a query argument, a field of a JSON body, a
 * FastCGI param), its default, and the check that the query uses exactly
 * $1..$n.  No libpq: the values are handed to PQsendQueryParams() by
 * sql.c, always bound, never spliced into the SQL text.
 */
#ifndef HANDLERS_SQLPARAM_H
#define HANDLERS_SQLPARAM_H

#include <stddef.h>

#include <json-c/json.h>

#include "fcgi_cancel.h"

#define SQLPARAM_MAX    256         /* params of one route */

enum sqlparam_source {
    SQLPARAM_ARG,           /* a query-string argument */
    SQLPARAM_BODY,          /* a member of the JSON object of the body */
    SQLPARAM_PARAM,         /* a FastCGI param (REMOTE_USER, ...) */
    SQLPARAM_SOURCE__MAX
};

/* One $n. */
struct sqlparam {
    enum sqlparam_source source;
    char                *name;
    int                  has_default;
    char                *def;      /* the default's text; NULL: SQL NULL */
};

/* A route's params, in $n order. */
struct sqlparams {
    struct sqlparam     *v;
    size_t               n;
};

/*
 * Read a route's "params" value v (an array; an element is a string, the
 * name of a query argument, or an object with one of "arg", "body",
 * "param" and optionally "default") into ps.  Return 0, or -1 with *cause
 * set (caller frees) to "PATH[i]: what is wrong"; what was read stays in
 * ps for sqlparam_free().
 */
int     sqlparam_parse(struct sqlparams *ps, json_object *v,
            const char *path, char **cause);

/* Free what ps holds. */
void    sqlparam_free(struct sqlparams *ps);

/*
 * Check that query is one statement whose parameters are exactly $1..$n
 * (each used at least once), outside its strings, quoted identifiers,
 * dollar quotes and comments.  Return 0, or -1 with *why set (caller
 * frees).
 */
int     sqlparam_check_query(const char *query, size_t n, char **why);

/*
 * The values of ps for req: (*values)[i] is $i+1's text, or NULL for SQL
 * NULL.  A JSON value that is not a string is passed as its JSON text
 * (numbers, true/false, objects and arrays for json parameters).  Return
 * 0 with *values set (free it with sqlparam_values_free(*values, ps->n)),
 * or -1 with *why set (caller frees) to the client's error (a 400): a
 * missing value without default, a body that is not a JSON object.
 * *why is NULL if memory ran out.
 */
int     sqlparam_resolve(const struct sqlparams *ps, fc_request *req,
            char ***values, char **why);

/* Free the values of sqlparam_resolve(). */
void    sqlparam_values_free(char **values, size_t n);

#endif /* HANDLERS_SQLPARAM_H */
