/* One TLS server connection relayed to a plaintext descriptor without ever waiting,
 * for a process that serves many of them from one poll() loop (tlsproxy(8)): the
 * handshake, then bytes copied both ways through two bounded buffers, each allocated
 * only while it holds bytes, and OpenSSL's own buffers released while idle
 * (SSL_MODE_RELEASE_BUFFERS), so that an idle connection costs little memory.
 *
 * The caller polls the two descriptors for what tls_relay_events() asks and calls
 * tls_relay_run() whenever either shows an event; the relay never interprets the
 * bytes.  Nothing the peer sends is trusted: a bad handshake or record is an error
 * with a message, never a crash. */
#ifndef POSTERN_TLS_RELAY_H
#define POSTERN_TLS_RELAY_H

#include <stdbool.h>
#include <stddef.h>

struct str;
struct tls_ctx;
struct tls_relay;

/* A relay of the TLS client on net (a connected socket) to plain (a socket whose
 * peer speaks plaintext), both owned by the relay from now on and made
 * non-blocking; buf_max bounds each direction's buffer.  NULL with err (net and
 * plain are then closed). */
struct tls_relay *tls_relay_new(struct tls_ctx *ctx, int net, int plain, size_t buf_max,
                                struct str *err);
/* Closes both descriptors (after a close_notify when the handshake was done and the
 * plaintext side ended first) and frees r.  NULL: nothing. */
void tls_relay_free(struct tls_relay *r);

/* Moves everything that can move now.  1: going on (poll again); 0: over, both ways
 * done; -1: failed, with err (the handshake, a TLS error, a descriptor error).  *moved
 * is set when any byte moved (the handshake's included), for idle timeouts. */
int tls_relay_run(struct tls_relay *r, bool *moved, struct str *err);
/* The poll() events to wait for on the two descriptors (0: none). */
void tls_relay_events(const struct tls_relay *r, short *net_events, short *plain_events);
/* Whether the last run stopped at its cap with more to move: then run it again
 * without waiting for poll, since what OpenSSL has already read (a record decrypted
 * but not yet taken) wakes no descriptor. */
bool tls_relay_more(const struct tls_relay *r);
int tls_relay_net_fd(const struct tls_relay *r);
int tls_relay_plain_fd(const struct tls_relay *r);

/* After the handshake: "TLSv1.3", the cipher's name and bits; before it NULL, 0. */
bool tls_relay_handshaken(const struct tls_relay *r);
const char *tls_relay_version(const struct tls_relay *r);
const char *tls_relay_cipher(const struct tls_relay *r);
int tls_relay_cipher_bits(const struct tls_relay *r);
/* Which side ended the relay first, for the log: "client", "server" or NULL. */
const char *tls_relay_closed_by(const struct tls_relay *r);

#endif
