/* Bringing a folder's UID list in step with its directories (see store.h): files
 * others delivered, removed or renamed are found here, the shared view is rebuilt
 * from the list, and what changed goes to each handle's pending news until its next
 * store_sync takes it.  Directory entries are untrusted: names are checked
 * (store_base_ok) and bounded by NAME_MAX; the number of messages by the handle's
 * limit. */
#include "store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "clock.h"
#include "file_read.h"
#include "log.h"
#include "maildir_scan.h"
#include "str.h"
#include "xmalloc.h"

/* One file found by a scan. */
struct found {
    char *name;             /* file name in cur/ (after the move from new/) */
    size_t blen;            /* its base length */
    uint8_t flags;
    uint32_t keywords;
    bool used;
};

struct scan {
    struct found *v;
    size_t n, cap;
};

static void scan_free(struct scan *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].name);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static int cmp_found(const void *a, const void *b)
{
    const struct found *x = a, *y = b;
    size_t n = x->blen < y->blen ? x->blen : y->blen;
    int c = memcmp(x->name, y->name, n);

    if (c != 0)
        return c;
    return x->blen < y->blen ? -1 : x->blen > y->blen;
}

/* Delivery order: the leading seconds as a number, then the name. */
static int cmp_delivery(const void *a, const void *b)
{
    const struct found *x = *(struct found *const *)a, *y = *(struct found *const *)b;
    unsigned long long tx = strtoull(x->name, NULL, 10), ty = strtoull(y->name, NULL, 10);

    if (tx != ty)
        return tx < ty ? -1 : 1;
    return cmp_found(x, y);
}

int store_sys_fail(struct str *err, const char *what, const char *name)
{
    int e = errno;

    str_clear(err);
    str_printf(err, "%s %s: %s", what, name, strerror(e));
    errno = e;
    return -1;
}

unsigned long store_scans;

DIR *store_dir_stream(int fd)
{
    int dfd = dup(fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;

    if (d == NULL) {
        int e = errno;

        if (dfd >= 0)
            close(dfd);
        errno = e;
        return NULL;
    }
    rewinddir(d);
    return d;
}

/* Moves what new/ holds into cur/ (read-only handles too: every reader of a folder
 * does).  The number moved, or -1 with err. */
static long move_new(struct store_box *b, struct str *err)
{
    struct str nn = STR_INIT;
    DIR *d = store_dir_stream(b->sh->newfd);
    struct dirent *de;
    long moved = 0;

    if (d == NULL)
        return store_sys_fail(err, "read", "new");
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        uint8_t flags;
        uint32_t keywords;
        size_t blen;

        if (name[0] == '.')
            continue;
        blen = store_name_base(name, &flags, &keywords);
        if (!store_base_ok(name, blen))
            continue;
        store_name_make(&nn, name, blen, flags, keywords);
        if (renameat(b->sh->newfd, name, b->sh->curfd, nn.s) == 0)
            moved++;                /* else gone meanwhile, or taken by another reader */
    }
    closedir(d);
    str_free(&nn);
    return moved;
}

/* Empties new/ into cur/, then stamps both directories (store_stamp_dirs) once they
 * hold still: new/ is read again after each round of moves until a reading finds
 * it empty, so that a delivery during the moves is either moved or comes after the
 * stamp.  In a large folder it first waits out the stamps' margin after its own
 * moves, so that the next look can trust them instead of reading cur/ again.  The
 * number of files moved, or -1 with err. */
static long empty_new(struct store_box *b, size_t known, struct str *err)
{
    long total = 0;

    for (int round = 0; round < STORE_MOVE_ROUNDS; round++) {
        long moved = move_new(b, err);

        if (moved <= 0)
            return moved < 0 ? -1 : total;
        total += moved;
        if (known + (size_t)total >= STAMP_WAIT_MSGS)
            store_stamp_wait(b);
        store_stamp_dirs(b);
    }
    b->sh->stamps_trusted = false;      /* still moving: no stamp this time */
    return total;
}

