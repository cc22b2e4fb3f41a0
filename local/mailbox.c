/* Delivery of a request's recipients into Maildirs: mailbox lookup (router), loop
 * check (Delivered-To), then, with the mailbox owner's effective ids, a new Maildir
 * file holding "Return-Path:", "Delivered-To:" and the message.  The copies of a
 * batch of requests are made durable together: every file fsynced and linked, then
 * each new/ directory fsynced once.  Trusts qmgr's
 * request only as far as deliver.c checked it; the mailbox path from the router is
 * checked again before use. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "local.h"
#include "log.h"
#include "maildir.h"
#include "priv.h"
#include "queue.h"
#include "router.h"
#include "str.h"
#include "xmalloc.h"

/* Output buffer in front of maildir_write: few large writes whatever the chunks. */
struct outbuf {
    struct maildir_tmp *t;
    char *buf;
    size_t len;
    int error;                      /* errno of the first failed write, or 0 */
};

static int out_flush(struct outbuf *o)
{
    if (o->error)
        return -1;
    if (o->len > 0 && maildir_write(o->t, o->buf, o->len) < 0) {
        o->error = errno ? errno : EIO;
        return -1;
    }
    o->len = 0;
    return 0;
}

static int out_put(void *arg, const char *data, size_t len)
{
    struct outbuf *o = arg;

    if (o->error)
        return -1;
    if (len > LOCAL_OUTBUF - o->len) {
        if (out_flush(o) < 0)
            return -1;
        if (len >= LOCAL_OUTBUF) {
            if (maildir_write(o->t, data, len) < 0) {
                o->error = errno ? errno : EIO;
                return -1;
            }
            return 0;
        }
    }
    memcpy(o->buf + o->len, data, len);
    o->len += len;
    return 0;
}

/* Appends s with control characters replaced: a header line stays one line. */
static void append_safe(struct str *out, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        str_appendc(out, c < 0x20 || c == 0x7f ? '?' : (char)c);
    }
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* An absolute directory path with no "." or ".." component and no control
 * character: what a Maildir path must look like whatever a map said. */
static bool path_safe(const char *p)
{
    if (p[0] != '/' || has_control(p))
        return false;
    while (*p) {
        size_t n;

        while (*p == '/')
            p++;
        n = strcspn(p, "/");
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += n;
    }
    return true;
}

/* Enhanced status code of a failed mailbox write: always temporary. */
static const char *errno_dsn(int e)
{
    switch (e) {
    case EDQUOT:
        return "4.2.2";                 /* mailbox full */
    case ENOSPC:
        return "4.3.1";                 /* mail system full */
    case EACCES:
    case EPERM:
    case ENOENT:
    case ENOTDIR:
    case ELOOP:
    case EISDIR:
        return "4.2.0";                 /* mailbox unavailable */
    default:
        return "4.3.0";
    }
}

/* A system user's Maildir may be made in an existing home directory. */
static bool parent_exists(const char *path)
{
    struct str p = STR_INIT;
    struct stat sb;
    bool ok;

    str_sets(&p, path);
    while (p.len > 1 && p.s[p.len - 1] == '/')
        str_truncate(&p, p.len - 1);
    ok = stat(dirname(p.s), &sb) == 0 && S_ISDIR(sb.st_mode);
    str_free(&p);
    return ok;
}

/* Writes one copy into a new file in tmp/ of the Maildir at path (or of its folder
 * at path folder, called folder_name, made when missing), with the current
 * effective ids, and leaves it open in *t for local_batch_flush.  0, or -1 with err
 * and errno (nothing left behind). */
