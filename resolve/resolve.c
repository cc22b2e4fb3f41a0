/* resolve(8): answers verify and route requests from smtpd and qmgr with the
 * router's rules.  It opens the maps and copies the user database before it chroots
 * to the queue directory (router_pin): a change to them is seen by the next process,
 * and master replaces every process on reload.  Requests come from
 * other daemons over private/resolve and are served by the shared request loop
 * (ipc_serve.h): each frame is still checked, and a bad one closes the connection. */
#include <stdbool.h>
#include <stdlib.h>

#include "attr.h"
#include "attr_scan.h"
#include "conf.h"
#include "ipc_serve.h"
#include "log.h"
#include "proto.h"
#include "router.h"
#include "server.h"
#include "server_wait.h"
#include "stream.h"
#include "str.h"

#define RESOLVE_ROUTE_MAX 100000    /* most addresses in one route request */

static struct router *router;

static void resolve_pre_jail(struct server *srv)
{
    struct str err = STR_INIT;

    router = router_open(srv->conf, &err);
    if (router == NULL)
        log_fatal("cannot open the routing tables: %s", err.s ? err.s : "error");
    router_pin(router);
    str_free(&err);
}

static int answer_verify(void *ctx, const struct attr_list *in, struct attr_list *out,
                         struct str *err)
{
    const char *addr = NULL;
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_ADDR, 0, &addr, 0),
        ATTR_END,
    };
    struct router_verdict v;

    if (attr_scan(in, 0, spec, err) < 0)
        return -1;
    router_verdict_init(&v);
    router_verify(router, addr, &v);
    switch (v.status) {
    case ROUTER_OK:
        attr_add(out, PROTO_A_STATUS, PROTO_OK);
        break;
    case ROUTER_REJECT:
        attr_add(out, PROTO_A_STATUS, PROTO_REJECT);
        break;
    case ROUTER_TEMPFAIL:
        attr_add(out, PROTO_A_STATUS, PROTO_TEMPFAIL);
        break;
    }
    attr_add(out, PROTO_A_CLASS, router_class_name(v.class));
    if (v.status != ROUTER_OK) {
        attr_add_int(out, PROTO_A_CODE, v.code);
        attr_add(out, PROTO_A_DSN, v.dsn);
        attr_add(out, PROTO_A_TEXT, v.text.s ? v.text.s : "");
    } else {
        for (size_t i = 0; i < v.nexpanded; i++)
            attr_add(out, PROTO_A_RCPT, v.expanded[i]);
    }
    router_verdict_free(&v);
    return 0;
}

static void route_one(const char *addr, struct attr_list *out)
{
    struct str transport = STR_INIT, nexthop = STR_INIT, err = STR_INIT;

    if (router_route(router, addr, &transport, &nexthop, &err) == ROUTER_OK) {
        attr_addf(out, PROTO_A_ROUTE, "%s:%s", transport.s, nexthop.s ? nexthop.s : "");
    } else {
        log_warn("<%s>: route lookup failed: %s", addr, err.s ? err.s : "error");
        attr_addf(out, PROTO_A_ROUTE, "%s:%s", PROTO_TEMPFAIL, err.s ? err.s : "lookup failure");
    }
    str_free(&transport);
    str_free(&nexthop);
    str_free(&err);
}

static int answer_route(void *ctx, const struct attr_list *in, struct attr_list *out,
                        struct str *err)
{
    struct attr_strs addrs;
    const struct attr_spec spec[] = {
        ATTR_STR_LIST(PROTO_A_ADDR, 0, &addrs, 0),
        ATTR_END,
    };

    if (attr_scan(in, 0, spec, err) < 0)
        return -1;
    if (addrs.n > RESOLVE_ROUTE_MAX) {
        str_printf(err, "more than %d addresses", RESOLVE_ROUTE_MAX);
        attr_scan_free(spec);
        return -1;
    }
    for (size_t i = 0; i < addrs.n; i++)
        route_one(addrs.v[i], out);
    attr_scan_free(spec);
    return 0;
}

static bool resolve_stale(void *arg)
{
    (void)arg;
    if (!router_changed(router))
        return false;
    log_info("tables changed, exiting for a new process to read them");
    return true;
}

static bool resolve_stale_accept(struct server *srv)
{
    (void)srv;
    return router_changed(router);
}

static void resolve_service(struct server *srv, int *fd)
{
    static const struct ipc_handler handlers[] = {
        { PROTO_REQ_VERIFY, answer_verify },
        { PROTO_REQ_ROUTE, answer_route },
        { NULL, NULL },
    };
    static const struct ipc_service svc = {
        .proto = PROTO_RESOLVE,
        .version = PROTO_RESOLVE_VERSION,
        .handlers = handlers,
    };
    struct stream *st = stream_fdopen(*fd);
    struct server_wait w = {
        .idle_ms = conf_time_ms(srv->conf, CONF_max_idle),
        .reload_at_once = true,
        .watch_master = true,
        .stale = resolve_stale,
    };

    *fd = -1;
    stream_set_timeout(st, conf_time_ms(srv->conf, CONF_ipc_timeout));
    ipc_serve(st, &w, &svc, NULL);
    stream_close(st);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .name = "resolve",
        .pre_jail = resolve_pre_jail,
        .service = resolve_service,
        .stale = resolve_stale_accept,
    };

    server_main(argc, argv, &opts);
}
