/* The delivery request qmgr sends to a delivery agent (local, smtp) and the agent's
 * per-recipient reply, as attribute frames (attr.h):
 *   request: "req=deliver" "id=QUEUEID" "queue=active" "transport=T" "nexthop=H"
 *            ("rcpt=INDEX" "addr=A")+
 *   reply:   ("rcpt=INDEX" "status=ok|defer|bounce" "dsn=X.Y.Z" "text=...")+ ["dead=1"]
 * INDEX is the recipient's position in the queue file.  The agent reads the message
 * from the queue file itself (queue/ID under the queue directory).
 *
 * "dead=1", optional and last, says that the attempt failed at connection level for
 * the whole next hop (no server answered, the connection or greeting failed, or the
 * server refused the session before any recipient): every recipient of the request
 * must then be deferred.  qmgr counts such replies per transport and next hop; after
 * default_destination_failure_limit of them in a row it stops sending that next hop
 * anything for minimal_backoff_time and defers its other mail without an attempt.
 * A reply without "dead" (or "dead=0") counts as a sign of life.  An agent sets
 * dr->dead before deliver_reply_write(); replies without it stay valid. */
#ifndef POSTERN_DELIVER_H
#define POSTERN_DELIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "queue.h"
#include "str.h"

struct stream;

enum deliver_status {
    DELIVER_OK,
    DELIVER_DEFER,
    DELIVER_BOUNCE,
};

struct deliver_rcpt {
    size_t index;
    char *addr;
    enum deliver_status status;
    char dsn[16];
    struct str text;
    /* Delivered to a next hop that took the NOTIFY parameter over (RFC 3461 6.2.2):
     * success notices are its job now, so qmgr sends no "relayed" one.  In the reply
     * as "notified=INDEX" after the recipients (and before "dead"). */
    bool notified;
};

struct deliver_request {
    char id[QUEUE_ID_SIZE];
    char queue[16];                 /* "active" */
    struct str transport;
    struct str nexthop;
    struct deliver_rcpt *rcpt;
    size_t nrcpt;
    bool dead;                      /* reply: the next hop failed at connection level */
};

void deliver_request_init(struct deliver_request *dr);
void deliver_request_free(struct deliver_request *dr);
void deliver_request_add(struct deliver_request *dr, size_t index, const char *addr);
/* Sets the result of recipient i (position in dr->rcpt, not its queue index). */
void deliver_result(struct deliver_request *dr, size_t i, enum deliver_status st,
                    const char *dsn, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
const char *deliver_status_name(enum deliver_status st);

/* Request: written by qmgr, read by the agent.  Reads return 1, 0 (EOF), -1 (I/O or
 * malformed: err says which; the queue id is checked with queue_id_valid). */
int deliver_request_write(struct stream *st, const struct deliver_request *dr);
int deliver_request_read(struct stream *st, struct deliver_request *dr, struct str *err);
/* Reply: the agent writes the results of every recipient; qmgr reads them back into
 * the same request (matched by index; unknown or missing indexes are an error). */
int deliver_reply_write(struct stream *st, const struct deliver_request *dr);
int deliver_reply_read(struct stream *st, struct deliver_request *dr, struct str *err);

#endif
