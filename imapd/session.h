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
    unsigned enabled;               /* IMAP_EN_*: what ENABLE turned on */
    uint32_t *saved;                /* SEARCHRES "$": the UIDs SEARCH RETURN (SAVE) */
    size_t nsaved;                  /* kept, ascending; emptied by SELECT (RFC 5182) */
    bool idling;                    /* in IDLE (idle.c): only DONE is read */
    long long idle_end;             /* clock_ms() when IDLE times out */
    char *own_user, *own_client;    /* what c.user and c.client point at */
};

/* ENABLE (RFC 5161): one bit an extension that changes what the server says. */
#define IMAP_EN_UTF8      0x1       /* UTF8=ACCEPT (RFC 6855): UTF-8 folder names */
#define IMAP_EN_REV2      0x2       /* IMAP4rev2 (RFC 9051) */
#define IMAP_EN_CONDSTORE 0x4       /* RFC 7162 3.1: by ENABLE or an enabling command */
#define IMAP_EN_QRESYNC   0x8       /* RFC 7162 3.2: by ENABLE only; implies CONDSTORE */
/* Folder names go on the wire as UTF-8 (UTF8=ACCEPT, or IMAP4rev2). */
#define IMAP_UTF8_NAMES(s) (((s)->enabled & (IMAP_EN_UTF8 | IMAP_EN_REV2)) != 0)
#define IMAP_REV2(s)      (((s)->enabled & IMAP_EN_REV2) != 0)

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
 * malloc'ed, *n of them; "$" (SEARCHRES) is the saved result, in either form.  false
 * with a BAD or NO already sent. */
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
/* Writes a folder name (the store's modified UTF-7) as the client reads names: as
 * it is, or as a UTF-8 quoted string after ENABLE UTF8=ACCEPT or IMAP4rev2. */
void imap_put_mailbox(struct imap_session *s, const char *name);
/* A store error as NO: [NONEXISTENT], [ALREADYEXISTS] or [CANNOT] by errno e. */
void imap_folder_no(struct imap_session *s, const char *what, const struct str *err, int e);

/* ---- list.c: LIST (RFC 3501, 5258 LIST-EXTENDED, 5819 LIST-STATUS) and LSUB ---- */
void imap_cmd_list(struct imap_session *s, struct imap_parser *ip);
void imap_cmd_lsub(struct imap_session *s, struct imap_parser *ip);
/* "* LIST (attributes) "." name" for one folder (IMAP4rev2's SELECT). */
void imap_list_one(struct imap_session *s, const char *name);

/* ---- status.c: STATUS (RFC 3501, 8438 SIZE, 9051 DELETED, 7889 APPENDLIMIT) ---- */
void imap_cmd_status(struct imap_session *s, struct imap_parser *ip);
/* Parses "(" item *(SP item) ")" into a STATUS item mask (RECENT refused when rev2:
 * RFC 9051 has none).  false with *why. */
bool imap_p_status_items(struct imap_parser *ip, bool rev2, unsigned *want,
                         const char **why);
/* Writes "* STATUS name (...)" for the folder; 0, or -1 with errno and err (nothing
 * written). */
int imap_status_put(struct imap_session *s, const char *name, unsigned want,
                    struct str *err);

/* ---- searchres: the saved result of SEARCH RETURN (SAVE) (RFC 5182) ---- */
/* Forgets the saved result (SELECT, EXAMINE, CLOSE, UNSELECT). */
void imap_saved_clear(struct imap_session *s);

/* ---- fetch.c ---- */
void imap_cmd_fetch(struct imap_session *s, struct imap_parser *ip, bool uid);
/* Saves and drops the index cache FETCH keeps (fetch_cache.c), at the end of a
 * session. */
void imap_fetch_cache_done(struct imap_session *s);

/* ---- search.c: SEARCH, ESEARCH (RFC 4731) and SEARCHRES (RFC 5182) ---- */
void imap_cmd_search(struct imap_session *s, struct imap_parser *ip, bool uid);

/* ---- condstore.c: RFC 7162 CONDSTORE and QRESYNC ---- */
#define IMAP_MODSEQ_MAX 9223372036854775807ULL  /* mod-sequence-value: 63 bits */

/* ENABLE of one capability name: true when it is CONDSTORE or QRESYNC and was not
 * enabled before (it then goes in the untagged ENABLED). */
bool imap_ext_enable(struct imap_session *s, const char *name);
/* A CONDSTORE enabling command (RFC 7162 3.1): the first one while a folder is
 * selected says the folder's HIGHESTMODSEQ. */
