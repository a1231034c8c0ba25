/* SPDX-License-Identifier: MIT */
/*
 * config.c - reads the configuration file.  json-c parses it in its
 * non-strict mode, which accepts both kinds of comments (slash-slash and
 * slash-star) and trailing commas by itself; this module turns json-c's
 * errors into FILE:LINE:COL messages, then checks every key against const
 * tables of keys (name, type, place, bounds, default) and builds the route
 * table.
 *
 * json-c does not say where a value was in the text, so a small scanner
 * walks the text once more (strings, comments, brackets, nothing else) and
 * indexes the position of every key and array element by its path
 * ("routes[2].deadline_ms").  That index gives a semantic error its line
 * and column, and finds the duplicate keys that json-c would silently
 * merge.
 *
 * Each route's common keys (path, methods, handler, deadline_ms, probe_ms)
 * are read here; the rest of the route object goes to the handler's
 * builder, which rejects the keys it does not know.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "handlers/exec.h"
#include "handlers/module.h"
#include "handlers/sql_glue.h"      /* until the registry lands */
#include "handlers/work.h"
#include "log.h"
#include "status.h"
#include "util.h"

#define NOPOS           ((size_t)-1)
#define SCAN_DEPTH      64              /* json-c stops at 32 */
#define PATH_MAX_LEN    512             /* longer paths are truncated */

/* ---- messages ------------------------------------------------------- */

/* Set *cause to "PATH: message" (just "message" if path is NULL or ""). */
static int __attribute__((format(printf, 3, 4)))
fail(char **cause, const char *path, const char *fmt, ...)
{
    va_list ap;
    char   *msg;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
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

/* Set *cause to "out of memory". */
static int
fail_oom(char **cause)
{
    *cause = strdup("out of memory");
    return -1;
}

/* For a config_check_cb: set *why to msg. */
static int
refuse(char **why, const char *msg)
{
    *why = strdup(msg);
    return -1;
}

/* Return "a, b or c" for the NULL-terminated names (caller frees). */
static char *
names_list(const char *const *names)
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

/* Write where.key into dst, the key escaped as for a log. */
static void
member_path(char *dst, size_t size, const char *where, const char *key)
{
    char k[256];

    log_escape(k, sizeof k, key);
    snprintf(dst, size, "%s%s%s", where, *where == '\0' ? "" : ".",
        *k == '\0' ? "\"\"" : k);
}

/* ---- the text and positions ----------------------------------------- */

/* The file's bytes (after a UTF-8 byte order mark, if any). */
struct text {
    char       *buf;        /* what was read, then "\n\0" */
    const char *p;          /* the text */
    size_t      len;        /* of the text, without the "\n\0" */
};

/* Read file into t.  Return 0, or -1 with *cause set. */
static int
text_read(const char *file, struct text *t, char **cause)
{
    struct buf  b = { 0 };
    char        chunk[8192];
    ssize_t     r;
    int         fd, err;

    if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
        return fail(cause, file, "%s", strerror(errno));
    for (;;) {
        if ((r = read(fd, chunk, sizeof chunk)) < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            close(fd);
            buf_free(&b);
            return fail(cause, file, "%s", strerror(err));
        }
        if (r == 0)
            break;
        if (b.len + (size_t)r > (size_t)CONFIG_FILE_MAX) {
            close(fd);
            buf_free(&b);
            return fail(cause, file, "larger than %ld MiB",
                CONFIG_FILE_MAX >> 20);
        }
        if (buf_add(&b, chunk, (size_t)r) != 0) {
            close(fd);
            buf_free(&b);
            return fail(cause, file, "out of memory");
        }
    }
    close(fd);
    t->len = b.len;
    /* The "\n" ends a // comment on a last line that has no newline. */
    if (buf_add(&b, "\n", 1) != 0 || b.data == NULL) {
        buf_free(&b);
        return fail(cause, file, "out of memory");
    }
    t->buf = b.data;
    t->p = b.data;
    if (t->len >= 3 && memcmp(t->p, "\xef\xbb\xbf", 3) == 0) {
        t->p += 3;
        t->len -= 3;
    }
    return 0;
}

/* Line and column (from 1; columns in UTF-8 characters) of offset off. */
static void
text_linecol(const struct text *t, size_t off, unsigned *line, unsigned *col)
{
    size_t i;

    *line = *col = 1;
    if (off > t->len)
        off = t->len;
    for (i = 0; i < off; i++) {
        if (t->p[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)t->p[i] & 0xc0) != 0x80) {
            (*col)++;
        }
    }
}

/* Set *cause to "FILE:LINE:COL: message" for offset off of t. */
static int __attribute__((format(printf, 5, 6)))
fail_at(char **cause, const char *file, const struct text *t, size_t off,
    const char *fmt, ...)
{
    va_list     ap;
    char       *msg;
    unsigned    line, col;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (msg == NULL)
        return fail_oom(cause);
    text_linecol(t, off, &line, &col);
    if (asprintf(cause, "%s:%u:%u: %s", file, line, col, msg) < 0)
        *cause = NULL;
    free(msg);
    return -1;
}

/* ---- the scanner: where each key is --------------------------------- */

/* A key (its opening quote) or an array element (its first character). */
struct entry {
    char       *path;       /* "workers", "routes[2]", "routes[2].path" */
    size_t      off;
};

