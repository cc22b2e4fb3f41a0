/* The Maildir snapshot at login, with a per-process cache for session processes that
 * serve many logins: a listing is reused while cur/ and new/ are the same directories
 * with the same change times, and only when those times were at least LISTCACHE_SETTLE_S
 * seconds old when the listing was read, so that a change in the same clock tick as
 * the read (file times are coarse) cannot hide behind an unchanged time.  Message files
 * are never rewritten in a Maildir: every change to the list is a rename, link or
 * unlink in cur/ or new/, which updates their times.  Trusts the directory no more than
 * maildir_scan() does; entries are bounded in number and in total messages. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "maildir_scan.h"
#include "pop3d.h"
#include "xmalloc.h"

#define LISTCACHE_ENTRIES 16            /* Maildirs remembered */
#define LISTCACHE_MSGS 200000           /* messages remembered, all entries together */
#define LISTCACHE_SETTLE_S 2            /* seconds a directory time must be old */

struct dir_id {
    dev_t dev;
    ino_t ino;
    struct timespec mtime, ctime;
};

struct listcache_entry {
    struct dir_id top, cur, news;
    struct maildir_list ml;
    unsigned long long used;            /* for LRU */
    bool valid;
};

static struct listcache_entry cache[LISTCACHE_ENTRIES];
static unsigned long long cache_clock;

static int dir_stat(const char *path, struct dir_id *id)
{
    struct stat sb;

    if (stat(path, &sb) < 0)
        return -1;
    id->dev = sb.st_dev;
    id->ino = sb.st_ino;
    id->mtime = sb.st_mtim;
    id->ctime = sb.st_ctim;
    return 0;
}

static bool ts_eq(struct timespec a, struct timespec b)
{
    return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool id_eq(const struct dir_id *a, const struct dir_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && ts_eq(a->mtime, b->mtime)
           && ts_eq(a->ctime, b->ctime);
}

/* Both times at least LISTCACHE_SETTLE_S seconds before now. */
static bool id_settled(const struct dir_id *id, time_t now)
{
    return id->mtime.tv_sec + LISTCACHE_SETTLE_S <= now
           && id->ctime.tv_sec + LISTCACHE_SETTLE_S <= now;
}

static void list_copy(struct maildir_list *dst, const struct maildir_list *src)
{
    maildir_list_free(dst);
    dst->dir = xstrdup(src->dir);
    dst->n = dst->cap = src->n;
    dst->v = xreallocarray(NULL, src->n > 0 ? src->n : 1, sizeof(*src->v));
    if (src->n > 0)
        memcpy(dst->v, src->v, src->n * sizeof(*src->v));
    dst->names_len = dst->names_cap = src->names_len;
    dst->names = xmalloc(src->names_len > 0 ? src->names_len : 1);
    if (src->names_len > 0)
        memcpy(dst->names, src->names, src->names_len);
    dst->total = src->total;
    for (size_t i = 0; i < dst->n; i++)
        dst->v[i].flags = 0;
}

static void entry_drop(struct listcache_entry *e)
{
    maildir_list_free(&e->ml);
    memset(e, 0, sizeof(*e));
}

static size_t cached_msgs(void)
{
    size_t n = 0;

    for (size_t i = 0; i < LISTCACHE_ENTRIES; i++)
        if (cache[i].valid)
            n += cache[i].ml.n;
    return n;
}

/* Remembers ml for the Maildir identified by ids, replacing the least recently used
 * entries as needed. */
static void cache_store(const struct dir_id ids[3], const struct maildir_list *ml)
{
    struct listcache_entry *slot = NULL;

    if (ml->n > LISTCACHE_MSGS)
        return;
    for (size_t i = 0; i < LISTCACHE_ENTRIES; i++)
        if (cache[i].valid && cache[i].top.dev == ids[0].dev && cache[i].top.ino == ids[0].ino)
            entry_drop(&cache[i]);
    while (cached_msgs() + ml->n > LISTCACHE_MSGS || slot == NULL) {
        struct listcache_entry *lru = NULL;
        for (size_t i = 0; i < LISTCACHE_ENTRIES; i++) {
            if (!cache[i].valid) {
                if (slot == NULL)
                    slot = &cache[i];
                continue;
            }
            if (lru == NULL || cache[i].used < lru->used)
                lru = &cache[i];
        }
        if (slot != NULL && cached_msgs() + ml->n <= LISTCACHE_MSGS)
            break;
        if (lru == NULL)
            return;             /* cannot happen: ml->n <= LISTCACHE_MSGS */
        entry_drop(lru);
        slot = NULL;
    }
    slot->top = ids[0];
    slot->cur = ids[1];
    slot->news = ids[2];
    list_copy(&slot->ml, ml);
    slot->used = ++cache_clock;
    slot->valid = true;
}

int pop3_scan(struct maildir_list *ml, struct str *err)
{
    struct dir_id ids[3];
    bool have_ids;
    time_t start = time(NULL);

    have_ids = dir_stat(".", &ids[0]) == 0 && dir_stat("cur", &ids[1]) == 0
               && dir_stat("new", &ids[2]) == 0;
    if (have_ids) {
        for (size_t i = 0; i < LISTCACHE_ENTRIES; i++) {
            struct listcache_entry *e = &cache[i];
            if (e->valid && e->top.dev == ids[0].dev && e->top.ino == ids[0].ino
                && id_eq(&e->cur, &ids[1])
                && id_eq(&e->news, &ids[2])) {
                list_copy(ml, &e->ml);
                e->used = ++cache_clock;
                return 0;
            }
        }
    }
    if (maildir_scan(".", MAILDIR_SCAN_MOVE_NEW, 0, ml, err) < 0)
        return -1;
    /* Kept only when nothing changed in the directories for a while before the read
     * ended (the times read now are the ones a later login compares with). */
    if (dir_stat(".", &ids[0]) == 0 && dir_stat("cur", &ids[1]) == 0
        && dir_stat("new", &ids[2]) == 0 && id_settled(&ids[1], start)
        && id_settled(&ids[2], start))
        cache_store(ids, ml);
    return 0;
}
