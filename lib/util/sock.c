/* Sockets: TCP (IPv4/IPv6) and UNIX stream listeners and clients, peer addresses as
 * text, and descriptor passing.  Addresses come from config (literals only for
 * listeners); nothing read from a peer is trusted beyond the kernel's own checks. */
#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fd.h"
#include "str.h"

static void sock_err(struct str *err, const char *what, const char *where)
{
    if (err != NULL) {
        str_clear(err);
        str_printf(err, "%s %s: %s", what, where, strerror(errno));
    }
}

/* Parses a literal address ("1.2.3.4", "::1", "[::1]"; NULL, "" or "*": "::"). */
static int sock_parse(const char *host, unsigned port, struct sockaddr_storage *ss,
                      socklen_t *len)
{
    char buf[INET6_ADDRSTRLEN + 2];
    size_t n;

    memset(ss, 0, sizeof(*ss));
    if (host == NULL || *host == '\0' || strcmp(host, "*") == 0)
        host = "::";
    n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        if (n - 2 >= sizeof(buf))
            return -1;
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        host = buf;
    }
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((unsigned short)port);
        *len = sizeof(*s6);
        return 0;
    }
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((unsigned short)port);
        *len = sizeof(*s4);
        return 0;
    }
    return -1;
}

int sock_listen_inet(const char *host, unsigned port, int backlog, struct str *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char where[INET6_ADDRSTRLEN + 16];
    int fd, on = 1;

    snprintf(where, sizeof(where), "%s:%u", host ? host : "*", port);
    if (port > 65535 || sock_parse(host, port, &ss, &len) < 0) {
        errno = EINVAL;
        sock_err(err, "bad listen address", where);
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        sock_err(err, "socket", where);
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0
        || (ss.ss_family == AF_INET6
            && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0)) {
        sock_err(err, "setsockopt", where);
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
        sock_err(err, "bind", where);
        close(fd);
        return -1;
    }
    if (listen(fd, backlog) < 0) {
        sock_err(err, "listen", where);
        close(fd);
        return -1;
    }
    return fd;
}

static int sock_unix_addr(const char *path, struct sockaddr_un *sun)
{
    size_t n = strlen(path);

    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (n == 0 || n >= sizeof(sun->sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sun->sun_path, path, n + 1);
    return 0;
}

int sock_listen_unix(const char *path, mode_t mode, int backlog, struct str *err)
{
    struct sockaddr_un sun;
    struct stat sb;
    mode_t old_mask;
    int fd, rc, saved;

    if (sock_unix_addr(path, &sun) < 0) {
        sock_err(err, "bad socket path", path);
        return -1;
    }
    if (lstat(path, &sb) == 0) {
        if (!S_ISSOCK(sb.st_mode)) {
            errno = EEXIST;
            sock_err(err, "not a socket", path);
            return -1;
        }
        if (unlink(path) < 0) {
            sock_err(err, "unlink", path);
            return -1;
        }
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        sock_err(err, "socket", path);
        return -1;
    }
    /* The mode comes from the umask at bind time, not from a chmod(2) by name after
     * it: the directory may be writable by a less privileged user, who could swap
     * the new socket for a symbolic link before the chmod and have us (root) change
     * the mode of any file. */
    old_mask = umask(~mode & 0777);
    rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    saved = errno;
    umask(old_mask);
    errno = saved;
    if (rc < 0) {
        sock_err(err, "bind", path);
        close(fd);
        return -1;
    }
    if (listen(fd, backlog) < 0) {
        sock_err(err, "listen", path);
        close(fd);
        return -1;
    }
    return fd;
}

int sock_connect_unix(const char *path, int timeout_ms)
{
    struct sockaddr_un sun;
    struct timeval tv = { 0, 0 };
    int fd, rc;

    if (sock_unix_addr(path, &sun) < 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* Linux bounds a UNIX connect that waits for backlog room by SO_SNDTIMEO. */
    if (timeout_ms > 0) {
        tv.tv_sec = timeout_ms / 1000;
        tv.tv_usec = (timeout_ms % 1000) * 1000;
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    do
        rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        int e = errno == EAGAIN ? ETIMEDOUT : errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (timeout_ms > 0) {
        tv.tv_sec = tv.tv_usec = 0;
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    return fd;
}

/* Non-blocking connect bounded by timeout_ms; returns fd left blocking, or -1. */
static int sock_connect_addr(const struct sockaddr *sa, socklen_t len, int timeout_ms)
{
    int fd, rc, soerr = 0;
    socklen_t slen = sizeof(soerr);

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    rc = connect(fd, sa, len);
    if (rc < 0 && errno != EINPROGRESS && errno != EINTR)
        goto fail;
    if (rc < 0) {
        struct pollfd pfd = { .fd = fd, .events = POLLOUT, .revents = 0 };
        long long deadline = clock_deadline(timeout_ms);
        for (;;) {
            rc = poll(&pfd, 1, clock_left_ms(deadline));
            if (rc > 0)
                break;
            if (rc == 0) {
                errno = ETIMEDOUT;
                goto fail;
            }
            if (errno != EINTR)
                goto fail;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0)
            goto fail;
        if (soerr != 0) {
            errno = soerr;
            goto fail;
        }
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
        goto fail;
    return fd;
fail:
    {
        int e = errno;
        close(fd);
        errno = e;
    }
    return -1;
}

int sock_connect_inet(const char *host, unsigned port, int timeout_ms)
{
    struct addrinfo hints, *res, *ai;
    char portbuf[16];
    int fd = -1, e = EHOSTUNREACH, rc;
    char buf[INET6_ADDRSTRLEN + 2];
    size_t n;

    if (host == NULL || port > 65535) {
        errno = EINVAL;
        return -1;
    }
    n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(buf)) {
        memcpy(buf, host + 1, n - 2);
        buf[n - 2] = '\0';
        host = buf;
    }
    snprintf(portbuf, sizeof(portbuf), "%u", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, portbuf, &hints, &res);
    if (rc != 0) {
        errno = rc == EAI_SYSTEM ? errno : EHOSTUNREACH;
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = sock_connect_addr(ai->ai_addr, ai->ai_addrlen, timeout_ms);
        if (fd >= 0)
            break;
        e = errno;
    }
    freeaddrinfo(res);
    if (fd < 0)
        errno = e;
    return fd;
}

static int sock_text(const struct sockaddr_storage *ss, char *addr, size_t addrlen,
                     unsigned *port)
{
    char buf[INET6_ADDRSTRLEN];
    const char *text = NULL;
    unsigned p = 0;

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        text = inet_ntop(AF_INET, &s4->sin_addr, buf, sizeof(buf));
        p = ntohs(s4->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            text = inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], buf, sizeof(buf));
        else
            text = inet_ntop(AF_INET6, &s6->sin6_addr, buf, sizeof(buf));
        p = ntohs(s6->sin6_port);
    } else if (ss->ss_family == AF_UNIX) {
        text = "unix";
    } else {
        errno = EAFNOSUPPORT;
        return -1;
    }
    if (text == NULL)
        return -1;
    if (addr != NULL) {
        if (strlen(text) >= addrlen) {
            errno = ENOSPC;
            return -1;
        }
        strcpy(addr, text);
    }
    if (port != NULL)
        *port = p;
    return 0;
}

int sock_peer(int fd, char *addr, size_t addrlen, unsigned *port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    memset(&ss, 0, sizeof(ss));
    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    return sock_text(&ss, addr, addrlen, port);
}

