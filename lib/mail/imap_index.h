/* The IMAP index cache of one folder: for each message, what parsing it yields and
 * FETCH of RFC822.SIZE, ENVELOPE, BODY and BODYSTRUCTURE answers with, so that a
 * warm folder answers those without opening a message file.  One file a folder,
 * "postern-imap-index" next to postern-uidlist; its format is in
 * postern-imap-index(5).
 *
 * An entry is keyed by UID and by the message file's base name (the part before
 * ":2,"), which Maildir never gives to another file: an entry whose file was
 * replaced, or a file that got a new UID, is not used.  The file is a cache: missing,
 * unreadable, truncated, corrupt (its checksum), of another UIDVALIDITY or over the
 * size bound, it is ignored and rebuilt on demand, never an error for the client.
 * It is replaced whole (a temporary file renamed over it), so a reader sees the old
 * or the new one. */
#ifndef POSTERN_IMAP_INDEX_H
#define POSTERN_IMAP_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct str;

#define IMAP_INDEX_FILE "postern-imap-index"
#define IMAP_INDEX_FIELD_MAX (256u * 1024)  /* one cached string; larger: not cached */

struct imap_index_entry {
    uint32_t uid;
    uint64_t size;                  /* RFC822.SIZE */
    const char *base;               /* NUL-terminated, as every string here */
    const char *envelope, *body, *bodystructure;    /* the IMAP forms */
    size_t envelope_len, body_len, bodystructure_len;
};

struct imap_index;

/* Loads dir/postern-imap-index for a folder of uidvalidity.  max_bytes bounds the
 * file (read and written).  Never fails: a file that cannot be used gives an empty
 * index, and *why (when not NULL) says why ("" when it was fine or absent). */
struct imap_index *imap_index_open(const char *dir, uint32_t uidvalidity, size_t max_bytes,
                                   struct str *why);
void imap_index_close(struct imap_index *ix);
const char *imap_index_dir(const struct imap_index *ix);
uint32_t imap_index_uidvalidity(const struct imap_index *ix);
size_t imap_index_count(const struct imap_index *ix);

/* The entry of uid when its base name is base (base_len bytes), else NULL.  Valid
 * until the next put or close. */
const struct imap_index_entry *imap_index_get(const struct imap_index *ix, uint32_t uid,
                                              const char *base, size_t base_len);
/* Adds or replaces uid's entry.  false (nothing stored) when a string is over
 * IMAP_INDEX_FIELD_MAX or the base name is not a plain file name. */
bool imap_index_put(struct imap_index *ix, const struct imap_index_entry *e);

/* Writes the index when a put changed it since it was read or last saved, keeping
 * only entries for which keep(arg, uid, base) is true (NULL: all), at most
 * max_bytes of them.  0, or -1 with err (the old file stays). */
int imap_index_save(struct imap_index *ix, bool (*keep)(void *arg, uint32_t uid,
                                                        const char *base), void *arg,
                    struct str *err);

/* The base name of a Maildir file name "cur/BASE:2,FLAGS" (or "new/BASE"). */
void imap_index_base(const char *file, const char **base, size_t *len);

#endif
