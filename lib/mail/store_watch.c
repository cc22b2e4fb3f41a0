/* inotify on a folder's new/ and cur/ (see store_watch.h).  Events are only a hint
 * to sync; their contents are not trusted beyond telling our own temporary names
 * apart. */
#include "store_watch.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "str.h"
#include "xmalloc.h"

struct store_watch {
    int fd;
};

#define WATCH_MASK (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR | \
                    IN_DONT_FOLLOW | IN_EXCL_UNLINK)

struct store_watch *store_watch_open(const char *dir)
{
    struct store_watch *w;
    struct str p = STR_INIT;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

    if (fd < 0)
        return NULL;
    for (int i = 0; i < 2; i++) {
        str_clear(&p);
        str_printf(&p, "%s/%s", dir, i == 0 ? "new" : "cur");
        if (inotify_add_watch(fd, p.s, WATCH_MASK) < 0) {
            int e = errno;
            close(fd);
            str_free(&p);
            errno = e;
            return NULL;
        }
    }
    str_free(&p);
    w = xmalloc(sizeof(*w));
    w->fd = fd;
    return w;
}

int store_watch_fd(const struct store_watch *w)
{
    return w->fd;
}

bool store_watch_drain(struct store_watch *w)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool any = false;

    for (int rounds = 0; rounds < 1000; rounds++) {
        ssize_t got = read(w->fd, buf, sizeof(buf));

        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= got;) {
            const struct inotify_event *ev = (const struct inotify_event *)(buf + off);

            if ((size_t)(got - off) < sizeof(*ev) + ev->len)
                break;
            if (ev->mask & IN_Q_OVERFLOW)
                any = true;
            else if (ev->len > 0 && ev->name[0] != '.' && ev->name[0] != '\0')
                any = true;
            off += (ssize_t)(sizeof(*ev) + ev->len);
        }
    }
    return any;
}

void store_watch_close(struct store_watch *w)
{
    if (w == NULL)
        return;
    close(w->fd);
    free(w);
}
