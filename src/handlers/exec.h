/* SPDX-License-Identifier: MIT */
/*
 * exec.h - the exec handler: run an external program per request, the CGI
 * way, and kill it as a process group when the request is cancelled.
 *
 * The program is started with posix_spawn(), never through a shell, with
 * the argv of the route and nothing from the request.  It gets the CGI/1.1
 * meta-variables built from the FastCGI params (an allow-list, plus every
 * HTTP_* param but HTTP_PROXY), PATH=/usr/local/bin:/usr/bin:/bin and the
 * route's "env"; nothing else of the server's environment.  The request
 * body goes to its stdin, its stdout is the response (CGI headers first with
 * "output": "cgi", the body alone with "output": "raw"), and each line of
 * its stderr goes to the server log, tagged with the request.
 *
 * The program leads a process group of its own.  When the request's token
 * is cancelled (client gone, abort, failed write, deadline, shutdown) the
 * group gets SIGTERM at once, from the cancelling thread, and SIGKILL after
 * kill_grace_ms if the program has not exited by then.  When the program
 * exits, whether cancelled or not, whatever is left of its group gets
 * SIGKILL: a background process of a CGI program does not outlive its
 * request.  A program that leaves its group (setsid(), setpgid()) escapes
 * this and is not tracked.
 *
 * What the process must provide: SIGPIPE ignored (a child that stops
 * reading its stdin must not kill the server), and SIGCHLD not set to
 * SIG_IGN and no waitpid(-1) anywhere (the handler reaps its own child and
 * relies on the zombie to keep the group id from being reused).
 */
#ifndef HANDLERS_EXEC_H
#define HANDLERS_EXEC_H

#include "fcgi_cancel.h"

/* Limits of a route's options. */
#define EXEC_KILL_GRACE_MAX_MS  600000
#define EXEC_KILL_GRACE_DEF_MS  2000

/*
 * The handler; data is the route's options (its row in the registry,
 * handler_exec, reads "argv", "cwd", "env", "kill_grace_ms", "output" and
 * "content_type", and checks that argv[0] is an executable file and that
 * cwd is a directory).  Return FC_OK
 * when the request was answered (the program's output, or a 502 naming the
 * route when it could not be started, failed before any output, or printed
 * bad CGI headers), FC_CANCELLED when the token was cancelled (the program
 * is killed, nothing more is written), FC_ERROR when nothing could be
 * written (the caller answers 500).
 */
int     exec_handler(fc_request *req, fc_response *resp, fc_token *tok,
            void *data);

#endif /* HANDLERS_EXEC_H */
