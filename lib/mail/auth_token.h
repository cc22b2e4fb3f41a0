/* Login tokens of the auth service (see auth(8)): after a successful login auth
 * mints a token naming the user, the mailbox owner's uid and gid, the Maildir and an
 * expiry time, authenticated with HMAC-SHA256 under a 32-byte key that only auth
 * can read (queue_directory/private/auth.key).  A token is printable:
 *
 *     base64url(payload) "." hex(HMAC-SHA256(key, payload))
 *     payload = "1|EXPIRY|UID|GID|USER|MAILDIR"
 *
 * USER holds no '|'; MAILDIR, last, may.  Verification checks the MAC in constant
 * time before it looks at any field, then the expiry. */
#ifndef POSTERN_AUTH_TOKEN_H
#define POSTERN_AUTH_TOKEN_H

#include <sys/types.h>

#include "str.h"

#define AUTH_TOKEN_KEY_SIZE 32
#define AUTH_TOKEN_LIFETIME 60          /* seconds */
#define AUTH_TOKEN_MAX 4096             /* longest token accepted, bytes */

struct auth_token {
    struct str user;
    uid_t uid;
    gid_t gid;
    struct str maildir;
    long long expiry;                   /* time(2) seconds */
};

void auth_token_init(struct auth_token *t);
void auth_token_free(struct auth_token *t);

/* Reads the key at path, or makes one (RAND_bytes, mode 0600) when there is none:
 * written under a temporary name and link(2)ed into place, so that processes
 * starting together end up with the same key.  The file must be a regular file of
 * exactly AUTH_TOKEN_KEY_SIZE bytes, owned by us, with no group or other access.
 * 0, or -1 with err. */
int auth_token_key_load(const char *path, unsigned char key[AUTH_TOKEN_KEY_SIZE],
                        struct str *err);

/* Appends the token for t to out (cleared first): 0, or -1 when a field cannot be
 * carried (empty user, '|' or a control character in the user, a control character
 * in the Maildir, token too long). */
int auth_token_mint(const unsigned char key[AUTH_TOKEN_KEY_SIZE], const struct auth_token *t,
                    struct str *out);

/* 1 when token is authentic and not expired at now (t filled), else 0. */
int auth_token_verify(const unsigned char key[AUTH_TOKEN_KEY_SIZE], const char *token,
                      long long now, struct auth_token *t);

#endif
