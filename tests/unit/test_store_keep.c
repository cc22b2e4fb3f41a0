/* Unit tests for the folder states kept after their last handle (store.h,
 * STORE_KEEP_*): the next open of an unchanged folder reads nothing; a delivery or
 * another program's rename while none is open is found at that open, the new mail
 * \Recent for the handle that found it; a kept folder deleted, or its cur/ replaced,
 * is not served from what was kept; a folder renamed is found under its new name;
 * the kept ones stay within their count and message bounds, least recently used
 * going first. */
#include "unit.h"
#include "store_fixture.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"
#include "store.h"
#include "store_int.h"
#include "str.h"

/* Opens dir: the handle, or NULL (and a failed check). */
static struct store_box *open_box(const char *dir)
{
    struct store_box *b = NULL;
    struct str err = STR_INIT;

    if (store_open(dir, 0, 0, &b, &err) < 0)
        fprintf(stderr, "store_open %s: %s\n", dir, err.s);
    CHECK(b != NULL);
    str_free(&err);
    return b;
}

/* Opens dir until the open needs no scan (its stamps are old enough to be trusted),
 * bounded to 5 s; true when it came to that. */
static bool until_quick(const char *dir)
{
    struct timespec pause = { 0, 50 * 1000 * 1000 };

    for (int i = 0; i < 100; i++) {
        unsigned long before = store_scans;
        struct store_box *b = open_box(dir);

        if (b == NULL)
            return false;
        store_close(b);
        if (store_scans == before)
            return true;
        nanosleep(&pause, NULL);
    }
    return false;
}

TEST(closed_folder_opens_again_without_reading)
{
    char dir[600], a[1024], b[1024];
    struct store_box *box;
    unsigned long before;
    size_t msgs;

    store_drop_kept();
    folder(dir, sizeof(dir), "kept");
    put(dir, "new/1.M1P1.h", FIXTURE_MSG);
    put(dir, "cur/2.M1P1.h:2,S", FIXTURE_MSG);
    CHECK(until_quick(dir));
    CHECK(store_kept(&msgs) == 1 && msgs == 2);

    /* A delivery while no handle is open: found at the next open, \Recent there. */
    put(dir, "new/3.M1P1.h", FIXTURE_MSG);
    before = store_scans;
    if ((box = open_box(dir)) == NULL)
        return;
    CHECK(store_scans == before + 1);
    CHECK(store_kept(NULL) == 0);
    CHECK(store_count(box) == 3 && store_recent(box, 3) && !store_recent(box, 1));
    CHECK(store_recent_count(box) == 1);
    store_close(box);

    /* Another program sets \Seen on a kept folder: seen at the next open. */
    CHECK(until_quick(dir));
    snprintf(a, sizeof(a), "%s/cur/3.M1P1.h:2,", dir);
    snprintf(b, sizeof(b), "%s/cur/3.M1P1.h:2,S", dir);
    CHECK(rename(a, b) == 0);
    if ((box = open_box(dir)) == NULL)
        return;
    CHECK(store_count(box) == 3 && store_msg(box, 2) != NULL &&
          (store_msg(box, 2)->flags & STORE_F_SEEN));
    store_close(box);
    store_drop_kept();
    CHECK(store_kept(NULL) == 0);
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

TEST(kept_folder_deleted_renamed_or_replaced)
{
    char dir[600], moved[700], sub[800], aside[800];
    struct store_box *box;

    store_drop_kept();
    folder(dir, sizeof(dir), "gone");
    put(dir, "new/1.M1P1.h", FIXTURE_MSG);
    put(dir, "new/2.M1P1.h", FIXTURE_MSG);
    CHECK(until_quick(dir));

    /* Deleted and made again: the kept state goes, the new folder is read. */
    CHECK(nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0);
    folder(dir, sizeof(dir), "gone");
    put(dir, "new/9.M1P1.h", FIXTURE_MSG);
    if ((box = open_box(dir)) == NULL)
        return;
    CHECK(store_count(box) == 1 && store_recent(box, store_msg(box, 0)->uid));
    CHECK(store_kept(NULL) == 0);
    store_close(box);

    /* Renamed: the same folder, under its new name. */
    CHECK(until_quick(dir));
    snprintf(moved, sizeof(moved), "%s-moved", dir);
    CHECK(rename(dir, moved) == 0);
    if ((box = open_box(moved)) == NULL)
        return;
    CHECK(store_count(box) == 1 && strcmp(store_dir(box), moved) == 0);
    store_close(box);

    /* cur/ replaced by another directory of the same content: read again, not taken
     * from the kept descriptors of the old one. */
    CHECK(until_quick(moved));
    snprintf(sub, sizeof(sub), "%s/cur", moved);
    snprintf(aside, sizeof(aside), "%s/cur-old", moved);
    CHECK(rename(sub, aside) == 0);
    CHECK(mkdir(sub, 0700) == 0);
    put(moved, "cur/5.M1P1.h:2,F", FIXTURE_MSG);
    if ((box = open_box(moved)) == NULL)
        return;
    CHECK(store_count(box) == 1 && (store_msg(box, 0)->flags & STORE_F_FLAGGED));
    store_close(box);
    store_drop_kept();
}

TEST(kept_folders_stay_within_bounds)
{
    char dir[600], name[32];
    struct store_box *box;
    size_t msgs;

    store_drop_kept();
    for (int i = 0; i < STORE_KEEP_FOLDERS + 2; i++) {
        snprintf(name, sizeof(name), "bound%d", i);
        folder(dir, sizeof(dir), name);
        put(dir, "new/1.M1P1.h", FIXTURE_MSG);
        if ((box = open_box(dir)) == NULL)
            return;
        store_close(box);
    }
    CHECK(store_kept(&msgs) == STORE_KEEP_FOLDERS && msgs == STORE_KEEP_FOLDERS);
    /* The least recently closed went: bound0 and bound1 are read again. */
    snprintf(dir, sizeof(dir), "%s/bound0", unit_tmpdir());
    unsigned long before = store_scans;
    if ((box = open_box(dir)) != NULL)
        store_close(box);
    CHECK(store_scans == before + 1);
    store_drop_kept();
}