static int maildir_write_copy(struct local_ctx *ctx, struct local_msg *m, const char *addr,
                              const char *path, const char *folder_name, const char *folder,
                              bool create, struct maildir_tmp *tp, struct str *err)
{
    struct maildir_tmp t;
    struct outbuf o = { &t, ctx->outbuf, 0, 0 };
    struct str head = STR_INIT;
    int rc, e;

    /* Open first, create when missing: one syscall less per message in the usual
     * case.  A virtual mailbox is made with its parents; a system user's only in
     * an existing home directory.  A directory that is a symbolic link or has
     * another owner is refused by maildir_open (ELOOP, EPERM), never repaired. */
    if (folder == NULL && maildir_open(path, &t, err) < 0) {
        e = errno;
        if (e != ENOENT || (!create && !parent_exists(path))) {
            errno = e;
            return -1;
        }
        str_clear(err);
        if (maildir_create(path, 0700, err) < 0 || maildir_open(path, &t, err) < 0)
            return -1;
    }
    /* A folder: the Maildir first (made as above when missing), then the folder
     * inside it, then the file. */
    if (folder != NULL && maildir_open(folder, &t, err) < 0) {
        int fds[MAILDIR_NFD];

        if (errno != ENOENT)
            return -1;
        str_clear(err);
        if (maildir_dirs_open(path, geteuid(), fds, err) < 0) {
            e = errno;
            if (e != ENOENT || (!create && !parent_exists(path))) {
                errno = e;
                return -1;
            }
            str_clear(err);
            if (maildir_create(path, 0700, err) < 0)
                return -1;
        } else {
            maildir_dirs_close(fds);
        }
        if (junk_folder_make(path, folder_name, err) < 0 || maildir_open(folder, &t, err) < 0)
            return -1;
    }

    str_appends(&head, "Return-Path: <");
    if (m->qf.sender != NULL && m->qf.sender[0] != '\0') {
        struct str q = STR_INIT;
        addr_quote(m->qf.sender, &q);
        append_safe(&head, q.s);
        str_free(&q);
    }
    str_appends(&head, ">\nDelivered-To: ");
    append_safe(&head, addr);
    str_appendc(&head, '\n');
    rc = out_put(&o, head.s, head.len);
    str_free(&head);
    if (rc == 0) {
        rc = local_msg_content(m, out_put, &o);
        if (rc == 0)
            rc = out_flush(&o);
        else if (rc < 0 && !o.error)
            o.error = errno == EINVAL ? EINVAL : (errno ? errno : EIO);
    }
    if (rc != 0) {
        e = o.error ? o.error : EIO;
        str_clear(err);
        if (e == EINVAL)
            str_printf(err, "queue file content is corrupt");
        else
            str_printf(err, "write %s: %s", t.tmp_path ? t.tmp_path : path, strerror(e));
        maildir_abort(&t);
        errno = e;
        return -1;
    }
    *tp = t;
    return 0;
}

/* A copy written in tmp/ and not yet durable, with what its result needs. */
struct local_file {
    struct maildir_tmp t;           /* holds the Maildir's new/ open until the end */
    struct deliver_request *dr;
    size_t i;                       /* position of the recipient in dr */
    uid_t uid;
    gid_t gid;
    char *dir;                      /* the Maildir, without a trailing '/' */
    bool linked;
    bool synced;
    bool junk;                      /* written into the Junk folder */
};

static void file_fail(struct local_file *f, int e, const struct str *err)
{
    const char *why = err->len ? err->s : strerror(e);

    log_warn("%s: to=<%s>: cannot write maildir %s: %s", f->dr->id, f->dr->rcpt[f->i].addr,
             f->dir, why);
    deliver_result(f->dr, f->i, DELIVER_DEFER, errno_dsn(e), "maildir delivery failed: %s",
                   why);
}

/* Takes the ids of a mailbox owner unless they are already the effective ones. */
static int become_owner(bool *as_owner, uid_t *cur_uid, gid_t *cur_gid, uid_t uid, gid_t gid,
                        struct str *err)
{
    struct str rerr = STR_INIT;

    if (*as_owner && *cur_uid == uid && *cur_gid == gid)
        return 0;
    *as_owner = false;
    if (priv_become(uid, gid, err) < 0) {
        if (priv_restore(&rerr) < 0)
            log_fatal("cannot restore privileges: %s", rerr.s);
        str_free(&rerr);
        return -1;
    }
    *as_owner = true;
    *cur_uid = uid;
    *cur_gid = gid;
    return 0;
}

