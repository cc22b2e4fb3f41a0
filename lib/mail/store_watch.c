/* inotify on a folder's new/ and cur/ (see store_watch.h): one inotify instance for
 * the whole process, one watch per directory however many hold it (refcounted), and
 * a change count per folder that each holder compares with what it last saw.  Events
 * are only a hint to sync; their contents are not trusted beyond telling our own
 * temporary names apart and which watched directory they concern. */
#include "store_watch.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "str.h"
#include "xmalloc.h"

/* One folder's pair of watches, shared by its holders. */
struct watch_dir {
    int wd[2];                      /* new/, cur/ */
    unsigned refs;
    unsigned long gen;              /* changes seen so far */
};

struct store_watch {
    struct watch_dir *d;
    unsigned long seen;             /* d->gen when this holder last looked */
};

static int ifd = -1;                /* the process's inotify instance */
static struct watch_dir **dirs;
static size_t ndirs, dirs_cap;

#define WATCH_MASK (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR | \
                    IN_DONT_FOLLOW | IN_EXCL_UNLINK)

static struct watch_dir *find_wd(int wd)
{
    for (size_t i = 0; i < ndirs; i++)
        if (dirs[i]->wd[0] == wd || dirs[i]->wd[1] == wd)
            return dirs[i];
    return NULL;
}

/* Drops the watch wd unless another folder still uses it. */
static void unwatch(int wd)
{
    if (wd >= 0 && find_wd(wd) == NULL)
        (void)inotify_rm_watch(ifd, wd);
}

struct store_watch *store_watch_open(const char *dir)
{
    struct store_watch *w;
    struct watch_dir *d = NULL;
    struct str p = STR_INIT;
    int wd[2] = { -1, -1 };

    if (ifd < 0 && (ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
        return NULL;
    for (int i = 0; i < 2; i++) {
        str_clear(&p);
        str_printf(&p, "%s/%s", dir, i == 0 ? "new" : "cur");
        /* The same directory again gives the same descriptor: shared below. */
        wd[i] = inotify_add_watch(ifd, p.s, WATCH_MASK);
        if (wd[i] < 0) {
            int e = errno;
            if (i == 1)
                unwatch(wd[0]);
            str_free(&p);
            errno = e;
            return NULL;
        }
    }
    str_free(&p);
    for (size_t i = 0; i < ndirs && d == NULL; i++)
        if (dirs[i]->wd[0] == wd[0] && dirs[i]->wd[1] == wd[1])
            d = dirs[i];
    if (d == NULL) {
        if (ndirs == dirs_cap) {
            dirs_cap = dirs_cap ? dirs_cap * 2 : 16;
            dirs = xreallocarray(dirs, dirs_cap, sizeof(*dirs));
        }
        d = xcalloc(1, sizeof(*d));
        d->wd[0] = wd[0];
        d->wd[1] = wd[1];
        dirs[ndirs++] = d;
    }
    d->refs++;
    w = xmalloc(sizeof(*w));
    w->d = d;
    w->seen = d->gen;
    return w;
}

int store_watch_fd(const struct store_watch *w)
{
    (void)w;
    return ifd;
}

int store_watches_fd(void)
{
    return ifd;
}

void store_watches_drain(void)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

    if (ifd < 0)
        return;
    for (int rounds = 0; rounds < 1000; rounds++) {
        ssize_t got = read(ifd, buf, sizeof(buf));

        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= got;) {
            const struct inotify_event *ev = (const struct inotify_event *)(buf + off);
            struct watch_dir *d;

            if ((size_t)(got - off) < sizeof(*ev) + ev->len)
                break;
            if (ev->mask & IN_Q_OVERFLOW) {
                /* Events were lost: every folder may have changed. */
                for (size_t i = 0; i < ndirs; i++)
                    dirs[i]->gen++;
            } else if (ev->len > 0 && ev->name[0] != '.' && ev->name[0] != '\0'
                       && (d = find_wd(ev->wd)) != NULL) {
                d->gen++;
            }
            off += (ssize_t)(sizeof(*ev) + ev->len);
        }
    }
}

bool store_watch_changed(struct store_watch *w)
{
    bool changed = w->seen != w->d->gen;

    w->seen = w->d->gen;
    return changed;
}

bool store_watch_drain(struct store_watch *w)
{
    store_watches_drain();
    return store_watch_changed(w);
}

void store_watch_close(struct store_watch *w)
{
    struct watch_dir *d;

    if (w == NULL)
        return;
    d = w->d;
    free(w);
    if (--d->refs > 0)
        return;
    for (size_t i = 0; i < ndirs; i++) {
        if (dirs[i] == d) {
            dirs[i] = dirs[--ndirs];
            break;
        }
    }
    unwatch(d->wd[0]);
    unwatch(d->wd[1]);
    free(d);
    if (ndirs == 0) {
        free(dirs);
        dirs = NULL;
        dirs_cap = 0;
    }
}
