/* One IMAP folder on Maildir: UIDs, MODSEQs, flags and keywords, synchronised with
 * what other programs do to the same directories (local delivery writing new/, POP3
 * and mutt unlinking or renaming files).  The layout and the UID list file are
 * documented in postern-maildir(5).
 *
 * State on disk, per folder directory:
 *   postern-uidlist       UIDVALIDITY, next UID, highest MODSEQ, each message's UID,
 *                         MODSEQ, flags and base name, recent expunges as UID
 *                         ranges with their MODSEQ; replaced
 *                         atomically (tmp, fsync, rename, fsync of the directory)
 *   postern-uidlist.lock  held with an fcntl open-file-description lock while the
 *                         list is read, the directories scanned and the list replaced;
 *                         the kernel drops it when a process dies, so it never goes
 *                         stale.  Waiting is bounded (STORE_LOCK_WAIT_MS).
 *   dovecot-keywords      keyword names for the letters a..z, in Dovecot's format,
 *                         so Dovecot and we read the same keywords from file names.
 *
 * Crash safety: a UID is returned to a caller only after the list recording it (and
 * the raised next UID) is durable; a file is renamed or linked into place before the
 * list names it.  A crash at any point therefore leaves either a file without a UID
 * (it gets the next UID at the next sync) or a list entry without a file (an expunge,
 * noticed at the next sync): a UID is never handed out twice.  A list that is missing,
 * unreadable or inconsistent is rebuilt with a new, larger UIDVALIDITY; never fatal.
 *
 * Flags live in the file name, "BASE:2,FLAGS" with the Maildir letters sorted (D
 * draft, F flagged, P passed, R replied = \Answered, S seen, T trashed = \Deleted)
 * followed by the keyword letters a..z.  P is kept as found but is no IMAP flag
 * (Dovecot ignores it too); $Forwarded is a keyword, as in Dovecot.  \Recent is per handle: the
 * handle whose sync first assigns a UID to a message sees it as recent (exactly one
 * per message, RFC 3501 2.3.2), unless opened read-only (EXAMINE).
 *
 * The handles open on one folder in one process share its state (the list, the view,
 * the keyword names): a folder is held once however many connections have it open,
 * and each handle keeps only what is its own (read-only or not, \Recent, the changes
 * not yet reported to it).  What one handle changes or finds changed is news to
 * every other at its next store_sync.  The handles of a process are used by one
 * thread; processes exclude each other through the lock.  No call holds the lock
 * across returns, so a caller never deadlocks by holding two handles.
 *
 * A folder's state outlives its last handle, so that the next open of it in the
 * process (a client's next SELECT, STATUS, APPEND) starts from what it knew and reads
 * nothing when the quick check finds the directories and the list unchanged: at most
 * STORE_KEEP_FOLDERS such folders, of STORE_KEEP_MSGS messages in all, the least
 * recently closed going first. */
#ifndef POSTERN_STORE_H
#define POSTERN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct str;

/* System flags, in the order of their Maildir letters. */
#define STORE_F_DRAFT     0x01      /* D  \Draft */
#define STORE_F_FLAGGED   0x02      /* F  \Flagged */
#define STORE_F_PASSED    0x04      /* P  kept in names, not an IMAP flag */
#define STORE_F_ANSWERED  0x08      /* R  \Answered */
#define STORE_F_SEEN      0x10      /* S  \Seen */
#define STORE_F_DELETED   0x20      /* T  \Deleted */
#define STORE_F_MASK      0x3f

#define STORE_KEYWORDS_MAX 26       /* letters a..z, as Dovecot */
#define STORE_KEYWORD_LEN  100      /* longest keyword name */
#define STORE_EXPUNGED_KEEP 10000   /* records of expunged UID ranges kept for QRESYNC */
#define STORE_LOCK_WAIT_MS 10000    /* longest wait for the UID list lock */
#define STORE_KEEP_FOLDERS 4        /* closed folders whose state is kept */
#define STORE_KEEP_MSGS    250000   /* messages those may hold in all */

