/* Maildir delivery: a unique file in tmp/ (O_EXCL), written in full, fsynced,
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

static int mkdir_one(const char *path, mode_t mode, struct str *err)
{
    struct stat st;

    if (mkdir(path, mode) == 0)
        return 0;
    if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (errno == EEXIST)
        errno = ENOTDIR;
    {
        int e = errno;
        str_printf(err, "mkdir %s: %s", path, strerror(e));
        errno = e;
    }
    return -1;
}

int maildir_create(const char *dir, mode_t mode, struct str *err)
{
    static const char *const sub[] = { "tmp", "new", "cur" };
    struct str p = STR_INIT;
    int rc = 0;

    if (dir == NULL || *dir == '\0') {
        errno = EINVAL;
        str_sets(err, "empty Maildir path");
        return -1;
    }
    str_sets(&p, dir);
    while (p.len > 1 && p.s[p.len - 1] == '/')
        str_truncate(&p, p.len - 1);
    /* Parents first, then the Maildir itself. */
    for (size_t i = 1; i <= p.len && rc == 0; i++) {
        if (i < p.len && p.s[i] != '/')
            continue;
        char save = p.s[i];
        p.s[i] = '\0';
        rc = mkdir_one(p.s, mode, err);
        p.s[i] = save;
    }
    for (size_t i = 0; i < 3 && rc == 0; i++) {
        size_t keep = p.len;
        str_printf(&p, "/%s", sub[i]);
        rc = mkdir_one(p.s, mode, err);
        str_truncate(&p, keep);
    }
    str_free(&p);
    return rc;
}

static void maildir_free(struct maildir_tmp *t)
{
    if (t->fd >= 0)
        close(t->fd);
    free(t->dir);
    free(t->tmp_path);
    free(t->name);
    t->fd = -1;
    t->dir = t->tmp_path = t->name = NULL;
    t->size = 0;
}

int maildir_open(const char *dir, struct maildir_tmp *t, struct str *err)
{
    struct str name = STR_INIT, path = STR_INIT;
    int e = 0;

    memset(t, 0, sizeof(*t));
    t->fd = -1;
    for (int tries = 0; tries < MAILDIR_OPEN_TRIES; tries++) {
        struct timeval tv;

        gettimeofday(&tv, NULL);
        str_clear(&name);
        str_printf(&name, "%lld.M%ldP%ldQ%lu.", (long long)tv.tv_sec, (long)tv.tv_usec,
                   (long)getpid(), ++maildir_counter);
        host_part(&name);
        str_clear(&path);
        str_printf(&path, "%s/tmp/%s", dir, name.s);
        t->fd = open(path.s, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (t->fd >= 0)
            break;
        e = errno;
        if (e != EEXIST)
            break;
    }
    if (t->fd < 0) {
        str_printf(err, "create %s: %s", path.s, strerror(e));
        str_free(&name);
        str_free(&path);
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
    if (t->tmp_path != NULL)
        unlink(t->tmp_path);
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
    str_printf(&final, "%s/new/%s,S=%zu,W=%zu", t->dir, t->name, t->size,
               t->size + t->bare_lf);
    if (link(t->tmp_path, final.s) < 0) {
        e = errno;
        /* Some file systems refuse hard links: rename (names are unique). */
        if (e != EPERM || rename(t->tmp_path, final.s) < 0) {
            e = errno;
            str_printf(err, "link %s to %s: %s", t->tmp_path, final.s, strerror(e));
            str_free(&final);
            maildir_abort(t);
            errno = e;
            return -1;
        }
    } else {
        unlink(t->tmp_path);
    }
    if (path_out != NULL)
        str_sets(path_out, final.s);
    str_free(&final);
    maildir_free(t);
    return 0;
}
