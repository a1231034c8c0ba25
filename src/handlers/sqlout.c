/* SPDX-License-Identifier: MIT */
/*
 * sqlout.c - the row writer of the sql handler (see sqlout.h for the type
 * mapping).  Each call appends to o->out; the handler sends and empties
 * it after every row, so the memory held is one row's, whatever the
 * size of the result.
 */
#include <stdlib.h>
#include <string.h>

#include "handlers/sqlout.h"

/* PostgreSQL's built-in type OIDs (catalog/pg_type.dat; fixed forever). */
enum {
    OID_BOOL = 16, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23,
    OID_OID = 26, OID_JSON = 114, OID_FLOAT4 = 700, OID_FLOAT8 = 701,
    OID_NUMERIC = 1700, OID_JSONB = 3802
};

static const struct {
    unsigned int        oid;
    enum sqlout_kind    kind;
} sqlout_types[] = {
    { OID_BOOL, SQLOUT_BOOL },
    { OID_INT2, SQLOUT_NUMBER }, { OID_INT4, SQLOUT_NUMBER },
    { OID_INT8, SQLOUT_NUMBER }, { OID_OID, SQLOUT_NUMBER },
    { OID_FLOAT4, SQLOUT_NUMBER }, { OID_FLOAT8, SQLOUT_NUMBER },
    { OID_NUMERIC, SQLOUT_NUMBER },
    { OID_JSON, SQLOUT_RAW_JSON }, { OID_JSONB, SQLOUT_RAW_JSON },
};

static const char *const sqlout_types_mime[SQLOUT_FORMAT__MAX] = {
    [SQLOUT_JSON] = "application/json",
    [SQLOUT_NDJSON] = "application/x-ndjson",
    [SQLOUT_CSV] = "text/csv; charset=utf-8",
};

enum sqlout_kind
sqlout_kind_of(unsigned int oid)
{
    size_t i;

    for (i = 0; i < nitems(sqlout_types); i++) {
        if (sqlout_types[i].oid == oid)
            return sqlout_types[i].kind;
    }
    return SQLOUT_STRING;
}

const char *
sqlout_content_type(enum sqlout_format format)
{
    return format < SQLOUT_FORMAT__MAX ? sqlout_types_mime[format] :
        "application/octet-stream";
}

/* Return the length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t        len, i;
    unsigned long cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    /* Overlong forms, UTF-16 surrogates, beyond U+10FFFF. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

int
sqlout_json_string(struct buf *b, const char *s, size_t len)
{
    static const char   hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t              i = 0, run, n;
    char                esc[8];

    if (buf_add(b, "\"", 1) != 0)
        return -1;
    while (i < len) {
        /* The longest run that needs no escape goes in one copy. */
        for (run = i; run < len && p[run] >= 0x20 && p[run] < 0x80 &&
            p[run] != '"' && p[run] != '\\'; run++)
            ;
        if (run > i && buf_add(b, s + i, run - i) != 0)
            return -1;
        if ((i = run) >= len)
            break;
        if (p[i] >= 0x80) {
            if ((n = utf8_len(p + i, len - i)) == 0) {
                if (buf_add(b, "\\ufffd", 6) != 0)
                    return -1;
                i++;
            } else {
                if (buf_add(b, s + i, n) != 0)
                    return -1;
                i += n;
            }
            continue;
        }
        switch (p[i]) {
        case '"':  memcpy(esc, "\\\"", 3); break;
        case '\\': memcpy(esc, "\\\\", 3); break;
        case '\n': memcpy(esc, "\\n", 3); break;
        case '\r': memcpy(esc, "\\r", 3); break;
        case '\t': memcpy(esc, "\\t", 3); break;
        default:
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[p[i] >> 4];
            esc[5] = hex[p[i] & 0xf];
            esc[6] = '\0';
            break;
        }
        if (buf_add(b, esc, strlen(esc)) != 0)
            return -1;
        i++;
    }
    return buf_add(b, "\"", 1);
}

/* Skip the digits at s[*i]; return how many there were. */
static size_t
digits(const char *s, size_t len, size_t *i)
{
    size_t start = *i;

    while (*i < len && s[*i] >= '0' && s[*i] <= '9')
        (*i)++;
    return *i - start;
}

int
sqlout_json_number(const char *s, size_t len)
{
    size_t i = 0;

    if (i < len && s[i] == '-')
        i++;
    if (i < len && s[i] == '0')
        i++;
    else if (digits(s, len, &i) == 0)
        return 0;
    if (i < len && s[i] == '.') {
        i++;
        if (digits(s, len, &i) == 0)
            return 0;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (digits(s, len, &i) == 0)
            return 0;
    }
    return i == len;
}

/* Append a CSV field, quoted when needed (see sqlout.h). */
static int
csv_field(struct buf *b, const char *s, size_t len)
{
    size_t i, start;

    for (i = 0; i < len && s[i] != ',' && s[i] != '"' && s[i] != '\r' &&
        s[i] != '\n'; i++)
        ;
    if (len > 0 && i == len)
        return buf_add(b, s, len);
    if (buf_add(b, "\"", 1) != 0)
        return -1;
    for (i = start = 0; i < len; i++) {
        if (s[i] == '"') {
            if (buf_add(b, s + start, i + 1 - start) != 0)
                return -1;
            start = i;          /* the quote goes out twice */
        }
    }
    if (buf_add(b, s + start, len - start) != 0)
        return -1;
    return buf_add(b, "\"", 1);
}

