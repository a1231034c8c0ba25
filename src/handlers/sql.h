/* SPDX-License-Identifier: MIT */
/*
 * sql.h - the sql handler: a route runs one PostgreSQL statement with its
 * values bound from the request and streams the rows back as JSON, NDJSON
 * or CSV; when the request is cancelled (client gone, deadline, shutdown)
 * the statement is cancelled in the database too, and its connection goes
 * back to the route's pool idle.  See fcgi-cancel.json(5), "sql".
 *
 * Its parts: pgpool.c (the connections), sqlparam.c (the $n values),
 * sqlout.c (the rows as text).
 */
#ifndef HANDLERS_SQL_H
#define HANDLERS_SQL_H

#include "handlers/handlers.h"

/* The registry's row of the sql handler. */
extern const struct handler_def handler_sql;

/*
 * The HTTP status for a failed statement: 400 for SQLSTATE class 22 (a
 * bad value, e.g. "abc" for an integer), 503 when the database is
 * unavailable (conn_bad: the connection broke; class 08, 57P01..57P03,
 * class 53), 500 for the rest.  sqlstate may be NULL.
 */
int     sql_http_status(const char *sqlstate, int conn_bad);

/*
 * The "sql" section of /status: an object with one member per sql route
 * being served, named by its path (a json_object *; caller puts it).
 */
void   *sql_status_json(void);

#endif /* HANDLERS_SQL_H */
