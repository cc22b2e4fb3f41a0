/* The request loop of a delivery agent (smtp, local): on one connection from qmgr,
 * waits for each delivery request (server_wait.h), reads it (deliver.h), has the
 * agent set every recipient's result, and writes the reply. */
#ifndef POSTERN_DELIVER_SERVE_H
#define POSTERN_DELIVER_SERVE_H

struct deliver_request;
struct server_wait;
struct stream;

/* Serves requests on st until the peer closes, a request is malformed (logged), a
 * reply cannot be written (logged), or the wait w ends.  deliver(ctx, dr) sets the
 * result of each recipient of dr.  st stays open. */
void deliver_serve(struct stream *st, const struct server_wait *w,
                   void (*deliver)(void *ctx, struct deliver_request *dr), void *ctx);

#endif