/* What a scan of the text found. */
struct scan {
    struct entry   *v;
    size_t          n;
    size_t          size;
    int             empty;      /* nothing but blanks and comments */
    size_t          first;      /* the first token */
    size_t          open;       /* what is left open at the end, or NOPOS */
    const char     *open_what;  /* "string", "comment", "'{'", "'['" */
    int             open_bracket;   /* open is a '{' or a '[' */
    size_t          trailing;   /* a token after the top value, or NOPOS */
};

/* An object or array being scanned. */
struct frame {
    char        kind;       /* '{' or '[' */
    size_t      open;       /* offset of the bracket */
    size_t      base;       /* length of its own path */
    size_t      index;      /* '[': elements so far */
    int         want_key;   /* '{': the next string is a key */
};

/* Append path at off to the index. */
static int
scan_add(struct scan *sc, const struct buf *path, size_t off)
{
    struct entry *nv;

    if (sc->n == sc->size) {
        size_t size = sc->size ? sc->size * 2 : 64;

        if ((nv = realloc(sc->v, size * sizeof *nv)) == NULL)
            return -1;
        sc->v = nv;
        sc->size = size;
    }
    if ((sc->v[sc->n].path = strdup(path->data)) == NULL)
        return -1;
    sc->v[sc->n++].off = off;
    return 0;
}

/* Free the index. */
static void
scan_free(struct scan *sc)
{
    size_t i;

    for (i = 0; i < sc->n; i++)
        free(sc->v[i].path);
    free(sc->v);
    memset(sc, 0, sizeof *sc);
}

/* Return the offset after the string that opens at i, or NOPOS. */
static size_t
skip_string(const char *p, size_t len, size_t i)
{
    char q = p[i];

    for (i++; i < len; i++) {
        if (p[i] == '\\')
            i++;
        else if (p[i] == q)
            return i + 1;
    }
    return NOPOS;
}

/* Does c end a bare token (a number, true, null...)? */
static int
is_delim(char c)
{
    return c == '\0' || strchr(" \t\r\n,:[]{}\"'/", c) != NULL;
}

/*
 * Append the key whose quoted text is p[0..n) to path, spelt as
 * member_path() spells json-c's key: decoded (so that "w\u006frkers" is
 * "workers"), escaped for a log, "\"\"" when empty.
 */
static int
path_add_key(struct buf *path, const char *p, size_t n)
{
    struct json_tokener *tok;
    json_object         *o = NULL;
    char                 k[256];

    if ((tok = json_tokener_new()) != NULL) {
        o = json_tokener_parse_ex(tok, p, (int)n);
        json_tokener_free(tok);
    }
    if (o != NULL && json_object_is_type(o, json_type_string))
        log_escape(k, sizeof k, json_object_get_string(o));
    else                    /* not reached: json-c parsed the file */
        snprintf(k, sizeof k, "%.*s", (int)(n - 2), p + 1);
    json_object_put(o);
    if (*k == '\0')
        return buf_add(path, "\"\"", 2);
    return buf_add(path, k, strlen(k));
}

/* Cut path back to len bytes. */
static void
path_cut(struct buf *path, size_t len)
{
    path->len = len;
    path->data[len] = '\0';
}

/*
 * Walk the text: index every key and element by path, and note what is
 * left open at the end and any token after the top value.  Return 0, or -1
 * if memory ran out.
 */
static int
scan_text(const char *p, size_t len, struct scan *sc)
{
    struct frame    st[SCAN_DEPTH], *top;
    struct buf      path = { 0 };
    size_t          depth = 0, i = 0, j;
    int             done = 0;
    char            c;
    const char     *e;

    memset(sc, 0, sizeof *sc);
    sc->empty = 1;
    sc->first = sc->open = sc->trailing = NOPOS;
    if (buf_add(&path, "", 0) != 0)
        return -1;
    while (i < len) {
        /* p is text_read()'s buffer, never NULL when len > 0; the analyzer
         * loses that through buf_add()'s realloc. */
        c = p[i]; /* NOLINT(clang-analyzer-core.NullDereference) */
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            i++;
            continue;
        }
        if (c == '/' && i + 1 < len && p[i + 1] == '/') {
            while (i < len && p[i] != '\n')
                i++;
            continue;
        }
        if (c == '/' && i + 1 < len && p[i + 1] == '*') {
            if ((e = memmem(p + i + 2, len - i - 2, "*/", 2)) == NULL) {
                sc->open = i;
                sc->open_what = "comment";
                break;
            }
            i = (size_t)(e - p) + 2;
            continue;
        }
        if (done && depth == 0) {
            sc->trailing = i;
            break;
        }
        if (sc->empty) {
            sc->empty = 0;
            sc->first = i;
        }
        top = depth > 0 ? &st[depth - 1] : NULL;
        if (c == '}' || c == ']') {
            if (depth > 0)
                depth--;
            i++;
            continue;
        }
        if (c == ':') {
            i++;
            continue;
        }
        if (c == ',') {
            if (top != NULL && top->kind == '{')
                top->want_key = 1;
            i++;
            continue;
        }
        if ((c == '"' || c == '\'') && top != NULL && top->kind == '{' &&
            top->want_key) {
            if ((j = skip_string(p, len, i)) == NOPOS)
                goto open_string;
            path_cut(&path, top->base);
            if ((top->base > 0 && buf_add(&path, ".", 1) != 0) ||
                path_add_key(&path, p + i, j - i) != 0 ||
                scan_add(sc, &path, i) != 0)
                goto nomem;
            top->want_key = 0;
            i = j;
            continue;
        }
        /* A value: an array's element, a member's value, or the top. */
        if (top == NULL) {
            done = 1;
        } else if (top->kind == '[') {
            path_cut(&path, top->base);
            if (buf_printf(&path, "[%zu]", top->index++) != 0 ||
                scan_add(sc, &path, i) != 0)
                goto nomem;
        }
        if (c == '{' || c == '[') {
            if (depth == SCAN_DEPTH)
                break;          /* json-c refuses this much anyway */
            st[depth].kind = c;
            st[depth].open = i;
            st[depth].base = path.len;
            st[depth].index = 0;
            st[depth].want_key = c == '{';
            depth++;
            i++;
        } else if (c == '"' || c == '\'') {
            if ((j = skip_string(p, len, i)) == NOPOS)
                goto open_string;
            i = j;
        } else {
            do              /* a number, true, false, null, NaN... */
                i++;
            while (i < len && !is_delim(p[i]));
        }
    }
    if (sc->open == NOPOS && sc->trailing == NOPOS && depth > 0) {
        sc->open = st[depth - 1].open;
        sc->open_what = st[depth - 1].kind == '{' ? "'{'" : "'['";
        sc->open_bracket = 1;
    }
    buf_free(&path);
    return 0;

