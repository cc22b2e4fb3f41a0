/* Unit tests for lib/mail/maildir.c: unique names, sizes, no leftovers. */
#include "unit.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir.h"
#include "str.h"

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

TEST(create)
{
    char dir[512], sub[600];
    struct str err = STR_INIT;
    struct stat st;

    snprintf(dir, sizeof(dir), "%s/m/a/b/Maildir", unit_tmpdir());
    CHECK(maildir_create(dir, 0700, &err) == 0);
    CHECK(maildir_create(dir, 0700, &err) == 0);
    snprintf(sub, sizeof(sub), "%s/cur", dir);
    CHECK(stat(sub, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
    snprintf(sub, sizeof(sub), "%s/file", unit_tmpdir());
    fclose(fopen(sub, "w"));
    snprintf(sub, sizeof(sub), "%s/file/Maildir", unit_tmpdir());
    CHECK(maildir_create(sub, 0700, &err) < 0 && errno == ENOTDIR);
    CHECK(err.len > 0);
    str_free(&err);
}

TEST(deliver_many)
{
    char dir[512], sub[600];
    struct str err = STR_INIT, path = STR_INIT;
    struct maildir_tmp t;
    DIR *d;
    struct dirent *e;
    int ok = 0, sized = 0;

    snprintf(dir, sizeof(dir), "%s/many", unit_tmpdir());
    CHECK(maildir_create(dir, 0700, &err) == 0);
    for (int i = 0; i < 100; i++) {
        char msg[64];
        int n = snprintf(msg, sizeof(msg), "Subject: %d\n\nbody\n", i);
        CHECK(maildir_open(dir, &t, &err) == 0);
        CHECK(maildir_write(&t, msg, (size_t)n) == 0);
        CHECK(maildir_write(&t, "", 1) == 0);              /* a NUL byte too */
        CHECK(t.size == (size_t)n + 1);
        str_clear(&path);
        if (maildir_link(&t, &path, &err) == 0)
            ok++;
        CHECK(strstr(path.s, "/new/") != NULL);
        CHECK(access(path.s, F_OK) == 0);
        CHECK(t.fd == -1 && t.tmp_path == NULL);
        CHECK(maildir_sync_new(&t) == 0);
        maildir_close(&t);
        CHECK(t.new_fd == -1);
    }
    CHECK(ok == 100);
    snprintf(sub, sizeof(sub), "%s/new", dir);
    CHECK(count_entries(sub) == 100);
    d = opendir(sub);
    while (d != NULL && (e = readdir(d)) != NULL) {
        char full[1200];
        struct stat st;
        const char *s = strstr(e->d_name, ",S=");
        if (e->d_name[0] == '.')
            continue;
        snprintf(full, sizeof(full), "%s/%s", sub, e->d_name);
        if (s != NULL && stat(full, &st) == 0 && strtoll(s + 3, NULL, 10) == st.st_size &&
            strchr(e->d_name, '/') == NULL && strchr(e->d_name, ':') == NULL &&
            strstr(e->d_name, ".M") != NULL && strstr(e->d_name, "Q") != NULL)
            sized++;
    }
    if (d)
        closedir(d);
    CHECK(sized == 100);
    snprintf(sub, sizeof(sub), "%s/tmp", dir);
    CHECK(count_entries(sub) == 0);
    str_free(&err);
    str_free(&path);
}

TEST(failure_leaves_nothing)
{
    char dir[512], sub[600];
    struct str err = STR_INIT;
    struct maildir_tmp t;

    snprintf(dir, sizeof(dir), "%s/fail", unit_tmpdir());
    CHECK(maildir_create(dir, 0700, &err) == 0);

    /* Commit cannot link: new/ is gone. */
    CHECK(maildir_open(dir, &t, &err) == 0);
    CHECK(maildir_write(&t, "x\n", 2) == 0);
    snprintf(sub, sizeof(sub), "%s/new", dir);
    CHECK(rmdir(sub) == 0);
    CHECK(maildir_link(&t, NULL, &err) < 0 && errno == ENOENT);
    CHECK(err.len > 0);
    snprintf(sub, sizeof(sub), "%s/tmp", dir);
    CHECK(count_entries(sub) == 0);

    /* Without new/ nothing can be opened; abort removes the file. */
    CHECK(maildir_open(dir, &t, &err) < 0 && errno == ENOENT);
    snprintf(sub, sizeof(sub), "%s/new", dir);
    CHECK(mkdir(sub, 0700) == 0);
    snprintf(sub, sizeof(sub), "%s/tmp", dir);
    CHECK(maildir_open(dir, &t, &err) == 0);
    CHECK(count_entries(sub) == 1);
    maildir_abort(&t);
    CHECK(count_entries(sub) == 0);

    /* No Maildir at all: open fails with ENOENT. */
    snprintf(sub, sizeof(sub), "%s/none", unit_tmpdir());
    CHECK(maildir_open(sub, &t, &err) < 0 && errno == ENOENT);
    str_free(&err);
}

TEST(sync_then_link)
{
    char dir[512], sub[600];
    struct str err = STR_INIT, path = STR_INIT;
    struct maildir_tmp t[3];
    struct stat st;

    snprintf(dir, sizeof(dir), "%s/split", unit_tmpdir());
    CHECK(maildir_create(dir, 0700, &err) == 0);
    /* Several files written first, then synced and linked: none in new/ before. */
    for (int i = 0; i < 3; i++) {
        CHECK(maildir_open(dir, &t[i], &err) == 0);
        CHECK(maildir_write(&t[i], "a\nb\n", 4) == 0);
    }
    snprintf(sub, sizeof(sub), "%s/new", dir);
    CHECK(count_entries(sub) == 0);
    CHECK(maildir_sync(&t[0], &err) == 0);
    CHECK(maildir_sync(&t[0], &err) == 0);             /* already done: nothing */
    for (int i = 0; i < 3; i++) {
        str_clear(&path);
        CHECK(maildir_link(&t[i], &path, &err) == 0);
        CHECK(stat(path.s, &st) == 0 && st.st_size == 4);
        CHECK(strstr(path.s, ",S=4,W=6") != NULL);
        maildir_close(&t[i]);
    }
    CHECK(count_entries(sub) == 3);
    snprintf(sub, sizeof(sub), "%s/tmp", dir);
    CHECK(count_entries(sub) == 0);
    str_free(&path);
    str_free(&err);
}

/* A symbolic link at the Maildir or at any of its directories is refused (ELOOP) and
 * nothing is written through it; so is a directory of another owner (EPERM). */
TEST(links_and_owners_refused)
{
    static const char *const sub[] = { "tmp", "new", "cur" };
    char dir[512], path[700], elsewhere[512];
    struct str err = STR_INIT;
    struct maildir_tmp t;

    snprintf(elsewhere, sizeof(elsewhere), "%s/elsewhere", unit_tmpdir());
    CHECK(mkdir(elsewhere, 0700) == 0);
    for (int i = 0; i < 3; i++) {
        snprintf(dir, sizeof(dir), "%s/linked-%s", unit_tmpdir(), sub[i]);
        CHECK(maildir_create(dir, 0700, &err) == 0);
        snprintf(path, sizeof(path), "%s/%s", dir, sub[i]);
        CHECK(rmdir(path) == 0 && symlink(elsewhere, path) == 0);
        str_clear(&err);
        CHECK(maildir_open(dir, &t, &err) < 0 && errno == ELOOP);
        CHECK(err.s != NULL && strstr(err.s, "symbolic link") != NULL);
        CHECK(t.fd == -1 && t.tmp_fd == -1 && t.new_fd == -1);
        /* Creating it again repairs nothing and follows nothing. */
        CHECK(maildir_create(dir, 0700, &err) == 0);
        CHECK(maildir_open(dir, &t, &err) < 0 && errno == ELOOP);
        CHECK(count_entries(elsewhere) == 0);
    }
    snprintf(dir, sizeof(dir), "%s/linked-top", unit_tmpdir());
    snprintf(path, sizeof(path), "%s/many", unit_tmpdir());
    CHECK(symlink(path, dir) == 0);
    CHECK(maildir_open(dir, &t, &err) < 0 && errno == ELOOP);
    CHECK(maildir_create(dir, 0700, &err) < 0 && errno == ELOOP);

    snprintf(dir, sizeof(dir), "%s/owned", unit_tmpdir());
    CHECK(maildir_create(dir, 0700, &err) == 0);
    if (geteuid() == 0) {
        snprintf(path, sizeof(path), "%s/new", dir);
        CHECK(chown(path, 65534, 65534) == 0);
        str_clear(&err);
        CHECK(maildir_open(dir, &t, &err) < 0 && errno == EPERM);
        CHECK(err.s != NULL && strstr(err.s, "owned by uid 65534") != NULL);
        CHECK(chown(path, 0, 0) == 0 && chown(dir, 65534, 65534) == 0);
        CHECK(maildir_open(dir, &t, &err) < 0 && errno == EPERM);
    }
    str_free(&err);
}

/* A linked file can be taken back; new/ is synced through the kept descriptor. */
TEST(unlink_new)
{
    char dir[512], sub[600];
    struct str err = STR_INIT, path = STR_INIT;
    struct maildir_tmp t;

    snprintf(dir, sizeof(dir), "%s/back", unit_tmpdir());
    CHECK(maildir_create(dir, 0700, &err) == 0);
    CHECK(maildir_open(dir, &t, &err) == 0);
    CHECK(maildir_write(&t, "x\n", 2) == 0);
    CHECK(maildir_link(&t, &path, &err) == 0);
    CHECK(access(path.s, F_OK) == 0);
    CHECK(maildir_sync_new(&t) == 0);
    maildir_unlink_new(&t);
    CHECK(access(path.s, F_OK) < 0 && errno == ENOENT);
    maildir_close(&t);
    snprintf(sub, sizeof(sub), "%s/tmp", dir);
    CHECK(count_entries(sub) == 0);
    str_free(&path);
    str_free(&err);
}
