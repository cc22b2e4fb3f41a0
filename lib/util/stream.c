/* Buffered streams with timeouts over a replaceable transport (see stream.h).
 * Reads what the peer sends into a fixed 16 KiB buffer; getline is bounded by the
 * caller's max, so a peer cannot make us hold more than that.  When the input buffer
 * is empty and we must wait for the peer, pending output is flushed first, so a
 * request/response protocol never deadlocks and pipelined replies go out together.
 * A stream over a plain descriptor may instead queue its output (stream_set_queue):
 * flushes then only queue, up to a bound, for a caller that polls many streams and
 * writes each when it can (stream_flush_nowait). */
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
    struct str oq;              /* queued output, before obuf's (stream_set_queue) */
    size_t oq_limit;            /* 0: no queue */
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
    .plain = true,
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
    str_init(&st->oq);
    st->oq_limit = 0;
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
    str_free(&st->oq);
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

    if (st->olen > 0 || st->oq.len > 0)
        (void)stream_flush_wait(st);
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
    if (stream_flush_wait(st) < 0)
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

bool stream_input_ready(const struct stream *st)
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

/* Whether output is queued rather than written: only over a plain descriptor, whose
 * writes move bytes or nothing (a filter's could not be taken back half done). */
static bool stream_queueing(const struct stream *st)
{
    return st->oq_limit > 0 && st->ops->plain;
}

/* Moves obuf to the end of the queue. */
static void stream_enqueue(struct stream *st)
{
    str_append(&st->oq, st->obuf, st->olen);
    st->olen = 0;
}

int stream_flush_wait(struct stream *st)
{
    size_t n = st->olen;

    if (stream_check(st) < 0)
        return -1;
    st->olen = 0;
    if (st->oq.len > 0) {
        int rc = stream_write_all(st, st->oq.s, st->oq.len);
        str_free(&st->oq);
        if (rc < 0)
            return -1;
    }
    return stream_write_all(st, st->obuf, n);
}

int stream_flush(struct stream *st)
{
    if (stream_check(st) < 0)
        return -1;
    if (stream_queueing(st)) {
        stream_enqueue(st);
        if (st->oq.len <= st->oq_limit)
            return 0;
        /* Past the bound: this reader is slow, the rest waits for it as it would
         * without a queue. */
    }
    return stream_flush_wait(st);
}

void stream_set_queue(struct stream *st, size_t limit)
{
    st->oq_limit = limit;
}

int stream_flush_nowait(struct stream *st)
{
    if (stream_check(st) < 0)
        return -1;
    if (!stream_queueing(st))
        return stream_flush_wait(st);
    if (st->olen > 0)
        stream_enqueue(st);
    while (st->oq.len > 0) {
        ssize_t n = st->ops->write(st->ctx, st->oq.s, st->oq.len, 0);
        if (n < 0 && (errno == ETIMEDOUT || errno == EAGAIN))
            return 1;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return stream_fail(st);
        }
        memmove(st->oq.s, st->oq.s + n, st->oq.len - (size_t)n);
        str_truncate(&st->oq, st->oq.len - (size_t)n);
    }
    str_free(&st->oq);
    return 0;
}

size_t stream_output_pending(const struct stream *st)
{
    return st->olen + st->oq.len;
}

ssize_t stream_fill_nowait(struct stream *st)
{
    ssize_t n;

    if (stream_check(st) < 0)
        return -1;
    if (st->ilen > 0)
        return (ssize_t)st->ilen;
    n = st->ops->read(st->ctx, st->ibuf, sizeof(st->ibuf), 0);
    if (n < 0 && (errno == ETIMEDOUT || errno == EAGAIN || errno == EWOULDBLOCK)) {
        errno = EAGAIN;
        return -1;
    }
    if (n < 0)
        return stream_fail(st);
    st->ipos = 0;
    st->ilen = (size_t)n;
    return n;
}

bool stream_take_line(struct stream *st, struct str *out, size_t max)
{
    size_t take = st->ilen < max ? st->ilen : max;
    const char *p = st->ibuf + st->ipos, *nl = memchr(p, '\n', take);

    if (nl != NULL)
        take = (size_t)(nl - p) + 1;
    str_append(out, p, take);
    st->ipos += take;
    st->ilen -= take;
    return nl != NULL;
}

size_t stream_take(struct stream *st, struct str *out, size_t len)
{
    size_t take = st->ilen < len ? st->ilen : len;

    str_append(out, st->ibuf + st->ipos, take);
    st->ipos += take;
    st->ilen -= take;
    return take;
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
    if (len >= sizeof(st->obuf) && stream_queueing(st)) {
        str_append(&st->oq, buf, len);
        return st->oq.len > st->oq_limit ? stream_flush_wait(st) : 0;
    }
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
