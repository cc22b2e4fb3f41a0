/* Delivery status notifications (RFC 3464): a new queue file holding a
 * multipart/report (a part for people, a message/delivery-status part, the original
 * headers or the whole original), about some recipients of a message in the queue.
 * Three kinds: failed (a bounce), delayed (a warning; delivery goes on) and delivered
 * (NOTIFY=SUCCESS).
 *
 * Who gets a failure notice (bounce_route):
 *   a message from an ordinary sender    -> the sender, from the null sender
 *   a bounce (null sender) that failed   -> bounce_notice_recipient, from
 *                                           double_bounce_sender (once)
 *   a failed notice from double_bounce_sender -> nobody (dropped, logged by the caller)
 * Delay and success notices go only to ordinary senders. */
#ifndef POSTERN_BOUNCE_H
#define POSTERN_BOUNCE_H

#include <stdbool.h>
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
    const char *action;     /* NULL: the kind's ("failed", "delayed", "delivered");
                             * or e.g. "relayed" */
};

enum bounce_kind {
    BOUNCE_FAILED,
    BOUNCE_DELAYED,
    BOUNCE_DELIVERED,
};

enum bounce_route {
    BOUNCE_TO_SENDER,
    BOUNCE_TO_POSTMASTER,
    BOUNCE_DROP,
};

struct bounce_notice {
    enum bounce_kind kind;
    const char *sender;         /* envelope sender of the notice ("" or double bounce) */
    const char *to;             /* address shown in To: */
    char *const *rcpts;         /* envelope recipients (nrcpts >= 1) */
    size_t nrcpts;
    bool full;                  /* return the whole original (RET=FULL), when it fits
                                 * bounce_size_limit; otherwise its headers */
    bool postmaster;            /* about a failed notice, for the postmaster */
    time_t retry_until;         /* delayed: Will-Retry-Until (0: not given) */
};

/* Where a failure notice about orig goes: fills sender (the notice's envelope
 * sender) and to (its recipient, as configured: may need alias expansion). */
enum bounce_route bounce_route(const struct queue_file *orig, const struct conf *conf,
                               struct str *sender, struct str *to);

/* The fully qualified double_bounce_sender (qualified with myorigin). */
void bounce_double_sender(const struct conf *conf, struct str *out);

/* Writes the notice about the n recipients r of orig into qdir/incoming/.  0 (new id
 * in id_out) or -1 with err (nothing left behind). */
int bounce_notice_create(const char *qdir, struct queue_file *orig,
                         const struct bounce_notice *bn, const struct bounce_rcpt *r,
                         size_t n, const struct conf *conf, char id_out[QUEUE_ID_SIZE],
                         struct str *err);

/* The notice's text, for tests: appends the whole message (headers and body, '\n'
 * line ends) to out.  orig_text: the original's headers (whole = false) or the whole
 * original (whole = true). */
void bounce_format(struct str *out, const char *id, const struct queue_file *orig,
                   const struct bounce_notice *bn, const struct bounce_rcpt *r, size_t n,
                   const struct conf *conf, const char *orig_text, size_t olen, bool whole,
                   time_t now);

#endif
