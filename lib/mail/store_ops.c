/* Changing a folder (see store.h): flags by renaming files, expunge by unlinking,
 * copy by linking, append through tmp/.  Each operation takes the lock, syncs, acts,
 * and writes the UID list before it returns a UID to its caller; the order of the
 * steps is what makes a crash harmless (postern-maildir(5)). */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "maildir_scan.h"
#include "str.h"
#include "xmalloc.h"

/* The record of uid in b->sh->ul, or NULL. */
static struct uidlist_rec *rec_find(struct store_box *b, uint32_t uid)
{
    size_t lo = 0, hi = b->sh->ul.n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;

        if (b->sh->ul.v[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < b->sh->ul.n && b->sh->ul.v[lo].uid == uid ? &b->sh->ul.v[lo] : NULL;
}

static int lock_sync(struct store_box *b, struct str *err)
{
    int lk = store_lock(b->sh->dirfd, err);

    if (lk < 0)
        return -1;
    if (store_sync_changed(b, err) < 0) {
        store_unlock(lk);
        return -1;
    }
    return lk;
}

static int rdonly(struct str *err)
{
    str_sets(err, "folder is read-only");
    errno = EROFS;
    return -1;
}

static bool keyword_ok(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > STORE_KEYWORD_LEN || name[0] == '\\')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
            return false;
    }
    return true;
}

int store_keyword_index(struct store_box *b, const char *name, bool create)
{
    struct str err = STR_INIT;
    int lk, idx = -1;

    for (unsigned i = 0; i < STORE_KEYWORDS_MAX; i++)
        if (b->sh->kw[i] != NULL && strcasecmp(b->sh->kw[i], name) == 0)
            return (int)i;
    if (!create || !keyword_ok(name) || (b->flags & STORE_RDONLY)) {
        errno = create && !(b->flags & STORE_RDONLY) ? EINVAL : ENOENT;
        return -1;
    }
    if ((lk = store_lock(b->sh->dirfd, &err)) < 0) {
        str_free(&err);
        return -1;
    }
    store_keywords_read(b);         /* another process may have added names */
    for (unsigned i = 0; idx < 0 && i < STORE_KEYWORDS_MAX; i++)
        if (b->sh->kw[i] != NULL && strcasecmp(b->sh->kw[i], name) == 0)
            idx = (int)i;
    for (unsigned i = 0; idx < 0 && i < STORE_KEYWORDS_MAX; i++)
        if (b->sh->kw[i] == NULL) {
            b->sh->kw[i] = xstrdup(name);
            if (store_keywords_write(b, &err) < 0) {
                free(b->sh->kw[i]);
                b->sh->kw[i] = NULL;
                store_unlock(lk);
                str_free(&err);
                return -1;
            }
            idx = (int)i;
            store_pending_flag(b->sh, b, true, false);
        }
    store_unlock(lk);
    str_free(&err);
    if (idx < 0)
        errno = ENOSPC;
    return idx;
}

/* Renames rec's file to carry flags and keywords.  0; 1 when the file is gone;
 * -1 (errno). */
static int rename_flags(struct store_box *b, struct uidlist_rec *rec, uint8_t flags,
                        uint32_t keywords)
{
    struct str on = STR_INIT, nn = STR_INIT;
    size_t blen = rec->blen;
    int rc = 0;

    store_rec_file(rec, &on);
    store_name_make(&nn, rec->base, blen, flags, keywords);
    if (strcmp(on.s, nn.s) != 0 && renameat(b->sh->curfd, on.s, b->sh->curfd, nn.s) < 0)
        rc = errno == ENOENT ? 1 : -1;
    if (rc == 0) {
        free(rec->file);
        rec->file = NULL;
    }
    str_free(&on);
    str_free(&nn);
    return rc;
}

