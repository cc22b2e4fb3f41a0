/* pickup(8) internals shared by its files: pickup.c (the maildrop scan and the queue
 * file) and pickup_milter.c (non_smtpd_milters). */
#ifndef POSTERN_PICKUP_H
#define POSTERN_PICKUP_H

#include "str.h"

struct conf;
struct queue_writer;
struct resolve_clnt;
struct pickup_milters;

enum pickup_milter_verdict {
    PICKUP_MILTER_TAKE,         /* commit (to "incoming", or "hold" for a quarantine) */
    PICKUP_MILTER_DISCARD,      /* taken from maildrop/ and thrown away (logged) */
    PICKUP_MILTER_REJECT,       /* queued to bounce: why holds "D.D.D text" */
    PICKUP_MILTER_TEMPFAIL,     /* the file stays in maildrop/ for a later scan */
};

/* Reads non_smtpd_milters and the milter_* keys: NULL when there are none; a bad
 * filter name is fatal (postern check reports it first). */
struct pickup_milters *pickup_milter_setup(const struct conf *c);
void pickup_milter_free(struct pickup_milters *pm);

/* Runs the message (msg: our Received: field and the content, '\n' line ends) of
 * the queue file qw (envelope written, no content yet) through the filters, as
 * mail from localhost [127.0.0.1] over ESMTP, the way Postfix's cleanup presents
 * mail that did not come through smtpd.  Their changes are applied to msg and to the
 * envelope in qw.  *to: the directory to commit into.  Logged under id. */
enum pickup_milter_verdict pickup_milter_run(struct pickup_milters *pm,
                                             struct queue_writer *qw,
                                             struct resolve_clnt *rc, const char *id,
                                             struct str *msg, const char **to,
                                             struct str *why);

#endif
