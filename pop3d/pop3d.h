/* pop3d: the POP3 server in two programs-in-one (see pop3d(8)).
 *   pop3d -l   pre-auth: greets, reads the AUTHORIZATION state, asks auth, hands the
 *              client to the post-login service (login/pop3); chrooted to login/,
 *              no rights, no password data, no mailbox access.
 *   pop3d      post-login: receives clients, asks auth who they are (token), and
 *              gives each to a session process running as the mailbox owner,
 *              chrooted into the user's Maildir (kept and reused for the same
 *              virtual user only, one per session for system users).
 * Everything read from a client is untrusted. */
#ifndef POP3D_H
#define POP3D_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conn_limit.h"
#include "str.h"

struct stream;
struct server;
struct tls_ctx;
struct login_handoff;
struct auth_result;

#define POP3_CMD_MAX 255            /* RFC 2449: a command line, CRLF included */
#define POP3_SASL_MAX 1024          /* a SASL response line */
#define POP3_NAME_MAX 255           /* a user name */
#define POP3_LAST_REPLY_MS 10000    /* for the reply after a timeout */

struct pop3_conf {
    int timeout_ms;                 /* pop3d_timeout */
    int ipc_timeout_ms;             /* ipc_timeout */
    long long command_deadline_ms;  /* pop3d_command_deadline */
    long long preauth_deadline_ms;  /* pop3d_preauth_deadline */
    int auth_timeout_ms;            /* auth_request_timeout */
    long long error_limit;          /* pop3d_error_limit */
    bool wrapper;                   /* pop3d_tls_wrapper: TLS from the first byte */
    struct tls_ctx *tls;            /* NULL without a certificate */
    const char *hostname;
    struct conn_limit limits;       /* pre-auth: per client, counted by anvil */
};

extern struct pop3_conf pop3_cf;

/* ---- cmd.c: reading commands, replying ---- */
#define POP3_LINE_OK 1              /* a line, line end removed */
#define POP3_LINE_BAD 2             /* too long or holds NUL: answer -ERR, go on */
#define POP3_LINE_EOF 0             /* EOF, error or timeout: end the session */

/* Reads one line of at most max bytes (CRLF included) into line, without its line
 * end.  The wait for its first byte is pop3d_timeout, the line itself has
 * pop3d_command_deadline; both are cut to phase_deadline (clock_ms(), 0: none),
 * which is the stream's deadline again on return.  A timeout is POP3_LINE_EOF with
 * errno ETIMEDOUT. */
int pop3_getline(struct stream *st, struct str *line, size_t max, long long phase_deadline);
/* After pop3_getline timed out: "timeout" (idle) or "command line deadline exceeded". */
const char *pop3_timeout_kind(void);
/* After a read timed out: "-ERR [SYS/TEMP] timeout exceeded" (best effort). */
void pop3_timeout_reply(struct stream *st);
/* Splits line in place: the keyword (upper-cased) and the rest after one space. */
void pop3_split(struct str *line, const char **keyword, const char **args);
/* "-ERR text" and one more error against the limit; false when the limit is reached
 * (the caller closes the connection). */
bool pop3_err(struct stream *st, unsigned *errors, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A strictly decimal message number 1..max, or 0. */
size_t pop3_msgno(const char *s, size_t max);
/* A non-negative decimal count (TOP's line count), at most 18 digits: 0, or -1. */
int pop3_count(const char *arg, long long *out);
/* Splits "A B" in place into two arguments; false unless there are exactly two. */
bool pop3_two_args(char *args, char **a, char **b);

/* ---- preauth.c ---- */
void pop3_preauth_service(struct server *srv, int *fd);

/* ---- listcache.c ---- */
/* The snapshot of the Maildir in the working directory (new/ moved to cur/), from
 * this process's cache when cur/ and new/ have not changed since.  0, or -1 with err. */
struct maildir_list;
int pop3_scan(struct maildir_list *ml, struct str *err);

/* ---- session.c ---- */
/* The TRANSACTION and UPDATE states, in a process that already runs as the user and
 * sits in the Maildir (its root too, when started by root).  Returns the exit status. */
int pop3_session(struct login_handoff *h, const struct auth_result *who);

#endif