int store_set_flags(struct store_box *b, const uint32_t *uids, size_t n, char op,
                    unsigned flags, uint32_t keywords, uint64_t unchangedsince,
                    uint32_t **failed, size_t *n_failed, struct str *err)
{
    int lk, rc = 0;
    bool dirty = false, clean;

    if (failed != NULL) {
        *failed = NULL;
        *n_failed = 0;
    }
    if (b->flags & STORE_RDONLY)
        return rdonly(err);
    if (op != '+' && op != '-' && op != '=') {
        str_sets(err, "bad flag operation");
        errno = EINVAL;
        return -1;
    }
    flags &= STORE_F_MASK;
    if ((lk = lock_sync(b, err)) < 0)
        return -1;
    clean = store_unchanged(b);
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct uidlist_rec *rec = rec_find(b, uids[i]);
        uint8_t nf;
        uint32_t nk;
        int r;

        if (rec == NULL)
            continue;
        if (unchangedsince != 0 && rec->modseq > unchangedsince) {
            if (failed != NULL)
                store_changes_add(failed, n_failed, rec->uid);
            continue;
        }
        nf = op == '+' ? (uint8_t)(rec->flags | flags)
           : op == '-' ? (uint8_t)(rec->flags & ~flags) : (uint8_t)flags;
        nk = op == '+' ? rec->keywords | keywords
           : op == '-' ? rec->keywords & ~keywords : keywords;
        if (op == '=')
            nf |= rec->flags & STORE_F_PASSED;      /* not an IMAP flag: kept */
        if (nf == rec->flags && nk == rec->keywords)
            continue;
        r = rename_flags(b, rec, nf, nk);
        if (r < 0) {
            rc = store_sys_fail(err, "rename", rec->base);
            break;
        }
        if (r == 1) {
            clean = false;          /* expunged by another: the next sync tells */
            continue;
        }
        rec->flags = nf;
        rec->keywords = nk;
        rec->modseq = ++b->sh->ul.highestmodseq;
        dirty = true;
    }
    if (dirty && store_commit(b, err) < 0)
        rc = -1;
    if (dirty)
        store_stamp_own(b, clean && rc == 0);
    store_unlock(lk);
    return rc;
}

/* Expunges the messages among uids (all when NULL) that have \Deleted, or that are
 * among uids whatever their flags when any is true. */
static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static int expunge(struct store_box *b, const uint32_t *uids, size_t n, bool any,
                   uint32_t **done, size_t *n_done, struct str *err)
{
    uint32_t *sorted = NULL;
    int lk, rc = 0;
    size_t k = 0;
    struct str nm = STR_INIT;
    bool dirty = false, join = false, clean;

    if (done != NULL) {
        *done = NULL;
        *n_done = 0;
    }
    if (b->flags & STORE_RDONLY)
        return rdonly(err);
    if ((lk = lock_sync(b, err)) < 0)
        return -1;
    clean = store_unchanged(b);
    if (uids != NULL) {
        sorted = xreallocarray(NULL, n ? n : 1, sizeof(*sorted));
        memcpy(sorted, uids, n * sizeof(*sorted));
        qsort(sorted, n, sizeof(*sorted), cmp_u32);
    }
    for (size_t i = 0; i < b->sh->ul.n; i++) {
        struct uidlist_rec *rec = &b->sh->ul.v[i];
        bool want = any || (rec->flags & STORE_F_DELETED) != 0;

        if (uids != NULL && want)
            want = n > 0 && bsearch(&rec->uid, sorted, n, sizeof(*sorted), cmp_u32) != NULL;
        if (want) {
            store_rec_file(rec, &nm);
            if (unlinkat(b->sh->curfd, nm.s, 0) < 0) {
                clean = false;
                if (errno != ENOENT) {
                    rc = store_sys_fail(err, "unlink", nm.s);
                    want = false;
                }
            }
        }
        if (want) {
            uidlist_expunged(&b->sh->ul, rec->uid, ++b->sh->ul.highestmodseq, join);
            join = true;
            if (done != NULL)
                store_changes_add(done, n_done, rec->uid);
            free(rec->file);
            dirty = true;
        } else {
            b->sh->ul.v[k++] = *rec;
            join = false;
        }
    }
    b->sh->ul.n = k;
    if (dirty) {
        fsync(b->sh->curfd);
        if (store_commit(b, err) < 0)
            rc = -1;
        store_stamp_own(b, clean && rc == 0);
    }
    store_unlock(lk);
    str_free(&nm);
    free(sorted);
    return rc;
}

