/* Maildrop files: what sendmail(1) leaves in QUEUE/maildrop/ for pickup(8).  The
 * format is postern-maildrop(5): records "T<len>:<len bytes>\n" as in queue files,
 * in this order: V (format version, first), U (the submitter's uid), L (its login
 * name), T (submission time), F (the sender asked for with -f or MAIL FROM; absent
 * when none was; empty for the null sender), A ("ret=FULL|HDRS", "envid=XTEXT"; each
 * at most once), per recipient an optional N (DSN notify) then R (address), then C
 * (content, '\n' line ends, any number) and last E (empty).
 *
 * The writer runs in sendmail; the reader in pickup, for which every file is hostile
 * (any local user may have crafted it): every length is bounded before it is used,
 * records come in their order, values are checked, the file ends exactly after E. */
#ifndef POSTERN_MAILDROP_H
#define POSTERN_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

struct str;

#define MAILDROP_VERSION "1"
#define MAILDROP_ENV_MAX 1024u      /* longest envelope record */
#define MAILDROP_CHUNK 65536u       /* longest C record */
#define MAILDROP_RCPT_MAX 10000u    /* most recipients in one file */
#define MAILDROP_LOGIN_MAX 64u
#define MAILDROP_ENVID_MAX 100u     /* RFC 3461 4.4, as xtext */
/* Names in maildrop/: a temporary name while sendmail writes, then a queue id. */
#define MAILDROP_TMP_PREFIX "t."

/* ---- writing (sendmail) ---- */
struct maildrop_writer;

/* Writes to fd (owned by the writer from now on), buffered. */
struct maildrop_writer *mdw_open(int fd);
/* Records in the order of the format; the writer checks the order. */
int mdw_header(struct maildrop_writer *w, uid_t uid, const char *login, time_t when);
int mdw_sender(struct maildrop_writer *w, const char *sender);
int mdw_attr(struct maildrop_writer *w, const char *name, const char *value);
int mdw_recipient(struct maildrop_writer *w, const char *addr, const char *notify);
int mdw_content(struct maildrop_writer *w, const void *data, size_t len);
size_t mdw_content_size(const struct maildrop_writer *w);
/* Writes E, flushes and fsyncs.  The descriptor is closed either way.  0 or -1. */
int mdw_finish(struct maildrop_writer *w);
void mdw_abort(struct maildrop_writer *w);   /* closes, frees; the caller unlinks */

/* ---- reading (pickup) ---- */
struct maildrop_rcpt {
    char *addr;
    char *notify;               /* NULL when absent */
};

struct maildrop_env {
    uid_t uid;
    char *login;
    time_t when;
    char *sender;               /* NULL when no sender was asked for */
    char *ret;                  /* NULL, "FULL" or "HDRS" */
    char *envid;                /* NULL or xtext */
    struct maildrop_rcpt *rcpt;
    size_t nrcpt;
};

struct maildrop_reader_ops {
    /* Called once, when the envelope is complete (before the first content chunk). */
    int (*envelope)(void *arg, const struct maildrop_env *env);
    /* Each content chunk in order. */
    int (*content)(void *arg, const char *data, size_t len);
};

/* Reads the file on fd from its start.  content_max bounds the total content (0: no
 * bound).  A non-zero return of a callback stops the read and is returned.  0 when
 * the whole file is read and valid; -1 with errno EINVAL (malformed: err says why),
 * EFBIG (content over content_max) or an I/O error.  env is filled as far as read;
 * free it with maildrop_env_free. */
int maildrop_read(int fd, size_t content_max, const struct maildrop_reader_ops *ops,
                  void *arg, struct maildrop_env *env, struct str *err);
void maildrop_env_free(struct maildrop_env *env);

/* A login name fit for a local part: 1..MAILDROP_LOGIN_MAX bytes of letters, digits
 * and . _ - (not first: . -). */
bool maildrop_login_valid(const char *s);

#endif
