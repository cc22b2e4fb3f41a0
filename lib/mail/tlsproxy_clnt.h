/* The pre-auth processes' side of tlsproxy(8): a client that is to speak TLS now (at
 * connect on an implicit-TLS port, or after the STARTTLS answer) is handed to the
 * proxy, which does the handshake and relays; this process then reads and writes
 * plaintext on a socket pair, which it can hand to a session after login like any
 * plaintext client.  The protocol is described in tlsproxy/request.c. */
#ifndef POSTERN_TLSPROXY_CLNT_H
#define POSTERN_TLSPROXY_CLNT_H

#include <stddef.h>

struct str;
struct stream;

struct tlsproxy_req {
    const char *path;           /* PROTO_LOGIN_TLSPROXY from inside login/ */
    const char *service;        /* for the proxy's log: "imaps", "pop3", ... */
    long long handshake_ms;     /* the handshake's time, from now */
    long long idle_ms;          /* the relay ends after this long without a byte */
    int ipc_timeout_ms;         /* for the request and its answer */
};

/* Hands the client under *st to the proxy.  On success (0) *st is a new stream over
 * the plaintext (its timeouts and deadline are the caller's to set again), *raw the
 * old one, which must stay open while the connection lasts (auth reads the client's
 * address from it) but is never read or written again, and *discarded the count of
 * bytes the client sent before its handshake, which are dropped.  -1 with err: *st
 * is unchanged, the client untouched, and TLS may still be done here. */
int tlsproxy_start(const struct tlsproxy_req *q, struct stream **st, struct stream **raw,
                   size_t *discarded, struct str *err);

#endif
