/* SPDX-License-Identifier: MIT */
/*
 * jsonpos.h - the positioned JSON text reader: read a file, parse it with
 * json-c (comments and trailing commas allowed), and say where things are
 * in the text, so that every error about it reads FILE:LINE:COL.
 *
 * config.c reads the configuration file with it: jsonpos_read() once,
 * jsonpos_parse() each time the text is parsed (main.c parses it twice),
 * and jsonpos_locate() to put a key's line and column in front of what the
 * key tables found wrong with its value.  LINE and COL count from 1; COL
 * counts characters (UTF-8 code points).
 */
#ifndef JSONPOS_H
#define JSONPOS_H

#include <stddef.h>

#include <json-c/json.h>

/* A file's bytes (after a UTF-8 byte order mark, if any). */
struct jsonpos_text {
    char       *buf;        /* what was read, then "\n\0" */
    const char *p;          /* the text */
    size_t      len;        /* of the text, without the "\n\0" */
};

/* Where each key and array element of a parsed text is (opaque). */
struct jsonpos_index;

/*
 * Read file (at most max bytes) into t; jsonpos_text_free() it later.
 * Return 0, or -1 with *cause set (caller frees) to "FILE: what is wrong"
 * ("FILE: No such file or directory", "FILE: larger than 16 MiB").
 */
int     jsonpos_read(const char *file, size_t max, struct jsonpos_text *t,
            char **cause);

/* Free what jsonpos_read() stored in t and empty it. */
void    jsonpos_text_free(struct jsonpos_text *t);

/*
 * Parse t (read from file) into *root, which must be a JSON object without
 * duplicate keys, and index where its keys are into *ix.  Return 0: the
 * caller puts *root and jsonpos_index_free()s *ix.  Return -1 with both
 * NULL and *cause set (caller frees) to "FILE:LINE:COL: what is wrong" (a
 * syntax error, a duplicate key, a top level that is not an object) or
 * "FILE: what is wrong" (an empty file, memory).
 */
int     jsonpos_parse(const char *file, const struct jsonpos_text *t,
            struct jsonpos_index **ix, json_object **root, char **cause);

/* Free an index (NULL is fine). */
void    jsonpos_index_free(struct jsonpos_index *ix);

/*
 * Turn err ("PATH: what is wrong", taken over and freed here; NULL: memory
 * ran out) into *cause (caller frees): "FILE:LINE:COL: err" at PATH, or at
 * its nearest ancestor in the text (a missing key is reported where its
 * object starts), else "FILE: err".  Return -1.
 */
int     jsonpos_locate(char **cause, const char *file,
            const struct jsonpos_text *t, const struct jsonpos_index *ix,
            char *err);

#endif /* JSONPOS_H */
