/* Password checks of auth(8): finds the user (a virtual user in
 * auth_password_maps, or a system user in the shadow file), verifies the password,
 * and finds the mailbox that a successful login opens. */
#ifndef POSTERN_AUTH_CHECK_H
#define POSTERN_AUTH_CHECK_H

#include "auth_token.h"
#include "str.h"

struct conf;
struct auth_check;

enum auth_verdict {
    AUTH_CHECK_OK,
    AUTH_CHECK_FAIL,            /* unknown user, wrong password, no mailbox */
    AUTH_CHECK_TEMPFAIL,        /* a map or the shadow file failed */
};

/* Opens the maps; NULL with err on a config error. */
struct auth_check *auth_check_open(const struct conf *conf, struct str *err);
void auth_check_close(struct auth_check *ac);

/* Checks user and password.  On AUTH_CHECK_OK, t holds the canonical user, the
 * mailbox owner's uid and gid and the Maildir (expiry not set).  why says what
 * failed, for the log (never the password). */
enum auth_verdict auth_check_login(struct auth_check *ac, const char *user,
                                   const char *password, struct auth_token *t,
                                   struct str *why);

#endif