/*
 * Append a json or jsonb value as it is, but for its line breaks: json
 * keeps its input's white space, and a newline would end an NDJSON line.
 * Outside strings they are white space (inside, JSON has them escaped),
 * so a space says the same.
 */
static int
raw_json(struct buf *b, const char *v, size_t len)
{
    size_t i, start;

    for (i = start = 0; i < len; i++) {
        if (v[i] != '\n' && v[i] != '\r')
            continue;
        if (buf_add(b, v + start, i - start) != 0 || buf_add(b, " ", 1) != 0)
            return -1;
        start = i + 1;
    }
    return buf_add(b, v + start, len - start);
}

/* Append column i's value as JSON. */
static int
json_value(struct buf *b, enum sqlout_kind kind, const char *v, size_t len)
{
    if (v == NULL)
        return buf_add(b, "null", 4);
    switch (kind) {
    case SQLOUT_NUMBER:
        if (sqlout_json_number(v, len))
            return buf_add(b, v, len);
        break;                  /* NaN, Infinity: a string */
    case SQLOUT_BOOL:
        if (len == 1 && (*v == 't' || *v == 'f'))
            return *v == 't' ? buf_add(b, "true", 4) :
                buf_add(b, "false", 5);
        break;
    case SQLOUT_RAW_JSON:
        if (len > 0)
            return raw_json(b, v, len);
        break;
    default:
        break;
    }
    return sqlout_json_string(b, v, len);
}

void
sqlout_free(struct sqlout *o)
{
    size_t i;

    for (i = 0; o->keys != NULL && i < o->ncols; i++)
        free(o->keys[i]);
    free(o->keys);
    free(o->kinds);
    buf_free(&o->out);
    memset(o, 0, sizeof *o);
}

int
sqlout_begin(struct sqlout *o, enum sqlout_format format, size_t ncols,
    const char *const *names, const unsigned int *oids)
{
    struct buf  k;
    size_t      i;

    memset(o, 0, sizeof *o);
    o->format = format;
    if ((o->kinds = calloc(ncols + 1, sizeof *o->kinds)) == NULL ||
        (o->keys = calloc(ncols + 1, sizeof *o->keys)) == NULL)
        goto nomem;
    o->ncols = ncols;
    for (i = 0; i < ncols; i++) {
        o->kinds[i] = sqlout_kind_of(oids[i]);
        memset(&k, 0, sizeof k);
        if (format == SQLOUT_CSV) {
            if ((i > 0 && buf_add(&o->out, ",", 1) != 0) ||
                csv_field(&o->out, names[i], strlen(names[i])) != 0)
                goto nomem;
            continue;
        }
        if ((i > 0 && buf_add(&k, ",", 1) != 0) ||
            sqlout_json_string(&k, names[i], strlen(names[i])) != 0 ||
            buf_add(&k, ":", 1) != 0) {
            buf_free(&k);
            goto nomem;
        }
        o->keys[i] = k.data;
    }
    if (format == SQLOUT_CSV && ncols > 0 &&
        buf_add(&o->out, "\r\n", 2) != 0)
        goto nomem;
    if (format == SQLOUT_JSON && buf_add(&o->out, "[", 1) != 0)
        goto nomem;
    return 0;
nomem:
    sqlout_free(o);
    return -1;
}

int
sqlout_row(struct sqlout *o, const char *const *vals, const size_t *lens)
{
    struct buf *b = &o->out;
    size_t      i;

    if (o->format == SQLOUT_CSV) {
        for (i = 0; i < o->ncols; i++) {
            if (i > 0 && buf_add(b, ",", 1) != 0)
                return -1;
            if (vals[i] == NULL)
                continue;
            if (o->kinds[i] == SQLOUT_BOOL && lens[i] == 1) {
                if (buf_add(b, *vals[i] == 't' ? "true" : "false",
                    *vals[i] == 't' ? 4 : 5) != 0)
                    return -1;
            } else if (csv_field(b, vals[i], lens[i]) != 0) {
                return -1;
            }
        }
        o->rows++;
        return buf_add(b, "\r\n", 2);
    }
    if (o->format == SQLOUT_JSON && o->rows > 0 && buf_add(b, ",", 1) != 0)
        return -1;
    if ((o->format == SQLOUT_JSON && buf_add(b, "\n", 1) != 0) ||
        buf_add(b, "{", 1) != 0)
        return -1;
    for (i = 0; i < o->ncols; i++) {
        if (buf_add(b, o->keys[i], strlen(o->keys[i])) != 0 ||
            json_value(b, o->kinds[i], vals[i], lens[i]) != 0)
            return -1;
    }
    o->rows++;
    return buf_add(b, o->format == SQLOUT_NDJSON ? "}\n" : "}", 2 -
        (o->format != SQLOUT_NDJSON));
}

int
sqlout_end(struct sqlout *o)
{
    if (o->format != SQLOUT_JSON)
        return 0;
    return buf_add(&o->out, o->rows > 0 ? "\n]\n" : "]\n",
        o->rows > 0 ? 3 : 2);
}
