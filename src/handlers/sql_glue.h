/* SPDX-License-Identifier: MIT */
/*
 * sql_glue.h - GLUE UNTIL THE REGISTRY LANDS: serves the sql handler's
 * registry row (handler_sql) through config.c's handler table of today.
 * Drop this file and sql_glue.c when the registry builds routes itself.
 */
#ifndef HANDLERS_SQL_GLUE_H
#define HANDLERS_SQL_GLUE_H

#include <json-c/json.h>

struct route;

/* A config_route_build_cb for "sql" routes, doing what the registry will:
 * calloc the options, defaults, the route's keys, handler_sql.build(). */
int     sql_glue_route_build(struct route *rt, json_object *route_obj,
            const char *where, char **cause);

#endif /* HANDLERS_SQL_GLUE_H */