open_string:
    sc->open = i;
    sc->open_what = "string";
    buf_free(&path);
    return 0;
nomem:
    buf_free(&path);
    return -1;
}

/* Order entries by path, then by offset. */
static int
entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int                 d = strcmp(x->path, y->path);

    if (d != 0)
        return d;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Compare a path with an entry's, for bsearch(). */
static int
entry_find_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct entry *)elem)->path);
}

/* Sort the index; return the duplicate key that comes first in the text
 * (its second occurrence) and set *orig to its first, or NULL if none. */
static const struct entry *
scan_sort(struct scan *sc, const struct entry **orig)
{
    const struct entry *dup = NULL;
    size_t              i;

    if (sc->n > 1)
        qsort(sc->v, sc->n, sizeof *sc->v, entry_cmp);
    for (i = 1; i < sc->n; i++) {
        if (strcmp(sc->v[i - 1].path, sc->v[i].path) == 0 &&
            (dup == NULL || sc->v[i].off < dup->off)) {
            dup = &sc->v[i];
            *orig = &sc->v[i - 1];
        }
    }
    return dup;
}

/* Return the entry of path in the sorted index, or NULL. */
static const struct entry *
scan_find(const struct scan *sc, const char *path)
{
    if (sc->n == 0)
        return NULL;
    return bsearch(path, sc->v, sc->n, sizeof *sc->v, entry_find_cmp);
}

/* ---- syntax ---------------------------------------------------------- */

/* What each json-c error means, in our words. */
static const struct {
    enum json_tokener_error  err;
    const char              *msg;
} syntax_errors[] = {
    { json_tokener_error_depth, "nested too deep" },
    { json_tokener_error_parse_eof, "unexpected end of file" },
    { json_tokener_error_parse_unexpected, "unexpected character" },
    { json_tokener_error_parse_null, "expected null" },
    { json_tokener_error_parse_boolean, "expected true or false" },
    { json_tokener_error_parse_number, "invalid number" },
    { json_tokener_error_parse_array,
        "expected ',' or ']' after an array element" },
    { json_tokener_error_parse_object_key_name, "expected a quoted key" },
    { json_tokener_error_parse_object_key_sep, "expected ':' after the key" },
    { json_tokener_error_parse_object_value_sep,
        "expected ',' or '}' after a value" },
    { json_tokener_error_parse_string, "invalid escape in a string" },
    { json_tokener_error_parse_comment, "expected a comment after '/'" },
    { json_tokener_error_parse_utf8_string, "invalid UTF-8 in a string" },
    { json_tokener_error_size, "file too large" },
};

/* Set *cause to json-c's error err at offset off, in our words. */
static int
syntax_error(char **cause, const char *file, const struct text *t,
    enum json_tokener_error err, size_t off)
{
    const char  *msg = json_tokener_error_desc(err);
    size_t       i;

    for (i = 0; i < nitems(syntax_errors); i++) {
        if (syntax_errors[i].err == err)
            msg = syntax_errors[i].msg;
    }
    if (off > t->len)
        off = t->len;
    if (err == json_tokener_error_parse_unexpected && off < t->len &&
        t->p[off] > ' ' && t->p[off] < 0x7f)
        return fail_at(cause, file, t, off, "%s '%c'", msg, t->p[off]);
    return fail_at(cause, file, t, off, "%s", msg);
}

/*
 * Parse t into *root, a JSON object, and index its keys into sc (sorted).
 * Return 0, or -1 with *cause set ("FILE:LINE:COL: ..." or "FILE: ...").
 */
