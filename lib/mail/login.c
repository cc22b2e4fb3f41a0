/* The hand-off of an authenticated client between a pre-auth process and its
 * post-login service (see login.h).  The receiving side reads one byte with the
 * descriptor, then one bounded attr frame, checks its version and scans it
 * (attr_scan.h); anything else is refused. */
#include "login.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "attr_scan.h"
#include "clock.h"
#include "fd.h"
#include "ipc_clnt.h"
#include "ipc_proto.h"
#include "proto.h"
#include "stream.h"
#include "xmalloc.h"

#define LOGIN_REPLY_MAX 4096        /* largest reply frame */

void login_handoff_init(struct login_handoff *h)
{
    memset(h, 0, sizeof(*h));
    h->fd = -1;
}

void login_handoff_free(struct login_handoff *h)
{
    if (h->fd >= 0)
        close(h->fd);
    if (h->token.s != NULL)
        explicit_bzero(h->token.s, h->token.len);
    str_free(&h->service);
    str_free(&h->token);
    str_free(&h->user);
    str_free(&h->client);
    str_free(&h->pending);
    login_handoff_init(h);
}

static int login_fail(struct str *err, const char *what)
{
    int e = errno;
    str_clear(err);
    str_printf(err, "%s: %s", what, e ? strerror(e) : "failed");
    errno = e;
    return -1;
}

int login_send(const char *path, const struct login_handoff *h, int timeout_ms,
               struct str *err)
{
    struct attr_list req = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    struct ipc_clnt *c;
    const char *status = NULL;
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_STATUS, 0, &status, 0),
        ATTR_END,
    };
    struct str why = STR_INIT;
    int rc = -1;

    if (h->pending.len > LOGIN_PENDING_MAX) {
        errno = EMSGSIZE;
        return login_fail(err, "hand-off: too many pipelined bytes");
    }
    /* A connection of its own: the descriptor goes first, on a fresh one. */
    c = ipc_clnt_open(path, timeout_ms, LOGIN_REPLY_MAX);
    if (ipc_clnt_connect(c) < 0) {
        str_clear(err);
        str_printf(err, "connect %s: %s", path, strerror(errno));
        ipc_clnt_close(c);
        return -1;
    }
    if (fd_send(stream_fd(ipc_clnt_stream(c)), h->fd, "F", 1) < 0) {
        login_fail(err, "hand-off: sending the descriptor");
        ipc_clnt_close(c);
        return -1;
    }
    ipc_frame_start(&req, PROTO_LOGIN, PROTO_LOGIN_VERSION);
    attr_add(&req, PROTO_A_SERVICE, h->service.s ? h->service.s : "");
    attr_add(&req, PROTO_A_TOKEN, h->token.s ? h->token.s : "");
    attr_add(&req, PROTO_A_USER, h->user.s ? h->user.s : "");
    attr_add(&req, PROTO_A_CLIENT, h->client.s ? h->client.s : "");
    attr_add(&req, PROTO_A_TLS, h->tls ? PROTO_YES : PROTO_NO);
    attr_addn(&req, PROTO_A_PENDING, h->pending.s ? h->pending.s : "", h->pending.len);
    if (ipc_call(c, PROTO_LOGIN, PROTO_LOGIN_VERSION, &req, &reply, &why) < 0) {
        str_clear(err);
        str_printf(err, "hand-off: %s", why.s);
    } else if (attr_scan(&reply, 0, spec, &why) < 0 || strcmp(status, PROTO_OK) != 0) {
        str_clear(err);
        str_sets(err, "hand-off refused");
    } else {
        rc = 0;
    }
    attr_wipe(&req);
    attr_free(&req);
    attr_free(&reply);
    str_free(&why);
    ipc_clnt_close(c);
    return rc;
}

/* Reads the frame of a hand-off into h: 0, or -1 with err (and, for another
 * version, the error reply to send in reply). */
static int login_scan(const struct attr_list *al, struct login_handoff *h,
                      struct attr_list *reply, struct str *err)
{
    const char *service = NULL, *token = NULL, *user = NULL, *client = NULL, *tls = NULL;
    struct attr_data pending = { "", 0 };
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_SERVICE, 0, &service, LOGIN_TEXT_MAX),
        ATTR_STR(PROTO_A_TOKEN, ATTR_NONEMPTY, &token, LOGIN_TEXT_MAX),
        ATTR_STR(PROTO_A_USER, 0, &user, LOGIN_TEXT_MAX),
        ATTR_STR(PROTO_A_CLIENT, 0, &client, LOGIN_TEXT_MAX),
        ATTR_STR(PROTO_A_TLS, 0, &tls, LOGIN_TEXT_MAX),
        ATTR_DATA(PROTO_A_PENDING, ATTR_OPTIONAL, &pending, LOGIN_PENDING_MAX),
        ATTR_END,
    };
    struct str why = STR_INIT;

    if (ipc_proto_check(al, PROTO_LOGIN, PROTO_LOGIN_VERSION, &why) < 0) {
        ipc_error_reply(reply, PROTO_LOGIN, PROTO_LOGIN_VERSION, why.s);
    } else if (attr_scan(al, 0, spec, &why) == 0) {
        str_sets(&h->service, service);
        str_sets(&h->token, token);
        str_sets(&h->user, user);
        str_sets(&h->client, client);
        str_set(&h->pending, pending.s, pending.len);
        h->tls = strcmp(tls, PROTO_YES) == 0;
        str_free(&why);
        return 0;
    }
    str_clear(err);
    str_printf(err, "hand-off: bad request: %s", why.s);
    str_free(&why);
    errno = EPROTO;
    return -1;
}

