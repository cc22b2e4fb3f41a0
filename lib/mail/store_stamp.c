/* The stamps of a folder's directories and list (store_int.h), and the stamp file
 * beside its UID list, postern-uidlist.stamp (postern-maildir(5)).  The stamps are
 * the change times of new/ and cur/ and the identity of the list, kept in memory for
 * the quick check of a sync; a time is trusted only once the directory's last change
 * is older than a margin (two ticks of the kernel's file clock, at least 20 ms, more
 * for file systems that keep whole seconds), so that a change within the same tick
 * cannot hide.  The stamp file records them as a scan that left the list exactly
 * matching the directories saw them (new/ emptied, before cur/ was read); while both
 * directories and the list are as stamped, a folder opened anew is taken from its
 * list without reading the directories.  The file is a hint: it is written without
 * fsync, and any doubt (a missing, short, stale or unparsable stamp) means a scan. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "str.h"

#define STAMP_FILE  UIDLIST_FILE ".stamp"
#define STAMP_TMP   UIDLIST_FILE ".tmp.stamp"   /* cleaned as other list leftovers */
#define STAMP_MAGIC "postern-uidlist-stamp 1\n"

static long long ns(struct timespec t)
{
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The stamp's text for the directories as b saw them and the list as st shows it. */
static void stamp_text(const struct store_box *b, const struct stat *st, struct str *out)
{
    str_clear(out);
    str_printf(out, STAMP_MAGIC "L %ju %jd %lld\nD %lld %lld\n", (uintmax_t)st->st_ino,
               (intmax_t)st->st_size, ns(st->st_ctim), ns(b->sh->seen_new), ns(b->sh->seen_cur));
}

bool store_stamp_valid(const struct store_box *b)
{
    struct stat st;
    struct str want = STR_INIT;
    char buf[256];
    ssize_t n;
    bool ok = false;
    int fd;

    if (!b->sh->stamps_trusted ||
        fstatat(b->sh->dirfd, UIDLIST_FILE, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISREG(st.st_mode))
        return false;
    fd = openat(b->sh->dirfd, STAMP_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return false;
    n = read(fd, buf, sizeof(buf));
    close(fd);
    stamp_text(b, &st, &want);
    ok = n > 0 && (size_t)n == want.len && memcmp(buf, want.s, want.len) == 0;
    str_free(&want);
    return ok;
}

void store_stamp_save(const struct store_box *b)
{
    struct stat st;
    struct str text = STR_INIT;
    int fd;

    if (!b->sh->stamps_trusted || fstatat(b->sh->dirfd, UIDLIST_FILE, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    for (size_t i = 0; i < b->sh->ul.n; i++)
        if (b->sh->ul.v[i].file != NULL)
            return;             /* a name the list does not hold: scanned each time */
    stamp_text(b, &st, &text);
    fd = openat(b->sh->dirfd, STAMP_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                0600);
    if (fd >= 0) {
        bool ok = write(fd, text.s, text.len) == (ssize_t)text.len;

        if (close(fd) < 0 || !ok || renameat(b->sh->dirfd, STAMP_TMP, b->sh->dirfd, STAMP_FILE) < 0)
            unlinkat(b->sh->dirfd, STAMP_TMP, 0);
    }
    str_free(&text);
}

/* Directory stamps are trusted only when taken well after the last change they
 * show: a file system's clock ticks coarsely, and a second change within the same
 * tick as the first would leave the stamp as it was.  The margin is two ticks of the
 * clock the kernel stamps files with (its coarse clock), at least
 * STAMP_MARGIN_MIN_NS; a stamp without a fraction of a second comes from a file
 * system that keeps whole seconds (or two), and needs STAMP_MARGIN_COARSE_NS. */
#define STAMP_MARGIN_MIN_NS    20000000LL       /* 20 ms */
#define STAMP_MARGIN_COARSE_NS 2100000000LL     /* 2.1 s */

static long long stamp_margin(struct timespec ct)
{
    static long long tick = -1;

    if (ct.tv_nsec == 0)
        return STAMP_MARGIN_COARSE_NS;
    if (tick < 0) {
        struct timespec res;

        tick = 0;
#ifdef CLOCK_REALTIME_COARSE
        if (clock_getres(CLOCK_REALTIME_COARSE, &res) == 0)
            tick = ns(res);
#else
        (void)res;
        tick = STAMP_MARGIN_COARSE_NS / 2;
#endif
    }
    return 2 * tick > STAMP_MARGIN_MIN_NS ? 2 * tick : STAMP_MARGIN_MIN_NS;
}

/* How long ago (ns) the directory last changed, beyond its margin: >= 0 when a
 * stamp of it can be trusted now. */
static long long stamp_age(const struct stat *st, struct timespec now)
{
    return ns(now) - ns(st->st_ctim) - stamp_margin(st->st_ctim);
}

void store_stamp_dirs(struct store_box *b)
{
    struct stat sn, sc;
    struct timespec now;

    b->sh->stamps_trusted = false;
    if (fstat(b->sh->newfd, &sn) < 0 || fstat(b->sh->curfd, &sc) < 0 ||
        clock_gettime(CLOCK_REALTIME, &now) < 0)
        return;
    b->sh->seen_new = sn.st_ctim;
    b->sh->seen_cur = sc.st_ctim;
    b->sh->stamps_trusted = stamp_age(&sn, now) > 0 && stamp_age(&sc, now) > 0;
}

void store_stamp_wait(struct store_box *b)
{
    struct stat sn, sc;
    struct timespec now;
    long long wait;

    if (fstat(b->sh->newfd, &sn) < 0 || fstat(b->sh->curfd, &sc) < 0 ||
        clock_gettime(CLOCK_REALTIME, &now) < 0)
        return;
    wait = -stamp_age(&sn, now);
    if (-stamp_age(&sc, now) > wait)
        wait = -stamp_age(&sc, now);
    if (wait <= 0 || wait > STAMP_WAIT_MAX_NS)
        return;
    wait += 1000000;                    /* and a millisecond, to be past it */
    struct timespec d = { (time_t)(wait / 1000000000LL), (long)(wait % 1000000000LL) };
    while (nanosleep(&d, &d) < 0 && errno == EINTR)
        ;
}

void store_stamp_list(struct store_box *b)
{
    struct stat sl;

    if (fstatat(b->sh->dirfd, UIDLIST_FILE, &sl, AT_SYMLINK_NOFOLLOW) < 0) {
        b->sh->stamps_trusted = false;
        return;
    }
    b->sh->seen_list = sl.st_ctim;
    b->sh->seen_list_ino = sl.st_ino;
}

void store_stamp_own(struct store_box *b, bool clean)
{
    struct stat sc;

    if (!clean || fstat(b->sh->curfd, &sc) < 0)
        return;
    b->sh->seen_cur = sc.st_ctim;
    if (b->sh->verify_at == 0)
        b->sh->verify_at = clock_ms() + STORE_VERIFY_MS;
}
