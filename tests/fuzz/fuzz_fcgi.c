/* SPDX-License-Identifier: MIT */
/*
 * fuzz_fcgi.c - libFuzzer target for the FastCGI input path as pool.c
 * drives it: the bytes a client sends on its connection, read by libfcgi
 * (FCGX_Accept_r() on a descriptor handed over before the call, params,
 * then the body with FCGX_GetStr()), then request_new() on the params, a
 * response written and FCGX_Finish_r(), up to four requests on one kept
 * connection.  This is the one parser of untrusted bytes that is not ours:
 * libfcgi is Debian's shared library, not instrumented, so the fuzzer
 * explores it blindly from the seeds; ASan still sees its heap, the stack
 * protector its stack, and LeakSanitizer what it leaks.
 *
 * Input: the bytes the client sends, then end of file.
 *
 * On libfcgi 2.4.2-2+deb12u1 the regression inputs corpus/fuzz_fcgi/
 * regress-* fail: regress-get-values-4-names (ProcessManagementRecord
 * writes past its 64-byte stack buffer: "stack smashing detected"),
 * regress-params-length-overflow (ReadParams: the size of a 1 GiB name
 * plus a 1 GiB value overflows an int, malloc() fails, Malloc() asserts),
 * regress-unknown-type-leak (48 bytes leaked per management record of an
 * unknown type).  tests/fuzz/run does not run this target unless named.
 */
#include <fcgiapp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "request.h"

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "fuzz_fcgi: %s:%d: check failed: %s\n", \
        __FILE__, __LINE__, #cond); abort(); } } while (0)

#define MAX_REQUESTS    4

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    /* libfcgi waits this long for the peer at close: here it has left. */
    setenv("LIBFCGI_OS_CLOSE_POLL_TIMEOUT", "0", 1);
    CHECK(FCGX_Init() == 0);
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

/* Serve one request on rq, as worker_request() does, on a connection
 * that carried sent bytes; 0 if served. */
static int
serve(FCGX_Request *rq, size_t sent)
{
    fc_request *req;
    const char *v;
    char        chunk[4096];
    int         n;
    size_t      body = 0;

    if (FCGX_Accept_r(rq) < 0)
        return -1;
    /* Params: what request.c and pool.c read. */
    CHECK((req = request_new(1, rq->envp)) != NULL);
    CHECK(fc_request_path(req)[0] == '/');
    v = fc_request_query(req, "steps");
    (void)v;
    v = FCGX_GetParam("CONTENT_LENGTH", rq->envp);
    (void)v;
    /* The body, to its end or an error; never more than was sent. */
    while ((n = FCGX_GetStr(chunk, sizeof chunk, rq->in)) > 0)
        body += (size_t)n;
    CHECK(body <= sent);
    (void)FCGX_GetError(rq->in);
    request_free(req);
    FCGX_PutStr("Status: 200 OK\r\n\r\nok", 21, rq->out);
    FCGX_Finish_r(rq);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FCGX_Request rq;
    ssize_t      w;
    size_t       off = 0;
    int          sv[2], i;

    CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    /* The whole input fits the socket buffer (max_len is 64 KiB). */
    while (off < size) {
        w = write(sv[1], data + off, size - off);
        CHECK(w > 0);
        off += (size_t)w;
    }
    shutdown(sv[1], SHUT_WR);

    CHECK(FCGX_InitRequest(&rq, -1, 0) == 0);
    for (i = 0; i < MAX_REQUESTS; i++) {
        /* pool.c's conn_io(CONN_ATTACH): read this descriptor. */
        rq.ipcFd = sv[0];
        rq.keepConnection = 1;
        if (serve(&rq, size) != 0 || rq.ipcFd < 0)
            break;              /* libfcgi closed it */
    }
    if (rq.ipcFd >= 0)
        close(rq.ipcFd);        /* pool.c's conn_io(CONN_DETACH) + close */
    rq.ipcFd = -1;
    FCGX_Free(&rq, 0);
    close(sv[1]);
    return 0;
}
