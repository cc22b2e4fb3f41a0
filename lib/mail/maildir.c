/* Maildir delivery: the Maildir and its tmp/, new/ and cur/ opened without following
 * a symbolic link and checked for their owner, then a unique file in tmp/ (O_EXCL,
 * relative to tmp/'s descriptor), written in full, fsynced,
 * hard-linked into new/ as NAME,S=SIZE, unlinked from tmp/, and new/ fsynced.  The
 * Maildir path comes from the router (already checked); the message bytes are only
 * copied.  errno is kept on every failure so the caller can tell a full disk or a
 * quota (temporary) from the rest. */
#include "maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "fd.h"
#include "queue.h"
#include "str.h"
#include "xmalloc.h"

#define MAILDIR_OPEN_TRIES 5

static unsigned long maildir_counter;

/* The host name as the Maildir specification wants it in a file name: '/' and ':'
 * written as \057 and \072.  Looked up once per process. */
static void host_part(struct str *out)
{
    static struct str cached = STR_INIT;

    if (cached.len == 0) {
        char host[256];

        if (gethostname(host, sizeof(host)) < 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "localhost");
        host[sizeof(host) - 1] = '\0';
        for (const char *p = host; *p; p++) {
            if (*p == '/')
                str_appends(&cached, "\\057");
            else if (*p == ':')
                str_appends(&cached, "\\072");
            else
                str_appendc(&cached, *p);
        }
    }
    str_append(out, cached.s, cached.len);
}

static const char *const maildir_sub[] = { "tmp", "new", "cur" };

static int fail_errno(struct str *err, int e, const char *fmt, const char *a, const char *b)
{
    str_clear(err);
    str_printf(err, fmt, a, b, strerror(e));
    errno = e;
    return -1;
}

/* The errno of a failed O_NOFOLLOW | O_DIRECTORY open: ELOOP when name is a
 * symbolic link (some kernels say ENOTDIR), else e. */
static int is_link(int at, const char *name, int e)
{
    struct stat sb;

    if ((e == ELOOP || e == ENOTDIR) && fstatat(at, name, &sb, AT_SYMLINK_NOFOLLOW) == 0
        && S_ISLNK(sb.st_mode))
        return ELOOP;
    return e;
}

/* One directory of the Maildir, opened relative to at (or by path when at is
 * AT_FDCWD) without following a symbolic link, and owned by owner.  Its descriptor,
 * or -1 with err and errno. */
static int dir_open_checked(int at, const char *dir, const char *name, uid_t owner,
                            struct str *err)
{
    const char *shown = at == AT_FDCWD ? "" : "/";
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    struct stat sb;
    int e;

    if (fd < 0) {
        e = errno;
        if (is_link(at, name, e) == ELOOP) {
            str_clear(err);
            str_printf(err, "refused: %s%s%s is a symbolic link", dir, shown,
                       at == AT_FDCWD ? "" : name);
            errno = ELOOP;
            return -1;
        }
        /* Not ours to open: say whose it is when that is the reason. */
        if (e == EACCES && fstatat(at, name, &sb, AT_SYMLINK_NOFOLLOW) == 0
            && sb.st_uid != owner)
            goto not_owner;
        str_clear(err);
        str_printf(err, "open %s%s%s: %s", dir, shown, at == AT_FDCWD ? "" : name,
                   strerror(e));
        errno = e;
        return -1;
    }
    if (fstat(fd, &sb) < 0) {
        e = errno;
        close(fd);
        return fail_errno(err, e, "fstat %s/%s: %s", dir, at == AT_FDCWD ? "" : name);
    }
    if (sb.st_uid == owner)
        return fd;
    close(fd);
not_owner:
    str_clear(err);
    str_printf(err, "refused: %s%s%s is owned by uid %lu, not by the mailbox owner"
               " (uid %lu)", dir, shown, at == AT_FDCWD ? "" : name,
               (unsigned long)sb.st_uid, (unsigned long)owner);
    errno = EPERM;
    return -1;
}

void maildir_dirs_close(int fds[MAILDIR_NFD])
{
    for (int i = 0; i < MAILDIR_NFD; i++) {
        if (fds[i] >= 0)
            close(fds[i]);
        fds[i] = -1;
    }
}

