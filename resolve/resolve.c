/* resolve(8): answers verify and route requests from smtpd and qmgr (which run
 * chrooted and cannot read the maps) with the router's rules.  Requests come from
 * other daemons over private/resolve; each frame is still checked, and a bad one
 * closes the connection. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "conf.h"
#include "log.h"
#include "router.h"
#include "server.h"
#include "server_wait.h"
#include "stream.h"
#include "str.h"

#define RESOLVE_ROUTE_MAX 100000    /* most addresses in one route request */

static struct router *router;

static void resolve_post_jail(struct server *srv)
{
    struct str err = STR_INIT;

    router = router_open(srv->conf, &err);
    if (router == NULL)
        log_fatal("cannot open the routing tables: %s", err.s ? err.s : "error");
    str_free(&err);
}

static void answer_verify(const char *addr, struct attr_list *out)
{
    struct router_verdict v;

    router_verdict_init(&v);
    router_verify(router, addr, &v);
    switch (v.status) {
    case ROUTER_OK:
        attr_add(out, "status", "ok");
        break;
    case ROUTER_REJECT:
        attr_add(out, "status", "reject");
        break;
    case ROUTER_TEMPFAIL:
        attr_add(out, "status", "tempfail");
        break;
    }
    attr_add(out, "class", router_class_name(v.class));
    if (v.status != ROUTER_OK) {
        attr_add_int(out, "code", v.code);
        attr_add(out, "dsn", v.dsn);
        attr_add(out, "text", v.text.s ? v.text.s : "");
    } else {
        for (size_t i = 0; i < v.nexpanded; i++)
            attr_add(out, "rcpt", v.expanded[i]);
    }
    router_verdict_free(&v);
}

static void answer_route(const char *addr, struct attr_list *out)
{
    struct str transport = STR_INIT, nexthop = STR_INIT, err = STR_INIT;

    if (router_route(router, addr, &transport, &nexthop, &err) == ROUTER_OK) {
        attr_addf(out, "route", "%s:%s", transport.s, nexthop.s ? nexthop.s : "");
    } else {
        log_warn("<%s>: route lookup failed: %s", addr, err.s ? err.s : "error");
        attr_addf(out, "route", "tempfail:%s", err.s ? err.s : "lookup failure");
    }
    str_free(&transport);
    str_free(&nexthop);
    str_free(&err);
}

/* Builds the reply to one request: 0, or -1 when the request is malformed. */
static int answer(const struct attr_list *in, struct attr_list *out)
{
    const char *req = attr_get(in, "req");
    size_t naddr = 0;

    if (req == NULL)
        return -1;
    for (size_t i = 0; i < in->n; i++) {
        if (strcmp(in->v[i].name, "addr") != 0)
            continue;
        /* addresses are text: no NUL inside */
        if (strlen(in->v[i].value) != in->v[i].len)
            return -1;
        naddr++;
    }
    if (strcmp(req, "verify") == 0) {
        if (naddr != 1)
            return -1;
        answer_verify(attr_get(in, "addr"), out);
        return 0;
    }
    if (strcmp(req, "route") == 0) {
        if (naddr == 0 || naddr > RESOLVE_ROUTE_MAX)
            return -1;
        for (size_t i = 0; i < in->n; i++)
            if (strcmp(in->v[i].name, "addr") == 0)
                answer_route(in->v[i].value, out);
        return 0;
    }
    return -1;
}

static void resolve_service(struct server *srv, int *fd)
{
    struct stream *st = stream_fdopen(*fd);
    struct attr_list in = ATTR_LIST_INIT, out = ATTR_LIST_INIT;
    struct server_wait w = {
        .idle_ms = conf_time_ms(srv->conf, CONF_max_idle),
        .reload_at_once = true,
        .watch_master = true,
    };

    *fd = -1;
    stream_set_timeout(st, conf_time_ms(srv->conf, CONF_ipc_timeout));
    while (server_wait_request(st, &w)) {
        int rc = attr_read(st, &in, ATTR_FRAME_MAX);

        if (rc == 0)
            break;
        if (rc < 0) {
            log_warn("bad request frame: %s", errno == EPROTO ? "malformed" : strerror(errno));
            break;
        }
        attr_clear(&out);
        if (answer(&in, &out) < 0) {
            log_warn("malformed request (req=%s)",
                     attr_get(&in, "req") ? attr_get(&in, "req") : "none");
            break;
        }
        if (attr_write(st, &out) < 0)
            break;
    }
    attr_free(&in);
    attr_free(&out);
    stream_close(st);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .name = "resolve",
        .post_jail = resolve_post_jail,
        .service = resolve_service,
    };

    server_main(argc, argv, &opts);
}
