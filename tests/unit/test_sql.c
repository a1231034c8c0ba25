/* SPDX-License-Identifier: MIT */
/*
 * test_sql.c - unit tests of the sql handler's parts that need no
 * database: the row writer and type mapping (handlers/sqlout.c), the
 * params and the query scan (handlers/sqlparam.c) with requests built by
 * request_new(), the HTTP status of an SQLSTATE (handlers/sql.c), the
 * conninfo without its password and a pool whose database is not there
 * (pgpool.c: 503 at once, nothing hangs), and the route keys through
 * config_load().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <json-c/json.h>

#include "config.h"
#include "handlers/sql.h"
#include "handlers/sqlout.h"
#include "handlers/sqlparam.h"
#include "pgpool.h"
#include "request.h"
#include "token.h"
#include "unit.h"

enum { OID_BOOL = 16, OID_INT8 = 20, OID_INT4 = 23, OID_TEXT = 25,
    OID_JSON = 114, OID_FLOAT8 = 701, OID_NUMERIC = 1700, OID_JSONB = 3802 };

/* ---- sqlout ---------------------------------------------------------- */

/* Return s as sqlout_json_string() writes it (static buffer). */
static const char *
jstr(const char *s, size_t len)
{
    static char out[256];
    struct buf  b = { 0 };

    CU_ASSERT_EQUAL_FATAL(sqlout_json_string(&b, s, len), 0);
    snprintf(out, sizeof out, "%s", b.data);
    buf_free(&b);
    return out;
}

