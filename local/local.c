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

/* Waits until a request can be read: 1, or 0 when the connection stays idle for
 * idle_ms, when the daemon must stop, or (reload) when nothing is waiting. */
static int wait_request(struct stream *st, long long idle_ms)
{
    long long waited = 0;

    while (!server_stop) {
        struct pollfd pfd = { stream_fd(st), POLLIN, 0 };
        int rc;

        if (stream_pending(st) > 0)
            return 1;
        rc = poll(&pfd, 1, 1000);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return 0;
        if (server_reload)
            return 0;
        waited += 1000;
        if (idle_ms > 0 && waited >= idle_ms)
            return 0;
    }
    return 0;
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
    long long idle_s = conf_time(srv->conf, "max_idle");
    long long ipc_s = conf_time(srv->conf, "ipc_timeout");
    /* Bounded before the products, which could overflow for absurd settings. */
    long long idle_ms = (idle_s > 31536000 ? 31536000 : idle_s) * 1000;
    long long ipc_ms = (ipc_s > 86400 ? 86400 : ipc_s) * 1000;
    bool more = true;

    st = stream_fdopen(*fd);
    *fd = -1;
    stream_set_timeout(st, ipc_ms > 0 && ipc_ms < 86400000 ? (int)ipc_ms : 60000);
    for (size_t k = 0; k < LOCAL_BATCH_REQUESTS; k++)
        deliver_request_init(&dr[k]);
    while (more && wait_request(st, idle_ms)) {
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