/* Lists cur/ (after the moves from new/ unless cur_only; known: the messages the
 * list holds). */
static int scan_dirs(struct store_box *b, struct scan *s, bool cur_only, size_t known,
                     struct str *err)
{
    int rc = 0;
    DIR *d;
    struct dirent *de;

    store_scans++;
    if (!cur_only) {
        if (empty_new(b, known, err) < 0)
            return -1;
    }
    if ((d = store_dir_stream(b->sh->curfd)) == NULL)
        return store_sys_fail(err, "read", "cur");
    while ((de = readdir(d)) != NULL) {
        struct found f;
        const char *name = de->d_name;

        if (name[0] == '.')
            continue;
        f.blen = store_name_base(name, &f.flags, &f.keywords);
        if (!store_base_ok(name, f.blen))
            continue;
        if (b->max_msgs > 0 && s->n >= b->max_msgs) {
            errno = EFBIG;
            rc = store_sys_fail(err, "too many messages in", b->sh->dir);
            break;
        }
        f.name = xstrdup(name);
        f.used = false;
        if (s->n == s->cap) {
            s->cap = s->cap ? s->cap * 2 : 256;
            s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
        }
        s->v[s->n++] = f;
    }
    closedir(d);
    if (rc == 0 && s->n > 1) {
        size_t k = 1;

        qsort(s->v, s->n, sizeof(*s->v), cmp_found);
        /* One base name, one message: a second file of the same base is ignored. */
        for (size_t i = 1; i < s->n; i++) {
            if (cmp_found(&s->v[k - 1], &s->v[i]) == 0)
                free(s->v[i].name);
            else
                s->v[k++] = s->v[i];
        }
        s->n = k;
    }
    return rc;
}

static struct found *scan_find(struct scan *s, const char *base)
{
    struct found key = { (char *)base, strlen(base), 0, 0, false };

    return s->n > 0 ? bsearch(&key, s->v, s->n, sizeof(*s->v), cmp_found) : NULL;
}

