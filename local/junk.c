/* The Junk folder of a Maildir: the Maildir++ folder ".NAME" (junk_folder) made
 * inside a recipient's Maildir when it is missing, with tmp/, new/, cur/ and the
 * "maildirfolder" marker, each created relative to the Maildir's own descriptor
 * without following a link. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"
#include "maildir.h"
#include "str.h"

static int mkdirat_ok(int at, const char *name)
{
    return mkdirat(at, name, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int junk_folder_make(const char *maildir, const char *folder, struct str *err)
{
    static const char *const sub[] = { "tmp", "new", "cur" };
    int fds[MAILDIR_NFD];
    struct str name = STR_INIT;
    int fd = -1, mark, rc = -1, e = 0;

    /* The Maildir itself under the inbox's rules: no link, the owner's. */
    if (maildir_dirs_open(maildir, geteuid(), fds, err) < 0)
        return -1;
    str_printf(&name, ".%s", folder);
    if (mkdirat_ok(fds[MAILDIR_FD_TOP], name.s) < 0) {
        e = errno;
        goto out;
    }
    fd = openat(fds[MAILDIR_FD_TOP], name.s,
                O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        e = errno == ENOTDIR ? ELOOP : errno;
        goto out;
    }
    for (size_t i = 0; i < 3; i++)
        if (mkdirat_ok(fd, sub[i]) < 0) {
            e = errno;
            goto out;
        }
    mark = openat(fd, "maildirfolder", O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
                  0600);
    if (mark < 0) {
        e = errno;
        goto out;
    }
    close(mark);
    rc = 0;
out:
    if (rc < 0) {
        str_clear(err);
        str_printf(err, "make folder %s/%s: %s", maildir, name.s, strerror(e));
    }
    if (fd >= 0)
        close(fd);
    maildir_dirs_close(fds);
    str_free(&name);
    errno = e;
    return rc;
}