void imap_condstore_on(struct imap_session *s);
/* A mod-sequence-value (1..2^63-1), or with zero_ok a mod-sequence-valzer. */
bool imap_p_modseq(struct imap_parser *ip, bool zero_ok, uint64_t *out);
/* STORE's "(UNCHANGEDSINCE n)" when the cursor is on '(': *set tells whether it was
 * there.  false with BAD sent. */
bool imap_p_store_mods(struct imap_session *s, struct imap_parser *ip, bool *set,
                       uint64_t *unchangedsince);
/* FETCH's modifiers " (CHANGEDSINCE n [VANISHED])" when present.  false with BAD sent. */
bool imap_p_fetch_mods(struct imap_session *s, struct imap_parser *ip, bool uid,
                       uint64_t *changedsince, bool *vanished);
/* SEARCH's "MODSEQ [entry-name entry-type] n" after the key name.  false on a
 * syntax error. */
bool imap_p_search_modseq(struct imap_parser *ip, uint64_t *out);
/* UID FETCH ... (CHANGEDSINCE n VANISHED): "* VANISHED (EARLIER) ..." for the UIDs of
 * the set at *at_set (read again) that went since n. */
void imap_fetch_vanished(struct imap_session *s, const struct imap_parser *at_set,
                         uint64_t since);
/* The UIDs vanished since a mod-sequence among the known ones (NULL: all; else
 * normalized), as "* VANISHED (EARLIER) ...": exact while the store remembers
 * expunges that old, else every known UID above floor and below UIDNEXT that is
 * not present. */
void imap_put_vanished_since(struct imap_session *s, const struct imap_seqset *known,
                             uint64_t since, uint32_t floor);
/* "* VANISHED set" (or EARLIER) of uids, ascending; nothing when n is 0. */
void imap_put_vanished(struct imap_session *s, bool earlier, const uint32_t *uids, size_t n);
/* A UID set as "1:3,7" into out, uids ascending. */
void imap_uid_set_str(struct str *out, const uint32_t *uids, size_t n);

/* ---- qresync.c: SELECT and EXAMINE parameters (RFC 7162 3.1.8, 3.2.5) ---- */
struct imap_select_params {
    bool condstore;                 /* (CONDSTORE) */
    bool qresync;                   /* (QRESYNC (...)) */
    uint32_t uidvalidity;
    uint64_t modseq;
    struct imap_seqset known;       /* known-uids (n == 0: none given) */
    struct imap_seqset seqs, uids;  /* seq-match-data (n == 0: none given) */
};

/* " (param ...)" after the mailbox name, when there.  false with BAD sent. */
bool imap_p_select_params(struct imap_session *s, struct imap_parser *ip,
                          struct imap_select_params *p);
void imap_select_params_free(struct imap_select_params *p);
/* After a SELECT with QRESYNC whose UIDVALIDITY matches: VANISHED (EARLIER) and
 * FETCH (UID FLAGS MODSEQ) for what changed since the client's mod-sequence. */
void imap_qresync_report(struct imap_session *s, struct imap_select_params *p);

/* ---- compress.c ---- */
void imap_cmd_compress(struct imap_session *s, struct imap_parser *ip);

/* ---- session.c ---- */
/* A session for h's client (its stream made; h->fd taken) logged in as who. */
struct imap_session *imap_session_start(struct login_handoff *h, const struct auth_result *who);
/* Runs one command read in full (literals inline). */
void imap_session_command(struct imap_session *s, const struct str *cmd);
/* Logs the end (how: "timeout", "disconnected"... unless it was a LOGOUT), closes
 * the folder, writes what the client takes now of the last replies, frees s. */
void imap_session_end(struct imap_session *s, const char *how);

/* ---- idle.c: IDLE as a state of the connection (mux_read.c reads for it) ---- */
/* Starts IDLE: the changes so far, "+ idling", then s->idling until DONE. */
void imap_cmd_idle(struct imap_session *s, struct imap_parser *ip);
/* A line the client sent while idling (its end included): DONE ends IDLE with OK,
 * anything else with BAD. */
void imap_idle_input(struct imap_session *s, const struct str *line);
/* The folder may have changed: tells an idling client at once. */
void imap_idle_wake(struct imap_session *s);

/* ---- mux.c: the session process's loop ---- */
void imap_mux(int ctl, struct login_handoff *h, const struct auth_result *who);

#endif
