/* SPDX-License-Identifier: MIT */
/*
 * memstream.h - the in-memory FCGX_Stream of the unit tests.  A handler's
 * response goes through libfcgi's FCGX_PutStr() and FCGX_FFlush(), which
 * call the stream's emptyBuffProc when its buffer is full or flushed; here
 * that appends the bytes to a buffer the test reads.  The stream can break
 * as a socket to a gone client does (EPIPE): after a number of bytes, or
 * from now on.  Nothing in the server reads through an FCGX_Stream (proto.c
 * parses its own records), so there is no input side.  memstream_run()
 * runs a handler on one with a request of given params, for the tests that
 * look at what a handler answers.
 */
#ifndef MEMSTREAM_H
#define MEMSTREAM_H

#include <fcgiapp.h>
#include <json-c/json.h>

#include "fcgi_cancel.h"
#include "util.h"

/* The largest buffer a memstream can have (and the usual one). */
#define MEMSTREAM_CHUNK 4096
/* A buffer small enough that every path of FCGX_PutStr() runs. */
#define MEMSTREAM_SMALL 16

struct memstream {
    FCGX_Stream     s;              /* hand &s to response_new() */
    unsigned char   chunk[MEMSTREAM_CHUNK];
    struct buf      got;            /* what went out; data NULL if nothing */
    long            fail_after;     /* see memstream_init(); -1: never */
};

/*
 * Set up m with a buffer of size bytes (at most MEMSTREAM_CHUNK: a small
 * one makes every path of FCGX_PutStr() run) that breaks once more than
 * fail_after bytes would have gone out (-1: never).
 */
void        memstream_init(struct memstream *m, size_t size, long fail_after);
/* Break m from now on: every later flush of bytes fails (EPIPE). */
void        memstream_break(struct memstream *m);
/* Flush m; return all that went out, "" if nothing (valid until freed). */
const char *memstream_text(struct memstream *m);
/* Free what m collected (m itself is the caller's). */
void        memstream_free(struct memstream *m);

/*
 * Run handler with data on a request of the params envp (a token of its
 * own, not cancelled) and return the body it answered (what follows the
 * header block; caller frees), its status in *status and the handler's
 * result in *result.  Aborts if memory runs out.
 */
char       *memstream_run(fc_handler_cb handler, void *data, char **envp,
                int *status, int *result);

/*
 * Parse s with json-c's tokener in strict mode, checking that it is UTF-8
 * (JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8): the object (caller
 * puts it), or NULL if s is not one valid JSON text.
 */
json_object *memstream_json_strict(const char *s);

#endif /* MEMSTREAM_H */
