/* SPDX-License-Identifier: MIT */
/*
 * fuzz_sqlout.c - libFuzzer target for the sql handler's text paths: the
 * row writer (handlers/sqlout.c), whose input is what a database sends,
 * and the query scan (handlers/sqlparam.c), whose input is the
 * configuration's SQL.
 *
 * Input: byte 0 picks the format, byte 1 the number of columns (1..8),
 * the next bytes one type per column (from a table of OIDs); the rest,
 * split at 0x01 bytes, are the values, row after row (a lone 0x02 is SQL
 * NULL).  Checks: JSON output is one array of as many objects as rows,
 * NDJSON one object per line, both parsed by json-c; CSV, read back by a
 * reference RFC 4180 reader, has a header and one record per row, each of
 * ncols fields, and gives back every text value byte for byte.  The whole
 * input, as a string, also goes through sqlparam_check_query().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "handlers/sqlout.h"
#include "handlers/sqlparam.h"

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz_sqlout: %s:%d: check failed: %s\n", \
        __FILE__, __LINE__, #cond); abort(); } } while (0)

#define MAX_COLS    8
#define MAX_VALUES  256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* text, int4, int8, float8, numeric, bool, json, jsonb, date */
static const unsigned int oids[] = { 25, 23, 20, 701, 1700, 16, 114, 3802,
    1082 };

/* What PostgreSQL sends for json and jsonb is JSON: one of these, picked
 * by the value's first byte, stands for it. */
static const char *const json_texts[] = {
    "{\"k\": [1, 2]}", "null", "\"s\\n\"", "[]", "1.5",
    "{\n  \"a\":\r\n\t1\n}", "[\"\\u0000\", true]"
};

/* Read one CSV field at s[*i] into f; return 1 if a record ends after it. */
static int
csv_read_field(const char *s, size_t len, size_t *i, struct buf *f)
{
    f->len = 0;
    if (*i < len && s[*i] == '"') {
        for ((*i)++; ; (*i)++) {
            CHECK(*i < len);            /* a quoted field is closed */
            if (s[*i] == '"') {
                if (*i + 1 < len && s[*i + 1] == '"') {
                    buf_add(f, "\"", 1);
                    (*i)++;
                    continue;
                }
                (*i)++;
                break;
            }
            buf_add(f, s + *i, 1);
        }
    } else {
        while (*i < len && s[*i] != ',' && s[*i] != '\r') {
            CHECK(s[*i] != '\n' && s[*i] != '"');
            buf_add(f, s + *i, 1);
            (*i)++;
        }
    }
    CHECK(*i < len);
    if (s[*i] == ',') {
        (*i)++;
        return 0;
    }
    CHECK(*i + 1 < len && s[*i] == '\r' && s[*i + 1] == '\n');
    *i += 2;
    return 1;
}

static void
check_csv(const struct buf *out, size_t ncols, size_t nrows,
    const char *const *vals, const size_t *lens, const unsigned int *types)
{
    struct buf  f = { 0 };
    size_t      i = 0, rec, col, v;
    int         end;

    for (rec = 0; rec <= nrows; rec++) {
        for (col = 0; ; col++) {
            end = csv_read_field(out->data, out->len, &i, &f);
            CHECK(col < ncols);
            v = (rec - 1) * ncols + col;
            if (rec > 0 && vals[v] != NULL && types[col] != 16) {
                CHECK(f.len == lens[v]);
                CHECK(f.len == 0 || memcmp(f.data, vals[v], f.len) == 0);
            }
            if (end)
                break;
        }
        CHECK(col == ncols - 1);
    }
    CHECK(i == out->len);
    buf_free(&f);
}

static void
check_json(const struct buf *out, enum sqlout_format format, size_t nrows)
{
    json_object *doc;
    const char  *p = out->data, *nl;
    size_t       n = 0;

    if (format == SQLOUT_JSON) {
        doc = json_tokener_parse(out->data);
        CHECK(doc != NULL && json_object_is_type(doc, json_type_array));
        CHECK(json_object_array_length(doc) == nrows);
        json_object_put(doc);
        return;
    }
    while (p != NULL && *p != '\0') {
        nl = strchr(p, '\n');
        CHECK(nl != NULL);
        {
            char *line = strndup(p, (size_t)(nl - p));

            CHECK(line != NULL);
            doc = json_tokener_parse(line);
            CHECK(doc != NULL && json_object_is_type(doc, json_type_object));
            json_object_put(doc);
            free(line);
        }
        n++;
        p = nl + 1;
    }
    CHECK(n == nrows);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[MAX_COLS] = {
        "a", "b\"c", "d,e", "f\ng", "", "\xff", "h", "i"
    };
    const char     *vals[MAX_VALUES];
    size_t          lens[MAX_VALUES], nvals = 0, ncols, nrows, i, start, r;
    unsigned int    types[MAX_COLS];
    enum sqlout_format format;
    struct sqlout   o;
    struct buf      all = { 0 };
    char           *text, *why = NULL;

    if (size < 2)
        return 0;
    format = (enum sqlout_format)(data[0] % SQLOUT_FORMAT__MAX);
    ncols = 1 + data[1] % MAX_COLS;
    if (size < 2 + ncols)
        return 0;
    for (i = 0; i < ncols; i++)
        types[i] = oids[data[2 + i] % (sizeof oids / sizeof oids[0])];
    for (i = start = 2 + ncols; i <= size && nvals < MAX_VALUES; i++) {
        if (i < size && data[i] != 0x01)
            continue;
        vals[nvals] = (const char *)data + start;
        lens[nvals] = i - start;
        if (lens[nvals] == 1 && data[start] == 0x02)
            vals[nvals] = NULL;
        nvals++;
        start = i + 1;
    }
    nrows = nvals / ncols;
    for (i = 0; i < nrows * ncols; i++) {
        if (vals[i] != NULL && (types[i % ncols] == 114 ||
            types[i % ncols] == 3802)) {
            vals[i] = json_texts[(lens[i] > 0 ? (unsigned char)*vals[i] :
                0) % (sizeof json_texts / sizeof json_texts[0])];
            lens[i] = strlen(vals[i]);
        }
    }

    CHECK(sqlout_begin(&o, format, ncols, names, types) == 0);
    for (r = 0; r < nrows; r++) {
        CHECK(sqlout_row(&o, vals + r * ncols, lens + r * ncols) == 0);
        buf_add(&all, o.out.data, o.out.len);
        o.out.len = 0;
    }
    CHECK(sqlout_end(&o) == 0);
    buf_add(&all, o.out.data, o.out.len);
    CHECK(o.rows == nrows);
    sqlout_free(&o);
    buf_add(&all, "", 0);               /* a NUL-terminated empty string */
    if (format == SQLOUT_CSV)
        check_csv(&all, ncols, nrows, vals, lens, types);
    else
        check_json(&all, format, nrows);
    buf_free(&all);

    text = strndup((const char *)data, size);
    CHECK(text != NULL);
    if (sqlparam_check_query(text, data[1] % 4, &why) != 0)
        CHECK(why != NULL);
    free(why);
    free(text);
    return 0;
}
