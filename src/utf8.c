/* SPDX-License-Identifier: MIT */
/*
 * utf8.c - well-formed UTF-8 for output that strict parsers read.  A JSON
 * body or a JSON log line that carries a client's bytes must be valid
 * UTF-8 (RFC 8259 section 8.1); percent-decoding gives any byte at all.
 * Ill-formed input becomes U+FFFD, as browsers and Python's
 * errors="replace" do, following the Unicode standard's table of
 * well-formed byte sequences (chapter 3, table 3-7).
 */
#include <stdint.h>

#include "utf8.h"

/*
 * Return the length of the well-formed sequence at s (at most n bytes
 * available), or 0 if it is ill-formed; then *bad is the length of its
 * maximal ill-formed subpart (at least 1).
 */
static size_t
utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
    unsigned char   c = s[0], lo = 0x80, hi = 0xbf;
    size_t          need, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        need = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0;          /* no overlong forms */
        else if (c == 0xed)
            hi = 0x9f;          /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;          /* nothing past U+10FFFF */
    } else {
        *bad = 1;
        return 0;
    }
    for (i = 1; i < need; i++) {
        if (i >= n || s[i] < lo || s[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xbf;
    }
    return need;
}

int
utf8_sanitize(struct buf *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t               i = 0, start = 0, k, bad;

    while (i < len) {
        if ((k = utf8_seq(p + i, len - i, &bad)) > 0) {
            i += k;
            continue;
        }
        if (buf_add(out, s + start, i - start) != 0 ||
            buf_add(out, "\xef\xbf\xbd", 3) != 0)
            return -1;
        i += bad;
        start = i;
    }
    return buf_add(out, s + start, i - start);
}

int
utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t               i = 0, k, bad;

    while (i < len) {
        if ((k = utf8_seq(p + i, len - i, &bad)) == 0)
            return 0;
        i += k;
    }
    return 1;
}