/* EXAMINE: takes no \Recent and refuses flag changes, expunge, append and being a
 * copy's destination; its syncs still move new/ to cur/ and number new files, as
 * every reader of the folder does. */
#define STORE_RDONLY  0x1

struct store_msg {
    uint32_t uid;
    uint8_t flags;                  /* STORE_F_* */
    uint32_t keywords;              /* bit i: keyword i (letter 'a' + i) */
    uint64_t modseq;
    uint64_t size;                  /* RFC822.SIZE (CRLF) when the name tells (",W="), else 0 */
    time_t internaldate;            /* the file's mtime, as Dovecot (0 until store_stat) */
    char *file;                     /* "cur/BASE:2,FLAGS" relative to the folder */
};

/* What store_sync found changed since the handle's last sync (or open). */
struct store_changes {
    uint32_t *added;        size_t n_added;         /* new UIDs, ascending */
    uint32_t *expunged;     size_t n_expunged;      /* UIDs gone, ascending */
    uint32_t *changed;      size_t n_changed;       /* flags changed, ascending */
    bool keywords_changed;  /* a keyword name was added: send FLAGS again */
    bool uidvalidity_changed;   /* the UID list was rebuilt: every UID before is void */
};

struct store_box;

/* Opens the folder at dir (the Maildir for INBOX, store_folder_path for others),
 * then syncs it (new/ to cur/, UIDs for new files).  flags: STORE_RDONLY.
 * max_msgs bounds the folder (0: no limit; more is EFBIG).  0 with *out, or -1 with
 * err and errno (ENOENT: no such folder). */
int store_open(const char *dir, unsigned flags, size_t max_msgs, struct store_box **out,
               struct str *err);
void store_close(struct store_box *b);

uint32_t store_uidvalidity(const struct store_box *b);
uint32_t store_uidnext(const struct store_box *b);
uint64_t store_highestmodseq(const struct store_box *b);
const char *store_dir(const struct store_box *b);

/* The messages, ascending by UID, as the folder is now (a caller keeps its own
 * numbering of what its client was told).  Pointers stay valid until the next call
 * on any handle of the folder that syncs or changes it. */
size_t store_count(const struct store_box *b);
const struct store_msg *store_msg(const struct store_box *b, size_t i);
/* The UIDs of the folder's messages, ascending (store_count of them): the same as
 * store_msg(b, i)->uid, in one array. */
const uint32_t *store_uids(const struct store_box *b);
/* The index of uid, or -1 when not present. */
long store_find(const struct store_box *b, uint32_t uid);
/* Whether uid is \Recent for this handle. */
bool store_recent(const struct store_box *b, uint32_t uid);
/* When (clock_ms()) the folder's own recent changes stop being taken on trust and
 * the next sync reads the directories again; 0 when none is pending.  A caller that
 * waits for changes (IDLE) syncs then. */
long long store_verify_at(const struct store_box *b);
/* How many of the folder's messages are \Recent for this handle. */
size_t store_recent_count(const struct store_box *b);
/* Fills m->internaldate (and m->size when the name did not tell) from the file.
 * 0, or -1 with errno (ENOENT: expunged meanwhile). */
int store_stat(struct store_box *b, size_t i);
/* Opens a message for reading (O_RDONLY, O_NOFOLLOW): a file renamed by a flag
 * change elsewhere is found again by its base name.  fd, or -1 (ENOENT: expunged). */
int store_open_msg(struct store_box *b, size_t i);

/* Keywords: name of keyword i (NULL when unset); the index of a name (-1 when
 * unknown; with create, a new letter is given while fewer than 26 are used, else
 * -1 with ENOSPC).  Names are atoms (RFC 3501 flag-keyword), compared
 * case-insensitively, at most STORE_KEYWORD_LEN bytes. */
