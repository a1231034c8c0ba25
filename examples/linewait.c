/* SPDX-License-Identifier: MIT */
/*
 * linewait.c - an example module: an I/O-bound job.  It waits for a line
 * on a FIFO (a named pipe) and answers {"line": "..."}:
 *
 *   curl http://localhost/linewait &        # waits...
 *   echo hello > /run/linewait.fifo         # ...and gets {"line":"hello"}
 *
 * It sleeps in poll() on two descriptors at once: the FIFO, and
 * fc_token_fd(), which becomes readable when the request is cancelled.
 * This is the fourth way of watching the token, for a job that already
 * waits in poll() on descriptors of its own (a socket to a database, a
 * child's stdout): when the client leaves, poll() returns at once and the
 * job returns FC_CANCELLED.  A route's "deadline_ms" bounds the wait the
 * same way, through the same token.
 *
 *   { "path": "/linewait", "handler": "module",
 *     "module": "/usr/local/lib/fcgi-cancel/linewait.so",
 *     "symbol": "linewait_handler",
 *     "options": { "fifo": "/run/linewait.fifo" }, "deadline_ms": 60000 }
 *
 * The FIFO is created (mode 0600) at the first request if it does not
 * exist.  Each waiting request opens it for itself: a line wakes one of
 * them, and what a writer sends after the first newline is dropped.  A
 * writer that closes without a newline ends the line too.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L   /* strdup(), mkfifo(), O_CLOEXEC */
#endif

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcgi_cancel.h>
#include <json-c/json.h>

FC_MODULE_DECLARE();

#define LINE_MAX_BYTES  4096        /* a longer line is cut */

FC_API int linewait_handler(fc_request *, fc_response *, fc_token *, void *);

/* Read "fifo", an absolute path; the handler's data is a copy of it. */
int
fc_module_init(void *options, void **data, char **error)
{
    json_object *v;
    const char  *path;
    struct stat  st;

    if (!json_object_object_get_ex(options, "fifo", &v) ||
        !json_object_is_type(v, json_type_string) ||
        (path = json_object_get_string(v))[0] != '/') {
        *error = strdup("options.fifo must be an absolute path");
        return -1;
    }
    if (stat(path, &st) == 0 && !S_ISFIFO(st.st_mode)) {
        *error = strdup("options.fifo exists and is not a FIFO");
        return -1;
    }
    if ((*data = strdup(path)) == NULL) {
        *error = strdup("out of memory");
        return -1;
    }
    return 0;
}

void
fc_module_fini(void *data)
{
    free(data);
}

/* Open the FIFO for reading without waiting for a writer; -1 on error. */
static int
fifo_open(const char *path)
{
    if (mkfifo(path, 0600) != 0 && errno != EEXIST)
        return -1;
    return open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
}

int
linewait_handler(fc_request *req, fc_response *resp, fc_token *tok,
    void *data)
{
    const char    *path = data;
    struct pollfd  pfd[2];
    json_object   *res;
    char           line[LINE_MAX_BYTES], *nl = NULL;
    size_t         len = 0;
    ssize_t        r;
    int            fd = -1, rc;

    if ((pfd[1].fd = fc_token_fd(tok)) < 0 || (fd = fifo_open(path)) < 0)
        goto fail;
    pfd[0].events = pfd[1].events = POLLIN;
    while (nl == NULL && len < sizeof line) {
        pfd[0].fd = fd;
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            goto fail;
        }
        if (pfd[1].revents != 0) {          /* cancelled: stop at once */
            close(fd);
            return FC_CANCELLED;
        }
        if (pfd[0].revents == 0)
            continue;
        if ((r = read(fd, line + len, sizeof line - len)) > 0) {
            nl = memchr(line + len, '\n', (size_t)r);
            len += (size_t)r;
        } else if (r == 0 && len > 0) {
            break;                          /* the writer closed: the end */
        } else if (r == 0) {
            /* A writer came and went without a byte: the FIFO would stay
             * at end of file (POLLHUP at every poll()), so reopen it to
             * wait for the next writer. */
            close(fd);
            if ((fd = fifo_open(path)) < 0)
                goto fail;
        } else if (errno != EAGAIN && errno != EINTR) {
            goto fail;
        }
    }
    close(fd);

    res = json_object_new_object();
    json_object_object_add(res, "line", json_object_new_string_len(line,
        (int)(nl != NULL ? (size_t)(nl - line) : len)));
    rc = fc_response_json(resp, 200, res);
    json_object_put(res);
    return rc == 0 ? FC_OK : FC_ERROR;

fail:
    fc_request_log(req, "linewait: %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return FC_ERROR;                        /* the server answers 500 */
}
