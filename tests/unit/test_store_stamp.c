/* Unit tests for the stamp beside the UID list (store_stamp.c): a folder whose
 * directories have not changed since a scan that matched them opens from its list
 * alone; a delivery, a rename by another program, a rewritten list or a damaged
 * stamp each bring the scan back, and what the scan finds is what the folder shows;
 * a large folder's own moves from new/ leave a stamp the next look trusts; the
 * folder's own STOREs leave cur/ as known (no scan after them), and a change by
 * another program just after is still seen, within STORE_VERIFY_MS, or at once when
 * a message it renamed is opened or a file it removed is stored to. */
#include "unit.h"
#include "store_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "maildir.h"
#include "store.h"
#include "store_int.h"
#include "str.h"

/* Opens and closes dir as a new process would (no state kept from before); the
 * number of messages, and whether it scanned. */
static size_t open_count(const char *dir, bool *scanned)
{
    struct store_box *b = NULL;
    struct str err = STR_INIT;
    unsigned long before;
    size_t n = (size_t)-1;

    store_drop_kept();
    before = store_scans;
    if (store_open(dir, 0, 0, &b, &err) == 0) {
        n = store_count(b);
        store_close(b);
    } else {
        fprintf(stderr, "store_open: %s\n", err.s);
    }
    *scanned = store_scans != before;
    str_free(&err);
    return n;
}

/* Opens dir until an open needs no scan (the stamp is written once the directories'
 * last change is old enough): bounded to 5 s.  True when it came to that. */
static bool until_quick(const char *dir, size_t want)
{
    struct timespec pause = { 0, 50 * 1000 * 1000 };
    bool scanned = true;

    for (int i = 0; i < 100; i++) {
        if (open_count(dir, &scanned) != want)
            return false;
        if (!scanned)
            return true;
        nanosleep(&pause, NULL);
    }
    return false;
}

TEST(unchanged_folder_opens_from_its_list)
{
    char dir[600];
    bool scanned;

    folder(dir, sizeof(dir), "quick");
    put(dir, "new/100.M1P1.h", FIXTURE_MSG);
    put(dir, "cur/101.M2P1.h:2,S", FIXTURE_MSG);
    CHECK(until_quick(dir, 2));
    CHECK(open_count(dir, &scanned) == 2 && !scanned);
}

TEST(delivery_and_renames_are_seen)
{
    char dir[600], a[1024], b[1024];
    bool scanned;

    folder(dir, sizeof(dir), "changes");
    put(dir, "cur/101.M2P1.h:2,", FIXTURE_MSG);
    CHECK(until_quick(dir, 1));
    put(dir, "new/102.M3P1.h", FIXTURE_MSG);   /* a delivery */
    CHECK(open_count(dir, &scanned) == 2 && scanned);
    CHECK(until_quick(dir, 2));
    snprintf(a, sizeof(a), "%s/cur/101.M2P1.h:2,", dir);
    snprintf(b, sizeof(b), "%s/cur/101.M2P1.h:2,S", dir);
    CHECK(rename(a, b) == 0);                   /* another program sets \Seen */
    struct store_box *box = NULL;
    struct str err = STR_INIT;
    store_drop_kept();
    unsigned long before = store_scans;
    CHECK(store_open(dir, 0, 0, &box, &err) == 0);
    CHECK(store_scans != before);
    if (box != NULL) {
        CHECK(store_count(box) == 2);
        CHECK(store_msg(box, 0) != NULL && (store_msg(box, 0)->flags & STORE_F_SEEN));
        store_close(box);
    }
    str_free(&err);
    snprintf(a, sizeof(a), "%s/cur/101.M2P1.h:2,S", dir);
    CHECK(unlink(a) == 0);                      /* another program removes it */
    CHECK(until_quick(dir, 1));
}

TEST(damaged_or_stale_stamp_means_a_scan)
{
    char dir[600], path[1024];
    bool scanned;
    FILE *f;

    folder(dir, sizeof(dir), "damaged");
    put(dir, "cur/101.M2P1.h:2,", FIXTURE_MSG);
    CHECK(until_quick(dir, 1));
    snprintf(path, sizeof(path), "%s/postern-uidlist.stamp", dir);
    f = fopen(path, "r+");
    CHECK(f != NULL);
    if (f != NULL) {
        fseek(f, -2, SEEK_END);
        fputc('9', f);                          /* one digit off */
        fclose(f);
    }
    CHECK(open_count(dir, &scanned) == 1 && scanned);
    CHECK(until_quick(dir, 1));
    CHECK(truncate(path, 10) == 0);
    CHECK(open_count(dir, &scanned) == 1 && scanned);
    CHECK(until_quick(dir, 1));
    /* a list rewritten (here: removed) is never taken on an old stamp's word */
    snprintf(path, sizeof(path), "%s/postern-uidlist", dir);
    CHECK(unlink(path) == 0);
    CHECK(open_count(dir, &scanned) == 1 && scanned);
}

TEST(names_the_list_cannot_hold_are_scanned_each_time)
{
    char dir[600];
    bool scanned;

    folder(dir, sizeof(dir), "odd");
    put(dir, "cur/101.M2P1.h:2,SF", FIXTURE_MSG);   /* flags out of order: not canonical */
    for (int i = 0; i < 6; i++)
        CHECK(open_count(dir, &scanned) == 1 && scanned);
}

