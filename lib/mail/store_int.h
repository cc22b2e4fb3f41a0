/* Internals shared by the store_*.c files (see store.h): the UID list as read from
 * and written to postern-uidlist, the lock, and the handle. */
#ifndef POSTERN_STORE_INT_H
#define POSTERN_STORE_INT_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "store.h"

struct str;

#define UIDLIST_FILE  "postern-uidlist"
#define UIDLIST_LOCK  "postern-uidlist.lock"
#define KEYWORDS_FILE "dovecot-keywords"
#define UIDLIST_MAX   (256u << 20)      /* largest list read */

struct uidlist_rec {
    uint32_t uid;
    uint8_t flags;
    uint16_t blen;                      /* strlen(base) */
    uint32_t keywords;
    uint64_t modseq;
    char *base;                         /* base name, without ":2,FLAGS" (in names) */
    char *file;                         /* the name in cur/ when not canonical, or NULL */
};

/* Expunged UIDs lo..hi, none of them present any more, the last of them at modseq:
 * the expunges of one operation share a record when nothing present lies between. */
struct uidlist_exp {
    uint32_t lo, hi;
    uint64_t modseq;
};

/* The base names of a list, in blocks freed together with it. */
struct uidlist_names {
    struct uidlist_names *next;
    size_t len, cap;
    char s[];
};

struct uidlist {
    uint32_t uidvalidity;
    uint32_t nextuid;
    uint64_t highestmodseq;
    uint64_t exp_floor;                 /* expunges at or below it are forgotten */
    struct uidlist_rec *v;              /* ascending by uid */
    size_t n, cap;
    struct uidlist_exp *exp;            /* ascending by modseq, STORE_EXPUNGED_KEEP at most */
    size_t nexp, capexp;
    struct uidlist_names *names;        /* what the records' base names point into */
};

void uidlist_free(struct uidlist *ul);
/* Parses text strictly; -1 (with err) when anything is out of place. */
int uidlist_parse(const char *text, size_t len, struct uidlist *ul, struct str *err);
void uidlist_format(const struct uidlist *ul, struct str *out);
/* Reads dirfd's list: 1 when read, 0 when missing, -1 (err) when corrupt (to be
 * rebuilt), -2 (err) on an I/O error (the sync fails, nothing is rebuilt). */
int uidlist_read(int dirfd, struct uidlist *ul, struct str *err);
/* Replaces the list durably (tmp, fsync, rename, fsync of the directory). */
int uidlist_write(int dirfd, const char *dir, const struct uidlist *ul, struct str *err);
/* Adds a record (base copied, blen bytes, into the list's names). */
struct uidlist_rec *uidlist_add(struct uidlist *ul, uint32_t uid, const char *base, size_t blen,
                                uint8_t flags, uint32_t keywords, uint64_t modseq);
/* Records uid expunged at modseq; join: no UID present lies between the last one
 * recorded and uid, which then share a record when their modseqs follow.  The
 * oldest records beyond STORE_EXPUNGED_KEEP are forgotten (exp_floor rises). */
void uidlist_expunged(struct uidlist *ul, uint32_t uid, uint64_t modseq, bool join);

/* The lock: fd of the held lock file, or -1 with err (ETIMEDOUT after
 * STORE_LOCK_WAIT_MS). */
int store_lock(int dirfd, struct str *err);
void store_unlock(int fd);

/* A file name's parts: base length, flags and keywords from ":2,...". */
size_t store_name_base(const char *name, uint8_t *flags, uint32_t *keywords);
/* "BASE:2,FLAGS" into out. */
void store_name_make(struct str *out, const char *base, size_t blen, uint8_t flags,
                     uint32_t keywords);
/* The name of rec's file in cur/ into out. */
void store_rec_file(const struct uidlist_rec *rec, struct str *out);
/* The length of that name; the name itself, with a NUL, at p (room for the length
 * and the NUL).  Returns the length. */
size_t store_rec_file_len(const struct uidlist_rec *rec);
size_t store_rec_file_put(const struct uidlist_rec *rec, char *p);
/* A new unique base name (without sizes) into out. */
void store_unique_name(struct str *out);
/* True when name is acceptable as a message file or base name. */
bool store_base_ok(const char *s, size_t len);

/* One folder's state, held once per process however many handles are open on it
 * (the connections of one user on the same folder): the descriptors, the UID list,
 * the view built from it, the keyword names and the stamps of the quick check.
 * Found again by the folder directory's device and inode (which the open directory
 * keeps from being given to another while the state lives). */