const char *store_keyword(const struct store_box *b, unsigned i);
int store_keyword_index(struct store_box *b, const char *name, bool create);

/* Reads the disk again: files gone (expunged by anyone), new files (given UIDs in
 * delivery order, moved from new/ to cur/), flags changed in file names (given a new
 * MODSEQ).  The handle's list becomes the current state; ch (when not NULL) receives
 * what changed since the last sync, for EXISTS, EXPUNGE/VANISHED and FETCH FLAGS.
 * Free ch with store_changes_free.  The operations below (flags, expunge, copy,
 * append) sync too before they act; what they find done by others is kept and
 * reported by the next store_sync, while their own changes are not reported again
 * (the caller knows them from their results).  0, or -1 with err (the handle stays
 * as it was). */
int store_sync(struct store_box *b, struct store_changes *ch, struct str *err);
void store_changes_free(struct store_changes *ch);

/* UIDs expunged with a MODSEQ above since, for VANISHED (EARLIER): *n ranges,
 * ascending and disjoint.  A range may also hold UIDs expunged earlier (never one
 * present).  *complete is false when expunges that old were already forgotten
 * (then the caller must treat every UID not present as vanished).  Returns a
 * malloc'ed array. */
struct store_range {
    uint32_t lo, hi;
};
struct store_range *store_vanished(const struct store_box *b, uint64_t since, size_t *n,
                                   bool *complete);

/* STORE: for each uid, flags and keywords become (op '+') old | set, (op '-')
 * old & ~set, (op '=') set.  With unchangedsince (non-zero), a message whose MODSEQ
 * is above it is left alone and its UID put in *failed (CONDSTORE MODIFIED).  Each
 * changed message gets a new MODSEQ; the UID list is written once.  UIDs not present
 * are skipped.  0, or -1 with err. */
int store_set_flags(struct store_box *b, const uint32_t *uids, size_t n, char op,
                    unsigned flags, uint32_t keywords, uint64_t unchangedsince,
                    uint32_t **failed, size_t *n_failed, struct str *err);

/* EXPUNGE and UID EXPUNGE: unlinks the messages with \Deleted (among uids when uids
 * is not NULL) and records them for QRESYNC.  The expunged UIDs go to *done (ascending; may be
 * NULL).  0, or -1 with err. */
int store_expunge(struct store_box *b, const uint32_t *uids, size_t n,
                  uint32_t **done, size_t *n_done, struct str *err);

/* COPY: each message among uids (in that order) is hard-linked (copied across file
 * systems) into dst's cur/ under a new unique name with the same flags and keywords
 * (by keyword name), and gets the next UID of dst.  src_uids and dst_uids (malloc'ed,
 * *n_done entries) pair them for COPYUID.  With move (MOVE), the sources are then
 * expunged.  dst may be b itself.  0, or -1 with err (nothing half done in dst is
 * left without a UID; a partial copy reports what it did). */
int store_copy(struct store_box *b, const uint32_t *uids, size_t n, struct store_box *dst,
               bool move, uint32_t **src_uids, uint32_t **dst_uids, size_t *n_done,
               struct str *err);

/* APPEND, streaming a literal: begin opens a file in tmp/, write adds bytes (more
 * than max_size in all fails with EFBIG; 0: no limit), commit fsyncs it, sets its
 * mtime to internaldate (0: now), renames it into cur/ with flags and keywords
 * (indexes, as store_keyword_index gives) and assigns the next UID (*uid, for
 * APPENDUID).  abort removes the file.  Each returns 0, or -1 with err; after a
 * failed write or commit the append is aborted. */
struct store_append;
int store_append_begin(struct store_box *b, uint64_t max_size, struct store_append **out,
                       struct str *err);
int store_append_write(struct store_append *a, const void *data, size_t len,
                       struct str *err);
int store_append_commit(struct store_append *a, unsigned flags, uint32_t keywords,
                        time_t internaldate, uint32_t *uid, struct str *err);
void store_append_abort(struct store_append *a);

#endif
