/* Non-delivery notices: a new queue file, from the null sender to the original
 * sender, holding an RFC 3464 multipart/report (a human part, a
 * message/delivery-status part, the original headers).  A bounce is never sent for
 * a message whose sender is the null sender. */
#ifndef POSTERN_BOUNCE_H
#define POSTERN_BOUNCE_H

#include <stddef.h>
#include <time.h>

#include "queue.h"

struct conf;
struct str;

struct bounce_rcpt {
    const char *addr;       /* final recipient */
    const char *orcpt;      /* original recipient (ORCPT), or NULL */
    const char *dsn;        /* "5.1.1" */
    const char *text;       /* diagnostic text */
};

/* Writes the notice about the n failed recipients of orig into qdir/incoming/.
 * Returns 0 (new id in id_out), 1 when no notice is due (null sender; logged), or
 * -1 with err (nothing left behind). */
int bounce_create(const char *qdir, struct queue_file *orig, const struct bounce_rcpt *r,
                  size_t n, const struct conf *conf, char id_out[QUEUE_ID_SIZE],
                  struct str *err);

/* The notice's text, for tests: appends the whole message (headers and body, '\n'
 * line ends) to out.  headers: the original's header block. */
void bounce_format(struct str *out, const char *id, const struct queue_file *orig,
                   const struct bounce_rcpt *r, size_t n, const struct conf *conf,
                   const char *headers, size_t hlen, time_t now);

#endif
