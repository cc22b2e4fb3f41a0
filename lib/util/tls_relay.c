/* A TLS server connection relayed to a plaintext descriptor without waiting (see
 * tls_relay.h).  Trusts nothing from the TLS peer; the plaintext peer is a process of
 * ours, but its bytes are only copied.  Each direction has one buffer of at most
 * buf_max bytes, allocated when bytes arrive and freed once they are all out. */
#include "tls_relay.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "fd.h"
#include "str.h"
#include "tls.h"
#include "xmalloc.h"

struct relay_buf {
    char *p;                    /* NULL while empty */
    size_t off, len;            /* bytes p[off..len) wait to go out */
};

struct tls_relay {
    SSL *ssl;
    int net, plain;
    size_t buf_max;
    struct relay_buf to_plain;  /* decrypted from the client, for the plaintext side */
    struct relay_buf to_net;    /* from the plaintext side, to encrypt for the client */
    bool handshaken;
    bool net_eof;               /* the client sent close_notify or closed */
    bool plain_eof;             /* the plaintext side closed its end */
    bool plain_shut;            /* we passed the client's EOF on (shutdown SHUT_WR) */
    bool failed;                /* no more TLS I/O, no close_notify */
    bool more;                  /* the last run stopped at its cap with bytes to move */
    short hs_want;              /* handshake: POLLIN or POLLOUT */
    short read_want;            /* what the last SSL_read waited for */
    short write_want;           /* what the last SSL_write waited for */
    const char *closed_by;
};

struct tls_relay *tls_relay_new(struct tls_ctx *ctx, int net, int plain, size_t buf_max,
                                struct str *err)
{
    struct tls_relay *r;
    SSL *ssl;

    if (fd_nonblock(net, true) < 0 || fd_nonblock(plain, true) < 0) {
        str_printf(err, "fcntl: %s", strerror(errno));
        goto fail;
    }
    ERR_clear_error();
    if ((ssl = SSL_new(tls_ctx_ssl(ctx))) == NULL) {
        tls_error(err, "SSL_new", "failed");
        goto fail;
    }
    if (SSL_set_fd(ssl, net) != 1) {
        tls_error(err, "SSL_set_fd", "failed");
        SSL_free(ssl);
        goto fail;
    }
    SSL_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE
                      | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_accept_state(ssl);
    r = xcalloc(1, sizeof(*r));
    r->ssl = ssl;
    r->net = net;
    r->plain = plain;
    r->buf_max = buf_max > 0 ? buf_max : 16384;
    r->hs_want = POLLIN;
    r->read_want = POLLIN;
    r->write_want = POLLOUT;
    return r;
fail:
    close(net);
    close(plain);
    return NULL;
}

static void buf_release(struct relay_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->off = b->len = 0;
}

/* Room at the end of b for more bytes (moving what is left to the front): the count. */
static size_t buf_room(struct relay_buf *b, size_t max)
{
    if (b->p == NULL) {
        b->p = xmalloc(max);
        b->off = b->len = 0;
    } else if (b->off > 0) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    return max - b->len;
}

static bool buf_full(const struct relay_buf *b, size_t max)
{
    return b->p != NULL && b->len - b->off >= max;
}

static size_t buf_used(const struct relay_buf *b)
{
    return b->p != NULL ? b->len - b->off : 0;
}

static void buf_consume(struct relay_buf *b, size_t n)
{
    b->off += n;
    if (b->off >= b->len)
        buf_release(b);
}

void tls_relay_free(struct tls_relay *r)
{
    if (r == NULL)
        return;
    if (r->handshaken && !r->failed && r->plain_eof) {
        /* one try, without waiting: the client learns that the end is not a cut */
        (void)SSL_shutdown(r->ssl);
    }
    ERR_clear_error();
    SSL_free(r->ssl);
    close(r->net);
    close(r->plain);
    buf_release(&r->to_plain);
    buf_release(&r->to_net);
    free(r);
}

/* After an SSL call returned n <= 0: POLLIN or POLLOUT to wait for, 0 for a clean
 * end of the client's data, -1 for an error (err). */
static int relay_ssl_error(struct tls_relay *r, int n, const char *what, struct str *err)
{
    int e = SSL_get_error(r->ssl, n);

    switch (e) {
    case SSL_ERROR_WANT_READ:
        return POLLIN;
    case SSL_ERROR_WANT_WRITE:
        return POLLOUT;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        return 0;
    case SSL_ERROR_SYSCALL:
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            ERR_clear_error();
            return POLLIN;
        }
        r->failed = true;
        if (ERR_peek_error() == 0) {
            str_printf(err, "%s: %s", what,
                       n == 0 || errno == 0 ? "connection closed by the client"
                                            : strerror(errno));
            ERR_clear_error();
        } else {
            tls_error(err, what, "failed");
        }
        return -1;
    default:
        r->failed = true;
        tls_error(err, what, "failed");
        return -1;
    }
}

/* The client's side: the handshake, then reading and writing records. */
static int relay_handshake(struct tls_relay *r, bool *moved, struct str *err)
{
    int n, w;

    ERR_clear_error();
    n = SSL_do_handshake(r->ssl);
    if (n == 1) {
        r->handshaken = true;
        *moved = true;
        return 1;
    }
    w = relay_ssl_error(r, n, "handshake", err);
    if (w == 0) {
        r->failed = true;
        str_appends(err, "handshake: connection closed by the client");
        return -1;
    }
    if (w < 0)
        return -1;
    r->hs_want = (short)w;
    return 1;
}

/* One pass over both directions: 1 when something moved (try again), 0 when
 * nothing could, -1 on error. */
