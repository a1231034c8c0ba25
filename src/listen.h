/* SPDX-License-Identifier: MIT */
/*
 * listen.h - the listening socket: our own (unix or TCP), or one inherited
 * from systemd (LISTEN_FDS) or from spawn-fcgi (fd 0).
 */
#ifndef LISTEN_H
#define LISTEN_H

#include <sys/types.h>

/*
 * Open a listening socket for spec: "unix:/path" (created with mode, a stale
 * socket file replaced, a live one refused) or "tcp:HOST:PORT".  Return the
 * socket, or -1 with *cause set (caller frees).  For a unix socket,
 * *unix_path is set to the path to remove at exit (caller frees).
 */
int     listen_open(const char *spec, mode_t mode, int backlog,
            char **unix_path, char **cause);

/*
 * Check, without keeping anything, that listen_open() could take spec now,
 * as the user this process is: a TCP address is bound (SO_REUSEADDR) and
 * released; for a unix path, its directory must exist and be writable, and
 * nothing but a stale socket be at the path.  Return 0 if it could, -1
 * (*cause says why not) if it could not, 1 (*cause says why) if the
 * answer depends on privileges this process lacks and the server may have
 * (a port below 1024, a directory only root can write, a socket file it
 * may not connect to).  The caller frees *cause.
 */
int     listen_probe(const char *spec, char **cause);

/*
 * Return a listening socket passed by systemd (LISTEN_PID is us and
 * LISTEN_FDS >= 1: fd 3) or by spawn-fcgi (fd 0 is a listening socket), or
 * -1 if there is none.
 */
int     listen_inherited(void);

#endif /* LISTEN_H */
