/* Raw deflate both ways beneath a stream's buffers (see stream_deflate.h).  The
 * compressed bytes come from the peer and are untrusted: zlib checks them, a bad
 * stream is EPROTO, and inflate writes only into our fixed buffer of inflated bytes,
 * so what one read may expand into is bounded by that buffer.  Inflating into a
 * buffer of our own lets pending() say exactly whether input is ready: zlib may
 * hold output it has not handed out (a long match, bits of the last bytes read),
 * and compressed bytes held may decode to nothing until more come. */
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
#define DEFLATE_PLAIN 16384         /* inflated bytes held for the reader */

struct deflate_ctx {
    struct stream_lower lower;
    z_stream in, out;
    bool in_end;                    /* the peer ended its deflate stream */
    int in_error;                   /* errno of a failure found by pending(), or 0 */
    bool held;                      /* the last inflate filled plain: zlib may hold more */
    unsigned char *ibuf;            /* compressed input not yet inflated */
    size_t ipos, ilen, icap;
    size_t ppos, plen;              /* inflated, not yet read: plain[ppos .. ppos+plen) */
    unsigned char plain[DEFLATE_PLAIN];
    unsigned char obuf[DEFLATE_OUTBUF];
};

/* Inflates held compressed bytes, and what zlib itself holds back, into an empty
 * plain buffer: 0 (perhaps nothing came of it: more input is needed), or -1 with
 * errno EPROTO. */
static int deflate_inflate(struct deflate_ctx *d)
{
    int zr;
    size_t consumed;

    if (d->plen > 0 || d->in_end || d->in_error != 0)
        return 0;
    d->ppos = 0;
    d->in.next_in = d->ibuf + d->ipos;
    d->in.avail_in = (uInt)d->ilen;
    d->in.next_out = d->plain;
    d->in.avail_out = sizeof(d->plain);
    zr = inflate(&d->in, Z_SYNC_FLUSH);
    consumed = d->ilen - d->in.avail_in;
    d->ipos = d->ilen == consumed ? 0 : d->ipos + consumed;
    d->ilen = d->in.avail_in;
    d->plen = sizeof(d->plain) - d->in.avail_out;
    d->held = d->in.avail_out == 0;
    if (zr == Z_STREAM_END) {
        d->in_end = true;
    } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
        d->in_error = EPROTO;
    } else if (d->plen == 0 && d->ilen > 0 && consumed == 0) {
        d->in_error = EPROTO;       /* input left, room left, yet no progress */
    }
    if (d->in_error != 0 && d->plen == 0) {
        errno = d->in_error;
        return -1;
    }
    return 0;
}

static ssize_t deflate_read(void *vctx, void *buf, size_t len, int timeout_ms)
{
    struct deflate_ctx *d = vctx;

    if (len == 0)
        return 0;
    for (;;) {
        ssize_t n;

        if (d->plen == 0 && (d->ilen > 0 || d->held) && deflate_inflate(d) < 0)
            return -1;
        if (d->plen > 0) {
            size_t take = d->plen < len ? d->plen : len;
            memcpy(buf, d->plain + d->ppos, take);
            d->ppos += take;
            d->plen -= take;
            return (ssize_t)take;
        }
        if (d->in_error != 0) {
            errno = d->in_error;
            return -1;
        }
        if (d->in_end)
            return 0;
        /* everything held is inflated and read: more from the peer */
        if (d->ilen > 0 && d->ipos > 0) {
            memmove(d->ibuf, d->ibuf + d->ipos, d->ilen);
            d->ipos = 0;
        }
        if (d->ilen == d->icap) {
            errno = EPROTO;         /* a full buffer that inflates to nothing */
            return -1;
        }
        n = d->lower.ops->read(d->lower.ctx, d->ibuf + d->ilen, d->icap - d->ilen,
                               timeout_ms);
        if (n <= 0)
            return n;
        d->ilen += (size_t)n;
        if (deflate_inflate(d) < 0)
            return -1;
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

/* Inflated bytes a read returns without waiting: those held, else what the
 * compressed bytes held (ours, then those the lower transport decoded already, such
 * as TLS records) inflate to now.  Compressed bytes that inflate to nothing yet do
 * not count: the rest of them is still to come from the peer.  A failure found
 * here counts as input (the next read reports it). */
static size_t deflate_pending(void *vctx)
{
    struct deflate_ctx *d = vctx;

    if (d->plen > 0)
        return d->plen;
    if (d->in_error != 0 || d->in_end)
        return 1;
    if ((d->ilen > 0 || d->held) && deflate_inflate(d) < 0)
        return 1;
    while (d->plen == 0 && !d->in_end && d->lower.ops->pending != NULL
           && d->lower.ops->pending(d->lower.ctx) > 0) {
        ssize_t n;

        if (d->ilen > 0 && d->ipos > 0) {
            memmove(d->ibuf, d->ibuf + d->ipos, d->ilen);
            d->ipos = 0;
        }
        if (d->ilen == d->icap)
            return 1;               /* the read will fail: let it */
        n = d->lower.ops->read(d->lower.ctx, d->ibuf + d->ilen, d->icap - d->ilen, 0);
        if (n <= 0) {
            if (n < 0 && errno == ETIMEDOUT)
                break;
            d->in_error = n < 0 ? errno : 0;
            if (n == 0)
                d->in_end = true;   /* EOF within the transport: the read says so */
            return 1;
        }
        d->ilen += (size_t)n;
        if (deflate_inflate(d) < 0)
            return 1;
    }
    if (d->plen > 0)
        return d->plen;
    return d->in_end ? 1 : 0;
}

static void deflate_free(void *vctx)
{
    struct deflate_ctx *d = vctx;

    inflateEnd(&d->in);
    deflateEnd(&d->out);
    if (d->lower.ops->free != NULL)
        d->lower.ops->free(d->lower.ctx);
    free(d->ibuf);
    explicit_bzero(d, sizeof(*d));
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
