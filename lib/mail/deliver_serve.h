/* The request loop of a delivery agent (smtp, local): the shared request loop
 * (ipc_serve.h) with one request, "deliver" (deliver.h): on one connection from qmgr,
 * each request is read and checked, the agent sets every recipient's result, and the
 * reply goes back. */
#ifndef POSTERN_DELIVER_SERVE_H
#define POSTERN_DELIVER_SERVE_H

#include <stddef.h>

struct deliver_request;
struct server_wait;
struct stream;

struct deliver_agent {
    /* Sets the result of each recipient of dr. */
    void (*deliver)(void *ctx, struct deliver_request *dr);
    /* When not NULL: requests that have already arrived, up to batch, are delivered
     * together, then flush(ctx) is called before any of their replies is written
     * (local makes them durable there) and may still change their results. */
    void (*flush)(void *ctx);
    size_t batch;
    void *ctx;
};

/* Serves requests on st until the peer closes, a request is malformed (logged), a
 * reply cannot be written (logged), or the wait w ends.  st stays open. */
void deliver_serve(struct stream *st, const struct server_wait *w,
                   const struct deliver_agent *agent);

#endif
