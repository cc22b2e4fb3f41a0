/* Unit tests for lib/mail/maildir_scan.c: order, sizes from names and from contents, the
 * new/ to cur/ move, unique ids (stable, bounded, hashed when needed), limits. */
#include "unit.h"
#include "store_fixture.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir_scan.h"
#include "str.h"

static void make_maildir(char *dir, size_t len, const char *name)
{
    char sub[600];

    snprintf(dir, len, "%s/%s", unit_tmpdir(), name);
    mkdir(dir, 0700);
    snprintf(sub, sizeof(sub), "%s/new", dir);
    mkdir(sub, 0700);
    snprintf(sub, sizeof(sub), "%s/cur", dir);
    mkdir(sub, 0700);
    snprintf(sub, sizeof(sub), "%s/tmp", dir);
    mkdir(sub, 0700);
}

static bool exists(const char *dir, const char *rel)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return access(path, F_OK) == 0;
}

TEST(order_sizes_and_move)
{
    char dir[512], uid[MAILDIR_UID_MAX + 1];
    struct maildir_list ml;
    struct str err = STR_INIT;

    make_maildir(dir, sizeof(dir), "a");
    /* Sizes in names are believed; the file contents do not matter then. */
    put(dir, "cur/200.M1P1.h,S=10,W=12:2,S", "ignored");
    put(dir, "new/100.M1P1.h,S=5,W=7", "x");
    /* No size in the name: read and count bare LFs (3 LFs, one after CR). */
    put(dir, "new/1000.M2P2.h", "ab\ncd\r\nef\n\n");
    put(dir, "new/.hidden", "x");
    maildir_list_init(&ml);
    CHECK(maildir_scan(dir, MAILDIR_SCAN_MOVE_NEW, 0, &ml, &err) == 0);
    CHECK(ml.n == 3);
    if (ml.n == 3) {
        CHECK_STR(maildir_msg_path(&ml, 0), "cur/100.M1P1.h,S=5,W=7:2,");
        CHECK_STR(maildir_msg_path(&ml, 1), "cur/200.M1P1.h,S=10,W=12:2,S");
        CHECK_STR(maildir_msg_path(&ml, 2), "cur/1000.M2P2.h:2,");
        CHECK(ml.v[0].size == 7 && ml.v[0].disk_size == 5);
        CHECK(ml.v[1].size == 12 && ml.v[1].disk_size == 10);
        CHECK(ml.v[2].size == 14 && ml.v[2].disk_size == 11);
        CHECK(ml.total == 7 + 12 + 14);
        maildir_msg_uid(&ml, 0, uid);
        CHECK_STR(uid, "100.M1P1.h,S=5,W=7");
    }
    CHECK(!exists(dir, "new/100.M1P1.h,S=5,W=7"));
    CHECK(exists(dir, "cur/100.M1P1.h,S=5,W=7:2,"));
    CHECK(exists(dir, "new/.hidden"));
    /* A second scan sees the same ids. */
    CHECK(maildir_scan(dir, MAILDIR_SCAN_MOVE_NEW, 0, &ml, &err) == 0);
    CHECK(ml.n == 3);
    if (ml.n == 3) {
        maildir_msg_uid(&ml, 2, uid);
        CHECK_STR(uid, "1000.M2P2.h");
    }
    maildir_list_free(&ml);
    str_free(&err);
}

TEST(no_move_keeps_new)
{
    char dir[512];
    struct maildir_list ml;
    struct str err = STR_INIT;

    make_maildir(dir, sizeof(dir), "b");
    put(dir, "new/5.A.h,S=1", "x");
    maildir_list_init(&ml);
    CHECK(maildir_scan(dir, 0, 0, &ml, &err) == 0);
    CHECK(ml.n == 1);
    if (ml.n == 1) {
        CHECK_STR(maildir_msg_path(&ml, 0), "new/5.A.h,S=1");
        CHECK(ml.v[0].size == 1);   /* no W=: counted from the file */
    }
    CHECK(exists(dir, "new/5.A.h,S=1"));
    maildir_list_free(&ml);
    str_free(&err);
}

