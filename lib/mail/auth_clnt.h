/* Client side of the auth service, for smtpd (AUTH), the pop3d and imapd login
 * processes (pre-auth) and their post-login sessions.  The socket is "login/auth"
 * under the queue directory: login/ holds only sockets, and is the chroot of the
 * pre-auth processes.  Protocol "auth", version 3 (proto.h), see auth(8); every
 * frame begins with "proto=auth/3":
 *
 *   "req=auth" "service=pop3|imap|smtp" "user=U" "password=P"
 *      -> "status=ok" "user=CANONICAL" "token=T" "delay=MS"
 *       | "status=fail" "text=..." "delay=MS"  (wrong user or password)
 *       | "status=tempfail" "text=..."       (a map or the shadow file failed)
 *   "req=lookup" "token=T"
 *      -> "status=ok" "user=U" "uid=N" "gid=N" "maildir=/abs/path/"
 *       | "status=fail" "text=..."
 *
 * Before a "req=auth" frame the caller passes the client's connection (the socket it
 * accepted) with one byte "F" (fd_send): auth takes the client's address from it with
 * getpeername(2), so that its failure penalties never rest on what the caller says.
 * The verdict comes at once; "delay" is how long the CALLER waits before it answers
 * its client (the penalty for recent failures), so that no auth process sleeps.
 *
 * Every request goes over a connection of its own, closed after the reply: no
 * process holds an auth process while its client is idle.  A request and its reply
 * are bounded by the timeout given to auth_clnt_open(); past it (auth saturated or
 * gone) the answer is AUTH_TEMPFAIL, logged.
 *
 * A token is minted by auth after a successful login: it names the user, expires after
 * 60 seconds and is authenticated (HMAC-SHA256 under a key only auth can read), so a
 * pre-auth process can pass it on but not forge one.  The post-login side presents it
 * with "lookup" to learn uid, gid and Maildir: it never trusts the pre-auth process's
 * word about who logged in. */
#ifndef POSTERN_AUTH_CLNT_H
#define POSTERN_AUTH_CLNT_H

#include <signal.h>
#include <sys/types.h>

#include "str.h"

enum auth_status {
    AUTH_OK = 0,
    AUTH_FAIL = 1,
    AUTH_TEMPFAIL = 2,
};

struct auth_result {
    struct str user;        /* canonical user name (the address for virtual users) */
    struct str token;       /* after req=auth */
    uid_t uid;              /* after req=lookup */
    gid_t gid;
    struct str maildir;
    struct str text;        /* reason, on failure */
    long long delay_ms;     /* after req=auth: wait this long before answering */
};

void auth_result_init(struct auth_result *r);
void auth_result_free(struct auth_result *r);

struct auth_clnt;

/* path: normally PROTO_PATH_AUTH relative to the current directory (the queue
 * directory, or the login/ directory itself when chrooted there: PROTO_LOGIN_AUTH).
 * timeout_ms bounds each request and its reply.  Connects to nothing yet. */
struct auth_clnt *auth_clnt_open(const char *path, int timeout_ms);
void auth_clnt_close(struct auth_clnt *ac);

/* Any failure to get an answer (I/O, the deadline, another version, a malformed
 * reply) is logged and is AUTH_TEMPFAIL.  service: PROTO_SERVICE_POP3, _IMAP or
 * _SMTP.  client_fd: the client's connection, passed to auth (it stays open here).
 * On AUTH_OK and AUTH_FAIL, r->delay_ms says how long to wait before answering the
 * client (auth_delay_wait). */
enum auth_status auth_login(struct auth_clnt *ac, const char *service, const char *user,
                            const char *password, int client_fd, struct auth_result *r);
enum auth_status auth_lookup(struct auth_clnt *ac, const char *token, struct auth_result *r);

/* Sleeps ms milliseconds (the delay auth asked for), again after signals; returns
 * early when stop becomes non-zero (NULL: never). */
void auth_delay_wait(long long ms, const volatile sig_atomic_t *stop);

#endif
