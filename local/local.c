/* local: the delivery agent for the local and virtual classes (see local(8)).  Serves
 * connections from qmgr on private/local: each carries delivery requests, answered
 * in order with one result per recipient.  Runs as root when
 * master does and takes the mailbox owner's ids only while it writes a mailbox.
 * Trusts the request frames only as far as deliver.c checks them. */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "deliver.h"
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
    local_ctx.outbuf = xmalloc(LOCAL_OUTBUF);
    srv->ctx = &local_ctx;
    str_free(&err);
}

/* true when another request has (at least partly) arrived already. */
static bool request_ready(struct stream *st)
{
    struct pollfd pfd = { stream_fd(st), POLLIN, 0 };

    return stream_pending(st) > 0 || poll(&pfd, 1, 0) > 0;
}

/* Serves one connection.  The requests that have arrived are read together (never
 * waiting for more), delivered, made durable together by local_flush(), and only
 * then answered, in order. */
static void local_service(struct server *srv, int *fd)
{
    struct local_ctx *ctx = srv->ctx;
    struct deliver_request dr[LOCAL_BATCH_REQUESTS];
    struct str err = STR_INIT;
    struct stream *st;
    int ipc_ms = (int)conf_time_ms(srv->conf, CONF_ipc_timeout);
    /* A reload ends the connection only once no request is waiting. */
    struct server_wait w = { .idle_ms = conf_time_ms(srv->conf, CONF_max_idle) };
    bool more = true;

    st = stream_fdopen(*fd);
    *fd = -1;
    stream_set_timeout(st, ipc_ms);
    for (size_t k = 0; k < LOCAL_BATCH_REQUESTS; k++)
        deliver_request_init(&dr[k]);
    while (more && server_wait_request(st, &w)) {
        size_t n = 0;

        do {
            int rc;

            str_clear(&err);
            rc = deliver_request_read(st, &dr[n], &err);
            if (rc <= 0) {
                if (rc < 0)
                    log_warn("%s", err.len ? err.s : "bad delivery request");
                more = false;
                break;
            }
            local_deliver(ctx, &dr[n]);
            n++;
        } while (n < LOCAL_BATCH_REQUESTS && request_ready(st));
        local_flush(ctx);
        for (size_t k = 0; k < n; k++) {
            if (deliver_reply_write(st, &dr[k]) < 0) {
                log_warn("%s: cannot write the delivery reply: %s", dr[k].id,
                         strerror(errno));
                more = false;
                break;
            }
        }
    }
    for (size_t k = 0; k < LOCAL_BATCH_REQUESTS; k++)
        deliver_request_free(&dr[k]);
    str_free(&err);
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
