/* Opening and closing folder handles (see store.h): the process's table of open
 * folders, each held once (struct store_state) however many handles share it, found
 * again by its directory's device and inode, and kept a while after its last handle
 * (STORE_KEEP_*); leftovers cleaned at a folder's first open; the read-only accessors
 * of a handle. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "str.h"
#include "xmalloc.h"

/* Under the lock at open: temporary UID lists left by a process killed while
 * writing one, and files in tmp/ older than 36 hours (the Maildir specification's
 * rule for abandoned deliveries). */
static void clean_leftovers(struct store_box *b)
{
    static const char prefix[] = UIDLIST_FILE ".tmp";
    time_t now = time(NULL);

    for (int pass = 0; pass < 2; pass++) {
        DIR *d = store_dir_stream(pass == 0 ? b->sh->dirfd : b->sh->tmpfd);
        struct dirent *de;
        struct stat st;

        if (d == NULL)
            continue;
        for (int n = 0; n < 100000 && (de = readdir(d)) != NULL; n++) {
            if (pass == 0) {
                if (strncmp(de->d_name, prefix, sizeof(prefix) - 1) == 0)
                    unlinkat(b->sh->dirfd, de->d_name, 0);
            } else if (de->d_name[0] != '.' &&
                       fstatat(b->sh->tmpfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                       S_ISREG(st.st_mode) && st.st_mtime < now - 36 * 3600) {
                unlinkat(b->sh->tmpfd, de->d_name, 0);
            }
        }
        closedir(d);
    }
}

static int open_sub(int dirfd, const char *name)
{
    return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* The folders open in this process, each once. */
static struct store_state *states;

static void state_free(struct store_state *sh)
{
    for (int *fd = &sh->dirfd; fd <= &sh->tmpfd; fd++)
        if (*fd >= 0)
            close(*fd);
    free(sh->msgs);
    free(sh->uids);
    free(sh->files);
    uidlist_free(&sh->ul);
    for (unsigned i = 0; i < STORE_KEYWORDS_MAX; i++)
        free(sh->kw[i]);
    free(sh->boxes);
    free(sh->dir);
    free(sh);
}

static void state_unlink(struct store_state *sh)
{
    for (struct store_state **pp = &states; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == sh) {
            *pp = sh->next;
            break;
        }
    }
    state_free(sh);
}

/* A kept state (no handle on it) still describes the directory it was found by:
 * cur/, new/ and tmp/ are the directories its descriptors hold. */
static bool kept_still_valid(const struct store_state *sh)
{
    static const char *const sub[] = { "cur", "new", "tmp" };
    const int fds[] = { sh->curfd, sh->newfd, sh->tmpfd };
    struct stat a, b;

    for (size_t i = 0; i < 3; i++) {
        if (fstatat(sh->dirfd, sub[i], &a, AT_SYMLINK_NOFOLLOW) < 0 || fstat(fds[i], &b) < 0 ||
            a.st_dev != b.st_dev || a.st_ino != b.st_ino)
            return false;
    }
    return true;
}

/* Kept states of folders deleted since go. */
static void drop_deleted(void)
{
    struct store_state *sh = states, *next;
    struct stat st;

    for (; sh != NULL; sh = next) {
        next = sh->next;
        if (sh->nboxes == 0 && (fstat(sh->dirfd, &st) < 0 || st.st_nlink == 0))
            state_unlink(sh);
    }
}

/* Keeps the kept states within STORE_KEEP_FOLDERS and STORE_KEEP_MSGS, the least
 * recently used going first. */
static void trim_kept(void)
{
    for (;;) {
        struct store_state *oldest = NULL;
        size_t folders = 0, msgs = 0;

        for (struct store_state *sh = states; sh != NULL; sh = sh->next) {
            if (sh->nboxes > 0)
                continue;
            folders++;
            msgs += sh->n;
            if (oldest == NULL || sh->last_used < oldest->last_used)
                oldest = sh;
        }
        if (oldest == NULL || (folders <= STORE_KEEP_FOLDERS && msgs <= STORE_KEEP_MSGS))
            return;
        state_unlink(oldest);
    }
}

size_t store_kept(size_t *msgs)
{
    size_t folders = 0, n = 0;

    for (struct store_state *sh = states; sh != NULL; sh = sh->next) {
        if (sh->nboxes == 0) {
            folders++;
            n += sh->n;
        }
    }
    if (msgs != NULL)
        *msgs = n;
    return folders;
}

void store_drop_kept(void)
{
    struct store_state *sh = states, *next;

    for (; sh != NULL; sh = next) {
        next = sh->next;
        if (sh->nboxes == 0)
            state_unlink(sh);
    }
}

/* The state of the folder at dir: the one open (or kept) already when its directory
 * is, else a new one (*fresh).  NULL with err. */
static struct store_state *state_get(const char *dir, bool *fresh, struct str *err)
{
    struct store_state *sh;
    struct stat st;
    int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    *fresh = false;
    if (dirfd < 0 || fstat(dirfd, &st) < 0) {
        store_sys_fail(err, "open folder", dir);
        if (dirfd >= 0)
            close(dirfd);
        return NULL;
    }
    drop_deleted();
    for (sh = states; sh != NULL; sh = sh->next) {
        if (sh->dev != st.st_dev || sh->ino != st.st_ino)
            continue;
        if (sh->nboxes == 0 && !kept_still_valid(sh)) {
            state_unlink(sh);
            break;
        }
        /* The same directory, perhaps renamed since. */
        if (strcmp(sh->dir, dir) != 0) {
            free(sh->dir);
            sh->dir = xstrdup(dir);
        }
        close(dirfd);
        return sh;
    }
    sh = xcalloc(1, sizeof(*sh));
    sh->dir = xstrdup(dir);
    sh->dev = st.st_dev;
    sh->ino = st.st_ino;
    sh->dirfd = dirfd;
    sh->curfd = sh->newfd = sh->tmpfd = -1;
    if ((sh->curfd = open_sub(dirfd, "cur")) < 0 || (sh->newfd = open_sub(dirfd, "new")) < 0 ||
        (sh->tmpfd = open_sub(dirfd, "tmp")) < 0) {
        store_sys_fail(err, "open folder", dir);
        state_free(sh);
        return NULL;
    }
    sh->next = states;
    states = sh;
    *fresh = true;
    return sh;
}

/* Takes b off its folder's state.  When no handle is left on it, the state is kept
 * (when keep and it was synced) or goes. */
static void state_leave(struct store_box *b, bool keep)
{
    static unsigned long clock;
    struct store_state *sh = b->sh;
    size_t k = 0;

    for (size_t i = 0; i < sh->nboxes; i++)
        if (sh->boxes[i] != b)
            sh->boxes[k++] = sh->boxes[i];
    sh->nboxes = k;
    b->sh = NULL;
    if (k > 0)
        return;
    if (!keep || !sh->synced) {
        state_unlink(sh);
        return;
    }
    sh->last_used = ++clock;
    trim_kept();
}

static void box_free(struct store_box *b, bool keep)
{
    int e = errno;

    if (b == NULL)
        return;
    state_leave(b, keep);
    store_changes_free(&b->pending);
    free(b->recent);
    free(b);
    errno = e;
}

int store_open(const char *dir, unsigned flags, size_t max_msgs, struct store_box **out,
               struct str *err)
{
    struct store_box *b;
    struct store_state *sh;
    bool fresh;
    int lk, rc;

    *out = NULL;
    if ((sh = state_get(dir, &fresh, err)) == NULL)
        return -1;
    b = xcalloc(1, sizeof(*b));
    b->sh = sh;
    b->flags = flags;
    b->max_msgs = max_msgs;
    sh->boxes = xreallocarray(sh->boxes, sh->nboxes + 1, sizeof(*sh->boxes));
    sh->boxes[sh->nboxes++] = b;
    if ((lk = store_lock(sh->dirfd, err)) < 0) {
        box_free(b, true);
        return -1;
    }
    if (fresh) {
        clean_leftovers(b);
        rc = store_sync_locked(b, err);
    } else {
        rc = store_sync_changed(b, err);
    }
    store_unlock(lk);
    if (rc == 0 && max_msgs > 0 && sh->n > max_msgs) {
        errno = EFBIG;
        rc = store_sys_fail(err, "too many messages in", dir);
    }
    if (rc < 0) {
        box_free(b, false);
        return -1;
    }
    store_changes_free(&b->pending);
    *out = b;
    return 0;
}

void store_close(struct store_box *b)
{
    box_free(b, true);
}

bool store_recent(const struct store_box *b, uint32_t uid)
{
    size_t lo = 0, hi = b->nrecent;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;

        if (b->recent[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < b->nrecent && b->recent[lo] == uid;
}

size_t store_recent_count(const struct store_box *b)
{
    const struct store_state *sh = b->sh;
    size_t count = 0, j = 0;

    /* Both ascending. */
    for (size_t i = 0; i < b->nrecent && j < sh->n; i++) {
        while (j < sh->n && sh->uids[j] < b->recent[i])
            j++;
        if (j < sh->n && sh->uids[j] == b->recent[i])
            count++;
    }
    return count;
}

long long store_verify_at(const struct store_box *b) { return b->sh->verify_at; }
uint32_t store_uidvalidity(const struct store_box *b) { return b->sh->ul.uidvalidity; }
uint32_t store_uidnext(const struct store_box *b) { return b->sh->ul.nextuid; }
uint64_t store_highestmodseq(const struct store_box *b) { return b->sh->ul.highestmodseq; }
const char *store_dir(const struct store_box *b) { return b->sh->dir; }
size_t store_count(const struct store_box *b) { return b->sh->n; }

const uint32_t *store_uids(const struct store_box *b) { return b->sh->uids; }

const struct store_msg *store_msg(const struct store_box *b, size_t i)
{
    return i < b->sh->n ? &b->sh->msgs[i] : NULL;
}

long store_find(const struct store_box *b, uint32_t uid)
{
    size_t lo = 0, hi = b->sh->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;

        if (b->sh->uids[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < b->sh->n && b->sh->uids[lo] == uid ? (long)lo : -1;
}

const char *store_keyword(const struct store_box *b, unsigned i)
{
    return i < STORE_KEYWORDS_MAX ? b->sh->kw[i] : NULL;
}

static int cmp_range(const void *a, const void *b)
{
    const struct store_range *x = a, *y = b;

    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

struct store_range *store_vanished(const struct store_box *b, uint64_t since, size_t *n,
                                   bool *complete)
{
    struct store_range *v = xreallocarray(NULL, b->sh->ul.nexp ? b->sh->ul.nexp : 1, sizeof(*v));
    size_t k = 0;

    for (size_t i = 0; i < b->sh->ul.nexp; i++) {
        if (b->sh->ul.exp[i].modseq > since) {
            v[k].lo = b->sh->ul.exp[i].lo;
            v[k].hi = b->sh->ul.exp[i].hi;
            k++;
        }
    }
    if (k > 1) {
        size_t m = 0;

        qsort(v, k, sizeof(*v), cmp_range);
        for (size_t i = 1; i < k; i++) {
            if ((uint64_t)v[i].lo <= (uint64_t)v[m].hi + 1) {
                if (v[i].hi > v[m].hi)
                    v[m].hi = v[i].hi;
            } else {
                v[++m] = v[i];
            }
        }
        k = m + 1;
    }
    *n = k;
    *complete = since >= b->sh->ul.exp_floor;
    return v;
}
