/* Password checks against crypt(3) hashes (yescrypt, sha512-crypt, bcrypt and the
 * other methods libcrypt supports).  The hash comes from a password map or the
 * shadow file; it is checked for shape, and a hash that is empty, locked ("!", "*"),
 * truncated or of an unknown method never matches.  The recomputed hash is compared
 * in constant time. */
#ifndef POSTERN_PASSWD_VERIFY_H
#define POSTERN_PASSWD_VERIFY_H

#include <stdbool.h>

/* true when password hashes to hash. */
bool passwd_verify(const char *password, const char *hash);

/* Spends the work of one yescrypt check on nothing, so that an unknown user
 * costs as much time as a known one with a wrong password. */
void passwd_verify_dummy(const char *password);

#endif
