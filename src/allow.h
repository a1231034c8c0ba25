/* SPDX-License-Identifier: MIT */
/*
 * allow.h - the allowed_clients list: which TCP peers may connect.  The
 * pool asks allow_check() for every accepted connection; peers on a Unix
 * socket are always allowed (the socket's mode guards it).
 */
#ifndef ALLOW_H
#define ALLOW_H

#include <sys/socket.h>

struct allow;

/*
 * Return the list of the IP addresses in list (IPv4 or IPv6 text,
 * NULL-terminated; NULL or empty: every client is allowed), or NULL with
 * *cause set (caller frees) if one is not an IP address or on allocation
 * failure.  Free it with allow_free().
 */
struct allow    *allow_new(char **list, char **cause);

/* Free the list; NULL is a no-op. */
void             allow_free(struct allow *a);

/*
 * Return 1 if the peer at sa may connect (any peer that is not IPv4 or
 * IPv6 may), 0 if not: refusals are logged, once a second at most.
 */
int              allow_check(const struct allow *a,
                     const struct sockaddr_storage *sa);

#endif /* ALLOW_H */