void local_flush(struct local_ctx *ctx)
{
    struct str err = STR_INIT, rerr = STR_INIT;
    bool as_owner = false;
    uid_t cur_uid = 0;
    gid_t cur_gid = 0;

    /* Each file is fsynced and linked into new/ (the first fsync commits the others'
     * blocks too on a journalling file system) ... */
    for (size_t k = 0; k < ctx->nfiles; k++) {
        struct local_file *f = &ctx->files[k];

        str_clear(&err);
        if (become_owner(&as_owner, &cur_uid, &cur_gid, f->uid, f->gid, &err) < 0) {
            log_warn("%s: to=<%s>: cannot switch to uid %lu: %s", f->dr->id,
                     f->dr->rcpt[f->i].addr, (unsigned long)f->uid, err.s);
            deliver_result(f->dr, f->i, DELIVER_DEFER, "4.3.0",
                           "cannot switch to the mailbox owner");
            continue;
        }
        if (maildir_link(&f->t, NULL, &err) < 0)
            file_fail(f, errno, &err);
        else
            f->linked = true;
    }
    /* ... then each new/ directory once for all its new names: a recipient is
     * delivered only when both are on disk. */
    for (size_t k = 0; k < ctx->nfiles; k++) {
        struct local_file *f = &ctx->files[k];
        int rc, e;

        if (!f->linked || f->synced)
            continue;
        str_clear(&err);
        if (become_owner(&as_owner, &cur_uid, &cur_gid, f->uid, f->gid, &err) < 0) {
            rc = -1;
            e = EPERM;
        } else {
            rc = maildir_sync_new(&f->t);
            e = errno;
            str_clear(&err);
            if (rc < 0)
                str_printf(&err, "fsync %s/new: %s", f->dir, strerror(e));
        }
        for (size_t l = k; l < ctx->nfiles; l++) {
            struct local_file *g = &ctx->files[l];

            if (!g->linked || g->synced || g->uid != f->uid || g->gid != f->gid
                || strcmp(g->dir, f->dir) != 0)
                continue;
            g->synced = true;
            if (rc == 0) {
                deliver_result(g->dr, g->i, DELIVER_OK, "2.0.0", "%s",
                               g->junk ? "delivered to maildir folder for spam"
                                       : "delivered to maildir");
                continue;
            }
            /* Not known to be durable: take it back so that a retry delivers once. */
            if (as_owner)
                maildir_unlink_new(&g->t);
            file_fail(g, e, &err);
        }
    }
    if (as_owner && priv_restore(&rerr) < 0)
        log_fatal("cannot restore privileges: %s", rerr.s);
    for (size_t k = 0; k < ctx->nfiles; k++) {
        struct local_file *f = &ctx->files[k];

        /* Linked, or the owner's ids were refused (the file stays in tmp/). */
        maildir_close(&f->t);
        free(f->dir);
    }
    ctx->nfiles = 0;
    str_free(&err);
    str_free(&rerr);
}

/* Keeps the copy just written in t for local_flush (run at once when the batch is
 * full).  Its result stays "deferred" until then. */
static void file_add(struct local_ctx *ctx, struct deliver_request *dr, size_t i,
                     const struct router_mailbox *mb, const char *dir, bool junk,
                     const struct maildir_tmp *t)
{
    struct local_file *f;

    if (ctx->files == NULL)
        ctx->files = xcalloc(LOCAL_BATCH_FILES, sizeof(*ctx->files));
    f = &ctx->files[ctx->nfiles++];
    memset(f, 0, sizeof(*f));
    f->t = *t;
    f->dr = dr;
    f->i = i;
    f->uid = mb->uid;
    f->gid = mb->gid;
    f->dir = xstrdup(dir);
    f->junk = junk;
    deliver_result(dr, i, DELIVER_DEFER, "4.3.0", "delivery not completed");
    if (ctx->nfiles == LOCAL_BATCH_FILES)
        local_flush(ctx);
}

