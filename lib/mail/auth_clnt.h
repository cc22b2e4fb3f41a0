/* Client side of the auth service, for smtpd (AUTH), the pop3d and imapd login
 * processes (pre-auth) and their post-login sessions.  The socket is "login/auth"
 * under the queue directory: login/ holds only sockets, and is the chroot of the
 * pre-auth processes.  Protocol "auth", version 2 (proto.h), see auth(8); every
 * frame begins with "proto=auth/2":
 *
 *   "req=auth" "service=pop3|imap|smtp" "user=U" "password=P" "client=IP"
 *      -> "status=ok" "user=CANONICAL" "token=T"
 *       | "status=fail" "text=..."           (wrong user or password; the reply is
 *                                              delayed more for each recent failure
 *                                              from that client address)
 *       | "status=tempfail" "text=..."       (a map or the shadow file failed)
 *   "req=lookup" "token=T"
 *      -> "status=ok" "user=U" "uid=N" "gid=N" "maildir=/abs/path/"
 *       | "status=fail" "text=..."
 *
 * A token is minted by auth after a successful login: it names the user, expires after
 * 60 seconds and is authenticated (HMAC-SHA256 under a key only auth can read), so a
 * pre-auth process can pass it on but not forge one.  The post-login side presents it
 * with "lookup" to learn uid, gid and Maildir: it never trusts the pre-auth process's
 * word about who logged in. */
#ifndef POSTERN_AUTH_CLNT_H
#define POSTERN_AUTH_CLNT_H

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
};

void auth_result_init(struct auth_result *r);
void auth_result_free(struct auth_result *r);

struct auth_clnt;

/* path: normally PROTO_PATH_AUTH relative to the current directory (the queue
 * directory, or the login/ directory itself when chrooted there: PROTO_LOGIN_AUTH). */
struct auth_clnt *auth_clnt_open(const char *path, int timeout_ms);
void auth_clnt_close(struct auth_clnt *ac);

/* Any failure to get an answer (I/O, another version, a malformed reply) is logged
 * and is AUTH_TEMPFAIL.  service: PROTO_SERVICE_POP3, _IMAP or _SMTP. */
enum auth_status auth_login(struct auth_clnt *ac, const char *service, const char *user,
                            const char *password, const char *client,
                            struct auth_result *r);
enum auth_status auth_lookup(struct auth_clnt *ac, const char *token, struct auth_result *r);

#endif
