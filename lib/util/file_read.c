/* Bounded whole-file reading (see file_read.h).  Trusts nothing about the file's
 * size: the limit is checked before every append. */
#include "file_read.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "str.h"

int file_read_fd(int fd, const char *path, size_t max, struct str *buf, struct str *err)
{
    for (;;) {
        char chunk[8192];
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n < 0) {
            if (errno == EINTR)
                continue;
            str_printf(err, "%s: %s", path, strerror(errno));
            return -1;
        }
        if (n == 0)
            return 0;
        if ((size_t)n > max || buf->len > max - (size_t)n) {
            str_printf(err, "%s: larger than %zu bytes", path, max);
            return -1;
        }
        str_append(buf, chunk, (size_t)n);
    }
}
