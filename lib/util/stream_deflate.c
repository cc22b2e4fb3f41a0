/* Raw deflate both ways beneath a stream's buffers (see stream_deflate.h).  The
 * compressed bytes come from the peer and are untrusted: zlib checks them, a bad
 * stream is EPROTO, and inflate writes only into the buffer the stream hands it, so
 * the expansion of one read is bounded by that buffer. */
#include "stream_deflate.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "stream.h"
#include "xmalloc.h"

#define DEFLATE_INBUF 16384         /* compressed bytes read from the transport at once */
#define DEFLATE_OUTBUF 16384        /* compressed bytes written to it at once */

struct deflate_ctx {
    struct stream_lower lower;
    z_stream in, out;
    bool in_end;                    /* the peer ended its deflate stream */
    unsigned char *ibuf;            /* compressed input not yet inflated */
    size_t ipos, ilen, icap;
    unsigned char obuf[DEFLATE_OUTBUF];
};

static ssize_t deflate_read(void *vctx, void *buf, size_t len, int timeout_ms)
{
    struct deflate_ctx *d = vctx;

    if (len == 0)
        return 0;
    for (;;) {
        int zr;
        size_t produced, consumed;

        if (d->in_end)
            return 0;
        if (d->ilen > 0) {
            d->in.next_in = d->ibuf + d->ipos;
            d->in.avail_in = (uInt)d->ilen;
            d->in.next_out = buf;
            d->in.avail_out = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
            zr = inflate(&d->in, Z_SYNC_FLUSH);
            consumed = d->ilen - d->in.avail_in;
            d->ipos += consumed;
            d->ilen = d->in.avail_in;
            produced = (size_t)(d->in.next_out - (unsigned char *)buf);
            if (zr == Z_STREAM_END)
                d->in_end = true;
            else if (zr != Z_OK && zr != Z_BUF_ERROR) {
                errno = EPROTO;
                return -1;
            }
            if (produced > 0)
                return (ssize_t)produced;
            if (d->ilen > 0 && consumed == 0 && !d->in_end) {
                errno = EPROTO;     /* input left, room left, yet no progress */
                return -1;
            }
            continue;
        }
        ssize_t n = d->lower.ops->read(d->lower.ctx, d->ibuf, d->icap, timeout_ms);
        if (n <= 0)
            return n;
        d->ipos = 0;
        d->ilen = (size_t)n;
    }
}

/* Sends what deflate made, all of it. */
static int deflate_send(struct deflate_ctx *d, size_t n, int timeout_ms)
{
    const unsigned char *p = d->obuf;

    while (n > 0) {
        ssize_t w = d->lower.ops->write(d->lower.ctx, p, n, timeout_ms);
        if (w < 0)
            return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static ssize_t deflate_write(void *vctx, const void *buf, size_t len, int timeout_ms)
{
    struct deflate_ctx *d = vctx;
    size_t take = len > UINT32_MAX ? UINT32_MAX : len;

    d->out.next_in = (unsigned char *)(uintptr_t)buf;
    d->out.avail_in = (uInt)take;
    do {
        int zr;
        d->out.next_out = d->obuf;
        d->out.avail_out = sizeof(d->obuf);
        zr = deflate(&d->out, Z_SYNC_FLUSH);
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            errno = EIO;
            return -1;
        }
        if (deflate_send(d, sizeof(d->obuf) - d->out.avail_out, timeout_ms) < 0)
            return -1;
    } while (d->out.avail_in > 0 || d->out.avail_out == 0);
    return (ssize_t)take;
}

/* Input the buffers may still get without a read: compressed bytes held (they may
 * decode to nothing yet, then the read waits as any read does) and the lower's. */
static size_t deflate_pending(void *vctx)
{
    struct deflate_ctx *d = vctx;
    size_t n = d->ilen;

    if (d->lower.ops->pending != NULL)
        n += d->lower.ops->pending(d->lower.ctx);
    return n;
}

static void deflate_free(void *vctx)
{
    struct deflate_ctx *d = vctx;

    inflateEnd(&d->in);
    deflateEnd(&d->out);
    if (d->lower.ops->free != NULL)
        d->lower.ops->free(d->lower.ctx);
    free(d->ibuf);
    free(d);
}

static const struct stream_ops deflate_ops = {
    .read = deflate_read,
    .write = deflate_write,
    .pending = deflate_pending,
    .free = deflate_free,
};

int stream_push_deflate(struct stream *st)
{
    struct deflate_ctx *d = xcalloc(1, sizeof(*d));
    struct str unread = STR_INIT;

    /* windowBits -15: raw deflate with the largest window, which RFC 4978 asks the
     * receiver to accept; memLevel 8 is zlib's default. */
    if (inflateInit2(&d->in, -15) != Z_OK) {
        free(d);
        errno = ENOMEM;
        return -1;
    }
    if (deflateInit2(&d->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK) {
        inflateEnd(&d->in);
        free(d);
        errno = ENOMEM;
        return -1;
    }
    if (stream_push_filter(st, &deflate_ops, d, &d->lower, &unread) < 0) {
        int e = errno;
        inflateEnd(&d->in);
        deflateEnd(&d->out);
        free(d);
        errno = e;
        return -1;
    }
    d->icap = unread.len > DEFLATE_INBUF ? unread.len : DEFLATE_INBUF;
    d->ibuf = xmalloc(d->icap);
    if (unread.len > 0)
        memcpy(d->ibuf, unread.s, unread.len);
    d->ilen = unread.len;
    if (unread.s != NULL)
        explicit_bzero(unread.s, unread.len);
    str_free(&unread);
    return 0;
}
