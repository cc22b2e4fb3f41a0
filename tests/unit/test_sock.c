/* Unit tests for lib/util/sock.c: loopback TCP (v4 and v6), UNIX sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sock.h"
#include "str.h"
#include "unit.h"

/* The local address and port of fd, as sock_peer gives the remote ones. */
static int local_end(int fd, char *addr, size_t addrlen, unsigned *port)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN];
    const void *bin;

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET) {
        bin = &((struct sockaddr_in *)&ss)->sin_addr;
        *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else {
        bin = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    if (addr != NULL) {
        if (inet_ntop(ss.ss_family, bin, host, sizeof(host)) == NULL)
            return -1;
        snprintf(addr, addrlen, "%s", host);
    }
    return 0;
}

static void tcp_round(const char *host, const char *want)
{
    struct str err = STR_INIT;
    char addr[64];
    unsigned port = 0, peerport = 0, cport = 0;
    int lfd = sock_listen_inet(host, 0, 16, &err);
    if (lfd < 0) {
        fprintf(stderr, "  listen %s: %s (skipped)\n", host, err.s);
        str_free(&err);
        return;
    }
    CHECK(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
    CHECK(local_end(lfd, addr, sizeof(addr), &port) == 0);
    CHECK_STR(addr, want);
    CHECK(port > 0);
    int cfd = sock_connect_inet(host, port, 2000);
    CHECK(cfd >= 0);
    int afd = accept(lfd, NULL, NULL);
    CHECK(afd >= 0);
    CHECK(sock_peer(afd, addr, sizeof(addr), &peerport) == 0);
    CHECK_STR(addr, want);
    CHECK(local_end(cfd, NULL, 0, &cport) == 0);
    CHECK(peerport == cport);
    CHECK(sock_peer(cfd, addr, 3, NULL) == -1);       /* buffer too small */
    CHECK(write(cfd, "hi", 2) == 2);
    char buf[4];
    CHECK(read(afd, buf, sizeof(buf)) == 2);
    close(afd);
    close(cfd);
    close(lfd);
    str_free(&err);
}

TEST(tcp_v4)
{
    tcp_round("127.0.0.1", "127.0.0.1");
}

TEST(tcp_v6)
{
    tcp_round("::1", "::1");
    tcp_round("[::1]", "::1");
}

TEST(bad_addresses)
{
    struct str err = STR_INIT;
    CHECK(sock_listen_inet("not-an-address", 0, 1, &err) == -1);
    CHECK(err.len > 0);
    CHECK(sock_listen_inet("127.0.0.1", 70000, 1, &err) == -1);
    CHECK(sock_connect_inet("127.0.0.1", 1, 1000) == -1);
    str_free(&err);
}

TEST(connect_refused_unix)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/nothing", unit_tmpdir());
    CHECK(sock_connect_unix(path, 500) == -1);
    CHECK(errno == ENOENT);
}

TEST(unix_socket)
{
    struct str err = STR_INIT;
    char path[512];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/sock", unit_tmpdir());
    int lfd = sock_listen_unix(path, 0660, 8, &err);
    CHECK(lfd >= 0);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0660);
    close(lfd);
    /* The stale file is replaced. */
    lfd = sock_listen_unix(path, 0600, 8, &err);
    CHECK(lfd >= 0);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    int cfd = sock_connect_unix(path, 1000);
    CHECK(cfd >= 0);
    CHECK(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
    int afd = accept(lfd, NULL, NULL);
    CHECK(afd >= 0);
    char addr[16];
    CHECK(sock_peer(afd, addr, sizeof(addr), NULL) == 0);
    CHECK_STR(addr, "unix");
    close(afd);
    close(cfd);
    close(lfd);
    /* A regular file is not removed. */
    snprintf(path, sizeof(path), "%s/plain", unit_tmpdir());
    int f = open(path, O_CREAT | O_WRONLY, 0600);
    close(f);
    CHECK(sock_listen_unix(path, 0600, 8, &err) == -1);
    CHECK(stat(path, &sb) == 0 && S_ISREG(sb.st_mode));
    str_free(&err);
}

/* Regression: the mode was set by chmod(2) on the path after bind, which follows a
 * symbolic link put there in between.  Now the umask at bind time gives the mode: it
 * is exact whatever the process umask, the umask is restored, and a symbolic link in
 * the socket's place is refused without touching its target. */
TEST(unix_socket_mode_without_chmod)
{
    struct str err = STR_INIT;
    char path[512], target[512], link[512];
    struct stat sb;
    mode_t old = umask(077);

    snprintf(path, sizeof(path), "%s/modesock", unit_tmpdir());
    int lfd = sock_listen_unix(path, 0666, 8, &err);
    CHECK(lfd >= 0);
    CHECK(lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode) && (sb.st_mode & 0777) == 0666);
    CHECK(umask(077) == 077);
    close(lfd);

    snprintf(target, sizeof(target), "%s/precious", unit_tmpdir());
    snprintf(link, sizeof(link), "%s/linksock", unit_tmpdir());
    int f = open(target, O_CREAT | O_WRONLY, 0600);
    close(f);
    CHECK(symlink(target, link) == 0);
    CHECK(sock_listen_unix(link, 0666, 8, &err) == -1);
    CHECK(stat(target, &sb) == 0 && (sb.st_mode & 0777) == 0600);
    umask(old);
    str_free(&err);
}
