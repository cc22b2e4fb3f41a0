/* pop3d: the POP3 server in two programs-in-one (see pop3d(8)).
 *   pop3d -l   pre-auth: greets, reads the AUTHORIZATION state, asks auth, hands the
 *              client to the post-login service (login/pop3); chrooted to login/,
 *              no rights, no password data, no mailbox access.
 *   pop3d      post-login: receives clients, asks auth who they are (token), forks
 *              a session per client that drops to the mailbox owner.
 * Everything read from a client is untrusted. */
#ifndef POP3D_H
#define POP3D_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

struct stream;
struct server;
struct tls_ctx;
struct login_handoff;
struct auth_result;

#define POP3_CMD_MAX 255            /* RFC 2449: a command line, CRLF included */
#define POP3_SASL_MAX 1024          /* a SASL response line */
#define POP3_NAME_MAX 255           /* a user name */
#define POP3_LOGIN_SOCKET "pop3"    /* the post-login service, relative to login/ */
#define POP3_AUTH_SOCKET "auth"     /* auth, relative to login/ */
#define POP3_FAIL_DELAY 1           /* seconds before a failed login is answered */

struct pop3_conf {
    int timeout_ms;                 /* pop3d_timeout */
    int ipc_timeout_ms;             /* ipc_timeout */
    long long error_limit;          /* pop3d_error_limit */
    bool wrapper;                   /* pop3d_tls_wrapper: TLS from the first byte */
    struct tls_ctx *tls;            /* NULL without a certificate */
    const char *hostname;
};

extern struct pop3_conf pop3_cf;

/* ---- cmd.c: reading commands, replying ---- */
#define POP3_LINE_OK 1              /* a line, line end removed */
#define POP3_LINE_BAD 2             /* too long or holds NUL: answer -ERR, go on */
#define POP3_LINE_EOF 0             /* EOF, error or timeout: end the session */

/* Reads one line of at most max bytes (CRLF included) into line, without its line end. */
int pop3_getline(struct stream *st, struct str *line, size_t max);
/* Splits line in place: the keyword (upper-cased) and the rest after one space. */
void pop3_split(struct str *line, const char **keyword, const char **args);
/* "-ERR text" and one more error against the limit; false when the limit is reached
 * (the caller closes the connection). */
bool pop3_err(struct stream *st, unsigned *errors, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A strictly decimal message number 1..max, or 0. */
size_t pop3_msgno(const char *s, size_t max);

/* ---- sasl.c ---- */
/* Decodes base64 (strict: padding only at the end, no white space).  0, or -1. */
int pop3_base64_decode(const char *in, size_t len, struct str *out);
/* AUTH PLAIN's "authzid\0authcid\0password": 0, or -1 when malformed. */
int pop3_sasl_plain(const struct str *decoded, struct str *user, struct str *pass);

/* ---- preauth.c ---- */
void pop3_preauth_service(struct server *srv, int *fd);

/* ---- proxy.c ---- */
/* Relays between the TLS stream and the plain socket pair end until either side
 * closes.  Closes pair. */
void pop3_proxy(struct stream *client, int pair, int timeout_ms);

/* ---- postlogin.c ---- */
int pop3_postlogin_loop(struct server *srv);

/* ---- session.c ---- */
/* The TRANSACTION and UPDATE states, in the child that already runs as the user and
 * sits in the Maildir.  Returns the exit status. */
int pop3_session(struct login_handoff *h, const struct auth_result *who);

#endif
