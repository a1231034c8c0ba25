/* SPDX-License-Identifier: MIT */
/*
 * primes.c - an example module: a CPU-bound job.  It counts the primes
 * below n (query ?n=, default 20000000) with a segmented sieve of
 * Eratosthenes and answers {"n": N, "primes": COUNT}.  Between two blocks
 * of 65536 numbers (a few hundred microseconds of work) it looks at its
 * token with fc_token_cancelled(), one atomic load: when the client
 * leaves, it stops within a block and returns FC_CANCELLED.
 *
 * Its route may bound n with the "max_n" option (default and at most
 * 100000000000, which takes minutes):
 *
 *   { "path": "/primes", "handler": "module",
 *     "module": "/usr/local/lib/fcgi-cancel/primes.so",
 *     "symbol": "primes_handler", "options": { "max_n": 2000000000 } }
 *
 * Build it out of the tree with
 *   cc -shared -fPIC $(pkg-config --cflags --libs fcgi-cancel) primes.c \
 *       -o primes.so
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L   /* strdup() */
#endif

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcgi_cancel.h>
#include <json-c/json.h>

/* The ABI this module was built for; the server refuses another one. */
FC_MODULE_DECLARE();

#define PRIMES_DEFAULT_N    20000000ULL
#define PRIMES_MAX_N        100000000000ULL /* bound of "max_n" */
#define PRIMES_BLOCK        32768           /* odd numbers per block */

/* A route's options, made by fc_module_init(), read-only afterwards. */
struct primes_conf {
    unsigned long long  max_n;
};

/* The handler, named by the route's "symbol"; FC_API exports it. */
FC_API int primes_handler(fc_request *, fc_response *, fc_token *, void *);

/* Read the route's options into a struct primes_conf, its handler's data. */
int
fc_module_init(void *options, void **data, char **error)
{
    struct primes_conf *conf;
    json_object        *v;
    int64_t             max_n = (int64_t)PRIMES_MAX_N;

    if (json_object_object_get_ex(options, "max_n", &v)) {
        if (!json_object_is_type(v, json_type_int) ||
            (max_n = json_object_get_int64(v)) < 1 ||
            max_n > (int64_t)PRIMES_MAX_N) {
            *error = strdup("max_n must be an integer from 1 to "
                "100000000000");
            return -1;
        }
    }
    if ((conf = malloc(sizeof *conf)) == NULL) {
        *error = strdup("out of memory");
        return -1;
    }
    conf->max_n = (unsigned long long)max_n;
    *data = conf;
    return 0;
}

/* Free what fc_module_init() made. */
void
fc_module_fini(void *data)
{
    free(data);
}

/*
 * Count the primes below n; return -1 if tok was cancelled first, or -2 if
 * memory ran out.  Odd numbers only: index i stands for 2i + 1.
 */
static long long
count_primes(unsigned long long n, fc_token *tok)
{
    unsigned long long  odds = n / 2, root = 1, lo, hi, j, *next = NULL;
    unsigned int       *base = NULL;
    unsigned char      *small = NULL, *block = NULL;
    size_t              nbase = 0, k;
    long long           count = n > 2;  /* 2, the even prime */

    if (n <= 3)
        return count;
    while ((root + 1) * (root + 1) < n)
        root++;                         /* the largest root * root < n */
    /* The odd primes up to root, by a plain sieve. */
    if ((small = calloc(root / 2 + 1, 1)) == NULL ||
        (base = malloc((root / 2 + 1) * sizeof *base)) == NULL ||
        (next = malloc((root / 2 + 1) * sizeof *next)) == NULL ||
        (block = malloc(PRIMES_BLOCK)) == NULL) {
        count = -2;
        goto out;
    }
    for (j = 1; 2 * j + 1 <= root; j++) {
        unsigned long long p = 2 * j + 1, m;

        if (small[j])
            continue;
        for (m = p * p / 2; m <= root / 2; m += p)
            small[m] = 1;
        base[nbase] = (unsigned int)p;
        next[nbase++] = p * p / 2;      /* the first multiple to cross */
    }
    /* Then block by block: cross out the multiples, count what is left. */
    for (lo = 0; lo < odds; lo = hi) {
        /* The first style of watching the token: poll it in the loop. */
        if (fc_token_cancelled(tok)) {
            count = -1;
            goto out;
        }
        hi = odds - lo < PRIMES_BLOCK ? odds : lo + PRIMES_BLOCK;
        memset(block, 0, (size_t)(hi - lo));
        for (k = 0; k < nbase; k++) {
            for (j = next[k]; j < hi; j += base[k])
                block[j - lo] = 1;
            next[k] = j;
        }
        for (j = lo == 0 ? 1 : lo; j < hi; j++)     /* index 0 is 1 */
            count += !block[j - lo];
    }
out:
    free(small);
    free(base);
    free(next);
    free(block);
    return count;
}

int
primes_handler(fc_request *req, fc_response *resp, fc_token *tok,
    void *data)
{
    const struct primes_conf *conf = data;
    const char               *s = fc_request_query(req, "n");
    unsigned long long        n;
    long long                 count;
    json_object              *res;
    char                     *end, msg[80];
    int                       rc;

    n = PRIMES_DEFAULT_N < conf->max_n ? PRIMES_DEFAULT_N : conf->max_n;
    if (s != NULL) {
        n = strtoull(s, &end, 10);
        if (*s < '0' || *s > '9' || *end != '\0' || n > conf->max_n) {
            snprintf(msg, sizeof msg, "n must be an integer from 0 to %llu",
                conf->max_n);
            return fc_response_error(resp, 400, msg) == 0 ? FC_OK : FC_ERROR;
        }
    }
    fc_request_log(req, "primes below %llu", n);
    if ((count = count_primes(n, tok)) == -1) {
        fc_request_log(req, "primes stopped: %s",
            fc_reason_name(fc_token_reason(tok)));
        return FC_CANCELLED;
    }
    if (count < 0)
        return FC_ERROR;                /* the server answers 500 */

    res = json_object_new_object();
    json_object_object_add(res, "n", json_object_new_int64((int64_t)n));
    json_object_object_add(res, "primes",
        json_object_new_int64((int64_t)count));
    rc = fc_response_json(resp, 200, res);
    json_object_put(res);
    return rc == 0 ? FC_OK : FC_ERROR;
}
