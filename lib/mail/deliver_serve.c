/* A delivery agent's request loop (see deliver_serve.h).  The frames come from qmgr
 * and are checked by ipc_serve() (version, request name) and deliver_request_scan(). */
#include "deliver_serve.h"

#include <stdlib.h>

#include "attr.h"
#include "deliver.h"
#include "ipc_serve.h"
#include "proto.h"
#include "str.h"
#include "xmalloc.h"

/* The requests of the batch being served, and where their replies go. */
struct deliver_loop {
    const struct deliver_agent *agent;
    struct deliver_request *dr;
    struct attr_list **out;
    size_t n;
};

static int deliver_handle(void *ctx, const struct attr_list *in, struct attr_list *out,
                          struct str *err)
{
    struct deliver_loop *l = ctx;
    struct deliver_request *dr = &l->dr[l->n];

    if (deliver_request_scan(in, dr, err) < 0)
        return -1;
    l->agent->deliver(l->agent->ctx, dr);
    l->out[l->n++] = out;
    return 0;
}

/* The batch is delivered: made durable, then its replies are completed. */
static void deliver_batch_end(void *ctx)
{
    struct deliver_loop *l = ctx;

    if (l->n > 0 && l->agent->flush != NULL)
        l->agent->flush(l->agent->ctx);
    for (size_t k = 0; k < l->n; k++)
        deliver_reply_add(&l->dr[k], l->out[k]);
    l->n = 0;
}

void deliver_serve(struct stream *st, const struct server_wait *w,
                   const struct deliver_agent *agent)
{
    static const struct ipc_handler handlers[] = {
        { PROTO_REQ_DELIVER, deliver_handle },
        { NULL, NULL },
    };
    size_t batch = agent->flush != NULL && agent->batch > 1 ? agent->batch : 1;
    struct ipc_service svc = {
        .proto = PROTO_DELIVER,
        .version = PROTO_DELIVER_VERSION,
        .batch = batch,
        .batch_end = deliver_batch_end,
        .handlers = handlers,
    };
    struct deliver_loop l = {
        .agent = agent,
        .dr = xcalloc(batch, sizeof(*l.dr)),
        .out = xcalloc(batch, sizeof(*l.out)),
    };

    for (size_t k = 0; k < batch; k++)
        deliver_request_init(&l.dr[k]);
    ipc_serve(st, w, &svc, &l);
    for (size_t k = 0; k < batch; k++)
        deliver_request_free(&l.dr[k]);
    free(l.dr);
    free(l.out);
}
