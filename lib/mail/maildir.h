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
    int tmp_fd;             /* the Maildir's tmp/ and new/, opened by maildir_dirs_open */
    int new_fd;
    char *dir;              /* the Maildir */
    char *tmp_path;         /* dir/tmp/NAME, for messages */
    char *name;             /* unique base name */
    char *final;            /* its name in new/, once linked */
    size_t size;            /* bytes written through maildir_write */
    size_t bare_lf;         /* LFs not after a CR: size + bare_lf = the size with CRLF */
    char last;              /* the last byte written */
};

/* The Maildir's own directories, as maildir_dirs_open leaves them. */
enum { MAILDIR_FD_TOP, MAILDIR_FD_TMP, MAILDIR_FD_NEW, MAILDIR_FD_CUR, MAILDIR_NFD };

/* Opens dir, then tmp/, new/ and cur/ relative to its descriptor, each with
 * O_NOFOLLOW | O_DIRECTORY, and checks that each is owned by owner: a symbolic link
 * planted at any of them is never followed.  0 with fds[] open; or -1 with err and
 * errno, nothing left open: ENOENT when one is missing, ENOTDIR when one is not a
 * directory, ELOOP (a symbolic link) or EPERM (another owner) when refused. */
int maildir_dirs_open(const char *dir, uid_t owner, int fds[MAILDIR_NFD], struct str *err);
void maildir_dirs_close(int fds[MAILDIR_NFD]);
/* Creates dir (parents too) and dir/{tmp,new,cur} when missing, with mode and the
 * effective ids as owner; the subdirectories relative to the Maildir's descriptor
 * opened with O_NOFOLLOW.  An existing one is left as it is (maildir_dirs_open
 * judges it). */
int maildir_create(const char *dir, mode_t mode, struct str *err);
/* Opens a new unique file in dir/tmp, the directories opened by maildir_dirs_open
 * for the effective uid.  0, or -1 with err (errno kept). */
int maildir_open(const char *dir, struct maildir_tmp *t, struct str *err);
int maildir_write(struct maildir_tmp *t, const void *data, size_t len);
void maildir_abort(struct maildir_tmp *t);
/* Committing a message, for a caller that fsyncs new/ once for many files (and
 * removes the new files itself if that fails):
 * maildir_sync: fsync and close the file (nothing when already done).
 * maildir_link: maildir_sync, then link into new/NAME,S=size and unlink from tmp/;
 * the final path goes to path_out when not NULL; new/ stays open in t for
 * maildir_sync_new and maildir_unlink_new until maildir_close.  Both: 0, or -1 with
 * err and errno (temporary file removed, t released). */
int maildir_sync(struct maildir_tmp *t, struct str *err);
int maildir_link(struct maildir_tmp *t, struct str *path_out, struct str *err);
/* After maildir_link: fsync new/ (0, or -1 with errno), or take the file back. */
int maildir_sync_new(struct maildir_tmp *t);
void maildir_unlink_new(struct maildir_tmp *t);
/* Releases t, removing nothing (a file still in tmp/ stays there). */
void maildir_close(struct maildir_tmp *t);

#endif