static int relay_pass(struct tls_relay *r, struct str *err)
{
    bool any = false;
    ssize_t n;

    /* client -> plaintext side */
    if (!r->net_eof && !buf_full(&r->to_plain, r->buf_max)) {
        size_t room = buf_room(&r->to_plain, r->buf_max);
        int got, w;

        ERR_clear_error();
        got = SSL_read(r->ssl, r->to_plain.p + r->to_plain.len,
                       room > 0x7fffffff ? 0x7fffffff : (int)room);
        if (got > 0) {
            r->to_plain.len += (size_t)got;
            r->read_want = POLLIN;
            any = true;
        } else if ((w = relay_ssl_error(r, got, "read", err)) < 0) {
            return -1;
        } else if (w == 0) {
            r->net_eof = true;
            if (r->closed_by == NULL)
                r->closed_by = "client";
            any = true;
        } else {
            r->read_want = (short)w;
        }
        if (buf_used(&r->to_plain) == 0)
            buf_release(&r->to_plain);
    }
    if (buf_used(&r->to_plain) > 0) {
        n = write(r->plain, r->to_plain.p + r->to_plain.off, buf_used(&r->to_plain));
        if (n > 0) {
            buf_consume(&r->to_plain, (size_t)n);
            any = true;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            /* the plaintext side is gone: nothing it could still say matters */
            r->plain_eof = true;
            if (r->closed_by == NULL)
                r->closed_by = "server";
            buf_release(&r->to_plain);
            r->net_eof = true;
            any = true;
        }
    }
    if (r->net_eof && buf_used(&r->to_plain) == 0 && !r->plain_shut) {
        (void)shutdown(r->plain, SHUT_WR);
        r->plain_shut = true;
        any = true;
    }

    /* plaintext side -> client */
    if (!r->plain_eof && !buf_full(&r->to_net, r->buf_max)) {
        size_t room = buf_room(&r->to_net, r->buf_max);

        n = read(r->plain, r->to_net.p + r->to_net.len, room);
        if (n > 0) {
            r->to_net.len += (size_t)n;
            any = true;
        } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            r->plain_eof = true;
            if (r->closed_by == NULL)
                r->closed_by = "server";
            any = true;
        }
        if (buf_used(&r->to_net) == 0)
            buf_release(&r->to_net);
    }
    if (buf_used(&r->to_net) > 0 && !r->failed) {
        size_t len = buf_used(&r->to_net);
        int put, w;

        ERR_clear_error();
        put = SSL_write(r->ssl, r->to_net.p + r->to_net.off,
                        len > 0x7fffffff ? 0x7fffffff : (int)len);
        if (put > 0) {
            buf_consume(&r->to_net, (size_t)put);
            r->write_want = POLLOUT;
            any = true;
        } else if ((w = relay_ssl_error(r, put, "write", err)) < 0) {
            return -1;
        } else if (w == 0) {
            /* the client closed: what is left cannot reach it */
            r->net_eof = true;
            buf_release(&r->to_net);
            any = true;
        } else {
            r->write_want = (short)w;
        }
    }
    return any ? 1 : 0;
}

int tls_relay_run(struct tls_relay *r, bool *moved, struct str *err)
{
    *moved = false;
    if (!r->handshaken) {
        if (relay_handshake(r, moved, err) < 0)
            return -1;
        if (!r->handshaken)
            return 1;
    }
    /* Bounded: each pass moves at least a byte or ends the loop, and the buffers
     * bound what one pass can take; the cap keeps one busy connection from holding
     * the loop for long. */
    r->more = true;
    for (int i = 0; i < 64; i++) {
        int rc = relay_pass(r, err);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            r->more = false;
            break;
        }
        *moved = true;
    }
    /* Over when the client has gone and all it said is delivered, or when the
     * plaintext side has gone and all it said is sent. */
    if (r->net_eof && buf_used(&r->to_plain) == 0)
        return 0;
    if (r->plain_eof && buf_used(&r->to_net) == 0)
        return 0;
    return 1;
}

void tls_relay_events(const struct tls_relay *r, short *net_events, short *plain_events)
{
    short ne = 0, pe = 0;

    if (!r->handshaken) {
        ne = r->hs_want;
    } else {
        if (!r->net_eof && !buf_full(&r->to_plain, r->buf_max))
            ne |= r->read_want;
        if (buf_used(&r->to_net) > 0)
            ne |= r->write_want;
        if (!r->plain_eof && !buf_full(&r->to_net, r->buf_max))
            pe |= POLLIN;
        if (buf_used(&r->to_plain) > 0)
            pe |= POLLOUT;
    }
    *net_events = ne;
    *plain_events = pe;
}

bool tls_relay_more(const struct tls_relay *r)
{
    return r->handshaken && r->more;
}

int tls_relay_net_fd(const struct tls_relay *r)
{
    return r->net;
}

int tls_relay_plain_fd(const struct tls_relay *r)
{
    return r->plain;
}

bool tls_relay_handshaken(const struct tls_relay *r)
{
    return r->handshaken;
}

const char *tls_relay_version(const struct tls_relay *r)
{
    return r->handshaken ? SSL_get_version(r->ssl) : NULL;
}

const char *tls_relay_cipher(const struct tls_relay *r)
{
    return r->handshaken ? SSL_get_cipher_name(r->ssl) : NULL;
}

int tls_relay_cipher_bits(const struct tls_relay *r)
{
    return r->handshaken ? SSL_get_cipher_bits(r->ssl, NULL) : 0;
}

const char *tls_relay_closed_by(const struct tls_relay *r)
{
    return r->closed_by;
}
