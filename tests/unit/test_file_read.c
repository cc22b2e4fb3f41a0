/* Unit tests for file_read: bounded whole-file reading. */
#include "unit.h"

#include <fcntl.h>
#include <unistd.h>

#include "file_read.h"
#include "str.h"

static int make_file(const char *name, const char *text, struct str *path)
{
    int fd;

    str_clear(path);
    str_printf(path, "%s/%s", unit_tmpdir(), name);
    fd = open(path->s, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (fd >= 0) {
        CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
        close(fd);
    }
    return open(path->s, O_RDONLY);
}

TEST(reads_whole_file)
{
    struct str path = STR_INIT, buf = STR_INIT, err = STR_INIT;
    int fd = make_file("a", "hello\nworld\n", &path);

    CHECK(fd >= 0);
    str_sets(&buf, ">");
    CHECK(file_read_fd(fd, path.s, 100, &buf, &err) == 0);
    CHECK_STR(buf.s, ">hello\nworld\n");
    close(fd);

    fd = make_file("empty", "", &path);
    str_clear(&buf);
    CHECK(file_read_fd(fd, path.s, 100, &buf, &err) == 0);
    CHECK(buf.len == 0);
    close(fd);
    str_free(&path);
    str_free(&buf);
    str_free(&err);
}

TEST(limit)
{
    struct str path = STR_INIT, buf = STR_INIT, err = STR_INIT;
    int fd = make_file("b", "0123456789", &path);

    CHECK(file_read_fd(fd, path.s, 9, &buf, &err) < 0);
    CHECK(strstr(err.s, "larger than 9 bytes") != NULL);
    close(fd);

    fd = open(path.s, O_RDONLY);
    str_clear(&buf);
    CHECK(file_read_fd(fd, path.s, 10, &buf, &err) == 0);
    CHECK(buf.len == 10);
    close(fd);
    str_free(&path);
    str_free(&buf);
    str_free(&err);
}

TEST(read_error)
{
    struct str buf = STR_INIT, err = STR_INIT;

    CHECK(file_read_fd(-1, "nowhere", 10, &buf, &err) < 0);
    CHECK(strncmp(err.s, "nowhere: ", 9) == 0);
    str_free(&buf);
    str_free(&err);
}
