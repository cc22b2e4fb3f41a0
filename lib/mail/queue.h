/* The queue: ids, directories and queue files (the format is postern-queue(5)).
 *
 * A queue file is a sequence of records "T<len>:<len bytes>\n": T is one ASCII letter,
 * len is decimal.  Order: V (format version, first), T (arrival, unix seconds),
 * S (sender, empty for the null sender), A (attribute "name=value", any number),
 * per recipient: optional O (ORCPT) and N (NOTIFY) records, then R (pending
 * recipient) or D (done recipient), then C (content chunk, any number; the message
 * with '\n' line ends), and last E (end, empty).  A file without its E record is
 * corrupt.  A recipient is marked done by overwriting its type byte 'R' with 'D'.
 *
 * Every function takes the queue directory as a path or a directory fd; inside a
 * chroot the caller passes ".". */
#ifndef POSTERN_QUEUE_H
#define POSTERN_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "attr.h"

struct str;

#define QUEUE_ID_LEN 21             /* characters, not counting the NUL */
#define QUEUE_ID_SIZE (QUEUE_ID_LEN + 1)
#define QUEUE_FORMAT_VERSION "1"
#define QUEUE_RECORD_MAX (1u << 20) /* largest record accepted on read */
#define QUEUE_RCPT_MAX 100000       /* most recipients a file may carry */

/* Queue ids: 9 hex digits of seconds, 5 of microseconds, 7 of pid, upper case.
 * Unique on the host, sortable by time, safe as a file name. */
void queue_id_new(char id[QUEUE_ID_SIZE]);
bool queue_id_valid(const char *id);
time_t queue_id_time(const char *id);

#define QUEUE_DIRS "tmp", "maildrop", "incoming", "active", "deferred", "hold", "corrupt", \
    QUEUE_DEFER_DIR

/* Creates the queue tree under dir (tmp maildrop incoming active deferred hold
 * corrupt defer private public pid login), modes as postern-queue(5) says. */
int queue_tree_create(const char *dir, struct str *err);

/* rename(2) dir/from/id to dir/to/id, then fsync dir/to.  0 or -1 (errno). */
int queue_move(const char *qdir, const char *from, const char *to, const char *id);
/* fsync(2) a directory by path. */
int fsync_dir(const char *path);

/* ---- defer records: why each recipient is still deferred (postern-queue(5)) ---- */
#define QUEUE_DEFER_DIR "defer"
#define QUEUE_DEFER_VERSION "1"

struct queue_defer_rcpt {
    char *addr;
    char *reason;           /* "DSN text" of the last attempt */
    time_t attempt;         /* when that attempt ended */
    time_t next;            /* when the next one is due */
};

struct queue_defer {
    struct queue_defer_rcpt *r;
    size_t n;
};

/* Replaces qdir/defer/ID with these recipients (temporary file, fsync, rename).
 * 0, or -1 with err. */
int queue_defer_write(const char *qdir, const char *id, const struct queue_defer_rcpt *r,
                      size_t n, struct str *err);
/* Reads qdir/defer/ID (never through a symbolic link).  0; or -1 with errno ENOENT
 * (none), EINVAL (corrupt or not a queue id) or another error, and err set. */
int queue_defer_read(const char *qdir, const char *id, struct queue_defer *d,
                     struct str *err);
void queue_defer_free(struct queue_defer *d);
/* The entry for addr, or NULL. */
const struct queue_defer_rcpt *queue_defer_find(const struct queue_defer *d,
                                                const char *addr);
/* Removes qdir/defer/ID; a missing one is no error.  0 or -1 (errno). */
int queue_defer_remove(const char *qdir, const char *id);

/* ---- writing ---- */
struct queue_writer;

/* Creates qdir/tmp/ID with a new id (copied to id).  NULL with err on failure. */
struct queue_writer *qw_create(const char *qdir, char id[QUEUE_ID_SIZE], struct str *err);
/* Envelope, in this order: sender once, attributes, recipients.  Then content. */
int qw_sender(struct queue_writer *qw, const char *sender);
int qw_attr(struct queue_writer *qw, const char *name, const char *value);
int qw_recipient(struct queue_writer *qw, const char *addr, const char *orcpt,
                 const char *notify);     /* orcpt, notify may be NULL */
/* Envelope edits, allowed after the sender and before the first content: a new
 * sender, an attribute set (added or replaced), a recipient removed (recipients are
 * added with qw_recipient).  The file is written again at the first content or the
 * commit; removing every recipient makes that fail (EINVAL): a message for nobody is
 * the caller's to discard.  0, or -1 (an edit out of its place fails the file). */
size_t qw_rcpt_count(const struct queue_writer *qw);
const char *qw_rcpt_addr(const struct queue_writer *qw, size_t i);
const char *qw_rcpt_orcpt(const struct queue_writer *qw, size_t i);   /* may be NULL */
const char *qw_envelope_sender(const struct queue_writer *qw);
int qw_edit_sender(struct queue_writer *qw, const char *sender);
int qw_edit_attr(struct queue_writer *qw, const char *name, const char *value);
int qw_edit_del_rcpt(struct queue_writer *qw, size_t i);
int qw_content(struct queue_writer *qw, const void *data, size_t len);
size_t qw_content_size(const struct queue_writer *qw);
/* Writes E, fsyncs the file, renames it into qdir/to (e.g. "incoming"), fsyncs
 * that directory, frees qw.  Only after 0 may the message be acknowledged.  On -1
 * the temporary file is removed and qw freed. */
int qw_commit(struct queue_writer *qw, const char *to, struct str *err);
void qw_abort(struct queue_writer *qw);   /* removes the temporary file, frees */

/* ---- reading ---- */
struct queue_rcpt {
    char *addr;
    char *orcpt;            /* NULL when absent */
    char *notify;           /* NULL when absent */
    off_t type_offset;      /* of the R/D byte, for queue_mark_done */
    bool done;
};

struct queue_file {
    char id[QUEUE_ID_SIZE];
    int fd;
    time_t arrival;
    char *sender;
    struct attr_list attrs;
    struct queue_rcpt *rcpt;
    size_t nrcpt;
    off_t content_offset;   /* first C record */
    size_t content_size;    /* total bytes of all C records */
};

/* Opens and parses path (envelope fully, content records are walked to find their
 * size and the E record).  flags: O_RDONLY or O_RDWR.  Returns 0; or -1 with errno:
 * ENOENT (gone) or EINVAL (corrupt: err says why), or another I/O error. */
int queue_file_open(const char *path, int flags, struct queue_file *qf, struct str *err);
int queue_file_openat(int dirfd, const char *name, int flags, struct queue_file *qf,
                      struct str *err);
void queue_file_close(struct queue_file *qf);
const char *queue_file_attr(const struct queue_file *qf, const char *name);

/* Calls fn for each content chunk in order; stops and returns fn's value when it is
 * non-zero.  0 at the end, -1 on I/O error or corruption. */
int queue_file_content(struct queue_file *qf,
                       int (*fn)(void *arg, const char *data, size_t len), void *arg);

/* Marks recipient i done (one pwrite of its type byte).  Not synced: call
 * queue_file_sync() before relying on it. */
int queue_mark_done(struct queue_file *qf, size_t i);
int queue_file_sync(struct queue_file *qf);

#endif
