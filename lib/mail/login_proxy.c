/* The TLS proxy of pop3d -l and imapd -l: when TLS ended in the pre-auth process, the
 * session got one end of a socket pair, and this loop relays between it and the
 * client's TLS stream until either side closes or nothing moves for twice the session
 * timeout.  Bytes are only copied, never interpreted. */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "login.h"
#include "server.h"
#include "stream.h"

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pfd = { .fd = fd, .events = POLLOUT, .revents = 0 };
                (void)poll(&pfd, 1, 1000);
                continue;
            }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

void login_proxy(struct stream *client, int pair, int timeout_ms)
{
    char buf[16384];
    int idle_ms = timeout_ms > 0 && timeout_ms < 0x3fffffff ? 2 * timeout_ms : -1;

    while (!server_stop) {
        struct pollfd pfd[2];
        int n;

        if (stream_pending(client) == 0) {
            pfd[0].fd = stream_fd(client);
            pfd[0].events = POLLIN;
            pfd[0].revents = 0;
            pfd[1].fd = pair;
            pfd[1].events = POLLIN;
            pfd[1].revents = 0;
            n = poll(pfd, 2, idle_ms);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            if (n == 0)
                break;
        } else {
            pfd[0].revents = POLLIN;
            pfd[1].revents = 0;
        }
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t got = stream_read(client, buf, sizeof(buf));
            if (got <= 0 || write_all(pair, buf, (size_t)got) < 0)
                break;
        }
        if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t got = read(pair, buf, sizeof(buf));
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (got <= 0)
                break;
            if (stream_write(client, buf, (size_t)got) < 0 || stream_flush(client) < 0)
                break;
        }
    }
    /* Whatever the session wrote last still goes out. */
    shutdown(pair, SHUT_WR);
    for (;;) {
        struct pollfd pfd = { .fd = pair, .events = POLLIN, .revents = 0 };
        ssize_t got;
        if (poll(&pfd, 1, 1000) <= 0)
            break;
        got = read(pair, buf, sizeof(buf));
        if (got <= 0 || stream_write(client, buf, (size_t)got) < 0)
            break;
    }
    stream_flush(client);
    close(pair);
}
