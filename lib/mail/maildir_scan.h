/* Reading a Maildir for POP3 and IMAP: a snapshot of its messages in delivery order,
 * each with its size as sent to a client (CRLF line ends) and a stable unique id.
 *
 * The list is compact: one small fixed-size entry per message plus the names packed
 * in one buffer, so 10,000 messages cost well under a megabyte and no file is read
 * when names carry their sizes.  Sizes come from the name: ",W=" (the size with CRLF
 * line ends, Dovecot's "virtual size") when present; otherwise the file is read once
 * and its bare LFs counted.  ",S=" (the size on disk) is kept for callers that want it.
 *
 * The unique id is the base name (the part before ':'), which neither a flag change
 * nor the move from new/ to cur/ alters; when it is longer than 70 characters or holds
 * anything outside '!'..'~', it is replaced by a SHA-256 digest in hex (64 characters),
 * so it always fits POP3's UIDL rules (RFC 1939). */
#ifndef POSTERN_MAILDIR_SCAN_H
#define POSTERN_MAILDIR_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct str;

#define MAILDIR_UID_MAX 70          /* longest unique id, without the NUL */

#define MAILDIR_MSG_DELETED 0x1     /* for the caller: marked for deletion */
#define MAILDIR_MSG_SEEN    0x2     /* for the caller: sent in full once */

struct maildir_msg {
    uint64_t size;          /* octets with CRLF line ends */
    uint64_t disk_size;     /* octets in the file (",S=" or stat) */
    uint32_t name;          /* offset in names of "cur/NAME" or "new/NAME" */
    uint32_t flags;         /* MAILDIR_MSG_*, free for the caller */
};

struct maildir_list {
    char *dir;              /* the Maildir, as given */
    struct maildir_msg *v;
    size_t n, cap;
    char *names;            /* NUL-terminated relative paths, packed */
    size_t names_len, names_cap;
    uint64_t total;         /* sum of v[].size */
};

#define MAILDIR_SCAN_MOVE_NEW 0x1   /* rename new/NAME to cur/NAME:2, while scanning */

void maildir_list_init(struct maildir_list *ml);
void maildir_list_free(struct maildir_list *ml);

/* Lists dir/new and dir/cur (names starting with '.' are skipped), sorted by the
 * delivery time at the start of each name, then by name.  At most max_msgs messages
 * (0: no limit; more is an error, EFBIG).  0, or -1 with err and errno. */
int maildir_scan(const char *dir, unsigned flags, size_t max_msgs, struct maildir_list *ml,
                 struct str *err);

/* "cur/NAME" of message i (0-based). */
const char *maildir_msg_path(const struct maildir_list *ml, size_t i);
/* The unique id of message i into buf (MAILDIR_UID_MAX + 1 bytes). */
void maildir_msg_uid(const struct maildir_list *ml, size_t i, char *buf);

/* The sizes a message name announces: ",S=" and ",W=" in the base name; false when
 * absent or malformed. */
bool maildir_name_size(const char *name, char key, uint64_t *out);
/* The same for a base name of len bytes (no directory, no ":2,..."). */
bool maildir_base_size(const char *base, size_t len, char key, uint64_t *out);

/* The CRLF size of an open file: its length plus one for each LF not preceded by CR.
 * 0, or -1 (errno). */
int maildir_crlf_size(int fd, uint64_t *size, uint64_t *disk_size);

#endif
