/* The hand-off of an authenticated client between a pre-auth process and its
 * post-login service (see login.h).  The receiving side reads one byte with the
 * descriptor, then one bounded attr frame; anything else is refused. */
#include "login.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "clock.h"
#include "fd.h"
#include "sock.h"
#include "stream.h"
#include "xmalloc.h"

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
    struct attr_list al = ATTR_LIST_INIT;
    struct stream *st;
    const char *status;
    int conn, rc = -1;

    if (h->pending.len > LOGIN_PENDING_MAX) {
        errno = EMSGSIZE;
        return login_fail(err, "hand-off: too many pipelined bytes");
    }
    conn = sock_connect_unix(path, timeout_ms);
    if (conn < 0) {
        str_clear(err);
        str_printf(err, "connect %s: %s", path, strerror(errno));
        return -1;
    }
    if (fd_send(conn, h->fd, "F", 1) < 0) {
        login_fail(err, "hand-off: sending the descriptor");
        close(conn);
        return -1;
    }
    st = stream_fdopen(conn);
    stream_set_timeout(st, timeout_ms);
    attr_add(&al, "service", h->service.s ? h->service.s : "");
    attr_add(&al, "token", h->token.s ? h->token.s : "");
    attr_add(&al, "user", h->user.s ? h->user.s : "");
    attr_add(&al, "client", h->client.s ? h->client.s : "");
    attr_add(&al, "tls", h->tls ? "yes" : "no");
    attr_addn(&al, "pending", h->pending.s ? h->pending.s : "", h->pending.len);
    if (attr_write(st, &al) < 0) {
        login_fail(err, "hand-off: writing the request");
    } else {
        int r = attr_read(st, &al, 4096);
        if (r <= 0) {
            if (r == 0)
                errno = EPIPE;
            login_fail(err, "hand-off: reading the reply");
        } else if ((status = attr_get(&al, "status")) == NULL || strcmp(status, "ok") != 0) {
            str_clear(err);
            str_sets(err, "hand-off refused");
        } else {
            rc = 0;
        }
    }
    attr_free(&al);
    stream_close(st);
    return rc;
}

static void login_take(struct str *dst, const struct attr_list *al, const char *name)
{
    for (size_t i = 0; i < al->n; i++) {
        if (strcmp(al->v[i].name, name) == 0) {
            str_set(dst, al->v[i].value, al->v[i].len);
            return;
        }
    }
    str_clear(dst);
}

/* Overwrites the values of a frame (it carries a token) before it is freed. */
static void login_wipe(struct attr_list *al)
{
    for (size_t i = 0; i < al->n; i++)
        if (al->v[i].value != NULL)
            explicit_bzero(al->v[i].value, al->v[i].len);
}

int login_receive(int conn, struct login_handoff *h, int timeout_ms, struct str *err)
{
    struct attr_list al = ATTR_LIST_INIT;
    struct stream *st;
    struct pollfd pfd = { .fd = conn, .events = POLLIN, .revents = 0 };
    const char *tls;
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
    login_take(&h->service, &al, "service");
    login_take(&h->token, &al, "token");
    login_take(&h->user, &al, "user");
    login_take(&h->client, &al, "client");
    login_take(&h->pending, &al, "pending");
    tls = attr_get(&al, "tls");
    h->tls = tls != NULL && strcmp(tls, "yes") == 0;
    login_wipe(&al);
    if (h->token.len == 0 || h->pending.len > LOGIN_PENDING_MAX) {
        errno = EPROTO;
        login_fail(err, "hand-off: bad request");
        goto fail;
    }
    attr_clear(&al);
    attr_add(&al, "status", "ok");
    if (attr_write(st, &al) < 0) {
        login_fail(err, "hand-off: writing the reply");
        goto fail;
    }
    attr_free(&al);
    stream_close(st);
    h->fd = fd;
    return 0;

fail:
    login_wipe(&al);
    attr_free(&al);
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
