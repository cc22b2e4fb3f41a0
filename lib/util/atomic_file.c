/* Atomic whole-file replacement (see atomic_file.h).  The path (or directory and
 * name) comes from our own configuration or code; the data is written as given. */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd.h"
#include "str.h"
#include "xmalloc.h"

/* fsync of the directory holding path, so that the rename survives a crash; a
 * failure here is not reported (the data itself is on disk). */
static void sync_parent(const char *path)
{
    char *copy = xstrdup(path);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(copy);
}

int atomic_file_write(const char *path, const void *data, size_t len, mode_t mode,
                      const struct stat *like, struct str *err)
{
    struct str tmp = STR_INIT;
    int fd, rc = -1;

    str_init(&tmp);
    str_printf(&tmp, "%s.tmpXXXXXX", path);
    fd = mkstemp(tmp.s);
    if (fd < 0) {
        str_printf(err, "%s: %s", tmp.s, strerror(errno));
        str_free(&tmp);
        return -1;
    }
    if (fchmod(fd, like != NULL ? like->st_mode & 07777 : mode) < 0
        || (like != NULL && geteuid() == 0 && fchown(fd, like->st_uid, like->st_gid) < 0)
        || fd_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        str_printf(err, "%s: %s", tmp.s, strerror(errno));
        close(fd);
        goto out;
    }
    if (close(fd) < 0) {
        str_printf(err, "%s: %s", tmp.s, strerror(errno));
        goto out;
    }
    if (rename(tmp.s, path) < 0) {
        str_printf(err, "%s: %s", path, strerror(errno));
        goto out;
    }
    sync_parent(path);
    rc = 0;
out:
    if (rc < 0)
        (void)unlink(tmp.s);
    str_free(&tmp);
    return rc;
}

int atomic_file_write_at(int dirfd, const char *name, const void *data, size_t len,
                         mode_t mode, struct str *err)
{
    static const char hex[] = "0123456789abcdef";
    struct str tmp = STR_INIT;
    int fd = -1, rc = -1;

    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        unsigned char r[6];

        arc4random_buf(r, sizeof(r));
        str_clear(&tmp);
        str_printf(&tmp, "%s.tmp", name);
        for (size_t i = 0; i < sizeof(r); i++) {
            str_appendc(&tmp, hex[r[i] >> 4]);
            str_appendc(&tmp, hex[r[i] & 15]);
        }
        fd = openat(dirfd, tmp.s, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        str_printf(err, "%s: %s", tmp.s, strerror(errno));
        str_free(&tmp);
        return -1;
    }
    if (fchmod(fd, mode) < 0 || fd_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        str_printf(err, "%s: %s", tmp.s, strerror(errno));
        close(fd);
        goto out;
    }
    if (close(fd) < 0) {
        str_printf(err, "%s: %s", tmp.s, strerror(errno));
        goto out;
    }
    if (renameat(dirfd, tmp.s, dirfd, name) < 0) {
        str_printf(err, "%s: %s", name, strerror(errno));
        goto out;
    }
    (void)fsync(dirfd);
    rc = 0;
out:
    if (rc < 0)
        (void)unlinkat(dirfd, tmp.s, 0);
    str_free(&tmp);
    return rc;
}