int maildir_dirs_open(const char *dir, uid_t owner, int fds[MAILDIR_NFD], struct str *err)
{
    struct str top = STR_INIT;

    for (int i = 0; i < MAILDIR_NFD; i++)
        fds[i] = -1;
    if (dir == NULL || *dir == '\0') {
        str_sets(err, "empty Maildir path");
        errno = EINVAL;
        return -1;
    }
    /* Without its trailing '/': "dir/" would follow a link at dir, O_NOFOLLOW or not. */
    str_sets(&top, dir);
    while (top.len > 1 && top.s[top.len - 1] == '/')
        str_truncate(&top, top.len - 1);
    fds[MAILDIR_FD_TOP] = dir_open_checked(AT_FDCWD, top.s, top.s, owner, err);
    for (int i = 0; i < 3 && fds[MAILDIR_FD_TOP] >= 0; i++) {
        fds[MAILDIR_FD_TMP + i] = dir_open_checked(fds[MAILDIR_FD_TOP], top.s, maildir_sub[i],
                                                   owner, err);
        if (fds[MAILDIR_FD_TMP + i] < 0) {
            int e = errno;
            maildir_dirs_close(fds);
            errno = e;
        }
    }
    {
        int e = errno;
        str_free(&top);
        errno = e;
    }
    return fds[MAILDIR_FD_TOP] >= 0 ? 0 : -1;
}

static int mkdir_one(const char *path, mode_t mode, struct str *err)
{
    struct stat st;

    if (mkdir(path, mode) == 0)
        return 0;
    if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (errno == EEXIST)
        errno = ENOTDIR;
    return fail_errno(err, errno, "mkdir %s%s: %s", path, "");
}