static void deliver_one(struct local_ctx *ctx, struct local_msg *m, struct deliver_request *dr,
                        size_t i)
{
    const char *addr = dr->rcpt[i].addr;
    struct router_mailbox mb;
    struct maildir_tmp t;
    struct str err = STR_INIT, rerr = STR_INIT, dir = STR_INIT, folder = STR_INIT;
    bool junk = m->junk && ctx->junk_folder != NULL;
    enum router_status rs;
    int rc, e;

    if (addr == NULL || addr[0] == '\0' || has_control(addr)) {
        deliver_result(dr, i, DELIVER_BOUNCE, "5.1.3", "bad recipient address syntax");
        return;
    }
    router_mailbox_init(&mb);
    rs = router_mailbox(ctx->router, addr, &mb, &err);
    if (rs == ROUTER_REJECT) {
        deliver_result(dr, i, DELIVER_BOUNCE, "5.1.1", "%s",
                       err.len ? err.s : "no such mailbox");
        goto out;
    }
    if (rs != ROUTER_OK) {
        log_warn("%s: to=<%s>: mailbox lookup failed: %s", dr->id, addr,
                 err.len ? err.s : "error");
        deliver_result(dr, i, DELIVER_DEFER, "4.3.0", "%s",
                       err.len ? err.s : "mailbox lookup failed");
        goto out;
    }
    if (local_msg_delivered_to(m, addr)) {
        deliver_result(dr, i, DELIVER_BOUNCE, "5.4.6", "mail forwarding loop for %s", addr);
        goto out;
    }
    if (!path_safe(mb.path.s) || strlen(mb.path.s) != mb.path.len) {
        log_warn("%s: to=<%s>: refusing unsafe mailbox path %s", dr->id, addr, mb.path.s);
        deliver_result(dr, i, DELIVER_DEFER, "4.3.0", "mailbox path is unsafe");
        goto out;
    }

    if (priv_is_root() && mb.uid == 0) {
        log_warn("%s: to=<%s>: refusing to write mailbox %s as root", dr->id, addr, mb.path.s);
        deliver_result(dr, i, DELIVER_DEFER, "4.3.0", "mailbox owner is root");
        goto out;
    }

    str_clear(&err);
    if (priv_become(mb.uid, mb.gid, &err) < 0) {
        log_warn("%s: to=<%s>: cannot switch to uid %lu: %s", dr->id, addr,
                 (unsigned long)mb.uid, err.s);
        deliver_result(dr, i, DELIVER_DEFER, "4.3.0", "cannot switch to the mailbox owner");
        if (priv_restore(&rerr) < 0)
            log_fatal("cannot restore privileges: %s", rerr.s);
        goto out;
    }
    /* Without its trailing '/': file names in messages read better. */
    str_set(&dir, mb.path.s, mb.path.len);
    while (dir.len > 1 && dir.s[dir.len - 1] == '/')
        str_truncate(&dir, dir.len - 1);
    if (junk)
        str_printf(&folder, "%s/.%s", dir.s, ctx->junk_folder);
    rc = maildir_write_copy(ctx, m, addr, dir.s, junk ? ctx->junk_folder : NULL,
                            junk ? folder.s : NULL, mb.create, &t, &err);
    e = errno;
    if (priv_restore(&rerr) < 0)
        log_fatal("cannot restore privileges: %s", rerr.s);
    if (rc < 0) {
        log_warn("%s: to=<%s>: cannot write maildir %s: %s", dr->id, addr, mb.path.s,
                 err.len ? err.s : strerror(e));
        deliver_result(dr, i, DELIVER_DEFER, errno_dsn(e), "maildir delivery failed: %s",
                       err.len ? err.s : strerror(e));
        goto out;
    }
    file_add(ctx, dr, i, &mb, junk ? folder.s : dir.s, junk, &t);
out:
    router_mailbox_free(&mb);
    str_free(&folder);
    str_free(&err);
    str_free(&rerr);
    str_free(&dir);
}

static void defer_all(struct deliver_request *dr, const char *dsn, const char *text)
{
    for (size_t i = 0; i < dr->nrcpt; i++)
        deliver_result(dr, i, DELIVER_DEFER, dsn, "%s", text);
}

void local_deliver(struct local_ctx *ctx, struct deliver_request *dr)
{
    struct local_msg m;
    struct str err = STR_INIT;
    bool corrupt;

    if (strcmp(dr->queue, "active") != 0 || !queue_id_valid(dr->id)) {
        log_warn("%s: delivery request for queue \"%s\" refused", dr->id, dr->queue);
        defer_all(dr, "4.3.0", "bad delivery request");
        return;
    }
    if (local_msg_open(&m, dr->id, &corrupt, &err) < 0) {
        int e = errno;

        if (corrupt) {
            if (err.len > 0)
                log_warn("%s: %s", dr->id, err.s);
            else
                log_warn("%s: corrupt queue file", dr->id);
            defer_all(dr, "4.3.0", "corrupt queue file");
        } else if (e == ENOENT) {
            log_warn("%s: queue file is gone", dr->id);
            defer_all(dr, "4.3.0", "queue file is gone");
        } else {
            log_warn("%s: cannot read queue file: %s", dr->id, err.len ? err.s : strerror(e));
            defer_all(dr, "4.3.0", "cannot read queue file");
        }
        str_free(&err);
        return;
    }
    m.junk = junk_match(&ctx->junk, m.content.s, m.content.len);
    if (m.junk)
        log_info("%s: marked as spam by its header", dr->id);
    for (size_t i = 0; i < dr->nrcpt; i++)
        deliver_one(ctx, &m, dr, i);
    local_msg_close(&m);
    str_free(&err);
}
