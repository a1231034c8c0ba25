/* SPDX-License-Identifier: MIT */
/*
 * oslimits.h - the operating system's limits on descriptors, threads and
 * memory mappings, checked against --workers at start-up.
 */
#ifndef OSLIMITS_H
#define OSLIMITS_H

/*
 * Raise the soft descriptor limit to the hard one, then log a warning for
 * each limit that stops the server from running `workers` requests at
 * once, naming it and the value to raise it to; size the kernel's futex
 * hash for `workers` threads.  Return how many warned.
 */
int     oslimits_check(long workers);

#endif /* OSLIMITS_H */