/* Copies the file at sfd/sname to dfd/dname (not there yet) and fsyncs it. */
static int copy_file(int sfd, const char *sname, int dfd, const char *dname)
{
    char buf[65536];
    int in = openat(sfd, sname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int out;
    struct stat st;
    int rc = 0;

    if (in < 0)
        return -1;
    out = openat(dfd, dname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        close(in);
        return -1;
    }
    for (;;) {
        ssize_t got = read(in, buf, sizeof(buf));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            rc = got < 0 ? -1 : 0;
            break;
        }
        for (ssize_t off = 0; off < got;) {
            ssize_t w = write(out, buf + off, (size_t)(got - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = -1;
                break;
            }
            off += w;
        }
        if (rc < 0)
            break;
    }
    if (rc == 0 && fstat(in, &st) == 0) {
        struct timespec ts[2] = { st.st_atim, st.st_mtim };
        futimens(out, ts);
    }
    if (rc == 0 && fsync(out) < 0)
        rc = -1;
    close(in);
    if (close(out) < 0)
        rc = -1;
    if (rc < 0)
        unlinkat(dfd, dname, 0);
    return rc;
}

/* The sizes part of a base name (",S=...,W=..." when it has them). */
static void size_suffix(const char *base, struct str *out)
{
    uint64_t v;

    str_clear(out);
    if (maildir_name_size(base, 'S', &v))
        str_printf(out, ",S=%llu", (unsigned long long)v);
    if (maildir_name_size(base, 'W', &v))
        str_printf(out, ",W=%llu", (unsigned long long)v);
}

int store_expunge(struct store_box *b, const uint32_t *uids, size_t n,
                  uint32_t **done, size_t *n_done, struct str *err)
{
    return expunge(b, uids, n, false, done, n_done, err);
}

/* What a copy takes from its source. */
struct copy_src {
    uint32_t uid;
    char *file;             /* name in the source's cur/ */
    char *base;
    uint8_t flags;
    uint32_t keywords;      /* in the destination's letters */
};

int store_copy(struct store_box *b, const uint32_t *uids, size_t n, struct store_box *dst,
               bool move, uint32_t **src_uids, uint32_t **dst_uids, size_t *n_done,
               struct str *err)
{
    struct copy_src *cs = NULL;
    size_t ncs = 0, ndone = 0;
    struct str nm = STR_INIT, sz = STR_INIT, base = STR_INIT;
    int lk, rc = 0;
    bool clean;

    *src_uids = NULL;
    *dst_uids = NULL;
    *n_done = 0;
    if ((dst->flags & STORE_RDONLY) || (move && (b->flags & STORE_RDONLY)))
        return rdonly(err);
    if ((lk = lock_sync(b, err)) < 0)
        return -1;
    cs = xcalloc(n ? n : 1, sizeof(*cs));
    for (size_t i = 0; i < n; i++) {
        struct uidlist_rec *rec = rec_find(b, uids[i]);

        if (rec == NULL)
            continue;
        store_rec_file(rec, &nm);
        cs[ncs].uid = rec->uid;
        cs[ncs].file = xstrdup(nm.s);
        cs[ncs].base = xstrdup(rec->base);
        cs[ncs].flags = rec->flags;
        cs[ncs].keywords = rec->keywords;
        ncs++;
    }
    store_unlock(lk);
    /* Keywords by name: the destination's letters may differ. */
    for (size_t i = 0; dst->sh != b->sh && i < ncs; i++) {
        uint32_t kw = 0;

        for (unsigned k = 0; k < STORE_KEYWORDS_MAX; k++) {
            int idx;

            if (!(cs[i].keywords & (1u << k)) || b->sh->kw[k] == NULL)
                continue;
            if ((idx = store_keyword_index(dst, b->sh->kw[k], true)) >= 0)
                kw |= 1u << idx;
        }
        cs[i].keywords = kw;
    }
    if ((lk = lock_sync(dst, err)) < 0) {
        rc = -1;
        goto out;
    }
    clean = store_unchanged(dst);
    *src_uids = xcalloc(ncs ? ncs : 1, sizeof(uint32_t));
    *dst_uids = xcalloc(ncs ? ncs : 1, sizeof(uint32_t));
    for (size_t i = 0; i < ncs && dst->sh->ul.nextuid < UINT32_MAX; i++) {
        store_unique_name(&base);
        size_suffix(cs[i].base, &sz);
        str_append(&base, sz.s, sz.len);
        store_name_make(&nm, base.s, base.len, cs[i].flags, cs[i].keywords);
        if (linkat(b->sh->curfd, cs[i].file, dst->sh->curfd, nm.s, 0) < 0) {
            if (errno == ENOENT) {
                clean = false;      /* expunged meanwhile */
                continue;
            }
            if ((errno != EXDEV && errno != EPERM && errno != EMLINK) ||
                copy_file(b->sh->curfd, cs[i].file, dst->sh->curfd, nm.s) < 0) {
                if (errno == ENOENT)
                    continue;
                rc = store_sys_fail(err, "copy", cs[i].file);
                break;
            }
        }
        uidlist_add(&dst->sh->ul, dst->sh->ul.nextuid, base.s, base.len, cs[i].flags,
                    cs[i].keywords, ++dst->sh->ul.highestmodseq);
        (*src_uids)[ndone] = cs[i].uid;
        (*dst_uids)[ndone] = dst->sh->ul.nextuid++;
        ndone++;
    }
    if (ndone > 0) {
        if (fsync(dst->sh->curfd) < 0 && rc == 0)
            rc = store_sys_fail(err, "fsync", "cur");
        /* The list names the new files only once they are durable. */
        if (rc == 0 && store_commit(dst, err) < 0)
            rc = -1;
        store_stamp_own(dst, clean && rc == 0);
        if (rc < 0)
            ndone = 0;      /* not recorded: the next sync gives them UIDs */
    }
    store_unlock(lk);
    *n_done = ndone;
    if (rc == 0 && move && ndone > 0)
        rc = expunge(b, *src_uids, ndone, true, NULL, NULL, err);
out:
    for (size_t i = 0; i < ncs; i++) {
        free(cs[i].file);
        free(cs[i].base);
    }
    free(cs);
    str_free(&nm);
    str_free(&sz);
    str_free(&base);
    return rc;
}

struct store_append {
    struct store_box *b;
    int fd;
    char *name;             /* in tmp/ */
    uint64_t size, bare_lf, max;
    char last;
};

int store_append_begin(struct store_box *b, uint64_t max_size, struct store_append **out,
                       struct str *err)
{
    struct store_append *a;
    struct str nm = STR_INIT;
    int fd = -1;

    if (b->flags & STORE_RDONLY)
        return rdonly(err);
    for (int tries = 0; fd < 0 && tries < 10; tries++) {
        store_unique_name(&nm);
        fd = openat(b->sh->tmpfd, nm.s, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        store_sys_fail(err, "create in tmp", b->sh->dir);
        str_free(&nm);
        return -1;
    }
    a = xcalloc(1, sizeof(*a));
    a->b = b;
    a->fd = fd;
    a->name = str_detach(&nm);
    a->max = max_size;
    *out = a;
    return 0;
}

void store_append_abort(struct store_append *a)
{
    if (a == NULL)
        return;
    if (a->fd >= 0)
        close(a->fd);
    unlinkat(a->b->sh->tmpfd, a->name, 0);
    free(a->name);
    free(a);
}

int store_append_write(struct store_append *a, const void *data, size_t len,
                       struct str *err)
{
    const char *p = data;

    if (a->max > 0 && (len > a->max || a->size > a->max - len)) {
        errno = EFBIG;
        store_sys_fail(err, "message too large for", a->b->sh->dir);
        store_append_abort(a);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\n' && (i > 0 ? p[i - 1] : a->last) != '\r')
            a->bare_lf++;
    }
    if (len > 0)
        a->last = p[len - 1];
    for (size_t off = 0; off < len;) {
        ssize_t w = write(a->fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            store_sys_fail(err, "write to tmp in", a->b->sh->dir);
            store_append_abort(a);
            return -1;
        }
        off += (size_t)w;
    }
    a->size += len;
    return 0;
}

int store_append_commit(struct store_append *a, unsigned flags, uint32_t keywords,
                        time_t internaldate, uint32_t *uid, struct str *err)
{
    struct store_box *b = a->b;
    struct str base = STR_INIT, nm = STR_INIT;
    struct timespec ts[2];
    int lk, rc = 0;

    ts[0].tv_sec = ts[1].tv_sec = internaldate > 0 ? internaldate : time(NULL);
    ts[0].tv_nsec = ts[1].tv_nsec = 0;
    if (futimens(a->fd, ts) < 0 || fsync(a->fd) < 0 || close(a->fd) < 0) {
        a->fd = -1;
        store_sys_fail(err, "fsync in", b->sh->dir);
        store_append_abort(a);
        return -1;
    }
    a->fd = -1;
    str_printf(&base, "%s,S=%llu,W=%llu", a->name, (unsigned long long)a->size,
               (unsigned long long)(a->size + a->bare_lf));
    store_name_make(&nm, base.s, base.len, (uint8_t)(flags & STORE_F_MASK), keywords);
    if ((lk = lock_sync(b, err)) < 0) {
        rc = -1;
    } else {
        bool clean = store_unchanged(b);

        if (b->sh->ul.nextuid == UINT32_MAX) {
            errno = ENOSPC;
            rc = store_sys_fail(err, "no UID left in", b->sh->dir);
        } else if (renameat(b->sh->tmpfd, a->name, b->sh->curfd, nm.s) < 0 ||
                   fsync(b->sh->curfd) < 0) {
            rc = store_sys_fail(err, "rename into cur in", b->sh->dir);
        } else {
            uint32_t u = b->sh->ul.nextuid++;

            uidlist_add(&b->sh->ul, u, base.s, base.len, (uint8_t)(flags & STORE_F_MASK),
                        keywords, ++b->sh->ul.highestmodseq);
            if (store_commit(b, err) < 0) {
                rc = -1;            /* the file stays; the next sync numbers it */
            } else {
                store_recent_add(b, u);
                *uid = u;
                store_stamp_own(b, clean);
            }
        }
        store_unlock(lk);
    }
    if (rc < 0)
        unlinkat(b->sh->tmpfd, a->name, 0);
    free(a->name);
    free(a);
    str_free(&base);
    str_free(&nm);
    return rc;
}

int store_stat(struct store_box *b, size_t i)
{
    struct stat st;
    int fd;

    if (i >= b->sh->n) {
        errno = EINVAL;
        return -1;
    }
    if ((fd = store_open_msg(b, i)) < 0)
        return -1;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    b->sh->msgs[i].internaldate = st.st_mtim.tv_sec;
    if (b->sh->msgs[i].size == 0) {
        uint64_t size;
        if (maildir_crlf_size(fd, &size, NULL) == 0)
            b->sh->msgs[i].size = size;
    }
    close(fd);
    return 0;
}

int store_open_msg(struct store_box *b, size_t i)
{
    struct uidlist_rec *rec;
    struct str nm = STR_INIT;
    int fd;

    if (i >= b->sh->n) {
        errno = EINVAL;
        return -1;
    }
    fd = openat(b->sh->dirfd, b->sh->msgs[i].file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT)
        return fd;
    /* Renamed by a flag change elsewhere: find it by its base name, after a scan
     * even within the trust of the folder's own changes (store_stamp_own). */
    uint32_t uid = b->sh->msgs[i].uid;
    if (b->sh->verify_at != 0)
        b->sh->verify_at = 1;
    int lk = lock_sync(b, &nm);

    if (lk < 0) {
        str_free(&nm);
        errno = ENOENT;
        return -1;
    }
    store_unlock(lk);
    if ((rec = rec_find(b, uid)) == NULL) {
        str_free(&nm);
        errno = ENOENT;
        return -1;
    }
    str_free(&nm);
    store_rec_file(rec, &nm);
    fd = openat(b->sh->curfd, nm.s, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    str_free(&nm);
    return fd;
}