int maildir_create(const char *dir, mode_t mode, struct str *err)
{
    struct str p = STR_INIT;
    int rc = 0, fd = -1;

    if (dir == NULL || *dir == '\0') {
        errno = EINVAL;
        str_sets(err, "empty Maildir path");
        return -1;
    }
    str_sets(&p, dir);
    while (p.len > 1 && p.s[p.len - 1] == '/')
        str_truncate(&p, p.len - 1);
    /* Parents first (the mail store's own directories), then the Maildir itself. */
    for (size_t i = 1; i < p.len && rc == 0; i++) {
        if (p.s[i] != '/')
            continue;
        p.s[i] = '\0';
        rc = mkdir_one(p.s, mode, err);
        p.s[i] = '/';
    }
    if (rc == 0 && mkdir(p.s, mode) < 0 && errno != EEXIST)
        rc = fail_errno(err, errno, "mkdir %s%s: %s", p.s, "");
    /* Its subdirectories relative to it, never through a link put in its place. */
    if (rc == 0) {
        fd = open(p.s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
            rc = fail_errno(err, is_link(AT_FDCWD, p.s, errno), "open %s%s: %s", p.s, "");
    }
    for (size_t i = 0; i < 3 && rc == 0; i++)
        if (mkdirat(fd, maildir_sub[i], mode) < 0 && errno != EEXIST)
            rc = fail_errno(err, errno, "mkdir %s/%s: %s", p.s, maildir_sub[i]);
    if (fd >= 0) {
        int e = errno;
        close(fd);
        errno = e;
    }
    str_free(&p);
    return rc;
}

static void maildir_free(struct maildir_tmp *t)
{
    if (t->fd >= 0)
        close(t->fd);
    if (t->tmp_fd >= 0)
        close(t->tmp_fd);
    if (t->new_fd >= 0)
        close(t->new_fd);
    free(t->dir);
    free(t->tmp_path);
    free(t->name);
    free(t->final);
    t->fd = t->tmp_fd = t->new_fd = -1;
    t->dir = t->tmp_path = t->name = t->final = NULL;
    t->size = 0;
}

int maildir_open(const char *dir, struct maildir_tmp *t, struct str *err)
{
    struct str name = STR_INIT, path = STR_INIT;
    int fds[MAILDIR_NFD];
    int e = 0;

    memset(t, 0, sizeof(*t));
    t->fd = t->tmp_fd = t->new_fd = -1;
    if (maildir_dirs_open(dir, geteuid(), fds, err) < 0)
        return -1;
    t->tmp_fd = fds[MAILDIR_FD_TMP];
    t->new_fd = fds[MAILDIR_FD_NEW];
    close(fds[MAILDIR_FD_TOP]);
    close(fds[MAILDIR_FD_CUR]);
    for (int tries = 0; tries < MAILDIR_OPEN_TRIES; tries++) {
        struct timeval tv;

        gettimeofday(&tv, NULL);
        str_clear(&name);
        str_printf(&name, "%lld.M%ldP%ldQ%lu.", (long long)tv.tv_sec, (long)tv.tv_usec,
                   (long)getpid(), ++maildir_counter);
        host_part(&name);
        t->fd = openat(t->tmp_fd, name.s,
                       O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (t->fd >= 0)
            break;
        e = errno;
        if (e != EEXIST)
            break;
    }
    str_printf(&path, "%s/tmp/%s", dir, name.s);
    if (t->fd < 0) {
        str_clear(err);
        str_printf(err, "create %s: %s", path.s, strerror(e));
        str_free(&name);
        str_free(&path);
        maildir_free(t);
        errno = e;
        return -1;
    }
    t->dir = xstrdup(dir);
    t->name = str_detach(&name);
    t->tmp_path = str_detach(&path);
    return 0;
}

int maildir_write(struct maildir_tmp *t, const void *data, size_t len)
{
    const char *p = data;

    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\n' && (i > 0 ? p[i - 1] : t->last) != '\r')
            t->bare_lf++;
    }
    if (len > 0)
        t->last = p[len - 1];
    if (fd_write_all(t->fd, p, len) < 0)
        return -1;
    t->size += len;
    return 0;
}

void maildir_abort(struct maildir_tmp *t)
{
    if (t->name != NULL && t->tmp_fd >= 0)
        unlinkat(t->tmp_fd, t->name, 0);
    maildir_free(t);
}

void maildir_close(struct maildir_tmp *t)
{
    maildir_free(t);
}

int maildir_sync(struct maildir_tmp *t, struct str *err)
{
    int e;

    if (t->fd < 0)
        return 0;
    if (fsync(t->fd) < 0) {
        e = errno;
        str_printf(err, "fsync %s: %s", t->tmp_path, strerror(e));
        goto fail;
    }
    /* close(2) reports late write errors on some file systems (quota on NFS). */
    if (close(t->fd) < 0) {
        e = errno;
        t->fd = -1;
        str_printf(err, "close %s: %s", t->tmp_path, strerror(e));
        goto fail;
    }
    t->fd = -1;
    return 0;

fail:
    maildir_abort(t);
    errno = e;
    return -1;
}

int maildir_link(struct maildir_tmp *t, struct str *path_out, struct str *err)
{
    struct str final = STR_INIT;
    int e;

    if (maildir_sync(t, err) < 0)
        return -1;
    str_printf(&final, "%s,S=%zu,W=%zu", t->name, t->size, t->size + t->bare_lf);
    if (linkat(t->tmp_fd, t->name, t->new_fd, final.s, 0) < 0) {
        e = errno;
        /* Some file systems refuse hard links: rename (names are unique). */
        if (e != EPERM || renameat(t->tmp_fd, t->name, t->new_fd, final.s) < 0) {
            e = errno;
            str_printf(err, "link %s to %s/new/%s: %s", t->tmp_path, t->dir, final.s,
                       strerror(e));
            str_free(&final);
            maildir_abort(t);
            errno = e;
            return -1;
        }
    } else {
        unlinkat(t->tmp_fd, t->name, 0);
    }
    if (path_out != NULL) {
        str_clear(path_out);
        str_printf(path_out, "%s/new/%s", t->dir, final.s);
    }
    t->final = str_detach(&final);
    close(t->tmp_fd);
    t->tmp_fd = -1;
    free(t->tmp_path);
    t->tmp_path = NULL;
    return 0;
}

int maildir_sync_new(struct maildir_tmp *t)
{
    if (t->new_fd < 0) {
        errno = EBADF;
        return -1;
    }
    return fsync(t->new_fd);
}

void maildir_unlink_new(struct maildir_tmp *t)
{
    if (t->new_fd >= 0 && t->final != NULL)
        unlinkat(t->new_fd, t->final, 0);
}
