/* A user's folders, Maildir++ as Dovecot lays them out.
 *
 * Names.  The hierarchy separator is "." on the wire and on disk (Dovecot's default
 * for Maildir++): the folder "Lists.postern" is the directory ".Lists.postern" in the
 * Maildir, and INBOX (any case) is the Maildir itself.  Names are modified UTF-7
 * (RFC 3501 5.1.3) both on the wire and on disk, exactly as Dovecot stores them, so
 * every function here takes and returns the wire form; mutf7.h converts for
 * UTF8=ACCEPT clients.  A name is refused (store_name_check) when it is empty,
 * longer than STORE_NAME_MAX, has an empty component (leading, trailing or doubled
 * "."), holds "/", a control character, an 8-bit byte, a wildcard ('*', '%'), or is
 * not valid modified UTF-7: nothing can name a path outside the Maildir.
 *
 * All functions take the Maildir's path and trust nothing below it: directories are
 * read with names checked by the same rules, symbolic links are not followed. */
#ifndef POSTERN_STORE_FOLDER_H
#define POSTERN_STORE_FOLDER_H

#include <stdbool.h>
#include <stddef.h>

struct str;

#define STORE_SEP '.'               /* hierarchy separator, wire and disk */
#define STORE_NAME_MAX 200          /* bytes of a folder name (wire form) */

/* Attributes of a listed folder (RFC 3501, 3348 CHILDREN, 5258, 6154). */
#define STORE_LIST_NOSELECT      0x001  /* \Noselect: a parent with no directory */
#define STORE_LIST_HASCHILDREN   0x002
#define STORE_LIST_HASNOCHILDREN 0x004
#define STORE_LIST_SUBSCRIBED    0x008
#define STORE_LIST_NONEXISTENT   0x010  /* subscribed but missing (LIST-EXTENDED) */
#define STORE_LIST_DRAFTS        0x100  /* special use (RFC 6154) */
#define STORE_LIST_SENT          0x200
#define STORE_LIST_TRASH         0x400
#define STORE_LIST_JUNK          0x800
#define STORE_LIST_ARCHIVE       0x1000
#define STORE_LIST_SPECIAL_MASK  0x1f00

/* 0 when name is an acceptable folder name (INBOX included), else -1 with a reason
 * in err (for the client's NO). */
int store_name_check(const char *name, struct str *err);
/* True when name is INBOX in any case. */
bool store_name_is_inbox(const char *name);
/* The folder's directory into path: maildir itself for INBOX, maildir/.NAME else.
 * 0, or -1 with err when the name is refused. */
int store_folder_path(const char *maildir, const char *name, struct str *path,
                      struct str *err);

/* IMAP LIST matching (RFC 3501 6.3.8): '*' matches anything, '%' anything but the
 * separator; "INBOX" matches case-insensitively at the start of name.  Iterative
 * with a bounded number of steps, safe on hostile patterns. */
bool store_wildmatch(const char *pattern, const char *name);

/* Creates the folder with tmp/, new/, cur/ and an empty "maildirfolder" file.
 * Parents need not exist (Maildir++ has none).  0; 1 when it already existed;
 * -1 with err (refused name, INBOX, I/O error). */
int store_folder_create(const char *maildir, const char *name, struct str *err);
/* Removes the folder's directory and everything in it.  INBOX is refused; a folder
 * with children is removed (the children stay, the parent lists as \Noselect), as
 * Dovecot does.  0, or -1 with err (ENOENT in errno when missing). */
int store_folder_delete(const char *maildir, const char *name, struct str *err);
/* Renames the folder and all its children (from.X becomes to.X).  Renaming INBOX
 * creates `to` and moves INBOX's messages into it, leaving INBOX empty (RFC 3501
 * 6.3.5); its UID list is not carried over (the new folder gets a fresh
 * UIDVALIDITY).  -1 with err when to (or a child's new name) exists, from is missing,
 * or a name is refused.  Subscriptions are renamed with the folders. */
int store_folder_rename(const char *maildir, const char *from, const char *to,
                        struct str *err);

/* One folder of a listing. */
struct store_list_entry {
    char *name;                     /* wire form */
    unsigned attrs;                 /* STORE_LIST_* */
};

struct store_list {
    struct store_list_entry *v;
    size_t n, cap;
};

void store_list_free(struct store_list *l);
/* Lists the folders whose name matches pattern (store_wildmatch; the caller joins
 * LIST's reference and pattern), INBOX first, then sorted by name.  Parents without
 * a directory that have a matching child show as \Noselect (with '%' as RFC 3501
 * asks).  With subscribed_only, only subscribed names (LSUB, LIST (SUBSCRIBED)), with
 * \NonExistent for those without a directory.  Attributes: \HasChildren or
 * \HasNoChildren, \Subscribed, special use.  At most max entries (0: 100000).
 * 0, or -1 with err. */
int store_folder_list(const char *maildir, const char *pattern, bool subscribed_only,
                      size_t max, struct store_list *out, struct str *err);

/* The special-use attribute of a folder (STORE_LIST_DRAFTS ... or 0): from the
 * folder's "postern-special-use" file when present (written by CREATE-SPECIAL-USE),
 * else from its name (Drafts, Sent, Trash, Junk, Archive, as created for new
 * users). */
unsigned store_special_use(const char *maildir, const char *name);
/* Records a special use for an existing folder (CREATE (USE (\Sent))).  use is one
 * STORE_LIST_* special-use bit.  0, or -1 with err. */
int store_special_use_set(const char *maildir, const char *name, unsigned use,
                          struct str *err);
/* The attribute's IMAP spelling ("\\Drafts"), or NULL. */
const char *store_special_use_name(unsigned use);

/* For a new user: creates the Maildir when missing, then Drafts, Sent, Trash, Junk
 * and Archive, all subscribed.  Existing folders are left alone.  0, or -1 with err. */
int store_folders_init(const char *maildir, struct str *err);

/* Subscriptions, in Dovecot's "subscriptions" file in the Maildir (format version 2:
 * a "V\t2\n\n" header, then one name a line with the hierarchy separator written as
 * TAB).  The version 1 form (plain names with ".") is read too.  Names that fail
 * store_name_check are skipped when read.  The file is replaced atomically. */
int store_subs_read(const char *maildir, char ***names, struct str *err);  /* strv */
bool store_subs_has(char *const *names, const char *name);
/* Adds (on) or removes one name; 0, or -1 with err.  Subscribing to a missing
 * folder is allowed (RFC 3501 6.3.6). */
int store_subscribe(const char *maildir, const char *name, bool on, struct str *err);

#endif
