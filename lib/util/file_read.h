/* Reading a whole file into memory, bounded: for the small text files of an
 * instance (postern.conf, text maps, master.conf). */
#ifndef POSTERN_FILE_READ_H
#define POSTERN_FILE_READ_H

#include <stddef.h>

struct str;

/* Appends the rest of fd to buf (room for a regular file's size made at once),
 * again after EINTR.  0, or -1 with err set ("PATH: reason"; path only names the
 * file) on a read error or, with errno EFBIG, when buf would grow past max bytes.
 * fd stays open. */
int file_read_fd(int fd, const char *path, size_t max, struct str *buf, struct str *err);

#endif
