/* Unit tests for the folder state shared by the handles of one process (store.h):
 * two handles on a folder hold one list and one view; what one changes reaches the
 * other as news and is not told back to the one that made it; \Recent stays each
 * handle's own; keyword names made by one are news to the other; the state outlives
 * any one handle (and is kept after the last: test_store_keep.c); a handle refused
 * at open leaves the others as they were; a folder deleted and made again is not
 * the old one's state; a folder renamed while open is still the one its handle
 * writes. */
#include "unit.h"
#include "store_fixture.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "maildir.h"
#include "store.h"
#include "str.h"

TEST(handles_hold_one_state)
{
    char dir[600];
    struct store_box *a = NULL, *b = NULL;
    struct str err = STR_INIT;
    struct store_changes ch;
    uint32_t *failed = NULL;
    size_t nf = 0;

    folder(dir, sizeof(dir), "share");
    put(dir, "new/1.M1P1.h", FIXTURE_MSG);
    put(dir, "new/2.M1P1.h", FIXTURE_MSG);
    CHECK(store_open(dir, 0, 0, &a, &err) == 0);
    CHECK(store_open(dir, 0, 0, &b, &err) == 0);
    if (a == NULL || b == NULL)
        return;
    /* One view: the same message records, not copies. */
    CHECK(store_count(a) == 2 && store_msg(a, 0) == store_msg(b, 0));
    CHECK(store_uids(a)[0] == 1 && store_uids(a)[1] == 2 && store_uids(b) == store_uids(a));
    CHECK(store_recent(a, 1) && store_recent(a, 2));
    CHECK(!store_recent(b, 1) && !store_recent(b, 2));
    CHECK(store_recent_count(a) == 2 && store_recent_count(b) == 0);

    /* a's STORE: news for b, not for a. */
    uint32_t uid1 = 1;
    CHECK(store_set_flags(a, &uid1, 1, '+', STORE_F_SEEN, 0, 0, &failed, &nf, &err) == 0);
    free(failed);
    CHECK(store_msg(b, 0)->flags & STORE_F_SEEN);
    CHECK(store_sync(a, &ch, &err) == 0);
    CHECK(ch.n_changed == 0 && ch.n_added == 0 && ch.n_expunged == 0);
    store_changes_free(&ch);
    CHECK(store_sync(b, &ch, &err) == 0);
    CHECK(ch.n_changed == 1 && ch.changed[0] == 1);
    store_changes_free(&ch);

    /* A delivery found by b's sync: added for both, \Recent for b only. */
    put(dir, "new/3.M1P1.h", FIXTURE_MSG);
    CHECK(store_sync(b, &ch, &err) == 0);
    CHECK(ch.n_added == 1 && ch.added[0] == 3);
    store_changes_free(&ch);
    CHECK(store_recent(b, 3) && !store_recent(a, 3));
    CHECK(store_sync(a, &ch, &err) == 0);
    CHECK(ch.n_added == 1 && ch.added[0] == 3);
    store_changes_free(&ch);

    /* A keyword made by a is news to b; a knows it already. */
    CHECK(store_keyword_index(a, "$Label1", true) == 0);
    CHECK(store_sync(b, &ch, &err) == 0 && ch.keywords_changed);
    store_changes_free(&ch);
    CHECK(store_sync(a, &ch, &err) == 0 && !ch.keywords_changed);
    store_changes_free(&ch);
    CHECK_STR(store_keyword(b, 0), "$Label1");

    /* b expunges uid 1 (flagged \Deleted): a hears of it; b's \Recent goes with it. */
    CHECK(store_set_flags(b, &uid1, 1, '+', STORE_F_DELETED, 0, 0, &failed, &nf, &err) == 0);
    free(failed);
    uint32_t *done = NULL;
    size_t nd = 0;
    CHECK(store_expunge(b, NULL, 0, &done, &nd, &err) == 0 && nd == 1 && done[0] == 1);
    free(done);
    CHECK(store_sync(a, &ch, &err) == 0);
    CHECK(ch.n_expunged == 1 && ch.expunged[0] == 1 && ch.n_changed == 0);
    store_changes_free(&ch);
    CHECK(!store_recent(a, 1) && store_recent(a, 2));

    /* A handle refused at open (too many messages for it) leaves the others be. */
    struct store_box *small = NULL;
    errno = 0;
    CHECK(store_open(dir, 0, 1, &small, &err) < 0 && errno == EFBIG && small == NULL);
    CHECK(store_count(a) == 2 && store_count(b) == 2);

    /* The state outlives a: b still reads and changes it; a new handle joins it. */
    store_close(a);
    uint32_t uid2 = 2;
    CHECK(store_set_flags(b, &uid2, 1, '+', STORE_F_FLAGGED, 0, 0, &failed, &nf, &err) == 0);
    free(failed);
    struct store_box *c = NULL;
    CHECK(store_open(dir, STORE_RDONLY, 0, &c, &err) == 0);
    if (c != NULL) {
        CHECK(store_msg(c, 0) == store_msg(b, 0));
        CHECK(store_msg(c, 0)->flags & STORE_F_FLAGGED);
        CHECK(!store_recent(c, 3));
        CHECK(store_set_flags(c, &uid2, 1, '-', STORE_F_FLAGGED, 0, 0, NULL, NULL, &err) < 0
              && errno == EROFS);
        store_close(c);
    }
    store_close(b);

    /* All closed: a new open reads it all again from the disk. */
    CHECK(store_open(dir, 0, 0, &a, &err) == 0);
    if (a != NULL) {
        CHECK(store_count(a) == 2 && store_msg(a, 0)->uid == 2 && store_msg(a, 1)->uid == 3);
        CHECK(store_msg(a, 0)->flags == STORE_F_FLAGGED);
        store_close(a);
    }
    str_free(&err);
}

