/* SPDX-License-Identifier: MIT */
/*
 * jsonpos.c - the positioned JSON text reader (see jsonpos.h).  json-c
 * parses the text in its non-strict mode, which accepts both kinds of
 * comments (slash-slash and slash-star) and trailing commas by itself;
 * this module turns json-c's errors into FILE:LINE:COL messages.
 *
 * json-c does not say where a value was in the text, so a small scanner
 * walks the text once more (strings, comments, brackets, nothing else) and
 * indexes the position of every key and array element by its path
 * ("routes[2].deadline_ms").  That index gives a semantic error its line
 * and column (jsonpos_locate()), and finds the duplicate keys that json-c
 * would silently merge.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_keys.h"
#include "jsonpos.h"
#include "log.h"
#include "util.h"

#define NOPOS           ((size_t)-1)
#define SCAN_DEPTH      64              /* json-c stops at 32 */

/* ---- the text and positions ----------------------------------------- */

int
jsonpos_read(const char *file, size_t max, struct jsonpos_text *t,
    char **cause)
{
    struct buf  b = { 0 };
    char        chunk[8192];
    ssize_t     r;
    int         fd, err;

    if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
        return config_keys_fail(cause, file, "%s", strerror(errno));
    for (;;) {
        if ((r = read(fd, chunk, sizeof chunk)) < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            close(fd);
            buf_free(&b);
            return config_keys_fail(cause, file, "%s", strerror(err));
        }
        if (r == 0)
            break;
        if (b.len + (size_t)r > max) {
            close(fd);
            buf_free(&b);
            return config_keys_fail(cause, file, "larger than %zu MiB",
                max >> 20);
        }
        if (buf_add(&b, chunk, (size_t)r) != 0) {
            close(fd);
            buf_free(&b);
            return config_keys_fail(cause, file, "out of memory");
        }
    }
    close(fd);
    t->len = b.len;
    /* The "\n" ends a // comment on a last line that has no newline. */
    if (buf_add(&b, "\n", 1) != 0 || b.data == NULL) {
        buf_free(&b);
        return config_keys_fail(cause, file, "out of memory");
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
text_linecol(const struct jsonpos_text *t, size_t off, unsigned *line,
    unsigned *col)
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
fail_at(char **cause, const char *file, const struct jsonpos_text *t,
    size_t off, const char *fmt, ...)
{
    va_list     ap;
    char       *where;
    unsigned    line, col;

    text_linecol(t, off, &line, &col);
    if (asprintf(&where, "%s:%u:%u", file, line, col) < 0)
        return config_keys_fail(cause, NULL, "out of memory");
    va_start(ap, fmt);
    config_keys_vfail(cause, where, fmt, ap);
    va_end(ap);
    free(where);
    return -1;
}

/* ---- the scanner: where each key is --------------------------------- */

/* A key (its opening quote) or an array element (its first character). */
struct entry {
    char       *path;       /* "workers", "routes[2]", "routes[2].path" */
    size_t      off;
};

/* What a scan of the text found. */
struct jsonpos_index {
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
scan_add(struct jsonpos_index *sc, const struct buf *path, size_t off)
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

/* Free what the index holds. */
static void
scan_free(struct jsonpos_index *sc)
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
 * config_keys_read() spells json-c's key: decoded (so that "w\u006frkers" is
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
scan_text(const char *p, size_t len, struct jsonpos_index *sc)
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
        /* p is jsonpos_read()'s buffer, never NULL when len > 0; the analyzer
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
scan_sort(struct jsonpos_index *sc, const struct entry **orig)
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
scan_find(const struct jsonpos_index *sc, const char *path)
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
syntax_error(char **cause, const char *file, const struct jsonpos_text *t,
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

/* jsonpos_parse() into sc, which the caller allocated and frees. */
static int
text_parse(const char *file, const struct jsonpos_text *t,
    struct jsonpos_index *sc, json_object **root, char **cause)
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
        return config_keys_fail(cause, file, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
    /* Parse the "\n" after the text too (see jsonpos_read()). */
    *root = json_tokener_parse_ex(tok, t->p, (int)t->len + 1);
    err = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (err != json_tokener_success && err != json_tokener_continue)
        return syntax_error(cause, file, t, err, end);
    if (scan_text(t->p, t->len, sc) != 0) {
        config_keys_fail(cause, file, "out of memory");
        goto bad;
    }
    if (sc->open != NOPOS && !sc->open_bracket) {
        fail_at(cause, file, t, sc->open, "unterminated %s", sc->open_what);
        goto bad;
    }
    if (err == json_tokener_continue) {
        if (sc->empty) {
            config_keys_fail(cause, file,
                "empty file (write {} for the defaults)");
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

int
jsonpos_locate(char **cause, const char *file, const struct jsonpos_text *t,
    const struct jsonpos_index *sc, char *err)
{
    const struct entry  *e = NULL;
    const char          *sep;
    char                *path, *dot, *bracket;

    if (err == NULL)
        return config_keys_fail(cause, file, "out of memory");
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
        config_keys_fail(cause, file, "%s", err);
    free(err);
    return -1;
}

int
jsonpos_parse(const char *file, const struct jsonpos_text *t,
    struct jsonpos_index **ix, json_object **root, char **cause)
{
    *root = NULL;
    if ((*ix = calloc(1, sizeof **ix)) == NULL)
        return config_keys_fail(cause, file, "out of memory");
    if (text_parse(file, t, *ix, root, cause) != 0) {
        jsonpos_index_free(*ix);
        *ix = NULL;
        return -1;
    }
    return 0;
}

void
jsonpos_index_free(struct jsonpos_index *ix)
{
    if (ix == NULL)
        return;
    scan_free(ix);
    free(ix);
}

void
jsonpos_text_free(struct jsonpos_text *t)
{
    free(t->buf);
    memset(t, 0, sizeof *t);
}
