/* sendmail(1), mailq(1), newaliases(1): the parts of the one program.  It runs with
 * the invoking user's rights, plus (installed setgid setgid_group) the group that may
 * write into maildrop/ and reach public/; that group is used only around those two
 * steps.  Nothing it reads (command line, message, environment) is trusted by
 * pickup(8), which checks the maildrop file again. */
#ifndef POSTERN_SENDMAIL_H
#define POSTERN_SENDMAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "str.h"

struct conf;

#include <sysexits.h>

struct sm {
    struct conf *conf;
    const char *config_dir;
    const char *qdir;           /* queue_directory */
    const char *myorigin;
    const char *myhostname;
    long long size_limit;       /* message_size_limit, 0: none */
    uid_t uid;                  /* getuid() */
    char *login;                /* its name */
    char *gecos;                /* its full name from the password file, or NULL */
    gid_t user_gid;             /* getgid() */
    gid_t drop_gid;             /* getegid() at start: setgid_group when installed so */
    bool verbose;
};

/* What one message is sent with. */
struct sm_envelope {
    const char *sender;         /* -f / MAIL FROM (internal form); NULL: none given */
    const char *fullname;       /* -F */
    const char *ret;            /* FULL, HDRS or NULL */
    const char *envid;          /* xtext, or NULL */
    const char *dsn_notify;     /* -N: for recipients without their own, or NULL */
    char **rcpt;                /* internal forms */
    char **notify;              /* per recipient, NULL entries when none */
    size_t nrcpt, cap;
};

void env_add_rcpt(struct sm_envelope *e, const char *addr, const char *notify);
void env_free_rcpts(struct sm_envelope *e);

/* How the message ends on the input. */
enum sm_input {
    SM_INPUT_EOF,               /* -i: only at end of file */
    SM_INPUT_DOT,               /* a line holding only "." ends it (or end of file) */
    SM_INPUT_SMTP,              /* dot-stuffed, "." ends it, end of file is an error */
};

/* Reads one message from in, adds what it lacks (Date, Message-ID, From), removes
 * Bcc, takes recipients from To/Cc/Bcc when extract, and leaves it in maildrop/.
 * Returns a sysexits code; on EX_OK the maildrop name is in id (QUEUE_ID_SIZE).
 * why holds a message for the user otherwise. */
int sm_message(struct sm *sm, FILE *in, enum sm_input mode, bool extract,
               struct sm_envelope *env, char *id, struct str *why);

/* Parses an address as typed (bare names get @myorigin) into the internal form.
 * allow_null: "<>" and "" mean the null sender.  0 or -1 with why. */
int sm_addr(const struct sm *sm, const char *text, bool allow_null, struct str *out,
            struct str *why);
/* Splits an RFC 5322 address list (a To: value, a command-line argument) and adds
 * each address to env.  0, or -1 with why naming the bad address. */
int sm_addr_list(const struct sm *sm, const char *value, struct sm_envelope *env,
                 struct str *why);

/* The maildrop file: written under a temporary name, fsynced, renamed to a queue id
 * in maildrop/, made durable.  drop_* return -1 with why. */
struct sm_drop;
struct sm_drop *drop_open(struct sm *sm, struct str *why);
struct maildrop_writer *drop_writer(struct sm_drop *d);
int drop_commit(struct sm *sm, struct sm_drop *d, char *id, struct str *why);
void drop_abort(struct sm *sm, struct sm_drop *d);
/* Tells pickup to look at maildrop/ (req scan) or to have the queue flushed (req
 * flush).  0 or -1 (errno); pickup also scans on a timer, so a failed scan notice
 * costs only time. */
int drop_notify(struct sm *sm, const char *req);

/* The setgid group around a step: on, off.  No-ops when not installed setgid. */
void sm_priv_on(const struct sm *sm);
void sm_priv_off(const struct sm *sm);

/* -bs: an SMTP session on stdin/stdout.  Returns a sysexits code. */
int sm_smtp(struct sm *sm);

/* RFC 5322 date of now, for Date: and Received:. */

#endif
