/* Bounded whole-file reading (see file_read.h).  Trusts nothing about the file's
 * size: the limit is checked before every append. */
#include "file_read.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "str.h"

int file_read_fd(int fd, const char *path, size_t max, struct str *buf, struct str *err)
{
    struct stat st;

    /* A regular file's size is only a hint, but room for it at once (and a byte
     * more to see the end) spares the copies of growing: a large file is read in
     * one read. */
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (uint64_t)st.st_size <= max && buf->len <= max - (size_t)st.st_size)
        str_reserve(buf, (size_t)st.st_size + 1);
    for (;;) {
        size_t room;
        ssize_t n;

        if (buf->s == NULL || buf->cap - buf->len - 1 == 0)
            str_reserve(buf, 8192);
        room = buf->cap - buf->len - 1;
        if (room > max - buf->len + 1)
            room = max - buf->len + 1;      /* a byte past max tells it is too large */
        n = read(fd, buf->s + buf->len, room);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            str_printf(err, "%s: %s", path, strerror(errno));
            return -1;
        }
        if (n == 0)
            return 0;
        if ((size_t)n > max - buf->len) {
            buf->s[buf->len] = '\0';
            str_printf(err, "%s: larger than %zu bytes", path, max);
            errno = EFBIG;
            return -1;
        }
        buf->len += (size_t)n;
        buf->s[buf->len] = '\0';
    }
}