static void
test_json_string(void)
{
    CU_ASSERT_STRING_EQUAL(jstr("", 0), "\"\"");
    CU_ASSERT_STRING_EQUAL(jstr("plain", 5), "\"plain\"");
    CU_ASSERT_STRING_EQUAL(jstr("a\"b\\c", 5), "\"a\\\"b\\\\c\"");
    CU_ASSERT_STRING_EQUAL(jstr("\n\r\t\x01\x1f", 5),
        "\"\\n\\r\\t\\u0001\\u001f\"");
    CU_ASSERT_STRING_EQUAL(jstr("nul\0in", 6), "\"nul\\u0000in\"");
    /* Valid UTF-8 passes: 2, 3 and 4 bytes. */
    CU_ASSERT_STRING_EQUAL(jstr("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9),
        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    /* Invalid: a lone continuation byte, a cut sequence, an overlong
     * form, a surrogate, beyond U+10FFFF, 0xff. */
    CU_ASSERT_STRING_EQUAL(jstr("\x80", 1), "\"\\ufffd\"");
    CU_ASSERT_STRING_EQUAL(jstr("a\xc3", 2), "\"a\\ufffd\"");
    CU_ASSERT_STRING_EQUAL(jstr("\xc0\xaf", 2), "\"\\ufffd\\ufffd\"");
    CU_ASSERT_STRING_EQUAL(jstr("\xed\xa0\x80", 3),
        "\"\\ufffd\\ufffd\\ufffd\"");
    CU_ASSERT_STRING_EQUAL(jstr("\xf4\x90\x80\x80", 4),
        "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
    CU_ASSERT_STRING_EQUAL(jstr("x\xffy", 3), "\"x\\ufffdy\"");
}

static void
test_json_number(void)
{
    static const char *const good[] = {
        "0", "-0", "7", "-12", "1.5", "0.25", "1e10", "1E+10", "-2.5e-3",
        "9007199254740993", "123.4500"
    };
    static const char *const bad[] = {
        "", "-", "NaN", "Infinity", "-Infinity", "01", "1.", ".5", "1e",
        "+1", "1 ", "0x10", "1e+", "--1"
    };
    size_t i;

    for (i = 0; i < nitems(good); i++)
        CU_ASSERT_TRUE(sqlout_json_number(good[i], strlen(good[i])));
    for (i = 0; i < nitems(bad); i++)
        CU_ASSERT_FALSE(sqlout_json_number(bad[i], strlen(bad[i])));
}

static void
test_kinds(void)
{
    CU_ASSERT_EQUAL(sqlout_kind_of(OID_INT4), SQLOUT_NUMBER);
    CU_ASSERT_EQUAL(sqlout_kind_of(OID_INT8), SQLOUT_NUMBER);
    CU_ASSERT_EQUAL(sqlout_kind_of(OID_FLOAT8), SQLOUT_NUMBER);
    CU_ASSERT_EQUAL(sqlout_kind_of(OID_NUMERIC), SQLOUT_NUMBER);
    CU_ASSERT_EQUAL(sqlout_kind_of(OID_BOOL), SQLOUT_BOOL);
    CU_ASSERT_EQUAL(sqlout_kind_of(OID_JSON), SQLOUT_RAW_JSON);
    CU_ASSERT_EQUAL(sqlout_kind_of(OID_JSONB), SQLOUT_RAW_JSON);
    CU_ASSERT_EQUAL(sqlout_kind_of(OID_TEXT), SQLOUT_STRING);
    CU_ASSERT_EQUAL(sqlout_kind_of(1082), SQLOUT_STRING);      /* date */
    CU_ASSERT_STRING_EQUAL(sqlout_content_type(SQLOUT_JSON),
        "application/json");
    CU_ASSERT_STRING_EQUAL(sqlout_content_type(SQLOUT_NDJSON),
        "application/x-ndjson");
    CU_ASSERT_STRING_EQUAL(sqlout_content_type(SQLOUT_CSV),
        "text/csv; charset=utf-8");
}

/* The result of the writer tests: five columns, three rows. */
static const char *const cols[] = { "id", "name", "f", "ok", "doc" };
static const unsigned int oids[] = {
    OID_INT4, OID_TEXT, OID_FLOAT8, OID_BOOL, OID_JSONB
};
static const char *const rows[3][5] = {
    { "1", "a,b", "1.5", "t", "{\"k\": [1]}" },
    { "2", "say \"hi\"\n", "NaN", "f", "null" },
    { "3", NULL, NULL, NULL, NULL },
};

/* Write the result in format; return what the writer produced (caller
 * frees). */
static char *
write_all(enum sqlout_format format, size_t nrows)
{
    struct sqlout   o;
    struct buf      all = { 0 };
    size_t          lens[5], i, j;

    CU_ASSERT_EQUAL_FATAL(sqlout_begin(&o, format, 5, cols, oids), 0);
    for (i = 0; i < nrows; i++) {
        for (j = 0; j < 5; j++)
            lens[j] = rows[i][j] != NULL ? strlen(rows[i][j]) : 0;
        CU_ASSERT_EQUAL_FATAL(sqlout_row(&o, rows[i], lens), 0);
        /* As the handler does: drain after each row. */
        buf_add(&all, o.out.data, o.out.len);
        o.out.len = 0;
    }
    CU_ASSERT_EQUAL_FATAL(sqlout_end(&o), 0);
    buf_add(&all, o.out.data, o.out.len);
    CU_ASSERT_EQUAL(o.rows, nrows);
    sqlout_free(&o);
    return all.data;
}

static void
test_writer_json(void)
{
    char *s = write_all(SQLOUT_JSON, 3);

    CU_ASSERT_STRING_EQUAL(s, "[\n"
        "{\"id\":1,\"name\":\"a,b\",\"f\":1.5,\"ok\":true,\"doc\":{\"k\": [1]}},\n"
        "{\"id\":2,\"name\":\"say \\\"hi\\\"\\n\",\"f\":\"NaN\",\"ok\":false,"
        "\"doc\":null},\n"
        "{\"id\":3,\"name\":null,\"f\":null,\"ok\":null,\"doc\":null}\n]\n");
    free(s);
    s = write_all(SQLOUT_JSON, 0);
    CU_ASSERT_STRING_EQUAL(s, "[]\n");
    free(s);
}

static void
test_writer_ndjson(void)
{
    char *s = write_all(SQLOUT_NDJSON, 2);

    CU_ASSERT_STRING_EQUAL(s,
        "{\"id\":1,\"name\":\"a,b\",\"f\":1.5,\"ok\":true,\"doc\":{\"k\": [1]}}\n"
        "{\"id\":2,\"name\":\"say \\\"hi\\\"\\n\",\"f\":\"NaN\",\"ok\":false,"
        "\"doc\":null}\n");
    free(s);
    s = write_all(SQLOUT_NDJSON, 0);
    CU_ASSERT(s == NULL || *s == '\0');     /* nothing at all */
    free(s);
}

static void
test_writer_csv(void)
{
    char *s = write_all(SQLOUT_CSV, 3);

    CU_ASSERT_STRING_EQUAL(s, "id,name,f,ok,doc\r\n"
        "1,\"a,b\",1.5,true,\"{\"\"k\"\": [1]}\"\r\n"
        "2,\"say \"\"hi\"\"\n\",NaN,false,null\r\n"
        "3,,,,\r\n");
    free(s);
}

/* An empty string is "" in CSV, NULL nothing; a name is quoted too. */
static void
test_writer_csv_empty(void)
{
    static const char *const names[] = { "a b", "c,d" };
    static const unsigned int types[] = { OID_TEXT, OID_TEXT };
    const char     *vals[] = { "", NULL };
    size_t          lens[] = { 0, 0 };
    struct sqlout   o;

    CU_ASSERT_EQUAL_FATAL(sqlout_begin(&o, SQLOUT_CSV, 2, names, types), 0);
    CU_ASSERT_EQUAL_FATAL(sqlout_row(&o, vals, lens), 0);
    CU_ASSERT_STRING_EQUAL(o.out.data, "a b,\"c,d\"\r\n\"\",\r\n");
    sqlout_free(&o);
    /* No columns (an INSERT without RETURNING): no header line. */
    CU_ASSERT_EQUAL_FATAL(sqlout_begin(&o, SQLOUT_CSV, 0, NULL, NULL), 0);
    CU_ASSERT_EQUAL(o.out.len, 0);
    sqlout_free(&o);
    CU_ASSERT_EQUAL_FATAL(sqlout_begin(&o, SQLOUT_JSON, 0, NULL, NULL), 0);
    CU_ASSERT_EQUAL(sqlout_end(&o), 0);
    CU_ASSERT_STRING_EQUAL(o.out.data, "[]\n");
    sqlout_free(&o);
}

/* A json value's line breaks (white space) do not break an NDJSON line. */
static void
test_writer_json_lines(void)
{
    static const char *const names[] = { "j" };
    static const unsigned int types[] = { OID_JSON };
    const char     *vals[] = { "{\n  \"a\": \"x\\ny\",\r\n  \"b\": 1\n}" };
    size_t          lens[] = { strlen(vals[0]) };
    struct sqlout   o;

    CU_ASSERT_EQUAL_FATAL(sqlout_begin(&o, SQLOUT_NDJSON, 1, names, types),
        0);
    CU_ASSERT_EQUAL_FATAL(sqlout_row(&o, vals, lens), 0);
    CU_ASSERT_STRING_EQUAL(o.out.data,
        "{\"j\":{   \"a\": \"x\\ny\",    \"b\": 1 }}\n");
    sqlout_free(&o);
}

/* Every JSON document the writer makes parses, whatever the bytes. */
static void
test_writer_parses(void)
{
    static const char *const names[] = { "t", "n", "b" };
    static const unsigned int types[] = { OID_TEXT, OID_NUMERIC, OID_BOOL };
    static const char *const texts[] = {
        "\xff\xfe", "\"", "\\", "\x7f", "\xe2\x80\xa8", "\x01\x02", "ok"
    };
    static const char *const nums[] = {
        "NaN", "1", "-Infinity", "1e5", "x", "", "0"
    };
    static const char *const bools[] = { "t", "f", "x", "", "t", "f", "tt" };
    struct sqlout   o;
    const char     *vals[3];
    size_t          lens[3], i;
    json_object    *doc;

    CU_ASSERT_EQUAL_FATAL(sqlout_begin(&o, SQLOUT_JSON, 3, names, types), 0);
    for (i = 0; i < nitems(texts); i++) {
        vals[0] = texts[i];
        vals[1] = nums[i];
        vals[2] = bools[i];
        lens[0] = strlen(texts[i]);
        lens[1] = strlen(nums[i]);
        lens[2] = strlen(bools[i]);
        CU_ASSERT_EQUAL_FATAL(sqlout_row(&o, vals, lens), 0);
    }
    CU_ASSERT_EQUAL_FATAL(sqlout_end(&o), 0);
    doc = json_tokener_parse(o.out.data);
    CU_ASSERT_PTR_NOT_NULL_FATAL(doc);
    CU_ASSERT_EQUAL(json_object_array_length(doc), nitems(texts));
    json_object_put(doc);
    sqlout_free(&o);
}

/* ---- the query scan ------------------------------------------------------ */

/* Return 0 if query passes with n params, else -1 (the message dropped). */
static int
check(const char *query, size_t n)
{
    char   *why = NULL;
    int     rc = sqlparam_check_query(query, n, &why);

    CU_ASSERT((rc == 0) == (why == NULL));
    free(why);
    return rc;
}

static void
test_query_scan(void)
{
    CU_ASSERT_EQUAL(check("select 1", 0), 0);
    CU_ASSERT_EQUAL(check("select 1;", 0), 0);
    CU_ASSERT_EQUAL(check("select 1; -- done\n /* c */ ", 0), 0);
    CU_ASSERT_EQUAL(check("select $1, $2, $1", 2), 0);
    CU_ASSERT_EQUAL(check("select $10", 10), -1);      /* $1..$9 unused */
    CU_ASSERT_EQUAL(check("select $1", 0), -1);
    CU_ASSERT_EQUAL(check("select $0", 1), -1);
    CU_ASSERT_EQUAL(check("select $2", 1), -1);
    CU_ASSERT_EQUAL(check("select 1", 1), -1);
    /* Not parameters: in strings, identifiers, comments, dollar quotes. */
    CU_ASSERT_EQUAL(check("select '$1', \"$1\", $1", 1), 0);
    CU_ASSERT_EQUAL(check("select 'it''s $2', $1", 1), 0);
    CU_ASSERT_EQUAL(check("select E'\\'$2', $1", 1), 0);
    CU_ASSERT_EQUAL(check("select foo$2 from t$3 where a = $1", 1), 0);
    CU_ASSERT_EQUAL(check("select $1 -- $2\n", 1), 0);
    CU_ASSERT_EQUAL(check("select /* $2 /* $3 */ $4 */ $1", 1), 0);
    CU_ASSERT_EQUAL(check("select $$ $2 ; $$, $1", 1), 0);
    CU_ASSERT_EQUAL(check("select $fn$ $2 $x$ ; $fn$, $1", 1), 0);
    /* Two statements; unclosed things. */
    CU_ASSERT_EQUAL(check("select 1; select 2", 0), -1);
    CU_ASSERT_EQUAL(check("select ';' ; delete from t", 0), -1);
    CU_ASSERT_EQUAL(check("select 'x", 0), -1);
    CU_ASSERT_EQUAL(check("select \"x", 0), -1);
    CU_ASSERT_EQUAL(check("select /* x", 0), -1);
    CU_ASSERT_EQUAL(check("select $a$ x", 0), -1);
    /* A ';' in a string, a comment, a dollar quote is no end. */
    CU_ASSERT_EQUAL(check("select ';x', $$;y$$ /* ;z */", 0), 0);
}

/* ---- params ---------------------------------------------------------------- */

/* Parse text as "params"; return 0 or -1 (message in *cause if asked). */
static int
parse(struct sqlparams *ps, const char *text, char **cause)
{
    json_object *v = json_tokener_parse(text);
    char        *why = NULL;
    int          rc;

    CU_ASSERT_PTR_NOT_NULL_FATAL(v);
    rc = sqlparam_parse(ps, v, "routes[1].params", &why);
    json_object_put(v);
    if (cause != NULL)
        *cause = why;
    else
        free(why);
    return rc;
}

static void
test_params_parse(void)
{
    struct sqlparams    ps = { 0 };
    char               *cause;

    CU_ASSERT_EQUAL(parse(&ps, "[\"id\", {\"body\": \"b\", \"default\": 5},"
        " {\"param\": \"REMOTE_USER\", \"default\": null},"
        " {\"arg\": \"j\", \"default\": {\"a\": [1]}}]", NULL), 0);
    CU_ASSERT_EQUAL_FATAL(ps.n, 4);
    CU_ASSERT_EQUAL(ps.v[0].source, SQLPARAM_ARG);
    CU_ASSERT_STRING_EQUAL(ps.v[0].name, "id");
    CU_ASSERT_FALSE(ps.v[0].has_default);
    CU_ASSERT_EQUAL(ps.v[1].source, SQLPARAM_BODY);
    CU_ASSERT_STRING_EQUAL(ps.v[1].def, "5");
    CU_ASSERT_EQUAL(ps.v[2].source, SQLPARAM_PARAM);
    CU_ASSERT_TRUE(ps.v[2].has_default);
    CU_ASSERT_PTR_NULL(ps.v[2].def);
    CU_ASSERT_STRING_EQUAL(ps.v[3].def, "{\"a\":[1]}");
    sqlparam_free(&ps);

    CU_ASSERT_EQUAL(parse(&ps, "[\"a\", 7]", &cause), -1);
    CU_ASSERT_STRING_EQUAL(cause, "routes[1].params[1]: must be a query "
        "argument's name or an object with \"arg\", \"body\" or \"param\"");
    free(cause);
    sqlparam_free(&ps);
    CU_ASSERT_EQUAL(parse(&ps, "[{\"default\": 1}]", &cause), -1);
    CU_ASSERT_STRING_EQUAL(cause, "routes[1].params[0]: must have \"arg\", "
        "\"body\" or \"param\"");
    free(cause);
    sqlparam_free(&ps);
    CU_ASSERT_EQUAL(parse(&ps, "[{\"arg\": \"a\", \"dflt\": 1}]", &cause),
        -1);
    CU_ASSERT_STRING_EQUAL(cause, "routes[1].params[0]: unknown key "
        "\"dflt\" (arg, body, param or default)");
    free(cause);
    sqlparam_free(&ps);
    CU_ASSERT_EQUAL(parse(&ps, "[\"\"]", NULL), -1);
    sqlparam_free(&ps);
    CU_ASSERT_EQUAL(parse(&ps, "[{\"arg\": 1}]", NULL), -1);
    sqlparam_free(&ps);
    CU_ASSERT_EQUAL(parse(&ps, "{}", NULL), -1);
    sqlparam_free(&ps);
}

/* A request with query string qs and body (may be NULL); one at a time
 * (its params live here until request_free()). */
static fc_request *
request(const char *qs, const char *body)
{
    static char env[3][256], *envp[4];
    fc_request *req;
    char       *b;

    snprintf(env[0], sizeof env[0], "QUERY_STRING=%s", qs);
    snprintf(env[1], sizeof env[1], "REQUEST_METHOD=POST");
    snprintf(env[2], sizeof env[2], "REMOTE_USER=alice");
    envp[0] = env[0];
    envp[1] = env[1];
    envp[2] = env[2];
    envp[3] = NULL;
    req = request_new(1, envp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    if (body != NULL) {
        b = strdup(body);
        request_set_body(req, b, strlen(body));
    }
    return req;
}

/* Resolve spec's params for qs and body; return 0 or -1 (*why kept). */
static int
resolve(const char *spec, const char *qs, const char *body, char ***vals,
    char **why, struct sqlparams *ps)
{
    fc_request *req;
    int         rc;

    CU_ASSERT_EQUAL_FATAL(parse(ps, spec, NULL), 0);
    req = request(qs, body);
    rc = sqlparam_resolve(ps, req, vals, why);
    request_free(req);
    return rc;
}

static void
test_params_resolve(void)
{
    struct sqlparams    ps = { 0 };
    char              **v, *why;

    CU_ASSERT_EQUAL_FATAL(resolve("[\"id\", {\"param\": \"REMOTE_USER\"},"
        " {\"arg\": \"x\", \"default\": null}, {\"arg\": \"y\", "
        "\"default\": 3}]", "id=%27%3B+drop&z=1", NULL, &v, &why, &ps), 0);
    CU_ASSERT_STRING_EQUAL(v[0], "'; drop");
    CU_ASSERT_STRING_EQUAL(v[1], "alice");
    CU_ASSERT_PTR_NULL(v[2]);
    CU_ASSERT_STRING_EQUAL(v[3], "3");
    sqlparam_values_free(v, ps.n);
    sqlparam_free(&ps);

    /* Missing without default: the 400's message. */
    CU_ASSERT_EQUAL(resolve("[\"a\", \"id\"]", "a=1", NULL, &v, &why, &ps),
        -1);
    CU_ASSERT_PTR_NULL(v);
    CU_ASSERT_STRING_EQUAL(why, "missing query argument \"id\"");
    free(why);
    sqlparam_free(&ps);

    /* Body fields: strings as they are, the rest as JSON text. */
    CU_ASSERT_EQUAL_FATAL(resolve("[{\"body\": \"s\"}, {\"body\": \"n\"}, "
        "{\"body\": \"t\"}, {\"body\": \"o\"}, {\"body\": \"z\"}]", "",
        "{\"s\": \"x'y\", \"n\": 2.5, \"t\": true, \"o\": {\"a\": [1, null]},"
        " \"z\": null}\n", &v, &why, &ps), 0);
    CU_ASSERT_STRING_EQUAL(v[0], "x'y");
    CU_ASSERT_STRING_EQUAL(v[1], "2.5");
    CU_ASSERT_STRING_EQUAL(v[2], "true");
    CU_ASSERT_STRING_EQUAL(v[3], "{\"a\":[1,null]}");
    CU_ASSERT_PTR_NULL(v[4]);
    sqlparam_values_free(v, ps.n);
    sqlparam_free(&ps);

    /* A body that is not a JSON object. */
    CU_ASSERT_EQUAL(resolve("[{\"body\": \"s\"}]", "", "[1]", &v, &why, &ps),
        -1);
    CU_ASSERT_STRING_EQUAL(why, "the body must be a JSON object");
    free(why);
    sqlparam_free(&ps);
    CU_ASSERT_EQUAL(resolve("[{\"body\": \"s\"}]", "", "{\"s\": 1} x", &v,
        &why, &ps), -1);
    free(why);
    sqlparam_free(&ps);
    CU_ASSERT_EQUAL(resolve("[{\"body\": \"s\"}]", "", NULL, &v, &why, &ps),
        -1);
    free(why);
    sqlparam_free(&ps);
    CU_ASSERT_EQUAL(resolve("[{\"body\": \"s\"}]", "", "{}", &v, &why, &ps),
        -1);
    CU_ASSERT_STRING_EQUAL(why, "missing body field \"s\"");
    free(why);
    sqlparam_free(&ps);
}

/* ---- errors, conninfo, pool ---------------------------------------------- */

static void
test_http_status(void)
{
    CU_ASSERT_EQUAL(sql_http_status("22P02", 0), 400);
    CU_ASSERT_EQUAL(sql_http_status("22012", 0), 400);
    CU_ASSERT_EQUAL(sql_http_status("42P01", 0), 500);
    CU_ASSERT_EQUAL(sql_http_status("25006", 0), 500);
    CU_ASSERT_EQUAL(sql_http_status("08006", 0), 503);
    CU_ASSERT_EQUAL(sql_http_status("57P01", 0), 503);
    CU_ASSERT_EQUAL(sql_http_status("53300", 0), 503);
    CU_ASSERT_EQUAL(sql_http_status("57014", 0), 500);
    CU_ASSERT_EQUAL(sql_http_status(NULL, 0), 500);
    CU_ASSERT_EQUAL(sql_http_status("42P01", 1), 503);
}

static void
test_strip_password(void)
{
    char out[256];

    CU_ASSERT_STRING_EQUAL(pgpool_strip_password("host=/run/pg "
        "password=s3cret dbname=app", out, sizeof out),
        "dbname=app host=/run/pg");
    CU_ASSERT_PTR_NULL(strstr(pgpool_strip_password(
        "postgresql://u:s3cret@db.example/app?sslmode=disable", out,
        sizeof out), "s3cret"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out, "host=db.example"));
    CU_ASSERT_STRING_EQUAL(pgpool_strip_password("password='a b'", out,
        sizeof out), "(PG* environment)");
    CU_ASSERT_STRING_EQUAL(pgpool_strip_password("host='x", out,
        sizeof out), "(invalid)");
}

/* A pool whose server is not there: PGPOOL_DOWN at once, nothing left
 * open; a cancelled token: PGPOOL_CANCELLED. */
static void
test_pool_down(void)
{
    struct pgpool_stats st;
    struct pgpool      *p;
    fc_token           *tok;
    PGconn             *c;
    uint64_t            t0;
    char               *cause = NULL, *err = NULL;
    int                 fresh;

    CU_ASSERT_PTR_NULL(pgpool_new("host='x", 1, 1, 1000, &cause));
    CU_ASSERT_STRING_EQUAL(cause, "is not a valid libpq connection string");
    free(cause);
    p = pgpool_new("host=/nonexistent/dir dbname=x password=pw", 2, 1, 1000,
        &cause);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_STRING_EQUAL(pgpool_safe_conninfo(p),
        "dbname=x host=/nonexistent/dir");
    tok = token_new(NULL);
    t0 = now_ns();
    CU_ASSERT_EQUAL(pgpool_get(p, tok, &c, &fresh, &err), PGPOOL_DOWN);
    CU_ASSERT(now_ns() - t0 < 1000000000u);
    CU_ASSERT_PTR_NOT_NULL(err);
    CU_ASSERT_PTR_NULL(c);
    free(err);
    pgpool_stats(p, &st);
    CU_ASSERT_EQUAL(st.size, 2);
    CU_ASSERT_EQUAL(st.open, 0);
    CU_ASSERT_EQUAL(st.in_use, 0);
    CU_ASSERT_EQUAL(st.connect_failures, 1);
    token_cancel(tok, FC_DEADLINE);
    CU_ASSERT_EQUAL(pgpool_get(p, tok, &c, &fresh, &err), PGPOOL_CANCELLED);
    token_unref(tok);
    pgpool_free(p);
}

/* ---- route keys through config_load() --------------------------------------- */

/* Load a config with one sql route whose members are route; return 0 or
 * -1 (the message in *cause, caller frees). */
static int
load_route(const char *route, char **cause)
{
    struct config   c;
    char            path[] = "/tmp/test_sql.XXXXXX";
    FILE           *f;
    int             fd, rc;

    fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    f = fdopen(fd, "w");
    fprintf(f, "{ \"routes\": [ { \"path\": \"/q\", \"handler\": \"sql\", "
        "%s } ] }\n", route);
    fclose(f);
    config_init(&c);
    *cause = NULL;
    rc = config_load(&c, path, cause);
    config_free(&c);
    unlink(path);
    return rc;
}

static void
test_route_keys(void)
{
    char *cause;

    CU_ASSERT_EQUAL(load_route("\"query\": \"select $1\", \"params\": "
        "[\"a\"], \"output\": \"csv\", \"pool_size\": 2, \"read_only\": "
        "false, \"conninfo\": \"dbname=x\", \"connect_timeout_ms\": 100",
        &cause), 0);
    free(cause);
    CU_ASSERT_EQUAL(load_route("\"query\": \"select 1\", \"output\": "
        "\"xml\"", &cause), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(cause, "routes[0].output: must be json, "
        "ndjson or csv"));
    free(cause);
    CU_ASSERT_EQUAL(load_route("\"query\": \"select 1\", \"pool_size\": 0",
        &cause), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(cause, "routes[0].pool_size"));
    free(cause);
    CU_ASSERT_EQUAL(load_route("\"query\": \"select 1\", \"colour\": 1",
        &cause), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(cause, "routes[0].colour: unknown key"));
    free(cause);
    CU_ASSERT_EQUAL(load_route("\"query\": \"select 1\", \"conninfo_file\":"
        " \"/nonexistent/conninfo\"", &cause), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(cause, "routes[0].conninfo_file: "
        "/nonexistent/conninfo: No such file or directory"));
    free(cause);
    CU_ASSERT_EQUAL(load_route("\"query\": \"\"", &cause), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(cause, "routes[0].query: must not be "
        "empty"));
    free(cause);
}

static CU_TestInfo writer_tests[] = {
    { "JSON strings: escapes, UTF-8", test_json_string },
    { "JSON numbers", test_json_number },
    { "type OIDs to kinds, content types", test_kinds },
    { "JSON array of objects", test_writer_json },
    { "NDJSON", test_writer_ndjson },
    { "CSV", test_writer_csv },
    { "CSV: empty versus NULL, no columns", test_writer_csv_empty },
    { "json line breaks in NDJSON", test_writer_json_lines },
    { "hostile values still make JSON", test_writer_parses },
    CU_TEST_INFO_NULL
};

static CU_TestInfo param_tests[] = {
    { "query scan: $n, one statement", test_query_scan },
    { "params: parse", test_params_parse },
    { "params: resolve", test_params_resolve },
    CU_TEST_INFO_NULL
};

static CU_TestInfo handler_tests[] = {
    { "SQLSTATE to HTTP status", test_http_status },
    { "conninfo without password", test_strip_password },
    { "pool: database not there, cancelled token", test_pool_down },
    { "route keys", test_route_keys },
    CU_TEST_INFO_NULL
};

static CU_SuiteInfo suites[] = {
    { "row writer", NULL, NULL, NULL, NULL, writer_tests },
    { "params", NULL, NULL, NULL, NULL, param_tests },
    { "handler", NULL, NULL, NULL, NULL, handler_tests },
    CU_SUITE_INFO_NULL
};

int
main(void)
{
    return unit_run("test_sql", suites, 60);
}