TEST(long_uid_hashed)
{
    char dir[512], name[300], uid[MAILDIR_UID_MAX + 1], uid2[MAILDIR_UID_MAX + 1];
    struct maildir_list ml;
    struct str err = STR_INIT;

    make_maildir(dir, sizeof(dir), "c");
    memset(name, 'x', 120);
    memcpy(name, "cur/7.", 6);
    strcpy(name + 120, ":2,");
    put(dir, name, "hello\n");
    put(dir, "cur/8.with space,S=1:2,", "y");
    maildir_list_init(&ml);
    CHECK(maildir_scan(dir, 0, 0, &ml, &err) == 0);
    CHECK(ml.n == 2);
    if (ml.n == 2) {
        maildir_msg_uid(&ml, 0, uid);
        CHECK(strlen(uid) == 64);
        maildir_msg_uid(&ml, 0, uid2);
        CHECK_STR(uid, uid2);
        maildir_msg_uid(&ml, 1, uid);
        CHECK(strlen(uid) == 64 && strchr(uid, ' ') == NULL);
    }
    maildir_list_free(&ml);
    str_free(&err);
}

TEST(name_sizes)
{
    uint64_t v = 0;

    CHECK(maildir_name_size("cur/1.a,S=12,W=14:2,S", 'S', &v) && v == 12);
    CHECK(maildir_name_size("cur/1.a,S=12,W=14:2,S", 'W', &v) && v == 14);
    CHECK(!maildir_name_size("cur/1.a,S=:2,", 'S', &v));
    CHECK(!maildir_name_size("cur/1.a,S=1x:2,", 'S', &v));
    CHECK(!maildir_name_size("cur/1.a,S=99999999999999999999999", 'S', &v));
    CHECK(!maildir_name_size("cur/1.a:2,,S=5", 'S', &v));     /* in the flags: no */
}

TEST(limit_and_missing)
{
    char dir[512];
    struct maildir_list ml;
    struct str err = STR_INIT;

    make_maildir(dir, sizeof(dir), "d");
    put(dir, "cur/1.a,S=1,W=1:2,", "x");
    put(dir, "cur/2.a,S=1,W=1:2,", "x");
    put(dir, "cur/3.a,S=1,W=1:2,", "x");
    maildir_list_init(&ml);
    CHECK(maildir_scan(dir, 0, 2, &ml, &err) < 0);
    CHECK(maildir_scan(dir, 0, 3, &ml, &err) == 0 && ml.n == 3);
    str_clear(&err);
    CHECK(maildir_scan("/nonexistent/maildir", 0, 0, &ml, &err) < 0 && err.len > 0);
    maildir_list_free(&ml);
    str_free(&err);
}

TEST(many_is_compact)
{
    char dir[512], rel[128];
    struct maildir_list ml;
    struct str err = STR_INIT;

    make_maildir(dir, sizeof(dir), "e");
    for (int i = 0; i < 2000; i++) {
        snprintf(rel, sizeof(rel), "cur/%d.M%dP1.host,S=100,W=103:2,", 1000 + (i * 7919) % 2000, i);
        put(dir, rel, "");
    }
    maildir_list_init(&ml);
    CHECK(maildir_scan(dir, 0, 0, &ml, &err) == 0);
    CHECK(ml.n == 2000);
    CHECK(ml.total == 2000ull * 103);
    CHECK(sizeof(struct maildir_msg) <= 24);
    for (size_t i = 1; i < ml.n; i++)
        CHECK(atoll(strchr(maildir_msg_path(&ml, i - 1), '/') + 1)
              <= atoll(strchr(maildir_msg_path(&ml, i), '/') + 1));
    maildir_list_free(&ml);
    str_free(&err);
}