TEST(large_folder_trusts_its_own_moves)
{
    char dir[600], name[64];
    struct store_box *b = NULL;
    struct str err = STR_INIT;
    struct store_changes ch;
    unsigned long before;

    /* A first open that moves many files from new/ waits out the stamps' margin, so
     * the next command does not read cur/ again (a cold SELECT, then FETCH). */
    folder(dir, sizeof(dir), "large");
    for (unsigned i = 0; i < STAMP_WAIT_MSGS; i++) {
        snprintf(name, sizeof(name), "new/%u.M%uP1.h", 1000000 + i, i);
        put(dir, name, FIXTURE_MSG);
    }
    CHECK(store_open(dir, 0, 0, &b, &err) == 0);
    if (b == NULL)
        return;
    CHECK(store_count(b) == STAMP_WAIT_MSGS);
    before = store_scans;
    CHECK(store_sync(b, &ch, &err) == 0 && ch.n_added == 0);
    store_changes_free(&ch);
    CHECK(store_scans == before);
    /* A delivery after that is still seen at once. */
    put(dir, "new/2000000.M1P2.h", FIXTURE_MSG);
    CHECK(store_sync(b, &ch, &err) == 0 && ch.n_added == 1);
    store_changes_free(&ch);
    CHECK(store_scans == before + 1 && store_count(b) == STAMP_WAIT_MSGS + 1);
    store_close(b);
    str_free(&err);
}

/* Sets flag on uid through b; true when it worked. */
static bool flag(struct store_box *b, uint32_t uid, unsigned f)
{
    struct str err = STR_INIT;
    uint32_t *failed = NULL;
    size_t nf = 0;
    int rc = store_set_flags(b, &uid, 1, '+', f, 0, 0, &failed, &nf, &err);

    free(failed);
    str_free(&err);
    return rc == 0;
}

/* Syncs b until message i shows flag f, bounded to 3 s: true when it did. */
static bool until_flag(struct store_box *b, size_t i, unsigned f)
{
    struct timespec pause = { 0, 20 * 1000 * 1000 };
    struct str err = STR_INIT;
    struct store_changes ch;
    bool seen = false;

    for (int n = 0; n < 150 && !seen; n++) {
        if (store_sync(b, &ch, &err) < 0)
            break;
        store_changes_free(&ch);
        seen = store_msg(b, i) != NULL && (store_msg(b, i)->flags & f);
        if (!seen)
            nanosleep(&pause, NULL);
    }
    str_free(&err);
    return seen;
}

TEST(own_changes_need_no_scan_and_others_are_still_seen)
{
    char dir[600], a[1024], b[1024];
    struct store_box *box = NULL;
    struct str err = STR_INIT;
    struct store_changes ch;
    unsigned long before;
    int fd;

    folder(dir, sizeof(dir), "own");
    put(dir, "cur/101.M1P1.h:2,", FIXTURE_MSG);
    put(dir, "cur/102.M2P1.h:2,", FIXTURE_MSG);
    put(dir, "cur/103.M3P1.h:2,", FIXTURE_MSG);
    CHECK(until_quick(dir, 3));
    CHECK(store_open(dir, 0, 0, &box, &err) == 0);
    if (box == NULL)
        return;
    /* STOREs in a row, then a sync: no directory read. */
    before = store_scans;
    CHECK(flag(box, 1, STORE_F_SEEN) && flag(box, 2, STORE_F_SEEN));
    CHECK(store_sync(box, &ch, &err) == 0);
    store_changes_free(&ch);
    CHECK(store_scans == before);
    CHECK(store_msg(box, 1)->flags & STORE_F_SEEN);
    long long due = store_verify_at(box);
    CHECK(due > clock_ms() - 100 && due <= clock_ms() + STORE_VERIFY_MS);

    /* Another program flags message 3 right after: seen within STORE_VERIFY_MS. */
    snprintf(a, sizeof(a), "%s/cur/103.M3P1.h:2,", dir);
    snprintf(b, sizeof(b), "%s/cur/103.M3P1.h:2,F", dir);
    CHECK(rename(a, b) == 0);
    CHECK(until_flag(box, 2, STORE_F_FLAGGED));
    CHECK(store_scans > before && store_verify_at(box) == 0);

    /* A message renamed by another program within the trust of our own change
     * still opens (the failed open scans), and a STORE that finds a file gone
     * leaves the next sync to scan. */
    CHECK(flag(box, 1, STORE_F_ANSWERED));
    snprintf(a, sizeof(a), "%s/cur/101.M1P1.h:2,RS", dir);
    snprintf(b, sizeof(b), "%s/cur/101.M1P1.h:2,RST", dir);
    CHECK(rename(a, b) == 0);
    fd = store_open_msg(box, 0);
    CHECK(fd >= 0);
    if (fd >= 0)
        close(fd);
    CHECK(store_msg(box, 0)->flags & STORE_F_DELETED);
    snprintf(a, sizeof(a), "%s/cur/102.M2P1.h:2,S", dir);
    CHECK(unlink(a) == 0);
    before = store_scans;
    CHECK(flag(box, 2, STORE_F_FLAGGED));
    CHECK(store_sync(box, &ch, &err) == 0);
    CHECK(ch.n_expunged == 1 && ch.expunged[0] == 2);
    store_changes_free(&ch);
    CHECK(store_scans > before && store_count(box) == 2);
    store_close(box);
    str_free(&err);
}