void store_changes_add(uint32_t **v, size_t *n, uint32_t uid)
{
    /* Grown in powers of two: n is the count, the capacity the next power. */
    if ((*n & (*n - 1)) == 0 || *n == 0)
        *v = xreallocarray(*v, *n ? *n * 2 : 4, sizeof(**v));
    (*v)[(*n)++] = uid;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* A fresh UIDVALIDITY, larger than any this folder had. */
static uint32_t new_uidvalidity(uint32_t old)
{
    uint32_t now = (uint32_t)time(NULL);

    return now > old ? now : old + 1;
}

int store_keywords_read(struct store_box *b)
{
    int fd = openat(b->sh->dirfd, KEYWORDS_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct str buf = STR_INIT, err = STR_INIT;
    const char *p, *end;

    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    if (file_read_fd(fd, KEYWORDS_FILE, 64 * 1024, &buf, &err) < 0) {
        close(fd);
        str_free(&buf);
        str_free(&err);
        return -1;
    }
    close(fd);
    p = buf.s != NULL ? buf.s : "";
    end = p + buf.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        char *e;
        unsigned long idx = strtoul(p, &e, 10);

        if (e > p && e < p + len && *e == ' ' && idx < STORE_KEYWORDS_MAX) {
            size_t kl = len - (size_t)(e + 1 - p);
            bool ok = kl > 0 && kl <= STORE_KEYWORD_LEN;

            for (size_t k = 0; ok && k < kl; k++)
                if ((unsigned char)e[1 + k] <= 0x20 || (unsigned char)e[1 + k] >= 0x7f)
                    ok = false;
            if (ok && (b->sh->kw[idx] == NULL || strncmp(b->sh->kw[idx], e + 1, kl) != 0 ||
                       b->sh->kw[idx][kl] != '\0')) {
                free(b->sh->kw[idx]);
                b->sh->kw[idx] = xstrndup(e + 1, kl);
                store_pending_flag(b->sh, NULL, true, false);
            }
        }
        p += len + 1;
    }
    str_free(&buf);
    str_free(&err);
    return 0;
}

int store_keywords_write(struct store_box *b, struct str *err)
{
    struct str text = STR_INIT, why = STR_INIT;
    int rc;

    for (unsigned i = 0; i < STORE_KEYWORDS_MAX; i++)
        if (b->sh->kw[i] != NULL)
            str_printf(&text, "%u %s\n", i, b->sh->kw[i]);
    rc = atomic_file_write_at(b->sh->dirfd, KEYWORDS_FILE, text.s != NULL ? text.s : "",
                              text.len, 0600, &why);
    if (rc < 0) {
        str_clear(err);
        str_printf(err, "%s/%s", b->sh->dir, why.s);
    }
    str_free(&text);
    str_free(&why);
    return rc;
}

/* Adds uid to the pending changes (the list field of struct store_changes) of
 * every handle on the folder but except. */
#define PENDING_ADD(sh, except, field, uid)                                          \
    do {                                                                             \
        for (size_t h_ = 0; h_ < (sh)->nboxes; h_++)                                 \
            if ((sh)->boxes[h_] != (except))                                         \
                store_changes_add(&(sh)->boxes[h_]->pending.field,                   \
                                  &(sh)->boxes[h_]->pending.n_##field, (uid));       \
    } while (0)

void store_pending_flag(struct store_state *sh, const struct store_box *except,
                        bool keywords, bool uidvalidity)
{
    for (size_t i = 0; i < sh->nboxes; i++) {
        if (sh->boxes[i] == except)
            continue;
        if (keywords)
            sh->boxes[i]->pending.keywords_changed = true;
        if (uidvalidity)
            sh->boxes[i]->pending.uidvalidity_changed = true;
    }
}

void store_recent_add(struct store_box *b, uint32_t uid)
{
    if (b->flags & STORE_RDONLY)
        return;
    if (b->nrecent > 0 && b->recent[b->nrecent - 1] >= uid)
        return;                     /* UIDs only grow: an older one is no news */
    if ((b->nrecent & (b->nrecent - 1)) == 0)
        b->recent = xreallocarray(b->recent, b->nrecent ? b->nrecent * 2 : 1,
                                  sizeof(*b->recent));
    b->recent[b->nrecent++] = uid;
}

/* Rebuilds the folder's view from its list, diffing against the old view into the
 * pending changes of every handle but except (when report); the UIDs at or above
 * recent_from that were not in the view become \Recent for recent_to. */
static void rebuild_view(struct store_state *sh, bool report, const struct store_box *except,
                         struct store_box *recent_to, uint32_t recent_from)
{
    struct store_msg *old = sh->msgs;
    char *old_files = sh->files, *fp;
    size_t on = sh->n, i = 0, total = 0;

    /* The file names, "cur/BASE:2,FLAGS", all in one block. */
    for (size_t k = 0; k < sh->ul.n; k++)
        total += 4 + store_rec_file_len(&sh->ul.v[k]) + 1;
    fp = sh->files = xmalloc_large(total ? total : 1, 1);
    sh->msgs = xmalloc_large(sh->ul.n ? sh->ul.n : 1, sizeof(*sh->msgs));
    free(sh->uids);
    sh->uids = xmalloc_large(sh->ul.n ? sh->ul.n : 1, sizeof(*sh->uids));
    sh->cap = sh->ul.n;
    sh->n = 0;
    for (size_t k = 0; k < sh->ul.n; k++) {
        const struct uidlist_rec *r = &sh->ul.v[k];
        struct store_msg *m = &sh->msgs[sh->n];

        sh->uids[sh->n++] = r->uid;

        while (i < on && old[i].uid < r->uid) {
            if (report)
                PENDING_ADD(sh, except, expunged, old[i].uid);
            i++;
        }
        memset(m, 0, sizeof(*m));
        m->uid = r->uid;
        m->flags = r->flags;
        m->keywords = r->keywords;
        m->modseq = r->modseq;
        m->file = fp;
        memcpy(fp, "cur/", 4);
        fp += 4 + store_rec_file_put(r, fp + 4) + 1;
        if (i < on && old[i].uid == r->uid) {
            /* The same base name: the size it gave (or store_stat found) holds. */
            m->internaldate = old[i].internaldate;
            m->size = old[i].size;
            if (m->size == 0 && !maildir_base_size(r->base, r->blen, 'W', &m->size))
                m->size = 0;
            if (report && old[i].modseq != r->modseq)
                PENDING_ADD(sh, except, changed, r->uid);
            i++;
        } else {
            if (!maildir_base_size(r->base, r->blen, 'W', &m->size))
                m->size = 0;
            if (recent_to != NULL && recent_from != 0 && r->uid >= recent_from)
                store_recent_add(recent_to, r->uid);
            if (report)
                PENDING_ADD(sh, except, added, r->uid);
        }
    }
    for (; i < on; i++) {
        if (report)
            PENDING_ADD(sh, except, expunged, old[i].uid);
    }
    free(old);
    free(old_files);
}

int store_commit(struct store_box *b, struct str *err)
{
    if (uidlist_write(b->sh->dirfd, b->sh->dir, &b->sh->ul, err) < 0)
        return -1;
    rebuild_view(b->sh, true, b, NULL, 0);
    store_stamp_list(b);
    return 0;
}

/* Brings ul in step with a scan of the directories: known messages gone or with
 * other flags, new files given UIDs in delivery order (from *first_new on).  *dirty
 * when ul changed.  0, or -1 with err. */
static int merge_scan(struct store_box *b, struct uidlist *ul, bool *dirty,
                      uint32_t *first_new, struct str *err)
{
    struct scan s = { 0 };
    struct found **fresh = NULL;
    size_t nfresh = 0;

    if (scan_dirs(b, &s, false, ul->n, err) < 0) {
        scan_free(&s);
        return -1;
    }
    /* Known messages: gone, or flags changed in their names.  A file renamed in cur/
     * while we read it can be missed; cur/ is read again before one is declared
     * gone. */
    struct scan again = { 0 };
    struct str canon = STR_INIT;
    bool reread = false, join = false;
    size_t k = 0;
    for (size_t i = 0; i < ul->n; i++) {
        struct uidlist_rec *rec = &ul->v[i];
        struct found *f = scan_find(&s, rec->base);

        if (f == NULL && !reread) {
            reread = true;
            if (scan_dirs(b, &again, true, 0, err) < 0) {
                scan_free(&s);
                scan_free(&again);
                str_free(&canon);
                return -1;
            }
        }
        if (f == NULL && (f = scan_find(&again, rec->base)) != NULL)
            f->used = false;
        if (f == NULL || f->used) {
            uidlist_expunged(ul, rec->uid, ++ul->highestmodseq, join);
            join = true;
            free(rec->file);
            *dirty = true;
            continue;
        }
        join = false;
        f->used = true;
        if (f->flags != rec->flags || f->keywords != rec->keywords) {
            rec->flags = f->flags;
            rec->keywords = f->keywords;
            rec->modseq = ++ul->highestmodseq;
            *dirty = true;
        }
        store_name_make(&canon, rec->base, rec->blen, rec->flags, rec->keywords);
        free(rec->file);
        rec->file = strcmp(canon.s, f->name) != 0 ? xstrdup(f->name) : NULL;
        ul->v[k++] = *rec;
    }
    ul->n = k;
    /* New files, in delivery order. */
    for (size_t i = 0; i < s.n; i++) {
        if (s.v[i].used)
            continue;
        fresh = xreallocarray(fresh, nfresh + 1, sizeof(*fresh));
        fresh[nfresh++] = &s.v[i];
    }
    if (nfresh > 1)
        qsort(fresh, nfresh, sizeof(*fresh), cmp_delivery);
    *first_new = ul->nextuid;
    for (size_t i = 0; i < nfresh; i++) {
        struct found *f = fresh[i];

        if (ul->nextuid == UINT32_MAX)
            break;                  /* UIDs exhausted: RFC 3501 wants a new UIDVALIDITY */
        struct uidlist_rec *nr = uidlist_add(ul, ul->nextuid++, f->name, f->blen, f->flags,
                                             f->keywords, ++ul->highestmodseq);
        store_name_make(&canon, f->name, f->blen, f->flags, f->keywords);
        if (strcmp(canon.s, f->name) != 0)
            nr->file = xstrdup(f->name);
        *dirty = true;
    }
    free(fresh);
    scan_free(&s);
    scan_free(&again);
    str_free(&canon);
    return 0;
}

int store_sync_locked(struct store_box *b, struct str *err)
{
    struct uidlist ul;
    struct str why = STR_INIT;
    bool dirty = false, quick;
    int r;
    uint32_t first_new;

    if (b->sh->verify_at != 0) {
        /* Checking on the folder's own changes, perhaps a few ms old: once past
         * the margin, this scan's stamps can be trusted.  Until a scan succeeds,
         * no stamp is. */
        store_stamp_wait(b);
        b->sh->verify_at = 0;
        b->sh->stamps_trusted = false;
    }
    store_keywords_read(b);
    r = uidlist_read(b->sh->dirfd, &ul, &why);
    if (r == -2) {
        str_clear(err);
        str_printf(err, "%s: %s", b->sh->dir, why.s);
        str_free(&why);
        return -1;
    }
    if (r < 0)
        log_warn("%s: %s; rebuilt with a new UIDVALIDITY", b->sh->dir, why.s);
    if (r <= 0) {
        /* Missing or corrupt: rebuilt, every UID renewed under a new UIDVALIDITY. */
        uint32_t old = b->sh->ul.uidvalidity > ul.uidvalidity ? b->sh->ul.uidvalidity : 0;

        uidlist_free(&ul);
        memset(&ul, 0, sizeof(ul));
        ul.uidvalidity = new_uidvalidity(old);
        ul.nextuid = 1;
        ul.highestmodseq = 1;
        dirty = true;
    }
    str_free(&why);
    store_stamp_dirs(b);
    first_new = ul.nextuid;
    /* The list as stamped after a scan that matched the directories, which have not
     * changed since: nothing to read there (store_stamp.c). */
    quick = r > 0 && store_stamp_valid(b);
    if (!quick && merge_scan(b, &ul, &dirty, &first_new, err) < 0) {
        uidlist_free(&ul);
        return -1;
    }
    /* Durable before anyone sees a new UID. */
    if (dirty && uidlist_write(b->sh->dirfd, b->sh->dir, &ul, err) < 0) {
        uidlist_free(&ul);
        return -1;
    }
    if (b->sh->synced && ul.uidvalidity != b->sh->ul.uidvalidity) {
        /* Every old UID is void: the view starts over, for every handle. */
        store_pending_flag(b->sh, NULL, false, true);
        b->sh->n = 0;
        for (size_t i = 0; i < b->sh->nboxes; i++)
            b->sh->boxes[i]->nrecent = 0;
    }
    uidlist_free(&b->sh->ul);
    b->sh->ul = ul;
    rebuild_view(b->sh, b->sh->synced, NULL, b, first_new);
    b->sh->synced = true;
    store_stamp_list(b);
    if (!quick)
        store_stamp_save(b);
    return 0;
}

static bool same_time(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

bool store_unchanged(struct store_box *b)
{
    struct stat sn, sc, sl;

    if (!b->sh->synced || !b->sh->stamps_trusted ||
        (b->sh->verify_at != 0 && clock_ms() >= b->sh->verify_at) ||
        fstat(b->sh->newfd, &sn) < 0 ||
        fstat(b->sh->curfd, &sc) < 0 ||
        fstatat(b->sh->dirfd, UIDLIST_FILE, &sl, AT_SYMLINK_NOFOLLOW) < 0)
        return false;
    return same_time(sn.st_ctim, b->sh->seen_new) && same_time(sc.st_ctim, b->sh->seen_cur) &&
           same_time(sl.st_ctim, b->sh->seen_list) && sl.st_ino == b->sh->seen_list_ino;
}

int store_sync_changed(struct store_box *b, struct str *err)
{
    return store_unchanged(b) ? 0 : store_sync_locked(b, err);
}

static bool has_u32(const uint32_t *v, size_t n, uint32_t x)
{
    return n > 0 && bsearch(&x, v, n, sizeof(*v), cmp_u32) != NULL;
}

/* Sorts and removes duplicates. */
static void uniq(uint32_t *v, size_t *n)
{
    size_t k = 0;

    if (*n > 1)
        qsort(v, *n, sizeof(*v), cmp_u32);
    for (size_t i = 0; i < *n; i++)
        if (k == 0 || v[k - 1] != v[i])
            v[k++] = v[i];
    *n = k;
}

/* Keeps from v only what keep() says, given the other lists. */
static void filter(uint32_t *v, size_t *n, const uint32_t *drop1, size_t n1,
                   const uint32_t *drop2, size_t n2, const struct store_box *b, bool present)
{
    size_t k = 0;

    for (size_t i = 0; i < *n; i++) {
        if (has_u32(drop1, n1, v[i]) || has_u32(drop2, n2, v[i]))
            continue;
        if (present && store_find(b, v[i]) < 0)
            continue;
        v[k++] = v[i];
    }
    *n = k;
}

/* The accumulated changes, made consistent: a UID both added and expunged since
 * the last report was never seen and is left out; a flag change is reported only
 * for a message the caller already knows and that is still there. */
static void take_pending(struct store_box *b, struct store_changes *ch)
{
    struct store_changes *p = &b->pending;
    uint32_t *both = NULL;
    size_t nboth = 0;

    uniq(p->added, &p->n_added);
    uniq(p->expunged, &p->n_expunged);
    uniq(p->changed, &p->n_changed);
    for (size_t i = 0; i < p->n_added; i++)
        if (has_u32(p->expunged, p->n_expunged, p->added[i]))
            store_changes_add(&both, &nboth, p->added[i]);
    filter(p->added, &p->n_added, both, nboth, NULL, 0, b, true);
    filter(p->expunged, &p->n_expunged, both, nboth, NULL, 0, b, false);
    filter(p->changed, &p->n_changed, p->added, p->n_added, both, nboth, b, true);
    free(both);
    if (p->n_expunged > 0 && b->nrecent > 0) {
        /* Both ascending: the expunged leave the recent ones. */
        size_t k = 0, j = 0;

        for (size_t i = 0; i < b->nrecent; i++) {
            while (j < p->n_expunged && p->expunged[j] < b->recent[i])
                j++;
            if (j == p->n_expunged || p->expunged[j] != b->recent[i])
                b->recent[k++] = b->recent[i];
        }
        b->nrecent = k;
    }
    if (ch != NULL)
        *ch = *p;
    else
        store_changes_free(p);
    memset(p, 0, sizeof(*p));
}

int store_sync(struct store_box *b, struct store_changes *ch, struct str *err)
{
    int lk;

    if (ch != NULL)
        memset(ch, 0, sizeof(*ch));
    if (store_unchanged(b)) {
        take_pending(b, ch);
        return 0;
    }
    if ((lk = store_lock(b->sh->dirfd, err)) < 0)
        return -1;
    int rc = store_sync_locked(b, err);
    store_unlock(lk);
    if (rc == 0)
        take_pending(b, ch);
    return rc;
}

void store_changes_free(struct store_changes *ch)
{
    free(ch->added);
    free(ch->expunged);
    free(ch->changed);
    memset(ch, 0, sizeof(*ch));
}
