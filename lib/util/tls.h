/* TLS for every server and the SMTP client, with OpenSSL 3, as a transport beneath
 * lib/util/stream.h: after tls_server_start()/tls_client_start() the stream reads and
 * writes through TLS and protocol code does not change.  TLS 1.2 and 1.3 only.
 *
 * A context is made once per process (before chroot: it reads the certificate and
 * key files) and reloaded by making a new one (SIGHUP restarts daemons anyway). */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <stdbool.h>
#include <stddef.h>

struct stream;
struct str;
struct tls_ctx;

/* Server context from a certificate file (PEM; the chain may follow the leaf in the
 * same file) and a key file.  NULL with err. */
struct tls_ctx *tls_server_ctx(const char *cert_file, const char *key_file, struct str *err);

enum tls_verify {
    TLS_VERIFY_NONE,        /* encrypt, check nothing (levels may, encrypt) */
    TLS_VERIFY_PEER,        /* chain must verify against ca_file and the name match */
};
/* Client context; ca_file may be NULL (then the system's default paths). */
struct tls_ctx *tls_client_ctx(const char *ca_file, struct str *err);
void tls_ctx_free(struct tls_ctx *ctx);
/* For code that drives OpenSSL itself (tls_relay.c): the context's SSL_CTX. */
struct ssl_ctx_st;
struct ssl_ctx_st *tls_ctx_ssl(struct tls_ctx *ctx);
/* Appends "what: " and OpenSSL's queued errors (or fallback when none) to err, and
 * clears the queue; err NULL: only clears it. */
void tls_error(struct str *err, const char *what, const char *fallback);

/* Handshake on st; on success the stream's transport is TLS from now on, and any
 * bytes buffered before the handshake are discarded (and counted in *discarded when
 * not NULL: STARTTLS injection).  timeout_ms bounds the whole handshake.
 * 0, or -1 with err (the connection is then unusable: close it). */
int tls_server_start(struct tls_ctx *ctx, struct stream *st, int timeout_ms,
                     size_t *discarded, struct str *err);
int tls_client_start(struct tls_ctx *ctx, struct stream *st, const char *servername,
                     enum tls_verify verify, int timeout_ms, struct str *err);

/* After a handshake: "TLSv1.3", "TLS_AES_256_GCM_SHA384", bits; peer verified. */
bool tls_active(const struct stream *st);
const char *tls_version(const struct stream *st);
const char *tls_cipher(const struct stream *st);
int tls_cipher_bits(const struct stream *st);
bool tls_peer_verified(const struct stream *st);

/* A self-signed certificate and key for hostname (RSA 2048 or EC P-256, 10 years),
 * written as PEM files with mode 0644 (cert) and 0600 (key).  0, or -1 with err. */
int tls_make_self_signed(const char *hostname, const char *cert_file, const char *key_file,
                         struct str *err);

#endif
