/* Privileges: dropping to a user, chroot, temporary switches of the effective ids
 * (local delivery).  Every function is a no-op on
 * the privilege side when the process is not running as root, so an instance run by
 * an ordinary user behaves the same in every other way. */
#ifndef POSTERN_PRIV_H
#define POSTERN_PRIV_H

#include <stdbool.h>
#include <sys/types.h>

struct str;

bool priv_is_root(void);                 /* real uid 0 at start */
/* uid and gid of a user name: 0, or -1 (no such user, err says so). */
int priv_lookup(const char *user, uid_t *uid, gid_t *gid, struct str *err);
/* When root: chroot(dir) if dir is not NULL, then setgroups/setgid/setuid to user,
 * and verify that root cannot be regained.  When not root: chdir(dir) only.
 * 0, or -1 with err. */
int priv_drop(const char *user, const char *chroot_dir, struct str *err);
/* Effective ids switch for a root process, and back: no-ops when not root. */
int priv_become(uid_t uid, gid_t gid, struct str *err);
int priv_restore(struct str *err);

#endif
