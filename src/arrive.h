/* SPDX-License-Identifier: MIT */
/*
 * arrive.h - the pool's arriving connections (those whose request has
 * begun and is not whole yet): their read deadlines and the timer, and
 * the bounds max_connections and max_arriving_bytes that shed the oldest
 * of them.  Internal to the pool (pool.c, with pool_int.h): not for
 * handlers.  See arrive.c.
 */
#ifndef ARRIVE_H
#define ARRIVE_H

struct conn;
struct pool;

/* Put c, owned by this worker, on the deadline list (mtx held). */
void    arrive_add(struct pool *p, struct conn *c);

/* Forget c's read deadline (c owned by this worker). */
void    arrive_clear(struct pool *p, struct conn *c);

/*
 * The timer fired: shut down every waiting connection past its read
 * deadline (the worker that takes its event reads EOF and closes it).
 */
void    arrive_expire(struct pool *p);

/*
 * Log what the bounds did since the previous line, if anything, and if
 * that line is a second old or more.
 */
void    arrive_log(struct pool *p);

/*
 * Count a new connection in, within max_connections (dropping the oldest
 * arriving one if need be).  Return 1 if it may stay, 0 if it must be
 * closed at once (counted and logged).
 */
int     arrive_admit(struct pool *p);

/* Count a connection that arrive_admit() let in out again. */
void    arrive_leave(struct pool *p);

/*
 * Charge the growth of c's buffers (c is this worker's, before a read) to
 * the arriving bytes; past max_arriving_bytes, drop the oldest arriving
 * connections that hold some (c as well, if it is among them).
 */
void    arrive_charge(struct pool *p, struct conn *c);

/* Uncharge what c holds from the arriving bytes. */
void    arrive_uncharge(struct pool *p, struct conn *c);

#endif /* ARRIVE_H */