struct store_state {
    char *dir;
    dev_t dev;
    ino_t ino;
    int dirfd, curfd, newfd, tmpfd;
    struct uidlist ul;
    struct store_msg *msgs;             /* the view, ascending uid */
    uint32_t *uids;                     /* its UIDs alone, for walks and searches */
    size_t n, cap;
    char *files;                        /* what the view's file names point into */
    char *kw[STORE_KEYWORDS_MAX];
    struct timespec seen_new, seen_cur, seen_list;      /* change times, for the quick check */
    ino_t seen_list_ino;
    bool stamps_trusted;                /* the directory stamps were old when taken */
    long long verify_at;                /* clock_ms(): cur/ as our own changes left it is
                                         * believed until then (store_stamp_own) */
    bool synced;
    struct store_box **boxes;           /* the handles open on it */
    size_t nboxes;
    unsigned long last_used;            /* when its last handle went (store_open.c) */
    struct store_state *next;           /* the process's list of open folders */
};

/* A handle: what is one caller's own on a shared folder state. */
struct store_box {
    struct store_state *sh;
    unsigned flags;                     /* STORE_RDONLY */
    size_t max_msgs;
    struct store_changes pending;       /* changes not yet reported to this handle */
    uint32_t *recent;                   /* UIDs that are \Recent for this handle, */
    size_t nrecent;                     /* ascending */
};

/* The folders kept with no handle on them (store.h), and their messages in *msgs. */
size_t store_kept(size_t *msgs);
/* Forgets the kept folders: the next open of each starts as in a new process. */
void store_drop_kept(void);

/* err becomes "what name: strerror(errno)"; returns -1 with errno kept. */
int store_sys_fail(struct str *err, const char *what, const char *name);
/* A stream over the directory fd names, from its first entry (fd stays open); NULL
 * with errno. */
DIR *store_dir_stream(int fd);

/* Under the lock: reads the list, scans the directories, updates the list (written
 * when changed) and the view; changes found go to the pending changes of every
 * handle on the folder; new UIDs this sync gave are \Recent for b.  0, or -1 with
 * err. */
int store_sync_locked(struct store_box *b, struct str *err);
/* store_sync_locked, unless the quick check shows nothing changed. */
int store_sync_changed(struct store_box *b, struct str *err);
/* Records the stamps of new/ and cur/ (before a scan) and of the list (after it
 * was written, under the lock), for store_sync's quick check. */
void store_stamp_dirs(struct store_box *b);
/* Waits (up to STAMP_WAIT_MAX_NS) until stamps of new/ and cur/ as they are now can
 * be trusted: a scan of a folder of STAMP_WAIT_MSGS or more that moved files does,
 * since reading such a folder again costs more than the wait. */
#define STAMP_WAIT_MSGS    8192
#define STAMP_WAIT_MAX_NS  50000000LL   /* 50 ms */
#define STORE_MOVE_ROUNDS  3            /* readings of new/ in one scan */
void store_stamp_wait(struct store_box *b);
void store_stamp_list(struct store_box *b);
/* After the folder's own renames, unlinks or links in cur/ under the lock (STORE,
 * EXPUNGE, APPEND, COPY), with the list committed: when the quick check held just
 * before them and none of them found a file gone (clean), cur/'s new time is taken
 * as what they left, so the next command reads no directory; until STORE_VERIFY_MS
 * after the first such change, when a full scan (after waiting out the stamps'
 * margin) makes sure no other program changed cur/ in the meantime.  Otherwise the
 * next sync scans, as for any change. */
#define STORE_VERIFY_MS 1000
void store_stamp_own(struct store_box *b, bool clean);
/* The quick check: true when neither directory nor the list changed since the
 * last scan (or the folder's own changes, store_stamp_own). */
bool store_unchanged(struct store_box *b);
/* The stamp file (store_stamp.c): true when it says the list matches the
 * directories as store_stamp_dirs just saw them; written after a scan that left
 * them matching. */
bool store_stamp_valid(const struct store_box *b);
/* Full scans of the directories this process made (for tests and the bench). */
extern unsigned long store_scans;
void store_stamp_save(const struct store_box *b);
/* Writes the list, then rebuilds the view from it; the changes go to the other
 * handles on the folder (b knows its own). */
int store_commit(struct store_box *b, struct str *err);
/* Reads dovecot-keywords into the folder's names (a change is news to every
 * handle); writes it from them. */
int store_keywords_read(struct store_box *b);
int store_keywords_write(struct store_box *b, struct str *err);
void store_changes_add(uint32_t **v, size_t *n, uint32_t uid);
/* Tells the handles on sh but except that keyword names changed, or that the
 * UIDVALIDITY did. */
void store_pending_flag(struct store_state *sh, const struct store_box *except,
                        bool keywords, bool uidvalidity);
/* uid becomes \Recent for b (unless read-only); UIDs come in ascending order. */
void store_recent_add(struct store_box *b, uint32_t uid);

#endif
