/* The hand-off of an authenticated client from a pre-auth process (pop3d -l, imapd -l)
 * to its post-login service over a UNIX socket (login/pop3, login/imap).
 *
 * Wire: the pre-auth side connects, sends the client's descriptor with one byte "F"
 * (fd_send), then one attr frame of protocol "login" (names in proto.h):
 *     "proto=login/2" "service=pop3" "token=T" "user=U" "client=IP" "tls=yes|no"
 *     "pending=BYTES"
 * pending holds what the client sent after its login command (pipelining), at most
 * LOGIN_PENDING_MAX bytes.  The post-login side answers "proto=login/2" "status=ok"
 * once it holds the descriptor and the frame: from then on the client is its
 * business, and the pre-auth side closes its copy.  Any other answer (an error reply
 * to another version, say), or none, leaves the client with the pre-auth side, which
 * tells it of a temporary failure.
 *
 * The post-login side trusts nothing in the frame but the fact that someone who could
 * reach the socket sent it: user and client are for logs, the token is checked with
 * auth (auth_lookup), which alone says who logged in. */
#ifndef POSTERN_LOGIN_H
#define POSTERN_LOGIN_H

#include <stdbool.h>
#include <stddef.h>

#include "auth_clnt.h"
#include "str.h"

struct stream;

#define LOGIN_PENDING_MAX 65536
#define LOGIN_TEXT_MAX 4096         /* longest service, token, user, client, tls */
#define LOGIN_FRAME_MAX (LOGIN_PENDING_MAX + 8192)

struct login_handoff {
    int fd;                 /* the client (or one end of a proxy pair); -1 when none */
    struct str service;
    struct str token;
    struct str user;
    struct str client;
    struct str pending;
    bool tls;
};

void login_handoff_init(struct login_handoff *h);
/* Frees the strings and closes fd when >= 0. */
void login_handoff_free(struct login_handoff *h);

/* Pre-auth side: hands h->fd and the frame to the service at path.  h->fd stays open
 * (the caller closes it after success).  0, or -1 with err. */
int login_send(const char *path, const struct login_handoff *h, int timeout_ms,
               struct str *err);

/* Post-login side: reads the descriptor and the frame from conn (an accepted
 * connection) into h and acknowledges.  conn is closed in every case.  0, or -1 with
 * err (h->fd is then -1). */
int login_receive(int conn, struct login_handoff *h, int timeout_ms, struct str *err);

/* A stream over h->fd that yields h->pending before anything read from the fd.  The
 * stream owns the fd from now on (h->fd becomes -1). */
struct stream *login_stream(struct login_handoff *h);


/* One login on the pre-auth side: who is asking, and how. */
struct login_attempt {
    const char *service;        /* PROTO_SERVICE_POP3, PROTO_SERVICE_IMAP */
    const char *auth_path;      /* auth's socket */
    const char *method;         /* for the log: "PLAIN", "LOGIN", "USER" */
    const char *client;         /* the client's address, for logs and the hand-off */
    int client_fd;              /* the client's socket: auth reads its address there */
    bool tls;
    size_t name_max;            /* longest user name accepted */
    int auth_timeout_ms;
};

/* Pre-auth side: asks auth about user and pass (an empty or NUL-holding name or
 * password, or a name over a->name_max, fails without asking), waits out the
 * penalty auth names, and logs the outcome.  On AUTH_OK, r->user is the login. */
enum auth_status login_check_password(const struct login_attempt *a, const struct str *user,
                                      const struct str *pass, struct auth_result *r);

/* Pre-auth side: gives the client on st, logged in as r says and already told so
 * (the reply flushed), to the post-login service at path, with what it has
 * pipelined since; when st itself speaks TLS (done in this process because
 * tlsproxy(8) could not be reached), then relays for it until it ends (login_proxy).
 * 0 once handed over; -1 (logged) when the service could not take it, and the
 * caller tells the client. */
int login_hand_over(const struct login_attempt *a, struct stream *st, const char *path,
                    const struct auth_result *r, int ipc_timeout_ms, int proxy_timeout_ms);

/* Pre-auth side, when TLS ended there (the fallback when tlsproxy(8) cannot be
 * reached): relays between the client's TLS stream and
 * pair (the other end went to the session) until either side closes or nothing moves
 * for twice timeout_ms.  Closes pair. */
void login_proxy(struct stream *client, int pair, int timeout_ms);

#endif
