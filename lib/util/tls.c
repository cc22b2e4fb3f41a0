/* TLS contexts and the TLS transport beneath lib/util/stream.h (OpenSSL 3).
 * Trusts the certificate and key files it is given (the admin's); trusts nothing the
 * peer sends: a bad handshake, a timeout or a vanished peer is an error returned with
 * a message, never a crash.  TLS 1.2 and 1.3 only, no compression, no renegotiation.
 * The socket is made non-blocking and every TLS read, write and handshake step waits
 * with poll() within the stream's timeout. */
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "fd.h"
#include "str.h"
#include "stream.h"
#include "xmalloc.h"

/* Ciphers for TLS 1.2; TLS 1.3 keeps OpenSSL's own (all of them are modern). */
#define TLS_CIPHERS_12 "HIGH:!aNULL:!MD5:!RC4:!3DES"

struct tls_ctx {
    SSL_CTX *ssl_ctx;
};

/* The transport's ctx: one per TLS connection.  Live ones are kept in a list so
 * that tls_active() can tell a TLS stream from a plain one without guessing. */
struct tls_conn {
    SSL *ssl;
    int fd;
    bool failed;                /* a fatal TLS error: no more I/O, no close_notify */
    bool verified;
    struct tls_conn *next;
};

static struct tls_conn *tls_conns;

/* Appends OpenSSL's queued errors (or the fallback text) to err after "what: ". */
void tls_error(struct str *err, const char *what, const char *fallback)
{
    unsigned long e;
    char buf[256];
    bool any = false;

    if (err == NULL) {
        ERR_clear_error();
        return;
    }
    str_printf(err, "%s: ", what);
    while ((e = ERR_get_error()) != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        str_printf(err, "%s%s", any ? "; " : "", buf);
        any = true;
    }
    if (!any)
        str_appends(err, fallback);
}

/* After an SSL call returned r <= 0: waits when OpenSSL wants the socket (1: retry),
 * or fails (-1, errno set; conn marked failed unless it was a timeout). */
static int tls_retry(struct tls_conn *c, int r, int timeout_ms, long long deadline)
{
    int e = SSL_get_error(c->ssl, r);

    switch (e) {
    case SSL_ERROR_WANT_READ:
        return fd_wait(c->fd, POLLIN, timeout_ms >= 0 ? deadline : -1) < 0 ? -1 : 1;
    case SSL_ERROR_WANT_WRITE:
        return fd_wait(c->fd, POLLOUT, timeout_ms >= 0 ? deadline : -1) < 0 ? -1 : 1;
    case SSL_ERROR_SYSCALL:
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return 1;
        if (errno == 0)
            errno = ECONNRESET;
        c->failed = true;
        return -1;
    default:
        c->failed = true;
        errno = EPROTO;
        return -1;
    }
}

/* One SSL_write of wbuf (writing) or SSL_read into rbuf, retried while OpenSSL
 * waits for the socket: the bytes moved, 0 at a clean close (reading) or for len 0
 * (writing), or -1 with errno. */
static ssize_t tls_io(struct tls_conn *c, bool writing, void *rbuf, const void *wbuf,
                      size_t len, int timeout_ms)
{
    long long deadline = timeout_ms >= 0 ? clock_ms() + timeout_ms : 0;
    int want = len > INT_MAX ? INT_MAX : (int)len;

    if (c->failed) {
        errno = EIO;
        return -1;
    }
    if (writing && len == 0)
        return 0;
    for (;;) {
        int r;

        ERR_clear_error();
        errno = 0;
        r = writing ? SSL_write(c->ssl, wbuf, want) : SSL_read(c->ssl, rbuf, want);
        if (r > 0)
            return r;
        if (!writing && SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN)
            return 0;
        if (tls_retry(c, r, timeout_ms, deadline) < 0)
            return -1;
    }
}

static ssize_t tls_read(void *ctx, void *buf, size_t len, int timeout_ms)
{
    return tls_io(ctx, false, buf, NULL, len, timeout_ms);
}

static ssize_t tls_write(void *ctx, const void *buf, size_t len, int timeout_ms)
{
    return tls_io(ctx, true, NULL, buf, len, timeout_ms);
}

static size_t tls_pending(void *ctx)
{
    struct tls_conn *c = ctx;
    int n = c->failed ? 0 : SSL_pending(c->ssl);
    return n > 0 ? (size_t)n : 0;
}

