/* SPDX-License-Identifier: MIT */
/*
 * token.h - the server's side of the cancel token: creation, reference
 * counting and cancellation.  Handlers see only the fc_token_* calls of
 * fcgi_cancel.h.
 */
#ifndef TOKEN_H
#define TOKEN_H

#include <stdint.h>

#include "fcgi_cancel.h"

/*
 * Return a new token with one reference, or NULL on allocation failure.  A
 * child of parent (which may be NULL) is cancelled with the parent's reason
 * when the parent is, and at once if the parent already is.
 */
fc_token    *token_new(fc_token *parent);

/* Take one more reference. */
void         token_ref(fc_token *tok);

/* Drop a reference; the last one frees the token (pending callbacks unrun). */
void         token_unref(fc_token *tok);

/*
 * Cancel tok and its children with reason, run its callbacks on this thread,
 * wake its waiters and make its descriptor readable.  Return 1 if this call
 * cancelled the token, 0 if it was already cancelled (nothing changes).
 */
int          token_cancel(fc_token *tok, enum fc_reason reason);

/* Return CLOCK_MONOTONIC nanoseconds of the cancel, 0 if not cancelled. */
uint64_t     token_cancel_ns(fc_token *tok);

#endif /* TOKEN_H */
