/* imapd's state after login, shared by the files that serve its commands: the
 * selected folder, the client's view of it (the UIDs it knows, by sequence number),
 * and the command table entries. */
#ifndef IMAPD_SESSION_H
#define IMAPD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imapd.h"

struct store_box;
struct store_watch;
struct store_msg;

#define IMAP_MAILDIR "."            /* the session's working directory is the Maildir */
#define IMAP_FOLDER_MSGS_MAX 1000000    /* messages one folder may hold when opened */

struct imap_session {
    struct imap_conn c;
    bool logout;
    struct store_box *box;          /* the selected folder, or NULL */
    struct str box_name;
    bool readonly;                  /* EXAMINE */
    struct store_watch *watch;      /* inotify on the selected folder (may be NULL) */
    uint32_t *view;                 /* the UIDs the client knows, by sequence number */
    size_t nview, view_cap;
    uint32_t *exp_pending;          /* expunges seen during FETCH, STORE or SEARCH, */
    size_t n_exp_pending;           /* to be told at the next command that may */
};

#define IMAP_CMD_NOARGS   0x1       /* takes no arguments */
#define IMAP_CMD_SELECTED 0x2       /* only in the selected state */

struct imap_command {
    const char *name;
    void (*fn)(struct imap_session *s, struct imap_parser *ip);
    unsigned flags;                 /* IMAP_CMD_* */
};

/* ---- select.c: the selected state ---- */
/* The commands of select.c, mailbox.c, fetch.c, search.c, idle.c by name; NULL when
 * none is called so. */
const struct imap_command *imap_mailbox_command(const char *name);
/* Syncs the selected folder and tells the client what changed (EXPUNGE unless
 * expunges is false, EXISTS, RECENT, FETCH FLAGS).  Without a folder: nothing. */
void imap_report_changes(struct imap_session *s, bool expunges);
/* Closes the selected folder (without expunging). */
void imap_unselect(struct imap_session *s);
/* Writes " FLAGS (...)" items for message m. */
void imap_put_flags(struct imap_session *s, const struct store_msg *m);
/* A sequence set of the command into UIDs of the view (uid: a UID set): ascending,
 * malloc'ed, *n of them.  false with a BAD or NO already sent. */
bool imap_set_uids(struct imap_session *s, struct imap_parser *ip, bool uid, uint32_t **uids,
                   size_t *n);
/* The sequence number of uid in the client's view, or 0. */
size_t imap_view_seq(const struct imap_session *s, uint32_t uid);
/* A flag list "(\Seen kw ...)" (or, with bare, flags without parentheses, for STORE):
 * system flags and keyword indexes of box (created when create).  false with *why. */
bool imap_p_flags(struct store_box *box, struct imap_parser *ip, bool bare, bool create,
                  unsigned *flags, uint32_t *keywords, const char **why);

/* ---- mailbox.c: folder commands ---- */
extern const struct imap_command imap_mailbox_commands[];
extern const size_t imap_mailbox_ncommands;
/* A mailbox name argument: checked by the store's rules.  false with NO/BAD sent. */
bool imap_p_mailbox(struct imap_session *s, struct imap_parser *ip, struct str *name);
/* The folder's directory for name into path.  false with NO sent. */
bool imap_folder_path(struct imap_session *s, const char *name, struct str *path);

/* ---- fetch.c ---- */
void imap_cmd_fetch(struct imap_session *s, struct imap_parser *ip, bool uid);
/* Saves and drops the index cache FETCH keeps (fetch_cache.c), at the end of a
 * session. */
void imap_fetch_cache_done(struct imap_session *s);

/* ---- search.c ---- */
void imap_cmd_search(struct imap_session *s, struct imap_parser *ip, bool uid);

/* ---- compress.c ---- */
void imap_cmd_compress(struct imap_session *s, struct imap_parser *ip);

/* ---- idle.c ---- */
void imap_cmd_idle(struct imap_session *s, struct imap_parser *ip);

#endif
