/* Atomic whole-file replacement (see atomic_file.h).  The path comes from our own
 * configuration; the data is written as given. */
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
