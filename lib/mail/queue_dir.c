/* The queue directory tree, moves between its directories, directory fsync.
 * Paths come from the configuration and from the queue's own directory listings;
 * a queue id given to queue_move() must be a plain file name. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto.h"
#include "queue.h"
#include "str.h"

static const struct {
    const char *name;
    mode_t mode;
} queue_subdirs[] = {
    { "tmp", 0700 },      { "maildrop", 01730 }, { "incoming", 0700 },
    { "active", 0700 },   { "deferred", 0700 },  { "hold", 0700 },
    { "corrupt", 0700 },  { QUEUE_DEFER_DIR, 0700 },     { PROTO_PRIVATE_DIR, 0700 },
    { "public", 0710 },
    { "pid", 0755 },      { PROTO_LOGIN_DIR, 0711 },
};

int fsync_dir(const char *path)
{
    int fd, rc, saved;

    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    saved = errno;
    /* A few file systems cannot fsync a directory; there is nothing more to do. */
    if (rc < 0 && saved == EINVAL)
        rc = 0;
    close(fd);
    errno = saved;
    return rc;
}

/* mkdir(2) that leaves an existing directory alone, then sets mode exactly
 * (mkdir's mode is filtered by umask and cannot set the sticky bit everywhere).  An
 * existing symbolic link is an error. */
static int make_dir(const char *path, mode_t mode, struct str *err)
{
    struct stat st;

    if (mkdir(path, mode) < 0 && errno != EEXIST) {
        str_printf(err, "mkdir %s: %s", path, strerror(errno));
        return -1;
    }
    /* lstat: a symbolic link in its place is refused, never followed by the chmod
     * below (master runs this as root). */
    if (lstat(path, &st) < 0) {
        str_printf(err, "stat %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        str_printf(err, "%s: not a directory", path);
        return -1;
    }
    if ((st.st_mode & 07777) != mode && chmod(path, mode) < 0) {
        str_printf(err, "chmod %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* mkdir -p for the parents of the queue and the queue itself. */
static int make_parents(const char *dir, struct str *err)
{
    struct str p = STR_INIT;
    int rc = 0;

    str_sets(&p, dir);
    for (size_t i = 1; i < p.len; i++) {
        if (p.s[i] != '/')
            continue;
        p.s[i] = '\0';
        if (mkdir(p.s, 0755) < 0 && errno != EEXIST) {
            str_printf(err, "mkdir %s: %s", p.s, strerror(errno));
            rc = -1;
            break;
        }
        p.s[i] = '/';
    }
    str_free(&p);
    return rc;
}

int queue_tree_create(const char *dir, struct str *err)
{
    struct str path = STR_INIT;
    int rc = 0;

    if (dir == NULL || *dir == '\0') {
        errno = EINVAL;
        str_sets(err, "empty queue directory name");
        return -1;
    }
    if (make_parents(dir, err) < 0)
        return -1;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        str_printf(err, "mkdir %s: %s", dir, strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < sizeof(queue_subdirs) / sizeof(queue_subdirs[0]); i++) {
        str_clear(&path);
        str_printf(&path, "%s/%s", dir, queue_subdirs[i].name);
        if (make_dir(path.s, queue_subdirs[i].mode, err) < 0) {
            rc = -1;
            break;
        }
    }
    str_free(&path);
    return rc;
}

static bool plain_name(const char *s)
{
    return s != NULL && *s != '\0' && strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
           strcmp(s, "..") != 0;
}

int queue_move(const char *qdir, const char *from, const char *to, const char *id)
{
    char src[512], dst[512];
    int dfd, rc = 0, saved = 0;

    if (!plain_name(from) || !plain_name(to) || !plain_name(id)) {
        errno = EINVAL;
        return -1;
    }
    if ((size_t)snprintf(src, sizeof(src), "%s/%s", from, id) >= sizeof(src) ||
        (size_t)snprintf(dst, sizeof(dst), "%s/%s", to, id) >= sizeof(dst)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    dfd = open(qdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    if (renameat(dfd, src, dfd, dst) < 0) {
        saved = errno;
        rc = -1;
    } else {
        int tfd = openat(dfd, to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (tfd < 0 || (fsync(tfd) < 0 && errno != EINVAL)) {
            saved = errno;
            rc = -1;
        }
        if (tfd >= 0)
            close(tfd);
    }
    close(dfd);
    if (rc < 0)
        errno = saved;
    return rc;
}
