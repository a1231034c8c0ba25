/* SPDX-License-Identifier: MIT */
/*
 * utf8.h - make bytes from a client valid UTF-8 before they reach a JSON
 * document or a log meant for machines.
 */
#ifndef UTF8_H
#define UTF8_H

#include <stddef.h>

#include "util.h"

/*
 * Append the len bytes at s to out, each ill-formed sequence (a stray
 * continuation byte, a truncated sequence, an overlong form, a surrogate,
 * a code point past U+10FFFF) replaced by U+FFFD, one replacement per
 * maximal ill-formed subpart as Unicode recommends.  NUL bytes are kept.
 * Return 0, or -1 if memory ran out (out then holds a prefix).
 */
int     utf8_sanitize(struct buf *out, const char *s, size_t len);

/* Return 1 if the len bytes at s are well-formed UTF-8, else 0. */
int     utf8_valid(const char *s, size_t len);

#endif /* UTF8_H */
