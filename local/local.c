/* local: the delivery agent for the local and virtual classes (see local(8)).  Serves
 * connections from qmgr on private/local: each carries delivery requests, answered
 * in order with one result per recipient.  Runs as root when
 * master does and takes the mailbox owner's ids only while it writes a mailbox.
 * Trusts the request frames only as far as the request loop and deliver.c check them. */
#include <stdlib.h>

#include "conf.h"
#include "deliver.h"
#include "deliver_serve.h"
#include "local.h"
#include "log.h"
#include "router.h"
#include "server.h"
#include "server_wait.h"
#include "str.h"
#include "stream.h"
#include "xmalloc.h"

static struct local_ctx local_ctx;

static void local_pre_jail(struct server *srv)
{
    struct str err = STR_INIT;

    local_ctx.router = router_open(srv->conf, &err);
    if (local_ctx.router == NULL)
        log_fatal("%s", err.len ? err.s : "cannot open the router's maps");
    if (junk_parse(conf_str(srv->conf, CONF_junk_headers), &local_ctx.junk, &err) < 0)
        log_fatal("%s", err.s);
    local_ctx.junk_folder = xstrdup(conf_str(srv->conf, CONF_junk_folder));
    if (local_ctx.junk_folder[0] == '\0')
        local_ctx.junk_folder = NULL;
    else if (!junk_folder_name_ok(local_ctx.junk_folder))
        log_fatal("junk_folder = %s: not a Maildir++ folder name", local_ctx.junk_folder);
    local_ctx.outbuf = xmalloc(LOCAL_OUTBUF);
    srv->ctx = &local_ctx;
    str_free(&err);
}

static void local_deliver_one(void *ctx, struct deliver_request *dr)
{
    local_deliver(ctx, dr);
}

static void local_flush_all(void *ctx)
{
    local_flush(ctx);
}

/* Serves one connection.  The requests that have arrived are read together (never
 * waiting for more), delivered, made durable together by local_flush(), and only
 * then answered, in order. */
static void local_service(struct server *srv, int *fd)
{
    struct local_ctx *ctx = srv->ctx;
    struct stream *st;
    int ipc_ms = (int)conf_time_ms(srv->conf, CONF_ipc_timeout);
    /* A reload ends the connection only once no request is waiting. */
    struct server_wait w = { .idle_ms = conf_time_ms(srv->conf, CONF_max_idle) };
    const struct deliver_agent agent = {
        .deliver = local_deliver_one,
        .flush = local_flush_all,
        .batch = LOCAL_BATCH_REQUESTS,
        .ctx = ctx,
    };

    st = stream_fdopen(*fd);
    *fd = -1;
    stream_set_timeout(st, ipc_ms);
    deliver_serve(st, &w, &agent);
    stream_close(st);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .name = "local",
        .pre_jail = local_pre_jail,
        .service = local_service,
    };

    server_main(argc, argv, &opts);
}
