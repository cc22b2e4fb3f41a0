/* The delivery request qmgr sends to a delivery agent (local, smtp) and the agent's
 * per-recipient reply, as attribute frames of protocol "deliver" (names in proto.h):
 *   request: "proto=deliver/2" "req=deliver" "id=QUEUEID" "queue=active" "transport=T"
 *            "nexthop=H" ("rcpt=INDEX" "addr=A")+
 *   reply:   "proto=deliver/2" ("rcpt=INDEX" "status=ok|defer|bounce" "dsn=X.Y.Z"
 *            "text=...")+ ("notified=INDEX")* ["dead=1"]
 * INDEX is the recipient's position in the queue file; the n-th "addr" belongs to the
 * n-th "rcpt", and so on.  The agent reads the message from the queue file itself
 * (queue/ID under the queue directory).  Both sides read strictly: an attribute not
 * listed here is an error.
 *
 * "dead=1", optional, says that the attempt failed at connection level for
 * the whole next hop (no server answered, the connection or greeting failed, or the
 * server refused the session before any recipient): every recipient of the request
 * must then be deferred.  qmgr counts such replies per transport and next hop; after
 * default_destination_failure_limit of them in a row it stops sending that next hop
 * anything for minimal_backoff_time and defers its other mail without an attempt.
 * A reply without "dead" (or "dead=0") counts as a sign of life.  An agent sets
 * dr->dead before its reply is made; replies without it stay valid. */
#ifndef POSTERN_DELIVER_H
#define POSTERN_DELIVER_H

#include <stdbool.h>
#include <stddef.h>

#include "queue.h"
#include "str.h"

struct attr_list;

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
     * as "notified=INDEX". */
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

/* Request: made by qmgr (al is cleared and gets the whole frame), checked by the
 * agent once the request loop has checked its version and name (ipc_serve.h):
 * 0, or -1 with err (the queue id is checked with queue_id_valid). */
void deliver_request_frame(const struct deliver_request *dr, struct attr_list *al);
int deliver_request_scan(const struct attr_list *al, struct deliver_request *dr,
                         struct str *err);
/* Reply: the agent appends the results of every recipient to its reply (started by
 * the request loop); qmgr, having checked the reply's version (ipc_reply_check),
 * reads them back into the same request (matched by index; unknown or missing
 * indexes are an error): 0, or -1 with err. */
void deliver_reply_add(const struct deliver_request *dr, struct attr_list *al);
int deliver_reply_scan(const struct attr_list *al, struct deliver_request *dr,
                       struct str *err);

#endif
