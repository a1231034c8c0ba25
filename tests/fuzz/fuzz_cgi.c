/* SPDX-License-Identifier: MIT */
/*
 * fuzz_cgi.c - libFuzzer target for cgi_parse_headers(), which parses the
 * CGI header block that an exec program prints: output of a program that
 * may itself echo what a client sent.
 *
 * Input: the program's output.  If it starts with '\xff', the rest is
 * placed after a filler header line that brings it close to
 * CGI_HEADERS_MAX, so the 64 KiB bound is reached without 64 KiB inputs.
 * Checked: the contract of exec.h for each return value, what a complete
 * block yields (no CR, LF or other control character in a header, a
 * status of three digits), and that feeding the output in pieces, as the
 * exec handler does, gives the same answer as feeding it whole.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers/cgi.h"

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz_cgi: %s:%d: check failed: %s\n", \
        __FILE__, __LINE__, #cond); abort(); } } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* No byte below 0x20 but tab, no DEL. */
static int
clean(const char *s)
{
    for (; *s != '\0'; s++) {
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return 0;
    }
    return 1;
}

/* Return the offset after the first blank line ("\n" or "\r\n" alone) in
 * the first len bytes of buf, or 0 if there is none. */
static size_t
blank_end(const char *buf, size_t len)
{
    size_t i, start = 0;

    for (i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i == start || (i == start + 1 && buf[start] == '\r'))
            return i + 1;
        start = i + 1;
    }
    return 0;
}

/* Parse the first len bytes of buf from an exact heap copy; check h. */
static int
parse(const char *buf, size_t len, size_t *consumed, struct cgi_headers *h)
{
    char   *copy = malloc(len > 0 ? len : 1);
    size_t  i;
    int     rc;

    CHECK(copy != NULL);
    if (len > 0)
        memcpy(copy, buf, len);
    *consumed = (size_t)-1;
    rc = cgi_parse_headers(copy, len, consumed, h);
    free(copy);

    CHECK(rc == -1 || rc == 0 || rc == 1);
    if (rc != 1) {
        CHECK(*consumed == 0);
        CHECK(h->content_type == NULL && h->location == NULL &&
            h->extra == NULL && h->nextra == 0);
    }
    if (rc == 0) {
        CHECK(len < CGI_HEADERS_MAX);
        CHECK(blank_end(buf, len) == 0);
        CHECK(h->error == NULL);
    } else if (rc == -1) {
        CHECK(h->error != NULL && *h->error != '\0');
    } else {
        CHECK(*consumed > 0 && *consumed <= len);
        CHECK(*consumed == blank_end(buf, len));
        CHECK(*consumed <= CGI_HEADERS_MAX);
        CHECK(buf[*consumed - 1] == '\n');
        CHECK(h->status >= 100 && h->status <= 999);
        CHECK(h->error == NULL);
        CHECK(h->content_type == NULL ||
            (*h->content_type != '\0' && clean(h->content_type)));
        CHECK(h->location == NULL ||
            (*h->location != '\0' && clean(h->location)));
        CHECK((h->nextra == 0) == (h->extra == NULL));
        for (i = 0; i < h->nextra; i++) {
            CHECK(h->extra[i].name != NULL && *h->extra[i].name != '\0');
            CHECK(strpbrk(h->extra[i].name, ": \t") == NULL);
            CHECK(clean(h->extra[i].name));
            CHECK(h->extra[i].value != NULL && clean(h->extra[i].value));
        }
    }
    return rc;
}

/* Two parses of the same block gave the same result. */
static void
same(const struct cgi_headers *a, const struct cgi_headers *b)
{
    size_t i;

    CHECK(a->status == b->status && a->nextra == b->nextra);
    CHECK((a->content_type == NULL) == (b->content_type == NULL));
    CHECK(a->content_type == NULL ||
        strcmp(a->content_type, b->content_type) == 0);
    CHECK((a->location == NULL) == (b->location == NULL));
    CHECK(a->location == NULL || strcmp(a->location, b->location) == 0);
    for (i = 0; i < a->nextra; i++) {
        CHECK(strcmp(a->extra[i].name, b->extra[i].name) == 0);
        CHECK(strcmp(a->extra[i].value, b->extra[i].value) == 0);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cgi_headers  whole, part;
    const char         *buf = (const char *)data;
    char               *big = NULL;
    size_t              len = size, consumed, pc, cut;
    int                 rc, prc;

    if (size > 0 && data[0] == 0xff) {
        /* "X-Fill: xxx...\r\n" up to 64 KiB - 64, then the input. */
        size_t fill = CGI_HEADERS_MAX - 64;

        len = fill + size - 1;
        big = malloc(len);
        CHECK(big != NULL);
        memset(big, 'x', fill);
        memcpy(big, "X-Fill: ", 8);
        memcpy(big + fill - 2, "\r\n", 2);
        memcpy(big + fill, data + 1, size - 1);
        buf = big;
    }

    rc = parse(buf, len, &consumed, &whole);

    /* The exec handler parses again as output arrives: every prefix must
     * be "more" until the one that completes the block, and then agree. */
    for (cut = 0; cut < len; cut += 1 + cut / 2) {
        prc = parse(buf, cut, &pc, &part);
        if (rc == 1 && cut >= consumed) {
            CHECK(prc == 1 && pc == consumed);
            same(&whole, &part);
        } else if (rc == 1) {
            CHECK(prc == 0);
        } else if (rc == 0) {
            CHECK(prc == 0);
        } else {
            CHECK(prc == 0 || prc == -1);
        }
        if (prc == 1)
            cgi_headers_free(&part);
    }
    if (rc == 1) {
        cgi_headers_free(&whole);
        CHECK(whole.extra == NULL && whole.nextra == 0 &&
            whole.content_type == NULL && whole.location == NULL);
    }
    free(big);
    return 0;
}