TEST(copy_into_a_folder_open_twice)
{
    char src[600], dst[600];
    struct store_box *s = NULL, *d1 = NULL, *d2 = NULL;
    struct str err = STR_INIT;
    struct store_changes ch;

    folder(src, sizeof(src), "copy-src");
    folder(dst, sizeof(dst), "copy-dst");
    put(src, "new/1.M1P1.h", FIXTURE_MSG);
    CHECK(store_open(src, 0, 0, &s, &err) == 0);
    CHECK(store_open(dst, 0, 0, &d1, &err) == 0);
    CHECK(store_open(dst, 0, 0, &d2, &err) == 0);
    if (s == NULL || d1 == NULL || d2 == NULL)
        return;
    uint32_t uid = 1, *su = NULL, *du = NULL;
    size_t n = 0;
    /* MOVE through d2 while d1 has the destination open too (as a selected folder). */
    CHECK(store_copy(s, &uid, 1, d2, true, &su, &du, &n, &err) == 0 && n == 1);
    CHECK(n == 1 && du[0] == 1);
    free(su);
    free(du);
    CHECK(store_sync(d1, &ch, &err) == 0 && ch.n_added == 1 && ch.added[0] == 1);
    store_changes_free(&ch);
    CHECK(store_sync(d2, &ch, &err) == 0 && ch.n_added == 0);
    store_changes_free(&ch);
    CHECK(store_count(s) == 0 && store_count(d1) == 1);
    store_close(d2);
    store_close(d1);
    store_close(s);
    str_free(&err);
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

TEST(deleted_and_made_again_is_new)
{
    char dir[600];
    struct store_box *old = NULL, *fresh = NULL;
    struct str err = STR_INIT;

    folder(dir, sizeof(dir), "again");
    put(dir, "new/1.M1P1.h", FIXTURE_MSG);
    put(dir, "new/2.M1P1.h", FIXTURE_MSG);
    CHECK(store_open(dir, 0, 0, &old, &err) == 0);
    if (old == NULL)
        return;
    /* Another client deletes the folder and makes one of the same name: a new
     * state (the old one's open directory keeps its inode number from being given
     * to the new directory, so the two are never taken for one). */
    CHECK(nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0);
    folder(dir, sizeof(dir), "again");
    put(dir, "new/9.M1P1.h", FIXTURE_MSG);
    CHECK(store_open(dir, 0, 0, &fresh, &err) == 0);
    if (fresh != NULL) {
        CHECK(store_count(fresh) == 1 && store_msg(fresh, 0) != store_msg(old, 0));
        CHECK(store_recent(fresh, store_msg(fresh, 0)->uid));
        store_close(fresh);
    }
    CHECK(store_count(old) == 2);
    store_close(old);
    str_free(&err);
}

TEST(renamed_while_open_writes_where_it_is)
{
    char dir[600], moved[700], path[800];
    struct store_box *b = NULL;
    struct str err = STR_INIT;
    uint32_t uid = 1, *failed = NULL;
    size_t nf = 0;
    struct stat st;

    /* Another client renames the folder, then makes one of the old name: the open
     * handle's STORE writes the list of the folder it has open, never the new one's. */
    folder(dir, sizeof(dir), "before");
    put(dir, "new/1.M1P1.h", FIXTURE_MSG);
    CHECK(store_open(dir, 0, 0, &b, &err) == 0);
    if (b == NULL)
        return;
    snprintf(moved, sizeof(moved), "%s-after", dir);
    CHECK(rename(dir, moved) == 0);
    folder(dir, sizeof(dir), "before");
    CHECK(store_set_flags(b, &uid, 1, '+', STORE_F_FLAGGED, 0, 0, &failed, &nf, &err) == 0);
    free(failed);
    snprintf(path, sizeof(path), "%s/postern-uidlist", dir);
    CHECK(stat(path, &st) < 0);
    snprintf(path, sizeof(path), "%s/postern-uidlist", moved);
    CHECK(stat(path, &st) == 0);
    store_close(b);
    b = NULL;
    CHECK(store_open(moved, 0, 0, &b, &err) == 0);
    if (b != NULL) {
        CHECK(store_count(b) == 1 && (store_msg(b, 0)->flags & STORE_F_FLAGGED));
        store_close(b);
    }
    str_free(&err);
}