static void tls_conn_free(void *ctx)
{
    struct tls_conn *c = ctx, **pp;

    if (c == NULL)
        return;
    for (pp = &tls_conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    /* One non-blocking close_notify, best effort: the peer may be gone already. */
    if (!c->failed && SSL_is_init_finished(c->ssl)) {
        ERR_clear_error();
        (void)SSL_shutdown(c->ssl);
    }
    ERR_clear_error();
    SSL_free(c->ssl);
    free(c);
}

static const struct stream_ops tls_ops = {
    .read = tls_read,
    .write = tls_write,
    .pending = tls_pending,
    .free = tls_conn_free,
};

/* Settings common to both sides. */
static struct tls_ctx *tls_ctx_new(const SSL_METHOD *method, struct str *err)
{
    struct tls_ctx *ctx;
    SSL_CTX *sc = SSL_CTX_new(method);

    if (sc == NULL) {
        tls_error(err, "SSL_CTX_new", "failed");
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(sc, TLS1_2_VERSION) != 1
        || SSL_CTX_set_max_proto_version(sc, TLS1_3_VERSION) != 1
        || SSL_CTX_set_cipher_list(sc, TLS_CIPHERS_12) != 1) {
        tls_error(err, "TLS settings", "failed");
        SSL_CTX_free(sc);
        return NULL;
    }
    SSL_CTX_set_options(sc, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION
                            | SSL_OP_IGNORE_UNEXPECTED_EOF);
    ctx = xmalloc(sizeof(*ctx));
    ctx->ssl_ctx = sc;
    return ctx;
}

struct tls_ctx *tls_server_ctx(const char *cert_file, const char *key_file, struct str *err)
{
    static const unsigned char sid_ctx[] = "postern";
    struct tls_ctx *ctx;
    SSL_CTX *sc;

    if (cert_file == NULL || *cert_file == '\0' || key_file == NULL || *key_file == '\0') {
        if (err != NULL)
            str_appends(err, "no certificate or key file configured");
        return NULL;
    }
    ERR_clear_error();
    if ((ctx = tls_ctx_new(TLS_server_method(), err)) == NULL)
        return NULL;
    sc = ctx->ssl_ctx;
    SSL_CTX_set_options(sc, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_dh_auto(sc, 1);
    (void)SSL_CTX_set_session_id_context(sc, sid_ctx, sizeof(sid_ctx) - 1);
    if (SSL_CTX_use_certificate_chain_file(sc, cert_file) != 1) {
        tls_error(err, cert_file, "cannot load the certificate");
        tls_ctx_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(sc, key_file, SSL_FILETYPE_PEM) != 1) {
        tls_error(err, key_file, "cannot load the private key");
        tls_ctx_free(ctx);
        return NULL;
    }
    if (SSL_CTX_check_private_key(sc) != 1) {
        tls_error(err, key_file, "the key does not match the certificate");
        tls_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

struct ssl_ctx_st *tls_ctx_ssl(struct tls_ctx *ctx)
{
    return ctx->ssl_ctx;
}

struct tls_ctx *tls_client_ctx(const char *ca_file, struct str *err)
{
    struct tls_ctx *ctx;
    int ok;

    ERR_clear_error();
    if ((ctx = tls_ctx_new(TLS_client_method(), err)) == NULL)
        return NULL;
    if (ca_file != NULL && *ca_file != '\0')
        ok = SSL_CTX_load_verify_locations(ctx->ssl_ctx, ca_file, NULL);
    else
        ok = SSL_CTX_set_default_verify_paths(ctx->ssl_ctx);
    if (ok != 1) {
        tls_error(err, ca_file != NULL && *ca_file != '\0' ? ca_file : "default CA paths",
                  "cannot load the CA certificates");
        tls_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

/* Makes the TLS connection for st's socket and pushes it beneath the stream:
 * returns the connection (the stream owns it now) or NULL with err. */
static struct tls_conn *tls_conn_attach(struct tls_ctx *ctx, struct stream *st,
                                        size_t *dropped, struct str *err)
{
    struct tls_conn *c;
    int fd = stream_fd(st), flags;
    SSL *ssl;

    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        if (err != NULL)
            str_printf(err, "fcntl: %s", strerror(errno));
        return NULL;
    }
    ERR_clear_error();
    if ((ssl = SSL_new(ctx->ssl_ctx)) == NULL) {
        tls_error(err, "SSL_new", "failed");
        return NULL;
    }
    if (SSL_set_fd(ssl, fd) != 1) {
        tls_error(err, "SSL_set_fd", "failed");
        SSL_free(ssl);
        return NULL;
    }
    c = xmalloc(sizeof(*c));
    c->ssl = ssl;
    c->fd = fd;
    c->failed = false;
    c->verified = false;
    c->next = tls_conns;
    tls_conns = c;
    *dropped = stream_set_transport(st, &tls_ops, c);
    return c;
}

/* Runs the handshake to its end within timeout_ms: 0, or -1 with err. */
static int tls_handshake(struct tls_conn *c, int timeout_ms, struct str *err)
{
    long long deadline = timeout_ms >= 0 ? clock_ms() + timeout_ms : 0;

    for (;;) {
        int r;

        ERR_clear_error();
        errno = 0;
        r = SSL_do_handshake(c->ssl);
        if (r == 1)
            return 0;
        if (SSL_get_error(c->ssl, r) == SSL_ERROR_SSL) {
            long v = SSL_get_verify_result(c->ssl);
            c->failed = true;
            if (v != X509_V_OK && !SSL_is_server(c->ssl)) {
                if (err != NULL)
                    str_printf(err, "TLS handshake: certificate verification failed: %s",
                               X509_verify_cert_error_string(v));
                ERR_clear_error();
            } else {
                tls_error(err, "TLS handshake", "protocol error");
            }
            return -1;
        }
        if (SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN) {
            c->failed = true;
            if (err != NULL)
                str_appends(err, "TLS handshake: connection closed by peer");
            return -1;
        }
        if (tls_retry(c, r, timeout_ms, deadline) < 0) {
            c->failed = true;
            if (err != NULL) {
                if (errno == ETIMEDOUT)
                    str_appends(err, "TLS handshake: timed out");
                else if (errno == ECONNRESET || errno == EPIPE)
                    str_appends(err, "TLS handshake: connection closed by peer");
                else
                    str_printf(err, "TLS handshake: %s", strerror(errno));
            }
            ERR_clear_error();
            return -1;
        }
    }
}

int tls_server_start(struct tls_ctx *ctx, struct stream *st, int timeout_ms,
                     size_t *discarded, struct str *err)
{
    struct tls_conn *c;
    size_t dropped = 0;

    if (discarded != NULL)
        *discarded = 0;
    if ((c = tls_conn_attach(ctx, st, &dropped, err)) == NULL)
        return -1;
    if (discarded != NULL)
        *discarded = dropped;
    SSL_set_accept_state(c->ssl);
    return tls_handshake(c, timeout_ms, err);
}

/* true when name is an IP address literal (no SNI, and checked as an IP). */
static bool tls_is_ip(const char *name)
{
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(name);
    if (ip == NULL) {
        ERR_clear_error();
        return false;
    }
    ASN1_OCTET_STRING_free(ip);
    return true;
}

int tls_client_start(struct tls_ctx *ctx, struct stream *st, const char *servername,
                     enum tls_verify verify, int timeout_ms, struct str *err)
{
    struct tls_conn *c;
    size_t dropped = 0;
    bool have_name = servername != NULL && *servername != '\0';

    if (verify == TLS_VERIFY_PEER && !have_name) {
        if (err != NULL)
            str_appends(err, "TLS: peer verification needs a server name");
        return -1;
    }
    if ((c = tls_conn_attach(ctx, st, &dropped, err)) == NULL)
        return -1;
    SSL_set_connect_state(c->ssl);
    if (have_name) {
        bool ip = tls_is_ip(servername);
        int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), servername)
                    : SSL_set1_host(c->ssl, servername);
        if (ok != 1 || (!ip && SSL_set_tlsext_host_name(c->ssl, servername) != 1)) {
            c->failed = true;
            tls_error(err, "TLS server name", "cannot be set");
            return -1;
        }
    }
    SSL_set_verify(c->ssl, verify == TLS_VERIFY_PEER ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (tls_handshake(c, timeout_ms, err) < 0)
        return -1;
    if (have_name) {
        X509 *peer = SSL_get1_peer_certificate(c->ssl);
        c->verified = peer != NULL && SSL_get_verify_result(c->ssl) == X509_V_OK;
        X509_free(peer);
    }
    return 0;
}

static struct tls_conn *tls_conn_of(const struct stream *st)
{
    void *ctx = stream_transport_ctx(st);
    struct tls_conn *c;

    for (c = tls_conns; c != NULL; c = c->next)
        if (c == ctx)
            return c;
    return NULL;
}

bool tls_active(const struct stream *st)
{
    struct tls_conn *c = tls_conn_of(st);
    return c != NULL && !c->failed && SSL_is_init_finished(c->ssl);
}

const char *tls_version(const struct stream *st)
{
    struct tls_conn *c = tls_conn_of(st);
    return c != NULL ? SSL_get_version(c->ssl) : NULL;
}

const char *tls_cipher(const struct stream *st)
{
    struct tls_conn *c = tls_conn_of(st);
    const SSL_CIPHER *ci = c != NULL ? SSL_get_current_cipher(c->ssl) : NULL;
    return ci != NULL ? SSL_CIPHER_get_name(ci) : NULL;
}

int tls_cipher_bits(const struct stream *st)
{
    struct tls_conn *c = tls_conn_of(st);
    const SSL_CIPHER *ci = c != NULL ? SSL_get_current_cipher(c->ssl) : NULL;
    return ci != NULL ? SSL_CIPHER_get_bits(ci, NULL) : 0;
}

bool tls_peer_verified(const struct stream *st)
{
    struct tls_conn *c = tls_conn_of(st);
    return c != NULL && c->verified;
}
