/* SPDX-License-Identifier: MIT */
/*
 * sqlout.h - the row writer of the sql handler: turns a result's columns
 * (names and PostgreSQL type OIDs) and rows (text values, NULL or not)
 * into a JSON array of objects, NDJSON or CSV, one row at a time, into a
 * buffer that the caller drains to the client.  Pure: no libpq, no I/O,
 * so that it can be unit-tested and fuzzed alone.
 *
 * Type mapping (PostgreSQL's text output to JSON):
 *   int2, int4, int8, oid, float4, float8, numeric  a JSON number; a value
 *                      that is not one (NaN, Infinity, -Infinity) is a
 *                      JSON string ("NaN"), never a bare token
 *   bool               true / false
 *   json, jsonb        embedded as they are (PostgreSQL checked them),
 *                      line breaks (white space there) made spaces
 *   NULL               null
 *   anything else      a JSON string; invalid UTF-8 becomes U+FFFD
 * CSV (RFC 4180): a header line of column names, CRLF line ends, a field
 * quoted when it holds a comma, a quote, CR or LF (or is empty, so that
 * an empty string differs from NULL, which is an empty unquoted field),
 * bool as true / false, every other value as PostgreSQL wrote it.
 */
#ifndef HANDLERS_SQLOUT_H
#define HANDLERS_SQLOUT_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum sqlout_format {
    SQLOUT_JSON,        /* [ {row}, {row} ] */
    SQLOUT_NDJSON,      /* {row} LF {row} LF */
    SQLOUT_CSV,         /* header CRLF, row CRLF */
    SQLOUT_FORMAT__MAX
};

/* How a column's text is written. */
enum sqlout_kind {
    SQLOUT_STRING,
    SQLOUT_NUMBER,
    SQLOUT_BOOL,
    SQLOUT_RAW_JSON,
    SQLOUT_KIND__MAX
};

/* A writer for one result; sqlout_begin() fills it, sqlout_free() frees. */
struct sqlout {
    enum sqlout_format  format;
    size_t              ncols;
    enum sqlout_kind   *kinds;      /* one per column */
    char              **keys;       /* JSON: "\"name\":" per column */
    uint64_t            rows;       /* written so far */
    struct buf          out;        /* what to send; the caller drains it */
};

/* Return the kind of PostgreSQL type oid. */
enum sqlout_kind sqlout_kind_of(unsigned int oid);

/* Return the Content-Type of format ("application/json", ...). */
const char *sqlout_content_type(enum sqlout_format format);

/*
 * Start a result of ncols columns named names[] of types oids[]: the
 * array's "[" (JSON) or the header line (CSV) go into o->out.  Return 0,
 * or -1 if memory ran out (o is then empty, sqlout_free() it anyway).
 */
int     sqlout_begin(struct sqlout *o, enum sqlout_format format,
            size_t ncols, const char *const *names,
            const unsigned int *oids);

/*
 * Append one row: vals[i] is column i's text of lens[i] bytes, or NULL
 * for SQL NULL.  Return 0, or -1 if memory ran out.
 */
int     sqlout_row(struct sqlout *o, const char *const *vals,
            const size_t *lens);

/* Append the end of the result ("]" for JSON).  Return 0 or -1. */
int     sqlout_end(struct sqlout *o);

/* Free what o holds (o itself is the caller's). */
void    sqlout_free(struct sqlout *o);

/*
 * Append s (len bytes) to b as a JSON string, quotes included, invalid
 * UTF-8 replaced by U+FFFD.  Return 0 or -1.
 */
int     sqlout_json_string(struct buf *b, const char *s, size_t len);

/* Return 1 if s (len bytes) is a JSON number as RFC 8259 spells one. */
int     sqlout_json_number(const char *s, size_t len);

#endif /* HANDLERS_SQLOUT_H */
