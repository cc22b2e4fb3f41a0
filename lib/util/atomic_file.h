/* Writing whole files so that readers see the old content or the new, never a part:
 * a temporary file next to the target, fsync, rename over it, fsync of the directory. */
#ifndef POSTERN_ATOMIC_FILE_H
#define POSTERN_ATOMIC_FILE_H

#include <stddef.h>
#include <sys/stat.h>

struct str;

/* Replaces path with data: written to a new "PATH.tmpXXXXXXXXXXXX" (random hex), fsynced, renamed to path,
 * then the directory fsynced.  The file gets mode, or when like is not NULL the mode
 * of like and (when running as root) its owner and group.  0, or -1 with err set and
 * the temporary file removed. */
int atomic_file_write(const char *path, const void *data, size_t len, mode_t mode,
                      const struct stat *like, struct str *err);

/* The same for the file name in the directory open as dirfd (so that a directory
 * renamed meanwhile is still the one written): "NAME.tmpXXXXXXXXXXXX" made there with
 * mode, fsynced, renamed over name, dirfd fsynced.  0, or -1 with err set. */
int atomic_file_write_at(int dirfd, const char *name, const void *data, size_t len,
                         mode_t mode, struct str *err);

#endif
