/* Opening and closing folder handles (see store.h): the process's table of open
 * folders, each held once (struct store_state) however many handles share it, found
 * again by its directory's device and inode; leftovers cleaned at a folder's first
 * open; the read-only accessors of a handle. */
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
    free(sh->files);
    uidlist_free(&sh->ul);
    for (unsigned i = 0; i < STORE_KEYWORDS_MAX; i++)
        free(sh->kw[i]);
    free(sh->boxes);
    free(sh->dir);
    free(sh);
}

/* The state of the folder at dir: the one open already when its directory is, else
 * a new one (*fresh).  NULL with err. */
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
    for (sh = states; sh != NULL; sh = sh->next) {
        if (sh->dev == st.st_dev && sh->ino == st.st_ino) {
            close(dirfd);
            return sh;
        }
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

/* Takes b off its folder's state, which goes when no handle is left on it. */
static void state_leave(struct store_box *b)
{
    struct store_state *sh = b->sh;
    size_t k = 0;

    for (size_t i = 0; i < sh->nboxes; i++)
        if (sh->boxes[i] != b)
            sh->boxes[k++] = sh->boxes[i];
    sh->nboxes = k;
    b->sh = NULL;
    if (k > 0)
        return;
    for (struct store_state **pp = &states; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == sh) {
            *pp = sh->next;
            break;
        }
    }
    state_free(sh);
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
        store_close(b);
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
        store_close(b);
        return -1;
    }
    store_changes_free(&b->pending);
    *out = b;
    return 0;
}

void store_close(struct store_box *b)
{
    int e = errno;

    if (b == NULL)
        return;
    state_leave(b);
    store_changes_free(&b->pending);
    free(b->recent);
    free(b);
    errno = e;
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

uint32_t store_uidvalidity(const struct store_box *b) { return b->sh->ul.uidvalidity; }
uint32_t store_uidnext(const struct store_box *b) { return b->sh->ul.nextuid; }
uint64_t store_highestmodseq(const struct store_box *b) { return b->sh->ul.highestmodseq; }
const char *store_dir(const struct store_box *b) { return b->sh->dir; }
size_t store_count(const struct store_box *b) { return b->sh->n; }

const struct store_msg *store_msg(const struct store_box *b, size_t i)
{
    return i < b->sh->n ? &b->sh->msgs[i] : NULL;
}

long store_find(const struct store_box *b, uint32_t uid)
{
    size_t lo = 0, hi = b->sh->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;

        if (b->sh->msgs[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < b->sh->n && b->sh->msgs[lo].uid == uid ? (long)lo : -1;
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
