/* SPDX-License-Identifier: MIT */
/*
 * fuzz_watcher.c - libFuzzer target for proto_classify() (proto.c), the
 * one parser the watcher runs on bytes a peer controls: what waits on the
 * FastCGI connection of a request in flight.
 *
 * Input: two bytes of request id (big-endian, the id the watcher looks
 * for), then the bytes on the connection.  Every prefix of those bytes is
 * classified from an exactly sized heap copy (so ASan sees a read past the
 * prefix), the verdict is checked against a model written from the
 * FastCGI specification, and the verdicts of growing prefixes must agree
 * with each other the way the watcher relies on: once STRAY or ABORT, more
 * bytes change nothing.  The watcher peeks at most 64 bytes and then
 * consumes *consume of them into the same 64-byte buffer: that bound is
 * checked too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fastcgi.h>

#include "proto.h"

#define PEEK_MAX    64      /* sizeof buf in watcher_event() */

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz_watcher: %s:%d: check failed: %s\n", \
        __FILE__, __LINE__, #cond); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the specification says the verdict must be. */
static enum proto_class
model(const unsigned char *b, size_t len, int reqid, size_t *consume)
{
    size_t total;

    *consume = 0;
    if (len == 0)
        return PROTO_CLASS_MORE;
    if (b[0] != FCGI_VERSION_1)
        return PROTO_CLASS_STRAY;
    if (len < FCGI_HEADER_LEN)
        return PROTO_CLASS_MORE;
    if (b[1] != FCGI_ABORT_REQUEST || ((b[2] << 8) | b[3]) != reqid)
        return PROTO_CLASS_STRAY;
    total = FCGI_HEADER_LEN + (size_t)((b[4] << 8) | b[5]) + b[6];
    if (len < total)
        return PROTO_CLASS_MORE;
    *consume = total;
    return PROTO_CLASS_ABORT;
}

/* Classify the first len bytes of p from a heap copy of exactly len bytes. */
static enum proto_class
classify(const uint8_t *p, size_t len, int reqid, size_t *consume)
{
    enum proto_class  v;
    unsigned char      *copy = malloc(len > 0 ? len : 1);

    CHECK(copy != NULL);
    if (len > 0)
        memcpy(copy, p, len);
    *consume = (size_t)-1;
    v = proto_classify(copy, len, reqid, consume);
    free(copy);
    return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum proto_class  v, m, prev = PROTO_CLASS_MORE;
    size_t              len, consume, mconsume, prev_consume = 0;
    int                 reqid;

    if (size < 2)
        return 0;
    reqid = (data[0] << 8) | data[1];
    data += 2;
    size -= 2;

    for (len = 0; len <= size; len++) {
        v = classify(data, len, reqid, &consume);
        m = model(data, len, reqid, &mconsume);
        CHECK(v == PROTO_CLASS_MORE || v == PROTO_CLASS_ABORT ||
            v == PROTO_CLASS_STRAY);
        CHECK(v == m);
        CHECK(consume == mconsume);
        CHECK(consume <= len);
        if (v == PROTO_CLASS_ABORT)
            CHECK(consume >= FCGI_HEADER_LEN);
        else
            CHECK(consume == 0);
        /* More bytes never change a final verdict. */
        if (prev != PROTO_CLASS_MORE) {
            CHECK(v == prev);
            CHECK(consume == prev_consume);
        }
        /* What watcher_event() does: peek 64, consume into the same buffer. */
        if (len <= PEEK_MAX && v == PROTO_CLASS_ABORT)
            CHECK(consume <= PEEK_MAX);
        prev = v;
        prev_consume = consume;
    }
    /* The watcher's own call: the first PEEK_MAX bytes only. */
    len = size < PEEK_MAX ? size : PEEK_MAX;
    v = classify(data, len, reqid, &consume);
    CHECK(consume <= len);
    return 0;
}
