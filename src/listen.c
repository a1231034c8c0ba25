/* SPDX-License-Identifier: MIT */
/*
 * listen.c - where the server takes its FastCGI connections from.  Address
 * errors are reported in words an operator can act on: a missing directory,
 * a path held by a running server, a malformed address.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "listen.h"
#include "util.h"

static int __attribute__((format(printf, 2, 3)))
fail(char **cause, const char *fmt, ...)
{
    char    msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    *cause = strdup(msg);
    return -1;
}

/* Fill *sun with path; 0, or -1 (*cause set) if it cannot be one. */
static int
unix_addr(const char *path, struct sockaddr_un *sun, char **cause)
{
    if (*path != '/')
        return fail(cause, "unix:%s: the path must be absolute", path);
    if (strlen(path) >= sizeof sun->sun_path)
        return fail(cause, "unix:%s: path too long", path);
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, strlen(path) + 1);
    return 0;
}

/*
 * What is at the socket's path: return 0 if nothing, 1 if a stale socket
 * file (no server answers on it), 2 if a socket this process may not
 * connect to (EACCES: stale or not, it cannot tell), -1 (*cause set) if
 * something that must not be replaced: another kind of file, or a socket
 * a server answers on.
 */
static int
unix_existing(const struct sockaddr_un *sun, char **cause)
{
    struct stat st;
    int         probe, rc, err;

    if (lstat(sun->sun_path, &st) != 0)
        return 0;
    if (!S_ISSOCK(st.st_mode))
        return fail(cause, "unix:%s: exists and is not a socket",
            sun->sun_path);
    if ((probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return 1;
    rc = connect(probe, (const struct sockaddr *)sun, sizeof *sun);
    err = errno;
    close(probe);
    if (rc == 0)
        return fail(cause, "unix:%s: in use by a running server",
            sun->sun_path);
    return err == EACCES ? 2 : 1;
}

static int
listen_unix(const char *path, mode_t mode, int backlog, char **cause)
{
    struct sockaddr_un  sun;
    mode_t              old;
    int                 fd, rc;

    if (unix_addr(path, &sun, cause) != 0)
        return -1;
    if ((rc = unix_existing(&sun, cause)) < 0)
        return -1;
    if (rc > 0)
        unlink(path);
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        return fail(cause, "socket: %s", strerror(errno));
    old = umask((mode_t)~mode & 0777);
    rc = bind(fd, (struct sockaddr *)&sun, sizeof sun);
    umask(old);
    if (rc != 0) {
        int err = errno;

        close(fd);
        if (err == ENOENT || err == ENOTDIR)
            return fail(cause, "unix:%s: the directory does not exist",
                path);
        return fail(cause, "unix:%s: %s", path, strerror(err));
    }
    chmod(path, mode);
    if (listen(fd, backlog) != 0) {
        int err = errno;

        close(fd);
        unlink(path);
        return fail(cause, "unix:%s: listen: %s", path, strerror(err));
    }
    return fd;
}

/*
 * A TCP socket bound to addr (HOST:PORT) with SO_REUSEADDR, not listening
 * yet.  Return it, or -1 with *cause set; *err is the errno of a failed
 * bind (0 for any other failure).
 */
static int
tcp_bind(const char *addr, int *err, char **cause)
{
    struct addrinfo hints, *res;
    char            host[256], *port;
    const char     *h;
    int             fd, rc, one = 1;
    long            pnum;

    *err = 0;
    if (strlen(addr) >= sizeof host)
        return fail(cause, "tcp:%s: address too long", addr);
    memcpy(host, addr, strlen(addr) + 1);
    if ((port = strrchr(host, ':')) == NULL)
        return fail(cause, "tcp:%s: expected HOST:PORT", addr);
    *port++ = '\0';
    if (parse_long(port, 0, 65535, &pnum) != 0)
        return fail(cause, "tcp:%s: bad port \"%s\"", addr, port);
    h = host;
    if (*h == '[' && h[strlen(h) - 1] == ']') {
        host[strlen(host) - 1] = '\0';
        h++;
    }
    if (*h == '\0')
        return fail(cause, "tcp:%s: expected HOST:PORT", addr);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if ((rc = getaddrinfo(h, port, &hints, &res)) != 0)
        return fail(cause, "tcp:%s: %s", addr, gai_strerror(rc));
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return fail(cause, "socket: %s", strerror(errno));
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
        *err = errno;
        close(fd);
        freeaddrinfo(res);
        return fail(cause, "tcp:%s: %s", addr, strerror(*err));
    }
    freeaddrinfo(res);
    return fd;
}

static int
listen_tcp(const char *addr, int backlog, char **cause)
{
    int fd, err;

    if ((fd = tcp_bind(addr, &err, cause)) < 0)
        return -1;
    if (listen(fd, backlog) != 0) {
        err = errno;
        close(fd);
        return fail(cause, "tcp:%s: %s", addr, strerror(err));
    }
    return fd;
}

int
listen_open(const char *spec, mode_t mode, int backlog, char **unix_path,
    char **cause)
{
    int fd;

    *unix_path = NULL;
    if (strncmp(spec, "unix:", 5) == 0) {
        if ((fd = listen_unix(spec + 5, mode, backlog, cause)) >= 0 &&
            (*unix_path = strdup(spec + 5)) == NULL) {
            close(fd);
            unlink(spec + 5);
            *cause = strdup("out of memory");
            return -1;
        }
        return fd;
    }
    if (strncmp(spec, "tcp:", 4) == 0)
        return listen_tcp(spec + 4, backlog, cause);
    return fail(cause, "%s: the address must be unix:/PATH or tcp:HOST:PORT",
        spec);
}

/* The unix socket path's directory: exists, and can take the socket. */
static int
probe_unix(const char *path, char **cause)
{
    struct sockaddr_un  sun;
    struct stat         st;
    char                dir[sizeof sun.sun_path];
    char               *slash;
    int                 rc;

    if (unix_addr(path, &sun, cause) != 0 ||
        (rc = unix_existing(&sun, cause)) < 0)
        return -1;
    if (rc == 2 && geteuid() != 0) {
        fail(cause, "cannot tell whether unix:%s can be bound: uid %ld, "
            "which runs -t, may not connect to the socket there to see "
            "whether a server answers", path, (long)geteuid());
        return 1;
    }
    memcpy(dir, path, strlen(path) + 1);
    slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return fail(cause, "unix:%s: the directory does not exist", path);
    if (access(dir, W_OK | X_OK) == 0)
        return 0;
    if (errno == EACCES && geteuid() != 0) {
        fail(cause, "cannot tell whether unix:%s can be bound: %s is not "
            "writable by uid %ld, which runs -t (the server can bind there "
            "if started as root or as its owner)", path, dir,
            (long)geteuid());
        return 1;
    }
    return fail(cause, "unix:%s: %s: %s", path, dir, strerror(errno));
}

/* Bind the TCP address and let it go at once. */
static int
probe_tcp(const char *addr, char **cause)
{
    int fd, err;

    if ((fd = tcp_bind(addr, &err, cause)) >= 0) {
        close(fd);
        return 0;
    }
    if (err == EACCES && geteuid() != 0) {
        free(*cause);
        fail(cause, "cannot tell whether tcp:%s can be bound: the port "
            "needs root (or CAP_NET_BIND_SERVICE), which -t run as uid %ld "
            "lacks", addr, (long)geteuid());
        return 1;
    }
    return -1;
}

int
listen_probe(const char *spec, char **cause)
{
    if (strncmp(spec, "unix:", 5) == 0)
        return probe_unix(spec + 5, cause);
    if (strncmp(spec, "tcp:", 4) == 0)
        return probe_tcp(spec + 4, cause);
    return fail(cause, "%s: the address must be unix:/PATH or tcp:HOST:PORT",
        spec);
}

/* Is fd a listening stream socket? */
static int
is_listener(int fd)
{
    int       v = 0;
    socklen_t len = sizeof v;

    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) == 0 && v;
}

int
listen_inherited(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    long        p, n;

    if (pid != NULL && fds != NULL && parse_long(pid, 1, 1L << 30, &p) == 0 &&
        p == (long)getpid() && parse_long(fds, 1, 1024, &n) == 0) {
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        if (is_listener(3)) {
            fcntl(3, F_SETFD, FD_CLOEXEC);
            return 3;
        }
    }
    if (is_listener(0))
        return 0;
    return -1;
}
