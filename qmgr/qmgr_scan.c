/* Queue directory scans: active/ at start (messages taken back), incoming/ on
 * wake-ups and on a timer, deferred/ when their retry time (the mtime) has come,
 * tmp/ for files its writers left behind (at start, hourly and on a flush).
 * Only names that are valid queue ids are looked at; messages move by rename. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "qmgr.h"
#include "xmalloc.h"

static int id_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The queue ids in dir, oldest first (ids sort by time). */
static char **scan_ids(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **v = NULL;
    size_t n = 0, cap = 0;

    *count = 0;
    if (d == NULL) {
        log_warn("cannot open %s/: %s", dir, strerror(errno));
        return NULL;
    }
    while ((de = readdir(d)) != NULL) {
        if (!queue_id_valid(de->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n > 0)
        qsort(v, n, sizeof(*v), id_cmp);
    *count = n;
    return v;
}

static void ids_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static bool known(struct qmgr *q, const char *id)
{
    return qmgr_msg_find(q, id) != NULL;
}

void qmgr_scan_active(struct qmgr *q)
{
    size_t n;
    char **ids = scan_ids("active", &n);

    for (size_t i = 0; i < n; i++)
        if (!known(q, ids[i]))
            qmgr_msg_add(q, ids[i]);
    if (n > 0)
        log_info("taking back %zu message%s from active/", n, n == 1 ? "" : "s");
    ids_free(ids, n);
}

/* Moves a message between two queue directories by rename(2) alone, without the
 * fsync of the target directory that queue_move() adds.  qmgr's moves do not need
 * it: incoming/, active/ and deferred/ are all read again by the next qmgr (active/
 * and incoming/ at start, deferred/ on its timer), so after a crash the file is in
 * one of the two directories and is delivered from there; the rename itself is
 * atomic.  Skipping the fsync keeps qmgr, which does everything in one loop, from
 * waiting for the disk once per message.  0, or -1 with errno. */
int qmgr_queue_rename(const char *from, const char *to, const char *id)
{
    char src[64], dst[64];

    if (!queue_id_valid(id)
        || (size_t)snprintf(src, sizeof(src), "%s/%s", from, id) >= sizeof(src)
        || (size_t)snprintf(dst, sizeof(dst), "%s/%s", to, id) >= sizeof(dst)) {
        errno = EINVAL;
        return -1;
    }
    return renameat(AT_FDCWD, src, AT_FDCWD, dst);
}

/* Moves the message from dir/ into active/ when there is room. */
static bool take(struct qmgr *q, const char *dir, const char *id)
{
    if (q->nmsgs >= q->active_limit)
        return false;
    if (known(q, id))
        return true;
    if (qmgr_queue_rename(dir, "active", id) < 0) {
        if (errno != ENOENT)
            log_warn("%s: cannot move from %s/ to active/: %s", id, dir, strerror(errno));
        return true;
    }
    qmgr_msg_add(q, id);
    return true;
}

void qmgr_scan_incoming(struct qmgr *q)
{
    size_t n;
    char **ids = scan_ids("incoming", &n);

    for (size_t i = 0; i < n; i++)
        if (!take(q, "incoming", ids[i]))
            break;
    ids_free(ids, n);
}

void qmgr_scan_deferred(struct qmgr *q, bool all)
{
    size_t n;
    char **ids = scan_ids("deferred", &n);
    time_t now = time(NULL);
    char path[64];

    for (size_t i = 0; i < n; i++) {
        struct stat sb;

        snprintf(path, sizeof(path), "deferred/%s", ids[i]);
        if (stat(path, &sb) < 0)
            continue;
        if (!all && sb.st_mtime > now)
            continue;
        if (!take(q, "deferred", ids[i]))
            break;
    }
    ids_free(ids, n);
}

void qmgr_scan_tmp(struct qmgr *q)
{
    time_t now = time(NULL);
    time_t lifetime = (time_t)(conf_time_ms(q->conf, CONF_queue_tmp_lifetime) / 1000);
    int dfd = open("tmp", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d;
    struct dirent *de;

    if (dfd < 0 || (d = fdopendir(dfd)) == NULL) {
        log_warn("open tmp: %m");
        if (dfd >= 0)
            close(dfd);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        struct stat sb;

        if (de->d_name[0] == '.')
            continue;
        if (fstatat(dfd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(sb.st_mode))
            continue;
        if (now - sb.st_mtime <= lifetime)
            continue;
        if (unlinkat(dfd, de->d_name, 0) < 0) {
            if (errno != ENOENT)
                log_warn("remove tmp/%s: %m", de->d_name);
            continue;
        }
        log_info("tmp/%s: removed stale temporary file, age %llds", de->d_name,
                 (long long)(now - sb.st_mtime));
    }
    closedir(d);
}
