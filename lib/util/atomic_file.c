/* Atomic whole-file replacement (see atomic_file.h).  The path (or directory and
 * name) comes from our own configuration or code; the data is written as given. */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fd.h"
#include "str.h"
#include "xmalloc.h"

/* The work of both: name in dirfd (shown in messages after shown_dir) replaced
 * through a fresh temporary file next to it. */
static int write_at(int dirfd, const char *shown_dir, const char *name, const void *data,
                    size_t len, mode_t mode, const struct stat *like, struct str *err)
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
        fd = openat(dirfd, tmp.s, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0600);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        str_printf(err, "%s%s: %s", shown_dir, tmp.s, strerror(errno));
        str_free(&tmp);
        return -1;
    }
    if (fchmod(fd, like != NULL ? like->st_mode & 07777 : mode) < 0
        || (like != NULL && geteuid() == 0 && fchown(fd, like->st_uid, like->st_gid) < 0)
        || fd_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        str_printf(err, "%s%s: %s", shown_dir, tmp.s, strerror(errno));
        close(fd);
        goto out;
    }
    if (close(fd) < 0) {
        str_printf(err, "%s%s: %s", shown_dir, tmp.s, strerror(errno));
        goto out;
    }
    if (renameat(dirfd, tmp.s, dirfd, name) < 0) {
        str_printf(err, "%s%s: %s", shown_dir, name, strerror(errno));
        goto out;
    }
    /* so that the rename survives a crash; a failure here is not reported (the data
     * itself is on disk) */
    (void)fsync(dirfd);
    rc = 0;
out:
    if (rc < 0)
        (void)unlinkat(dirfd, tmp.s, 0);
    str_free(&tmp);
    return rc;
}

int atomic_file_write(const char *path, const void *data, size_t len, mode_t mode,
                      const struct stat *like, struct str *err)
{
    const char *slash = strrchr(path, '/');
    struct str dir = STR_INIT;
    int dfd, rc;

    if (slash == NULL)
        str_appends(&dir, ".");
    else
        str_append(&dir, path, slash == path ? 1 : (size_t)(slash - path));
    dfd = open(dir.s, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        str_printf(err, "%s: %s", dir.s, strerror(errno));
        str_free(&dir);
        return -1;
    }
    str_clear(&dir);
    if (slash != NULL)
        str_append(&dir, path, (size_t)(slash - path) + 1);
    rc = write_at(dfd, dir.s != NULL ? dir.s : "", slash != NULL ? slash + 1 : path, data,
                  len, mode, like, err);
    close(dfd);
    str_free(&dir);
    return rc;
}

int atomic_file_write_at(int dirfd, const char *name, const void *data, size_t len,
                         mode_t mode, struct str *err)
{
    return write_at(dirfd, "", name, data, len, mode, NULL, err);
}
