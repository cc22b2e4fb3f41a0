/* Buffered streams with timeouts over a replaceable transport (see stream.h).
 * Reads what the peer sends into a fixed 16 KiB buffer; getline is bounded by the
 * caller's max, so a peer cannot make us hold more than that.  When the input buffer
 * is empty and we must wait for the peer, pending output is flushed first, so a
 * request/response protocol never deadlocks and pipelined replies go out together. */
#include "stream.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fd.h"
#include "xmalloc.h"

#define STREAM_IBUF 16384
#define STREAM_OBUF 16384

struct stream {
    int fd;
    int timeout_ms;
    long long deadline_ms;      /* 0: none */
    const struct stream_ops *ops;
    void *ctx;
    bool failed;
    int error;                  /* errno of the first failure */
    size_t ipos, ilen;          /* unread input: ibuf[ipos .. ipos+ilen) */
    size_t olen;
    char ibuf[STREAM_IBUF];
    char obuf[STREAM_OBUF];
};

static ssize_t stream_fd_read(void *ctx, void *buf, size_t len, int timeout_ms)
{
    int fd = *(int *)ctx;
    long long deadline = timeout_ms >= 0 ? clock_ms() + timeout_ms : 0;

    for (;;) {
        ssize_t n;
        if (fd_wait(fd, POLLIN, timeout_ms >= 0 ? deadline : -1) < 0)
            return -1;
        n = read(fd, buf, len);
        if (n >= 0)
            return n;
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
    }
}

static ssize_t stream_fd_write(void *ctx, const void *buf, size_t len, int timeout_ms)
{
    int fd = *(int *)ctx;
    long long deadline = timeout_ms >= 0 ? clock_ms() + timeout_ms : 0;

    for (;;) {
        ssize_t n;
        if (fd_wait(fd, POLLOUT, timeout_ms >= 0 ? deadline : -1) < 0)
            return -1;
        n = write(fd, buf, len);
        if (n >= 0)
            return n;
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return -1;
    }
}

static const struct stream_ops stream_fd_ops = {
    .read = stream_fd_read,
    .write = stream_fd_write,
    .pending = NULL,
    .free = NULL,
};

struct stream *stream_fdopen(int fd)
{
    struct stream *st = xmalloc(sizeof(*st));

    st->fd = fd;
    st->timeout_ms = -1;
    st->deadline_ms = 0;
    st->ops = &stream_fd_ops;
    st->ctx = &st->fd;
    st->failed = false;
    st->error = 0;
    st->ipos = st->ilen = 0;
    st->olen = 0;
    return st;
}

void stream_close(struct stream *st)
{
    if (st == NULL)
        return;
    if (st->ops->free != NULL)
        st->ops->free(st->ctx);
    if (st->fd >= 0)
        close(st->fd);
    /* The buffers held passwords and login tokens: leave nothing in freed memory
     * that a later fork could inherit. */
    explicit_bzero(st, sizeof(*st));
    free(st);
}

int stream_fd(const struct stream *st)
{
    return st->fd;
}

void stream_set_timeout(struct stream *st, int timeout_ms)
{
    st->timeout_ms = timeout_ms;
}

void stream_set_deadline(struct stream *st, long long deadline_ms)
{
    st->deadline_ms = deadline_ms;
}

int stream_clear_timeout(struct stream *st)
{
    if (!st->failed || st->error != ETIMEDOUT)
        return -1;
    st->failed = false;
    st->error = 0;
    return 0;
}