static int
text_parse(const char *file, const struct text *t, struct scan *sc,
    json_object **root, char **cause)
{
    struct json_tokener        *tok;
    enum json_tokener_error     err;
    const struct entry         *dup, *orig = NULL;
    const char                 *nul;
    size_t                      end;
    unsigned                    line, col;

    *root = NULL;
    memset(sc, 0, sizeof *sc);
    if (t->p != NULL && (nul = memchr(t->p, '\0', t->len)) != NULL)
        return fail_at(cause, file, t, (size_t)(nul - t->p),
            "NUL character in the file");
    if ((tok = json_tokener_new()) == NULL)
        return fail(cause, file, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
    /* Parse the "\n" after the text too (see text_read()). */
    *root = json_tokener_parse_ex(tok, t->p, (int)t->len + 1);
    err = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (err != json_tokener_success && err != json_tokener_continue)
        return syntax_error(cause, file, t, err, end);
    if (scan_text(t->p, t->len, sc) != 0) {
        fail(cause, file, "out of memory");
        goto bad;
    }
    if (sc->open != NOPOS && !sc->open_bracket) {
        fail_at(cause, file, t, sc->open, "unterminated %s", sc->open_what);
        goto bad;
    }
    if (err == json_tokener_continue) {
        if (sc->empty) {
            fail(cause, file, "empty file (write {} for the defaults)");
        } else if (sc->open != NOPOS) {
            text_linecol(t, sc->open, &line, &col);
            fail_at(cause, file, t, t->len, "unexpected end of file: the "
                "%s at %u:%u is not closed", sc->open_what, line, col);
        } else {
            fail_at(cause, file, t, t->len, "unexpected end of file");
        }
        goto bad;
    }
    if (sc->trailing != NOPOS) {
        fail_at(cause, file, t, sc->trailing, "unexpected text after the "
            "end of the top-level object");
        goto bad;
    }
    if (!json_object_is_type(*root, json_type_object)) {
        fail_at(cause, file, t, sc->first, "the top level must be an "
            "object: { ... }");
        goto bad;
    }
    if ((dup = scan_sort(sc, &orig)) != NULL) {
        text_linecol(t, orig->off, &line, &col);
        fail_at(cause, file, t, dup->off, "%s: duplicate key (also at "
            "%u:%u)", dup->path, line, col);
        goto bad;
    }
    return 0;

bad:
    json_object_put(*root);
    *root = NULL;
    return -1;
}

/*
 * Turn err ("PATH: what is wrong", freed here) into *cause: "FILE:LINE:COL:
 * err" at PATH, or at its nearest ancestor in the text (a missing key is
 * reported where its object starts), else "FILE: err".
 */
static int
locate(char **cause, const char *file, const struct text *t,
    const struct scan *sc, char *err)
{
    const struct entry  *e = NULL;
    const char          *sep;
    char                *path, *dot, *bracket;

    if (err == NULL)
        return fail(cause, file, "out of memory");
    if ((sep = strstr(err, ": ")) != NULL &&
        (path = strndup(err, (size_t)(sep - err))) != NULL) {
        while ((e = scan_find(sc, path)) == NULL && *path != '\0') {
            dot = strrchr(path, '.');
            bracket = strrchr(path, '[');
            if (dot == NULL || (bracket != NULL && bracket > dot))
                dot = bracket;
            if (dot == NULL)
                break;
            *dot = '\0';
        }
        free(path);
    }
    if (e != NULL)
        fail_at(cause, file, t, e->off, "%s", err);
    else
        fail(cause, file, "%s", err);
    free(err);
    return -1;
}

/* ---- key tables ------------------------------------------------------ */

/* Return the string of v in *s, refusing other types and NULs inside. */
static int
string_of(json_object *v, const char *path, const char **s, char **cause)
{
    if (!json_object_is_type(v, json_type_string))
        return fail(cause, path, "must be a string");
    *s = json_object_get_string(v);
    if (strlen(*s) != (size_t)json_object_get_string_len(v))
        return fail(cause, path, "must not contain a NUL character");
    return 0;
}

/* CONFIG_INT: a JSON integer within [min, max]. */
static int
set_int(const struct config_key *k, void *base, json_object *v,
    const char *path, char **cause)
{
    int64_t x;

    if (!json_object_is_type(v, json_type_int))
        return fail(cause, path, "must be an integer");
    /* Beyond int64, json-c saturates: still out of every range here. */
    x = json_object_get_int64(v);
    if (x < k->min || x > k->max)
        return fail(cause, path, "must be %ld..%ld", k->min, k->max);
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
        return fail(cause, path, "must be a string or null");
    if (string_of(v, path, &s, cause) != 0)
        return -1;
    if (k->check != NULL && k->check(s, &why) != 0) {
        fail(cause, path, "%s", why != NULL ? why : "out of memory");
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

    if (string_of(v, path, &s, cause) != 0)
        return -1;
    for (i = 0; k->names[i] != NULL; i++) {
        if (strcmp(s, k->names[i]) == 0) {
            *(int *)(void *)((char *)base + k->offset) = i;
            return 0;
        }
    }
    if ((list = names_list(k->names)) == NULL)
        return fail_oom(cause);
    fail(cause, path, "must be %s", list);
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
        return fail(cause, path, "must be a string of octal digits from "
            "\"0000\" to \"%04lo\"", (unsigned long)k->max);
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
        return fail(cause, path, "must be an array of strings");
    n = json_object_array_length(v);
    if ((long)n < k->min)
        return k->min == 1 ? fail(cause, path, "must not be empty") :
            fail(cause, path, "must have at least %ld elements", k->min);
    if (k->max > 0 && (long)n > k->max)
        return fail(cause, path, "must have at most %ld elements", k->max);
    if ((vec = calloc(n + 1, sizeof *vec)) == NULL)
        return fail_oom(cause);
    for (i = 0; i < n; i++) {
        snprintf(epath, sizeof epath, "%s[%zu]", path, i);
        if (string_of(json_object_array_get_idx(v, i), epath, &s,
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

/* What to do with a member that the table does not name. */
enum unknown {
    UNKNOWN_ERROR,      /* refuse it */
    UNKNOWN_SKIP,       /* leave it to someone else */
    UNKNOWN_ROUTE       /* skip the common route keys, refuse the rest */
};

/* Return the key called name in keys, or NULL. */
static const struct config_key *
key_find(const struct config_key *keys, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    }
    return NULL;
}

/* Read the members of obj, in their order in the file, with keys. */
static int
keys_apply(const struct config_key *keys, size_t n, void *base,
    json_object *obj, const char *where, enum unknown unknown, char **cause)
{
    const struct config_key *k;
    char                     path[PATH_MAX_LEN];

    json_object_object_foreach(obj, name, v) {
        member_path(path, sizeof path, where, name);
        if ((k = key_find(keys, n, name)) == NULL) {
            if (unknown == UNKNOWN_SKIP || (unknown == UNKNOWN_ROUTE &&
                config_route_common_key(name)))
                continue;
            return fail(cause, path, "unknown key");
        }
        if (setters[k->type](k, base, v, path, cause) != 0)
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

int
config_route_options(const struct config_key *keys, size_t n, void *base,
    json_object *route_obj, const char *where, char **cause)
{
    return keys_apply(keys, n, base, route_obj, where, UNKNOWN_ROUTE, cause);
}

/* ---- checks of string values ----------------------------------------- */

int
config_check_listen(const char *spec, char **cause)
{
    const char  *addr, *port, *p;
    size_t       hlen;
    long         pnum = 0;

    if (strncmp(spec, "unix:", 5) == 0) {
        if (spec[5] != '/')
            return fail(cause, NULL, "the path of unix: must be absolute");
        if (strlen(spec + 5) >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return fail(cause, NULL, "the path of unix: is too long (at "
                "most %zu bytes)",
                sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
        return 0;
    }
    if (strncmp(spec, "tcp:", 4) != 0)
        return fail(cause, NULL, "must be unix:/PATH or tcp:HOST:PORT");
    addr = spec + 4;
    if ((port = strrchr(addr, ':')) == NULL)
        return fail(cause, NULL, "must be tcp:HOST:PORT");
    hlen = (size_t)(port - addr);
    port++;
    for (p = port; *p >= '0' && *p <= '9' && pnum <= 65535; p++)
        pnum = pnum * 10 + (*p - '0');
    if (*port == '\0' || *p != '\0' || pnum > 65535)
        return fail(cause, NULL, "the port must be 0..65535");
    if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
        addr++;
        hlen -= 2;
    }
    if (hlen == 0)
        return fail(cause, NULL, "the host is missing (tcp:HOST:PORT)");
    if (hlen > 253)
        return fail(cause, NULL, "the host is too long");
    for (p = addr; p < addr + hlen; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '[' ||
            *p == ']' || *p == '/')
            return fail(cause, NULL, "the host must be a name or an "
                "address (in [ ] for IPv6)");
    }
    return 0;
}

/* socket_group: a group name or number (no blanks, ":" or "/"). */
static int
check_group(const char *s, char **why)
{
    if (*s == '\0')
        return refuse(why, "must not be empty");
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s <= ' ' || *s == 0x7f || *s == ':' || *s == '/')
            return refuse(why, "must be a group name or number");
    }
    return 0;
}

/* access_log: "off" or an absolute path. */
static int
check_access_log(const char *s, char **why)
{
    if (strcmp(s, "off") != 0 && *s != '/')
        return refuse(why, "must be \"off\" or an absolute path");
    return 0;
}

/* ---- routes ---------------------------------------------------------- */

/* The methods as router.c knows them, for messages. */
#define METHOD_NAMES "GET, HEAD, POST, PUT, DELETE, PATCH or OPTIONS"

/* The keys of every route, read into a struct route_common. */
struct route_common {
    char       *path;
    unsigned    methods;        /* 0: any */
    char       *handler;
    long        deadline_ms;    /* 0: none */
    long        probe_ms;       /* 0: none */
};

static int check_route_path(const char *, char **);
static int check_handler(const char *, char **);
static int set_methods(void *, json_object *, const char *, char **);

static const struct config_key route_keys[] = {
    { .name = "path", .type = CONFIG_STRING,
      .offset = offsetof(struct route_common, path),
      .check = check_route_path },
    { .name = "methods", .type = CONFIG_CUSTOM, .set = set_methods },
    { .name = "handler", .type = CONFIG_STRING,
      .offset = offsetof(struct route_common, handler),
      .check = check_handler },
    { .name = "deadline_ms", .type = CONFIG_INT,
      .offset = offsetof(struct route_common, deadline_ms),
      .min = 1, .max = CONFIG_MS_MAX, .def = 0 },
    { .name = "probe_ms", .type = CONFIG_INT,
      .offset = offsetof(struct route_common, probe_ms),
      .min = CONFIG_PROBE_MS_MIN, .max = CONFIG_PROBE_MS_MAX, .def = 0 },
};

int
config_route_common_key(const char *name)
{
    return key_find(route_keys, nitems(route_keys), name) != NULL;
}

/* A route's path: absolute, printable, a star only to end a prefix. */
static int
check_route_path(const char *s, char **why)
{
    size_t i, len = strlen(s);

    if (s[0] != '/')
        return refuse(why, "must start with '/'");
    for (i = 0; i < len; i++) {
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return refuse(why, "must not contain spaces or control "
                "characters");
        if (s[i] == '?' || s[i] == '#')
            return refuse(why, "must not contain '?' or '#'");
        if (s[i] == '*' && (i != len - 1 || s[i - 1] != '/'))
            return refuse(why, "may have '*' only at its end, after a "
                "'/' (\"/prefix/*\")");
    }
    return 0;
}

/* A route's methods: a non-empty array of known method names. */
static int
set_methods(void *base, json_object *v, const char *path, char **cause)
{
    struct route_common *rc = base;
    char                 epath[PATH_MAX_LEN];
    const char          *s = "";
    unsigned             bits = 0, bit;
    size_t               i, n;

    if (!json_object_is_type(v, json_type_array))
        return fail(cause, path, "must be an array of methods");
    if ((n = json_object_array_length(v)) == 0)
        return fail(cause, path, "must not be empty (leave it out to "
            "allow every method)");
    for (i = 0; i < n; i++) {
        snprintf(epath, sizeof epath, "%s[%zu]", path, i);
        if (string_of(json_object_array_get_idx(v, i), epath, &s,
            cause) != 0) {
            free(*cause);
            return fail(cause, epath, "must be %s", METHOD_NAMES);
        }
        if ((bit = router_method_bit(s)) == 0)
            return fail(cause, epath, "must be %s", METHOD_NAMES);
        bits |= bit;
    }
    rc->methods = bits;
    return 0;
}

static int build_work(struct route *, json_object *, const char *, char **);
static int build_status(struct route *, json_object *, const char *, char **);
static int build_ping(struct route *, json_object *, const char *, char **);

/* The handlers a route may name, and how each builds its route. */
static const struct handler_def {
    const char             *name;
    config_route_build_cb   build;      /* NULL: not supported yet */
} handlers[] = {
    { "work", build_work },
    { "exec", exec_route_build },
    { "status", build_status },
    { "ping", build_ping },
    { "module", module_route_build },
    { "sql", sql_glue_route_build },        /* until the registry lands */
};

/* Return the handler called name, or NULL. */
static const struct handler_def *
handler_find(const char *name)
{
    size_t i;

    for (i = 0; i < nitems(handlers); i++) {
        if (strcmp(handlers[i].name, name) == 0)
            return &handlers[i];
    }
    return NULL;
}

/* A route's handler: a known one, and one that is supported. */
static int
check_handler(const char *s, char **why)
{
    const struct handler_def *h = handler_find(s);
    const char               *names[nitems(handlers) + 1];
    size_t                    i;

    if (h != NULL && h->build != NULL)
        return 0;
    if (h != NULL) {
        if (asprintf(why, "%s handler not supported yet", h->name) < 0)
            *why = NULL;
        return -1;
    }
    for (i = 0; i < nitems(handlers); i++)
        names[i] = handlers[i].name;
    names[i] = NULL;
    if ((*why = names_list(names)) != NULL) {
        char *list = *why;

        if (asprintf(why, "must be %s", list) < 0)
            *why = NULL;
        free(list);
    }
    return -1;
}

/* The work handler's options, into a struct work_opts. */
static const char *const work_styles[] = { "poll", "callback", "wait", "ignore", NULL };
static const char *const work_modes[] = { "sleep", "cpu", NULL };

_Static_assert(sizeof(enum work_style) == sizeof(int) &&
    sizeof(enum work_mode) == sizeof(int), "CONFIG_ENUM stores an int");

static const struct config_key work_keys[] = {
    { .name = "style", .type = CONFIG_ENUM,
      .offset = offsetof(struct work_opts, style),
      .def = WORK_POLL, .names = work_styles },
    { .name = "task_param", .type = CONFIG_STRING,
      .offset = offsetof(struct work_opts, task_param),
      .def_str = "default" },
    { .name = "steps", .type = CONFIG_INT,
      .offset = offsetof(struct work_opts, steps),
      .min = 0, .max = WORK_MAX_STEPS, .def = 5 },
    { .name = "step_ms", .type = CONFIG_INT,
      .offset = offsetof(struct work_opts, step_ms),
      .min = 0, .max = WORK_MAX_STEP_MS, .def = 1000 },
    { .name = "mode", .type = CONFIG_ENUM,
      .offset = offsetof(struct work_opts, mode),
      .def = WORK_SLEEP, .names = work_modes },
};

/* The builder of "work" routes: the options of work_keys. */
static int
build_work(struct route *rt, json_object *obj, const char *where,
    char **cause)
{
    struct work_opts *o;

    if ((o = calloc(1, sizeof *o)) == NULL ||
        config_keys_defaults(work_keys, nitems(work_keys), o) != 0) {
        work_opts_free(o);
        return fail_oom(cause);
    }
    rt->fn = work_handler;
    rt->data = o;
    rt->data_free = work_opts_free;
    return config_route_options(work_keys, nitems(work_keys), o, obj, where,
        cause);
}

/* The builders of "status" and "ping" routes: no options. */
static int
build_status(struct route *rt, json_object *obj, const char *where,
    char **cause)
{
    rt->fn = status_handler;
    return config_route_options(NULL, 0, NULL, obj, where, cause);
}

static int
build_ping(struct route *rt, json_object *obj, const char *where,
    char **cause)
{
    rt->fn = ping_handler;
    return config_route_options(NULL, 0, NULL, obj, where, cause);
}

/* Return the index of the route whose path is path as written, or -1. */
static long
route_find(const struct router *r, const char *path)
{
    size_t  len = strlen(path), i;
    int     prefix = len >= 2 && strcmp(path + len - 2, "/*") == 0;

    if (prefix)
        len--;
    for (i = 0; i < r->n; i++) {
        if (r->routes[i].prefix == prefix &&
            strncmp(r->routes[i].path, path, len) == 0 &&
            r->routes[i].path[len] == '\0')
            return (long)i;
    }
    return -1;
}

/* Add the route that obj, the i-th of the "routes" array, describes. */
static int
route_add(struct config *c, json_object *obj, size_t i, char **cause)
{
    const struct handler_def   *h;
    struct route_common         rc;
    struct route               *rt;
    char                        where[32], path[64], esc[128];
    long                        other;
    int                         ret = -1;

    snprintf(where, sizeof where, "routes[%zu]", i);
    if (!json_object_is_type(obj, json_type_object))
        return fail(cause, where, "must be an object");
    memset(&rc, 0, sizeof rc);
    /* No route key has a string default: this cannot fail. */
    config_keys_defaults(route_keys, nitems(route_keys), &rc);
    if (keys_apply(route_keys, nitems(route_keys), &rc, obj, where,
        UNKNOWN_SKIP, cause) != 0)
        goto out;
    if (rc.path == NULL || rc.handler == NULL) {
        fail(cause, where, "missing key \"%s\"",
            rc.path == NULL ? "path" : "handler");
        goto out;
    }
    if ((other = route_find(&c->routes, rc.path)) >= 0) {
        snprintf(path, sizeof path, "%s.path", where);
        fail(cause, path, "\"%s\" is already the path of routes[%ld]",
            log_escape(esc, sizeof esc, rc.path), other);
        goto out;
    }
    h = handler_find(rc.handler);       /* check_handler() found it */
    if ((rt = router_add(&c->routes, rc.path, rc.methods, h->name, NULL,
        NULL, NULL)) == NULL) {
        fail_oom(cause);
        goto out;
    }
    rt->deadline_ms = rc.deadline_ms;
    rt->probe_ms = rc.probe_ms;
    ret = h->build(rt, obj, where, cause);
out:
    config_keys_free(route_keys, nitems(route_keys), &rc);
    return ret;
}

/* The "routes" key: a non-empty array of route objects. */
static int
set_routes(void *base, json_object *v, const char *path, char **cause)
{
    struct config  *c = base;
    size_t          i, n;

    if (!json_object_is_type(v, json_type_array))
        return fail(cause, path, "must be an array of routes");
    if ((n = json_object_array_length(v)) == 0)
        return fail(cause, path, "must not be empty");
    for (i = 0; i < n; i++) {
        if (route_add(c, json_object_array_get_idx(v, i), i, cause) != 0)
            return -1;
    }
    return 0;
}

/* ---- the configuration ---------------------------------------------- */

/* The names of enum log_level, in its order. */
static const char *const log_levels[] = {
    "error", "warn", "info", "debug", NULL
};

_Static_assert(nitems(log_levels) == LOG_LEVEL__MAX + 1,
    "log_levels matches enum log_level");

static const struct config_key config_keys[] = {
    { .name = "listen", .type = CONFIG_STRING,
      .offset = offsetof(struct config, listen),
      .nullable = 1, .check = config_check_listen },
    { .name = "socket_mode", .type = CONFIG_MODE,
      .offset = offsetof(struct config, socket_mode),
      .max = 0777, .def = 0660 },
    { .name = "socket_group", .type = CONFIG_STRING,
      .offset = offsetof(struct config, socket_group),
      .nullable = 1, .check = check_group },
    { .name = "workers", .type = CONFIG_INT,
      .offset = offsetof(struct config, workers),
      .min = 1, .max = CONFIG_WORKERS_MAX, .def = 32 },
    { .name = "grace_ms", .type = CONFIG_INT,
      .offset = offsetof(struct config, grace_ms),
      .min = 0, .max = CONFIG_MS_MAX, .def = 10000 },
    { .name = "max_body_bytes", .type = CONFIG_INT,
      .offset = offsetof(struct config, max_body_bytes),
      .min = 0, .max = CONFIG_BODY_MAX, .def = 1048576 },
    { .name = "read_timeout_ms", .type = CONFIG_INT,
      .offset = offsetof(struct config, read_timeout_ms),
      .min = 0, .max = CONFIG_MS_MAX, .def = 30000 },
    { .name = "max_params_bytes", .type = CONFIG_INT,
      .offset = offsetof(struct config, max_params_bytes),
      .min = 1024, .max = CONFIG_PARAMS_MAX, .def = 1048576 },
    { .name = "write_timeout_ms", .type = CONFIG_INT,
      .offset = offsetof(struct config, write_timeout_ms),
      .min = 0, .max = CONFIG_MS_MAX, .def = 60000 },
    { .name = "worker_stack_kb", .type = CONFIG_INT,
      .offset = offsetof(struct config, worker_stack_kb),
      .min = CONFIG_STACK_KB_MIN, .max = CONFIG_STACK_KB_MAX, .def = 1024 },
    { .name = "log_level", .type = CONFIG_ENUM,
      .offset = offsetof(struct config, log_level),
      .def = LOG_LEVEL_INFO, .names = log_levels },
    { .name = "access_log", .type = CONFIG_STRING,
      .offset = offsetof(struct config, access_log),
      .nullable = 1, .check = check_access_log },
    { .name = "user", .type = CONFIG_STRING,
      .offset = offsetof(struct config, user),
      .nullable = 1, .check = check_group },
    { .name = "group", .type = CONFIG_STRING,
      .offset = offsetof(struct config, group),
      .nullable = 1, .check = check_group },
    { .name = "allowed_clients", .type = CONFIG_STRV,
      .offset = offsetof(struct config, allowed_clients),
      .min = 0, .max = 0 },
    { .name = "routes", .type = CONFIG_CUSTOM, .set = set_routes },
};

/* Is s a numeric IPv4 or IPv6 address?  Loopback ones set *loop. */
static int
ip_address(const char *s, int *loop)
{
    struct in6_addr a6;
    struct in_addr  a4;

    if (inet_pton(AF_INET, s, &a4) == 1) {
        *loop = (ntohl(a4.s_addr) >> 24) == 127;
        return 1;
    }
    if (inet_pton(AF_INET6, s, &a6) == 1) {
        *loop = IN6_IS_ADDR_LOOPBACK(&a6);
        return 1;
    }
    return 0;
}

int
config_check_access(const struct config *c, char **cause)
{
    char        host[256], msg[512];
    const char *p, *colon;
    size_t      i, len;
    int         loop = 0;

    for (i = 0; c->allowed_clients != NULL && c->allowed_clients[i] != NULL;
        i++) {
        if (!ip_address(c->allowed_clients[i], &loop)) {
            snprintf(msg, sizeof msg, "allowed_clients[%zu]: \"%s\" is not "
                "an IP address", i, c->allowed_clients[i]);
            *cause = strdup(msg);
            return -1;
        }
    }
    if (c->listen == NULL || strncmp(c->listen, "tcp:", 4) != 0 ||
        (c->allowed_clients != NULL && c->allowed_clients[0] != NULL))
        return 0;
    p = c->listen + 4;
    if ((colon = strrchr(p, ':')) == NULL)
        return 0;           /* config_check_listen() says what is wrong */
    len = (size_t)(colon - p);
    if (len >= 2 && p[0] == '[' && p[len - 1] == ']') {
        p++;
        len -= 2;
    }
    if (len >= sizeof host)
        len = sizeof host - 1;
    memcpy(host, p, len);
    host[len] = '\0';
    if (strcmp(host, "localhost") == 0 || (ip_address(host, &loop) && loop))
        return 0;
    snprintf(msg, sizeof msg, "allowed_clients: required when listening on "
        "%s, which is not a loopback address", c->listen);
    *cause = strdup(msg);
    return -1;
}

void
config_init(struct config *c)
{
    memset(c, 0, sizeof *c);
    /* No top-level key has a string default: this cannot fail. */
    config_keys_defaults(config_keys, nitems(config_keys), c);
}

void
config_free(struct config *c)
{
    config_keys_free(config_keys, nitems(config_keys), c);
    router_free(&c->routes);
}

int
config_default_routes(struct config *c)
{
    return router_defaults(&c->routes);
}

/* A configuration file's text, kept to be parsed more than once. */
struct config_source {
    char           *path;
    struct text     t;
};

struct config_source *
config_read(const char *path, char **cause)
{
    struct config_source *src;

    *cause = NULL;
    if ((src = calloc(1, sizeof *src)) == NULL ||
        (src->path = strdup(path)) == NULL) {
        free(src);
        fail(cause, path, "out of memory");
        return NULL;
    }
    if (text_read(path, &src->t, cause) != 0) {
        config_source_free(src);
        return NULL;
    }
    return src;
}

void
config_source_free(struct config_source *src)
{
    if (src == NULL)
        return;
    free(src->t.buf);
    free(src->path);
    free(src);
}

int
config_load(struct config *c, const char *path, char **cause)
{
    struct config_source *src;
    int                   rc;

    if ((src = config_read(path, cause)) == NULL)
        return -1;
    rc = config_parse(c, src, cause);
    config_source_free(src);
    return rc;
}

int
config_parse(struct config *c, const struct config_source *src,
    char **cause)
{
    struct config   tmp;
    struct scan     sc;
    json_object    *root = NULL;
    const char     *path = src->path;
    const struct text *tp = &src->t;
    char           *err = NULL;
    int             rc = -1;

    *cause = NULL;
    if (text_parse(path, tp, &sc, &root, cause) != 0)
        goto out;
    config_init(&tmp);
    if (keys_apply(config_keys, nitems(config_keys), &tmp, root, "",
        UNKNOWN_ERROR, &err) != 0) {
        locate(cause, path, tp, &sc, err);
        config_free(&tmp);
        goto out;
    }
    if (tmp.routes.n == 0 && config_default_routes(&tmp) != 0) {
        fail(cause, path, "out of memory");
        config_free(&tmp);
        goto out;
    }
    config_free(c);
    *c = tmp;
    rc = 0;
out:
    json_object_put(root);
    scan_free(&sc);
    return rc;
}
