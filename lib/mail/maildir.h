/* Maildir delivery as the Maildir specification says: a unique name, written in
 * tmp/ (O_EXCL), fsynced, hard-linked into new/ and unlinked from tmp/.  Names carry
 * ",S=size" (Dovecot's convention) so readers know the size without stat, and
 * ",W=size" (Dovecot's too): the size with CRLF line ends, as POP3 and IMAP send it. */
#ifndef POSTERN_MAILDIR_H
#define POSTERN_MAILDIR_H

#include <stddef.h>
#include <sys/types.h>

struct str;

struct maildir_tmp {
    int fd;
    char *dir;              /* the Maildir */
    char *tmp_path;         /* dir/tmp/NAME */
    char *name;             /* unique base name */
    size_t size;            /* bytes written through maildir_write */
    size_t bare_lf;         /* LFs not after a CR: size + bare_lf = the size with CRLF */
    char last;              /* the last byte written */
};

/* Creates dir and dir/{tmp,new,cur} when missing (parents too, with mode). */
int maildir_create(const char *dir, mode_t mode, struct str *err);
/* Opens a new unique file in dir/tmp.  0, or -1 with err (errno kept). */
int maildir_open(const char *dir, struct maildir_tmp *t, struct str *err);
int maildir_write(struct maildir_tmp *t, const void *data, size_t len);
void maildir_abort(struct maildir_tmp *t);
/* Committing a message, for a caller that fsyncs new/ once for many files (and
 * removes the new files itself if that fails):
 * maildir_sync: fsync and close the file (nothing when already done).
 * maildir_link: maildir_sync, then link into new/NAME,S=size and unlink from tmp/;
 * the final path goes to path_out when not NULL.  Both: 0, or -1 with err and errno
 * (temporary file removed, t released). */
int maildir_sync(struct maildir_tmp *t, struct str *err);
int maildir_link(struct maildir_tmp *t, struct str *path_out, struct str *err);

#endif
