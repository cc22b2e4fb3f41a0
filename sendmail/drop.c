/* sendmail: the maildrop file and the notices to pickup.  The file is made in
 * maildrop/ under a temporary name (MAILDROP_TMP_PREFIX, O_EXCL, mode 0604: pickup
 * reads it through "other", the group setgid_group that every submitter shares
 * cannot), fsynced, renamed to a fresh queue id and made durable; only then does
 * sendmail report success.  maildrop/ (mode 1730) cannot be read by the group, so
 * its directory cannot be opened for fsync(2): syncfs(2) on the file does the same
 * for it then. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attr.h"
#include "ipc_proto.h"
#include "maildrop.h"
#include "proto.h"
#include "queue.h"
#include "sendmail.h"
#include "sock.h"
#include "xmalloc.h"

#define DROP_MODE 0604
#define NOTIFY_TIMEOUT_MS 2000

struct sm_drop {
    struct maildrop_writer *w;
    int dirfd;                  /* maildrop/, O_PATH */
    int syncfd;                 /* a second descriptor of the file, for syncfs */
    char tmp[64];
};

void sm_priv_on(const struct sm *sm)
{
    if (sm->drop_gid != sm->user_gid && setegid(sm->drop_gid) < 0) {
        fprintf(stderr, "sendmail: setegid: %s\n", strerror(errno));
        exit(EX_OSERR);
    }
}

void sm_priv_off(const struct sm *sm)
{
    if (sm->drop_gid != sm->user_gid && setegid(sm->user_gid) < 0) {
        fprintf(stderr, "sendmail: setegid: %s\n", strerror(errno));
        exit(EX_OSERR);
    }
}

struct sm_drop *drop_open(struct sm *sm, struct str *why)
{
    struct sm_drop *d = xcalloc(1, sizeof(*d));
    struct str path = STR_INIT;
    int fd = -1;

    str_printf(&path, "%s/maildrop", sm->qdir);
    sm_priv_on(sm);
    d->dirfd = open(path.s, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (d->dirfd < 0) {
        str_printf(why, "%s: %s", path.s, strerror(errno));
        goto fail;
    }
    for (int tries = 0; tries < 10 && fd < 0; tries++) {
        char id[QUEUE_ID_SIZE];
        queue_id_new(id);
        snprintf(d->tmp, sizeof(d->tmp), MAILDROP_TMP_PREFIX "%s", id);
        fd = openat(d->dirfd, d->tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
                    DROP_MODE);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        str_printf(why, "cannot create a file in %s: %s", path.s, strerror(errno));
        goto fail;
    }
    if (fchmod(fd, DROP_MODE) < 0) {
        str_printf(why, "chmod %s/%s: %s", path.s, d->tmp, strerror(errno));
        unlinkat(d->dirfd, d->tmp, 0);
        close(fd);
        goto fail;
    }
    d->syncfd = dup(fd);
    sm_priv_off(sm);
    d->w = mdw_open(fd);
    str_free(&path);
    return d;

fail:
    sm_priv_off(sm);
    if (d->dirfd >= 0)
        close(d->dirfd);
    free(d);
    str_free(&path);
    return NULL;
}

struct maildrop_writer *drop_writer(struct sm_drop *d)
{
    return d->w;
}

static void drop_free(struct sm_drop *d)
{
    if (d->syncfd >= 0)
        close(d->syncfd);
    close(d->dirfd);
    free(d);
}

void drop_abort(struct sm *sm, struct sm_drop *d)
{
    mdw_abort(d->w);
    sm_priv_on(sm);
    unlinkat(d->dirfd, d->tmp, 0);
    sm_priv_off(sm);
    drop_free(d);
}

/* rename(2) that never replaces a file. */
static int rename_new(int dirfd, const char *from, const char *to)
{
#ifdef RENAME_NOREPLACE
    if (renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -1;
#endif
    if (linkat(dirfd, from, dirfd, to, 0) < 0)
        return -1;
    return unlinkat(dirfd, from, 0);
}

int drop_commit(struct sm *sm, struct sm_drop *d, char *id, struct str *why)
{
    int rc = -1, dfd;

    if (mdw_finish(d->w) < 0) {
        str_printf(why, "cannot write the maildrop file: %s", strerror(errno));
        d->w = NULL;
        sm_priv_on(sm);
        unlinkat(d->dirfd, d->tmp, 0);
        sm_priv_off(sm);
        drop_free(d);
        return -1;
    }
    d->w = NULL;
    sm_priv_on(sm);
    for (int tries = 0; tries < 10; tries++) {
        queue_id_new(id);
        if (rename_new(d->dirfd, d->tmp, id) == 0) {
            rc = 0;
            break;
        }
        if (errno != EEXIST)
            break;
    }
    if (rc < 0) {
        str_printf(why, "cannot rename the maildrop file: %s", strerror(errno));
        unlinkat(d->dirfd, d->tmp, 0);
    } else {
        dfd = openat(d->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            rc = fsync(dfd) < 0 && errno != EINVAL ? -1 : 0;
            close(dfd);
        } else {
            rc = syncfs(d->syncfd);
        }
        if (rc < 0)
            str_printf(why, "cannot sync the maildrop directory: %s", strerror(errno));
    }
    sm_priv_off(sm);
    drop_free(d);
    return rc;
}

int drop_notify(struct sm *sm, const char *req)
{
    struct attr_list al = ATTR_LIST_INIT;
    struct str frame = STR_INIT, path = STR_INIT;
    int fd, rc = -1, e = 0;

    str_printf(&path, "%s/%s", sm->qdir, PROTO_PATH_PICKUP);
    sm_priv_on(sm);
    fd = sock_connect_unix(path.s, NOTIFY_TIMEOUT_MS);
    e = errno;
    sm_priv_off(sm);
    if (fd >= 0) {
        ipc_request_start(&al, PROTO_PICKUP, PROTO_PICKUP_VERSION, req);
        attr_encode(&al, &frame);
        rc = send(fd, frame.s, frame.len, MSG_NOSIGNAL) == (ssize_t)frame.len ? 0 : -1;
        e = errno;
        close(fd);
    }
    attr_free(&al);
    str_free(&frame);
    str_free(&path);
    errno = e;
    return rc;
}
