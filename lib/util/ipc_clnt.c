/* A reconnecting client of a request/reply service (see ipc_clnt.h).  The replies
 * come from another daemon: they are read with attr_read()'s bounds and checks and
 * handed over uninterpreted. */
#include "ipc_clnt.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>

#include "attr.h"
#include "clock.h"
#include "log.h"
#include "sock.h"
#include "stream.h"
#include "xmalloc.h"

struct ipc_clnt {
    char *path;
    int timeout_ms;
    size_t reply_max;
    struct stream *st;              /* NULL: not connected */
    size_t pending;                 /* requests sent, not answered */
    size_t answered;                /* replies read on this connection */
};

struct ipc_clnt *ipc_clnt_open(const char *path, int timeout_ms, size_t reply_max)
{
    struct ipc_clnt *c = xcalloc(1, sizeof(*c));

    c->path = xstrdup(path);
    c->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
    c->reply_max = reply_max > 0 ? reply_max : ATTR_FRAME_MAX;
    return c;
}

void ipc_clnt_disconnect(struct ipc_clnt *c)
{
    int saved = errno;

    if (c->st != NULL)
        stream_close(c->st);
    c->st = NULL;
    c->pending = 0;
    c->answered = 0;
    errno = saved;
}

void ipc_clnt_close(struct ipc_clnt *c)
{
    if (c == NULL)
        return;
    ipc_clnt_disconnect(c);
    free(c->path);
    free(c);
}

const char *ipc_clnt_path(const struct ipc_clnt *c)
{
    return c->path;
}

struct stream *ipc_clnt_stream(const struct ipc_clnt *c)
{
    return c->st;
}

size_t ipc_clnt_pending(const struct ipc_clnt *c)
{
    return c->pending;
}

int ipc_clnt_connect(struct ipc_clnt *c)
{
    int fd;

    if (c->st != NULL)
        return 0;
    fd = sock_connect_unix(c->path, c->timeout_ms);
    if (fd < 0)
        return -1;
    c->st = stream_fdopen(fd);
    stream_set_timeout(c->st, c->timeout_ms);
    return 0;
}

/* An idle kept connection is usable while the service has neither closed it nor
 * written to it unasked. */
static bool clnt_stale(const struct ipc_clnt *c)
{
    struct pollfd p = { .fd = stream_fd(c->st), .events = POLLIN, .revents = 0 };

    return stream_pending(c->st) > 0 || poll(&p, 1, 0) != 0;
}

/* Writes req, connecting first when needed: 0, or -1 (disconnected, errno).  *kept
 * says whether the connection had carried requests before. */
static int clnt_send_once(struct ipc_clnt *c, const struct attr_list *req, bool *kept)
{
    if (c->st != NULL && c->pending == 0 && clnt_stale(c))
        ipc_clnt_disconnect(c);
    *kept = c->st != NULL && (c->answered > 0 || c->pending > 0);
    if (ipc_clnt_connect(c) < 0)
        return -1;
    stream_set_deadline(c->st, clock_ms() + c->timeout_ms);
    if (attr_write(c->st, req) < 0) {
        ipc_clnt_disconnect(c);
        return -1;
    }
    c->pending++;
    return 0;
}

int ipc_clnt_send(struct ipc_clnt *c, const struct attr_list *req)
{
    bool kept, earlier = c->pending > 0;

    if (clnt_send_once(c, req, &kept) == 0)
        return 0;
    if (!kept || earlier || errno == ETIMEDOUT)
        return -1;
    return clnt_send_once(c, req, &kept);
}

int ipc_clnt_recv(struct ipc_clnt *c, struct attr_list *reply)
{
    int rc;

    attr_clear(reply);
    if (c->st == NULL || c->pending == 0) {
        errno = c->st == NULL ? ENOTCONN : EPROTO;
        return -1;
    }
    stream_set_deadline(c->st, clock_ms() + c->timeout_ms);
    rc = attr_read(c->st, reply, c->reply_max);
    if (rc == 1) {
        c->pending--;
        c->answered++;
        return 1;
    }
    ipc_clnt_disconnect(c);
    return rc;
}

int ipc_clnt_call(struct ipc_clnt *c, const struct attr_list *req, struct attr_list *reply)
{
    if (c->pending > 0)
        log_panic("ipc_clnt_call on %s with %zu pipelined requests", c->path, c->pending);
    for (int attempt = 0;; attempt++) {
        bool kept;
        int rc;

        if (clnt_send_once(c, req, &kept) == 0) {
            rc = ipc_clnt_recv(c, reply);
            if (rc == 1)
                return 0;
            if (rc == 0)
                errno = EPIPE;
        }
        /* A kept connection may have been closed by the service just before our
         * request: one more try on a fresh one.  A slow or confused service gets
         * none. */
        if (attempt > 0 || !kept || errno == ETIMEDOUT || errno == EPROTO || errno == EMSGSIZE)
            return -1;
    }
}
