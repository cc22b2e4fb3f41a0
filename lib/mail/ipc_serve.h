/* The request loop of every request/reply daemon (resolve, auth, and the delivery
 * agents local and smtp through deliver_serve.h): on one connection, wait for a
 * request (server_wait.h), read its frame, check its protocol version (ipc_proto.h),
 * dispatch it by request name to a handler, write the reply; repeat.
 *
 * A frame that does not parse, a request that names no handler or that its handler
 * finds malformed is logged and ends the connection without a reply; a request of
 * another protocol or version is answered with an error reply, logged, and ends it
 * too.  Nothing a peer sends can do more than that. */
#ifndef POSTERN_IPC_SERVE_H
#define POSTERN_IPC_SERVE_H

#include <stdbool.h>
#include <stddef.h>

struct attr_list;
struct server_wait;
struct str;
struct stream;

struct ipc_handler {
    const char *req;                /* request name; NULL ends the table */
    /* Answers in: appends the reply's attributes to out (which already carries its
     * "proto").  0, or -1 with err when in is malformed.  With a batch (below), out
     * may be completed later, by batch_end, and stays valid until then. */
    int (*fn)(void *ctx, const struct attr_list *in, struct attr_list *out,
              struct str *err);
};

struct ipc_service {
    const char *proto;              /* protocol name and version (proto.h) */
    unsigned version;
    size_t frame_max;               /* largest request frame; 0: ATTR_FRAME_MAX */
    bool secret;                    /* frames carry secrets: wiped after use */
    /* Requests that have already arrived are read together, up to batch (0 or 1:
     * one at a time), and after their handlers batch_end(ctx) is called, before the
     * replies are written in order (local makes a batch durable with one fsync). */
    size_t batch;
    void (*batch_end)(void *ctx);
    const struct ipc_handler *handlers;
};

/* Serves requests on st until the peer closes, a request fails as above, a reply
 * cannot be written, or the wait w ends.  st stays open. */
void ipc_serve(struct stream *st, const struct server_wait *w, const struct ipc_service *svc,
               void *ctx);

#endif
