/* Unit tests for atomic_file: whole-file replacement and the write loop. */

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "fd.h"
#include "str.h"
#include "unit.h"

static void read_back(const char *path, struct str *out)
{
    char buf[256];
    int fd = open(path, O_RDONLY);
    ssize_t n;

    str_clear(out);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        str_append(out, buf, (size_t)n);
    close(fd);
}

TEST(write_new_then_replace)
{
    struct str path = STR_INIT, got = STR_INIT, err = STR_INIT;
    struct stat sb;

    str_printf(&path, "%s/file", unit_tmpdir());
    CHECK(atomic_file_write(path.s, "one\n", 4, 0600, NULL, &err) == 0);
    read_back(path.s, &got);
    CHECK_STR(got.s, "one\n");
    CHECK(stat(path.s, &sb) == 0 && (sb.st_mode & 07777) == 0600);

    CHECK(chmod(path.s, 0640) == 0);
    CHECK(stat(path.s, &sb) == 0);
    CHECK(atomic_file_write(path.s, "two\n", 4, 0600, &sb, &err) == 0);
    read_back(path.s, &got);
    CHECK_STR(got.s, "two\n");
    CHECK(stat(path.s, &sb) == 0 && (sb.st_mode & 07777) == 0640);

    CHECK(atomic_file_write(path.s, "", 0, 0644, NULL, &err) == 0);
    CHECK(stat(path.s, &sb) == 0 && sb.st_size == 0);
    str_free(&path);
    str_free(&got);
    str_free(&err);
}

TEST(failure_leaves_nothing)
{
    struct str path = STR_INIT, err = STR_INIT;

    str_printf(&path, "%s/missing-dir/file", unit_tmpdir());
    CHECK(atomic_file_write(path.s, "x", 1, 0644, NULL, &err) < 0);
    CHECK(err.len > 0);
    CHECK(access(path.s, F_OK) < 0);
    str_free(&path);
    str_free(&err);
}

TEST(write_all_pipe)
{
    int p[2];
    char buf[8] = { 0 };

    CHECK(pipe(p) == 0);
    CHECK(fd_write_all(p[1], "abcdef", 6) == 0);
    CHECK(read(p[0], buf, sizeof(buf)) == 6);
    CHECK_STR(buf, "abcdef");
    close(p[0]);
    close(p[1]);
    CHECK(fd_write_all(p[1], "x", 1) < 0);
}

TEST(write_at_follows_the_directory)
{
    struct str dir = STR_INIT, moved = STR_INIT, path = STR_INIT, got = STR_INIT,
               err = STR_INIT;
    struct stat sb;
    int dfd;

    /* The directory is renamed and another made at its old name: the file goes
     * into the one dfd holds, and no temporary file is left beside it. */
    str_printf(&dir, "%s/at", unit_tmpdir());
    str_printf(&moved, "%s/at-moved", unit_tmpdir());
    CHECK(mkdir(dir.s, 0700) == 0);
    dfd = open(dir.s, O_RDONLY | O_DIRECTORY);
    CHECK(dfd >= 0);
    if (dfd < 0)
        return;
    CHECK(rename(dir.s, moved.s) == 0 && mkdir(dir.s, 0700) == 0);
    CHECK(atomic_file_write_at(dfd, "list", "one\n", 4, 0600, &err) == 0);
    CHECK(atomic_file_write_at(dfd, "list", "two\n", 4, 0600, &err) == 0);
    str_printf(&path, "%s/list", moved.s);
    read_back(path.s, &got);
    CHECK_STR(got.s, "two\n");
    CHECK(stat(path.s, &sb) == 0 && (sb.st_mode & 07777) == 0600);
    str_clear(&path);
    str_printf(&path, "%s/list", dir.s);
    CHECK(access(path.s, F_OK) < 0);
    CHECK(rmdir(dir.s) == 0);               /* empty: nothing was written there */
    str_clear(&path);
    str_printf(&path, "%s/list", moved.s);
    CHECK(unlink(path.s) == 0 && rmdir(moved.s) == 0);   /* no temporary left */
    /* A name that cannot be made fails cleanly. */
    CHECK(atomic_file_write_at(dfd, "no-such-dir/list", "x", 1, 0600, &err) < 0);
    CHECK(err.len > 0);
    close(dfd);
    str_free(&dir);
    str_free(&moved);
    str_free(&path);
    str_free(&got);
    str_free(&err);
}
