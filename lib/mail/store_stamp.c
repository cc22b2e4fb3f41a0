/* The stamp beside a folder's UID list, postern-uidlist.stamp (postern-maildir(5)):
 * the change times of new/ and cur/ as a scan that left the list exactly matching
 * them saw them (new/ emptied, before cur/ was read), and the identity of the list
 * written then.  While both
 * directories and the list are as stamped, a folder opened anew is taken from its
 * list without reading the directories.  The stamp is a hint: it is written without
 * fsync, any doubt (a missing, short, stale or unparsable stamp) means a scan, and
 * it is only written when the directories' last change was well before those times
 * were taken (store_stamp_dirs), so that a change within the same clock tick cannot
 * hide. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
