/* smtpd content checks (checks.c): header_checks, mime_header_checks and body_checks
 * (Postfix's names and actions) run over the whole message at the end of DATA/BDAT,
 * through the MIME walk of lib/mail/mime.h, before anything is committed. */
#ifndef POSTERN_SMTPD_CHECKS_H
#define POSTERN_SMTPD_CHECKS_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

struct smtpd_session;
struct conf;

#include "conf.h"

struct maplist;

/* The tables a setting names (none when it is empty), opened and pinned before the
 * chroot; one that cannot be opened is fatal, naming the setting. */
struct maplist *smtpd_maps_open(const struct conf *c, enum conf_key k);
/* Opens the tables (before chroot); a table that cannot be opened is fatal. */
void smtpd_checks_setup(const struct conf *c);
/* true when some table is set: the content is then kept in memory until its end. */
bool smtpd_checks_enabled(void);
/* The most content kept for the checks (bytes). */
size_t smtpd_checks_max(long long message_size_limit);
/* Runs the checks over the message buf[0..len) and appends it, with the header and
 * body edits (IGNORE, REPLACE, PREPEND), to out.  Sets the transaction's hold, discard,
 * redirect or filter.  0 to
 * go on with the commit; 1 after a REJECT (code, dsn and text set, already logged). */
int smtpd_checks_run(struct smtpd_session *s, const char *buf, size_t len, int *code,
                     const char **dsn, char *text, size_t text_size, struct str *out);

/* The checks' REDIRECT (every recipient replaced) and FILTER (the message's
 * content_filter) applied to the queue file before its content: 0, or -1 after a
 * temporary failure reply. */
int smtpd_checks_envelope(struct smtpd_session *s, const char *cmd);

#endif