int login_receive(int conn, struct login_handoff *h, int timeout_ms, struct str *err)
{
    struct attr_list al = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    struct stream *st;
    struct pollfd pfd = { .fd = conn, .events = POLLIN, .revents = 0 };
    char byte = 0;
    ssize_t n;
    int fd = -1, r;

    h->fd = -1;
    do
        r = poll(&pfd, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r <= 0) {
        if (r == 0)
            errno = ETIMEDOUT;
        login_fail(err, "hand-off: waiting for the descriptor");
        close(conn);
        return -1;
    }
    n = fd_recv(conn, &fd, &byte, 1);
    if (n != 1 || fd < 0 || byte != 'F') {
        if (n >= 0)
            errno = EPROTO;
        if (fd >= 0)
            close(fd);
        login_fail(err, "hand-off: no descriptor");
        close(conn);
        return -1;
    }
    st = stream_fdopen(conn);
    stream_set_timeout(st, timeout_ms);
    r = attr_read(st, &al, LOGIN_FRAME_MAX);
    if (r <= 0) {
        if (r == 0)
            errno = EPIPE;
        login_fail(err, "hand-off: reading the request");
        goto fail;
    }
    r = login_scan(&al, h, &reply, err);
    attr_wipe(&al);
    if (r < 0) {
        if (reply.n > 0)
            (void)attr_write(st, &reply);
        goto fail;
    }
    ipc_frame_start(&reply, PROTO_LOGIN, PROTO_LOGIN_VERSION);
    attr_add(&reply, PROTO_A_STATUS, PROTO_OK);
    if (attr_write(st, &reply) < 0) {
        login_fail(err, "hand-off: writing the reply");
        goto fail;
    }
    attr_free(&al);
    attr_free(&reply);
    stream_close(st);
    h->fd = fd;
    return 0;

fail:
    attr_wipe(&al);
    attr_free(&al);
    attr_free(&reply);
    stream_close(st);
    close(fd);
    return -1;
}

/* ---- a stream that replays the pipelined bytes first ---- */

struct login_prefix {
    int fd;
    char *buf;
    size_t pos, len;
};

static int login_wait(int fd, short events, int timeout_ms)
{
    long long deadline = clock_ms() + (timeout_ms >= 0 ? timeout_ms : 0);

    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = events, .revents = 0 };
        int wait_ms = -1, r;

        if (timeout_ms >= 0) {
            long long left = deadline - clock_ms();
            wait_ms = left < 0 ? 0 : left > 0x7fffffff ? 0x7fffffff : (int)left;
        }
        r = poll(&pfd, 1, wait_ms);
        if (r > 0)
            return 0;
        if (r == 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (errno != EINTR)
            return -1;
    }
}

static ssize_t login_prefix_read(void *ctx, void *buf, size_t len, int timeout_ms)
{
    struct login_prefix *p = ctx;

    if (p->pos < p->len) {
        size_t take = p->len - p->pos < len ? p->len - p->pos : len;
        memcpy(buf, p->buf + p->pos, take);
        p->pos += take;
        return (ssize_t)take;
    }
    for (;;) {
        ssize_t n;
        if (login_wait(p->fd, POLLIN, timeout_ms) < 0)
            return -1;
        n = read(p->fd, buf, len);
        if (n >= 0)
            return n;
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
    }
}

static ssize_t login_prefix_write(void *ctx, const void *buf, size_t len, int timeout_ms)
{
    struct login_prefix *p = ctx;

    for (;;) {
        ssize_t n;
        if (login_wait(p->fd, POLLOUT, timeout_ms) < 0)
            return -1;
        n = write(p->fd, buf, len);
        if (n >= 0)
            return n;
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
    }
}

static size_t login_prefix_pending(void *ctx)
{
    struct login_prefix *p = ctx;
    return p->len - p->pos;
}

static void login_prefix_free(void *ctx)
{
    struct login_prefix *p = ctx;
    free(p->buf);
    free(p);
}

static const struct stream_ops login_prefix_ops = {
    .read = login_prefix_read,
    .write = login_prefix_write,
    .pending = login_prefix_pending,
    .free = login_prefix_free,
    .plain = true,
};

struct stream *login_stream(struct login_handoff *h)
{
    struct stream *st = stream_fdopen(h->fd);
    struct login_prefix *p = xcalloc(1, sizeof(*p));

    p->fd = h->fd;
    p->len = h->pending.len;
    p->buf = xmalloc(p->len + 1);
    if (p->len > 0)
        memcpy(p->buf, h->pending.s, p->len);
    (void)stream_set_transport(st, &login_prefix_ops, p);
    h->fd = -1;
    return st;
}
