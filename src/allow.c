/* SPDX-License-Identifier: MIT */
/*
 * allow.c - the allowed_clients list.  Addresses are kept as IPv6, IPv4
 * ones mapped (::ffff:a.b.c.d), so that a peer is compared the same way
 * whether it came in on an IPv4 or a dual-stack IPv6 socket.  The list is
 * fixed once made: workers read it without a lock.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "allow.h"
#include "log.h"
#include "util.h"

struct allow {
    struct in6_addr *addr;          /* naddr addresses */
    size_t           naddr;         /* 0: any client */
};

/* Store sa's address as IPv6 (IPv4 mapped) in a6; 0, or -1 if not IP. */
static int
allow_in6(const struct sockaddr_storage *sa, struct in6_addr *a6)
{
    if (sa->ss_family == AF_INET6) {
        *a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr;
        return 0;
    }
    if (sa->ss_family == AF_INET) {
        memset(a6, 0, sizeof *a6);
        a6->s6_addr[10] = a6->s6_addr[11] = 0xff;
        memcpy(&a6->s6_addr[12], &((const struct sockaddr_in *)sa)->sin_addr,
            4);
        return 0;
    }
    return -1;
}

/* Parse an IPv4 or IPv6 address into a6 (IPv4 mapped); 0, or -1. */
static int
allow_parse(const char *text, struct in6_addr *a6)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof ss);
    if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
        ss.ss_family = AF_INET;
    else if (inet_pton(AF_INET6, text,
        &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
        ss.ss_family = AF_INET6;
    else
        return -1;
    return allow_in6(&ss, a6);
}

struct allow *
allow_new(char **list, char **cause)
{
    struct allow *a;
    size_t        n;

    for (n = 0; list != NULL && list[n] != NULL; n++)
        ;
    if ((a = calloc(1, sizeof *a)) == NULL ||
        (n > 0 && (a->addr = calloc(n, sizeof *a->addr)) == NULL)) {
        free(a);
        *cause = strdup("allowed_clients: out of memory");
        return NULL;
    }
    for (a->naddr = 0; a->naddr < n; a->naddr++) {
        if (allow_parse(list[a->naddr], &a->addr[a->naddr]) != 0) {
            allow_free(a);
            *cause = strdup("allowed_clients: not IP addresses");
            return NULL;
        }
    }
    return a;
}

void
allow_free(struct allow *a)
{
    if (a == NULL)
        return;
    free(a->addr);
    free(a);
}

int
allow_check(const struct allow *a, const struct sockaddr_storage *sa)
{
    static _Atomic uint64_t last_warn;
    struct in6_addr         a6;
    char                    text[INET6_ADDRSTRLEN];
    uint64_t                now;
    size_t                  i;

    if (a->naddr == 0 || allow_in6(sa, &a6) != 0)
        return 1;
    for (i = 0; i < a->naddr; i++) {
        if (memcmp(&a6, &a->addr[i], sizeof a6) == 0)
            return 1;
    }
    now = now_ns();
    if (now - atomic_load(&last_warn) > 1000000000u) {
        atomic_store(&last_warn, now);
        inet_ntop(AF_INET6, &a6, text, sizeof text);
        log_warnx("pool: connection from %s refused: not in allowed_clients",
            text);
    }
    return 0;
}