/* The wait allowed for the next transport call: the timeout, cut to the deadline. */
static int stream_wait_ms(const struct stream *st)
{
    long long left;

    if (st->deadline_ms == 0)
        return st->timeout_ms;
    left = st->deadline_ms - clock_ms();
    if (left < 0)
        left = 0;
    if (st->timeout_ms >= 0 && st->timeout_ms < left)
        return st->timeout_ms;
    return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

static int stream_fail(struct stream *st)
{
    if (!st->failed) {
        st->failed = true;
        st->error = errno ? errno : EIO;
    }
    errno = st->error;
    return -1;
}

static int stream_check(struct stream *st)
{
    if (st->failed) {
        errno = st->error;
        return -1;
    }
    return 0;
}

size_t stream_set_transport(struct stream *st, const struct stream_ops *ops, void *ctx)
{
    size_t dropped = st->ilen;

    if (st->olen > 0)
        (void)stream_flush(st);
    if (st->ops->free != NULL)
        st->ops->free(st->ctx);
    st->ops = ops;
    st->ctx = ctx;
    st->ipos = st->ilen = 0;
    return dropped;
}

void *stream_transport_ctx(const struct stream *st)
{
    return st->ctx;
}

int stream_push_filter(struct stream *st, const struct stream_ops *ops, void *ctx,
                       struct stream_lower *lower, struct str *unread)
{
    if (stream_flush(st) < 0)
        return -1;
    str_set(unread, st->ibuf + st->ipos, st->ilen);
    lower->ops = st->ops;
    lower->ctx = st->ctx;
    st->ops = ops;
    st->ctx = ctx;
    st->ipos = st->ilen = 0;
    return 0;
}

size_t stream_pending(const struct stream *st)
{
    size_t n = st->ilen;
    if (st->ops->pending != NULL)
        n += st->ops->pending(st->ctx);
    return n;
}

bool stream_input_ready(struct stream *st)
{
    if (st->ilen > 0 || st->failed)
        return true;
    return st->ops->pending != NULL && st->ops->pending(st->ctx) > 0;
}

/* Writes len bytes straight to the transport. */
static int stream_write_all(struct stream *st, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = st->ops->write(st->ctx, p, len, stream_wait_ms(st));
        if (n < 0)
            return stream_fail(st);
        if (n == 0) {
            errno = EIO;
            return stream_fail(st);
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int stream_flush(struct stream *st)
{
    size_t n = st->olen;

    if (stream_check(st) < 0)
        return -1;
    st->olen = 0;
    return stream_write_all(st, st->obuf, n);
}

/* Refills an empty input buffer: bytes read, 0 at EOF, -1 on error. */
static ssize_t stream_fill(struct stream *st)
{
    ssize_t n;

    if (stream_check(st) < 0)
        return -1;
    if (st->olen > 0 && stream_flush(st) < 0)
        return -1;
    n = st->ops->read(st->ctx, st->ibuf, sizeof(st->ibuf), stream_wait_ms(st));
    if (n < 0)
        return stream_fail(st);
    st->ipos = 0;
    st->ilen = (size_t)n;
    return n;
}

int stream_getline(struct stream *st, struct str *line, size_t max)
{
    str_clear(line);
    if (stream_check(st) < 0)
        return -1;
    while (line->len < max) {
        size_t want = max - line->len, take;
        const char *p, *nl;
        ssize_t n;

        if (st->ilen == 0) {
            n = stream_fill(st);
            if (n < 0)
                return -1;
            if (n == 0)
                return line->len > 0 ? STREAM_PARTIAL : STREAM_EOF;
        }
        p = st->ibuf + st->ipos;
        take = st->ilen < want ? st->ilen : want;
        nl = memchr(p, '\n', take);
        if (nl != NULL)
            take = (size_t)(nl - p) + 1;
        str_append(line, p, take);
        st->ipos += take;
        st->ilen -= take;
        if (nl != NULL)
            return STREAM_LINE;
    }
    return STREAM_PARTIAL;
}

ssize_t stream_read(struct stream *st, void *buf, size_t len)
{
    size_t take;

    if (stream_check(st) < 0)
        return -1;
    if (len == 0)
        return 0;
    if (st->ilen == 0) {
        if (len >= sizeof(st->ibuf)) {
            ssize_t n;
            if (st->olen > 0 && stream_flush(st) < 0)
                return -1;
            n = st->ops->read(st->ctx, buf, len, stream_wait_ms(st));
            return n < 0 ? stream_fail(st) : n;
        }
        ssize_t n = stream_fill(st);
        if (n <= 0)
            return n;
    }
    take = st->ilen < len ? st->ilen : len;
    memcpy(buf, st->ibuf + st->ipos, take);
    st->ipos += take;
    st->ilen -= take;
    return (ssize_t)take;
}

int stream_read_full(struct stream *st, void *buf, size_t len)
{
    char *p = buf;

    while (len > 0) {
        ssize_t n = stream_read(st, p, len);
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EPIPE;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int stream_write(struct stream *st, const void *buf, size_t len)
{
    if (stream_check(st) < 0)
        return -1;
    if (len <= sizeof(st->obuf) - st->olen) {
        memcpy(st->obuf + st->olen, buf, len);
        st->olen += len;
        if (st->olen == sizeof(st->obuf))
            return stream_flush(st);
        return 0;
    }
    if (stream_flush(st) < 0)
        return -1;
    if (len >= sizeof(st->obuf))
        return stream_write_all(st, buf, len);
    memcpy(st->obuf, buf, len);
    st->olen = len;
    return 0;
}

int stream_puts(struct stream *st, const char *s)
{
    return stream_write(st, s, strlen(s));
}

int stream_vprintf(struct stream *st, const char *fmt, va_list ap)
{
    char small[512];
    va_list ap2;
    int n, rc;

    if (stream_check(st) < 0)
        return -1;
    va_copy(ap2, ap);
    n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        errno = EINVAL;
        return -1;
    }
    if ((size_t)n < sizeof(small))
        return stream_write(st, small, (size_t)n);
    {
        struct str tmp = STR_INIT;
        str_vprintf(&tmp, fmt, ap);
        rc = stream_write(st, tmp.s, tmp.len);
        str_free(&tmp);
    }
    return rc;
}

int stream_printf(struct stream *st, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = stream_vprintf(st, fmt, ap);
    va_end(ap);
    return rc;
}

bool stream_error(const struct stream *st)
{
    return st->failed;
}
