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
 * Return a listening socket passed by systemd (LISTEN_PID is us and
 * LISTEN_FDS >= 1: fd 3) or by spawn-fcgi (fd 0 is a listening socket), or
 * -1 if there is none.
 */
int     listen_inherited(void);

#endif /* LISTEN_H */
