/* Privileges: dropping to a user (with chroot), temporary effective-id switches for
 * delivery as a mailbox owner.  When the process did not start
 * as root every privilege step is a no-op (chdir stands in for chroot). */
#include "priv.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "str.h"
#include "xmalloc.h"

static bool priv_root_at_start;
static bool priv_saved;
static gid_t priv_saved_egid;
static gid_t *priv_saved_groups;
static int priv_saved_ngroups;

__attribute__((constructor)) static void priv_record_start(void)
{
    priv_root_at_start = getuid() == 0;
}

static int priv_fail(struct str *err, const char *what, const char *arg)
{
    int e = errno;
    if (err != NULL) {
        str_clear(err);
        str_printf(err, "%s%s%s: %s", what, arg ? " " : "", arg ? arg : "", strerror(e));
    }
    errno = e;
    return -1;
}

bool priv_is_root(void)
{
    return priv_root_at_start;
}

int priv_lookup(const char *user, uid_t *uid, gid_t *gid, struct str *err)
{
    struct passwd *pw;

    errno = 0;
    pw = getpwnam(user);
    if (pw == NULL) {
        if (errno == 0)
            errno = ENOENT;
        if (err != NULL) {
            str_clear(err);
            if (errno == ENOENT || errno == ESRCH)
                str_printf(err, "unknown user %s", user);
            else
                str_printf(err, "looking up user %s: %s", user, strerror(errno));
        }
        return -1;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

int priv_drop(const char *user, const char *chroot_dir, struct str *err)
{
    uid_t uid = 0;
    gid_t gid = 0;

    if (priv_is_root() && getuid() == 0 && geteuid() != 0 && priv_restore(err) < 0)
        return -1;
    if (!priv_is_root() || geteuid() != 0) {
        if (chroot_dir != NULL && chdir(chroot_dir) < 0)
            return priv_fail(err, "chdir", chroot_dir);
        return 0;
    }
    /* The password database is out of reach once chrooted: look up first. */
    if (user != NULL && priv_lookup(user, &uid, &gid, err) < 0)
        return -1;
    if (chroot_dir != NULL) {
        if (chroot(chroot_dir) < 0)
            return priv_fail(err, "chroot", chroot_dir);
        if (chdir("/") < 0)
            return priv_fail(err, "chdir", "/");
    }
    if (user == NULL)
        return 0;
    if (setgroups(1, &gid) < 0)
        return priv_fail(err, "setgroups for", user);
    if (setgid(gid) < 0)
        return priv_fail(err, "setgid for", user);
    if (setuid(uid) < 0)
        return priv_fail(err, "setuid for", user);
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        errno = EPERM;
        return priv_fail(err, "root privileges could be regained after dropping to", user);
    }
    return 0;
}

int priv_become(uid_t uid, gid_t gid, struct str *err)
{
    if (!priv_is_root())
        return 0;
    if (geteuid() != 0 && priv_restore(err) < 0)
        return -1;
    if (!priv_saved) {
        int n = getgroups(0, NULL);
        if (n < 0)
            return priv_fail(err, "getgroups", NULL);
        priv_saved_groups = xcalloc((size_t)n + 1, sizeof(gid_t));
        n = getgroups(n, priv_saved_groups);
        if (n < 0)
            return priv_fail(err, "getgroups", NULL);
        priv_saved_ngroups = n;
        priv_saved_egid = getegid();
        priv_saved = true;
    }
    if (setgroups(1, &gid) < 0)
        return priv_fail(err, "setgroups", NULL);
    if (setegid(gid) < 0) {
        priv_fail(err, "setegid", NULL);
        (void)priv_restore(NULL);
        return -1;
    }
    if (seteuid(uid) < 0) {
        priv_fail(err, "seteuid", NULL);
        (void)priv_restore(NULL);
        return -1;
    }
    return 0;
}

int priv_restore(struct str *err)
{
    if (!priv_is_root())
        return 0;
    if (seteuid(0) < 0)
        return priv_fail(err, "seteuid 0", NULL);
    if (!priv_saved)
        return 0;
    if (setegid(priv_saved_egid) < 0)
        return priv_fail(err, "setegid", NULL);
    if (setgroups((size_t)priv_saved_ngroups, priv_saved_groups) < 0)
        return priv_fail(err, "setgroups", NULL);
    return 0;
}

