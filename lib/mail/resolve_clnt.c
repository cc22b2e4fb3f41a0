/* Client of the resolve service (resolve(8)): verify and route requests over one
 * kept connection (ipc_clnt.h).  The replies come from a trusted daemon but are
 * still checked for version and shape; anything wrong is a temporary failure for
 * the caller. */
#include "resolve_clnt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "attr_scan.h"
#include "ipc_clnt.h"
#include "ipc_proto.h"
#include "log.h"
#include "proto.h"
#include "xmalloc.h"

#define RESOLVE_NAME_MAX 32         /* longest status or class */

struct resolve_clnt {
    struct ipc_clnt *ipc;
};

struct resolve_clnt *resolve_clnt_open(const char *path, int timeout_ms)
{
    struct resolve_clnt *rc = xcalloc(1, sizeof(*rc));

    rc->ipc = ipc_clnt_open(path, timeout_ms, ATTR_FRAME_MAX);
    return rc;
}

void resolve_clnt_close(struct resolve_clnt *rc)
{
    if (rc == NULL)
        return;
    ipc_clnt_close(rc->ipc);
    free(rc);
}

/* One request and its checked reply: 0, or -1 (logged). */
static int clnt_call(struct resolve_clnt *rc, const struct attr_list *req,
                     struct attr_list *reply)
{
    struct str err = STR_INIT;
    int ret = ipc_call(rc->ipc, PROTO_RESOLVE, PROTO_RESOLVE_VERSION, req, reply, &err);

    if (ret < 0)
        log_warn("resolve service %s", err.s);
    str_free(&err);
    return ret;
}

/* A reply that the service should not have sent: logged, and the connection closed. */
static void clnt_malformed(struct resolve_clnt *rc, const char *what, const struct str *why)
{
    log_warn("resolve service %s: malformed %s reply%s%s", ipc_clnt_path(rc->ipc), what,
             why != NULL && why->len > 0 ? ": " : "", why != NULL && why->len > 0 ? why->s : "");
    ipc_clnt_disconnect(rc->ipc);
}

static void tempfail(struct router_verdict *v, const char *addr)
{
    strv_free(v->expanded);
    v->expanded = NULL;
    v->nexpanded = 0;
    v->status = ROUTER_TEMPFAIL;
    v->code = 451;
    snprintf(v->dsn, sizeof(v->dsn), "4.3.0");
    str_clear(&v->text);
    str_printf(&v->text, "<%s>: Temporary lookup failure", addr);
}

static int class_parse(const char *s, enum router_class *c)
{
    static const enum router_class all[] = {
        ROUTER_LOCAL, ROUTER_VIRTUAL, ROUTER_RELAY, ROUTER_REMOTE,
    };

    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        if (strcmp(s, router_class_name(all[i])) == 0) {
            *c = all[i];
            return 0;
        }
    }
    return -1;
}

void resolve_verify(struct resolve_clnt *rc, const char *addr, struct router_verdict *v)
{
    struct attr_list req = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    const char *status = NULL, *class = NULL, *dsn = NULL, *text = NULL;
    long long code = 0;
    struct attr_strs rcpts = { NULL, 0 };    /* freed on every path, scanned or not */
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_STATUS, 0, &status, RESOLVE_NAME_MAX),
        ATTR_STR(PROTO_A_CLASS, 0, &class, RESOLVE_NAME_MAX),
        ATTR_INT(PROTO_A_CODE, ATTR_OPTIONAL, &code, 400, 599),
        ATTR_STR(PROTO_A_DSN, ATTR_OPTIONAL, &dsn, sizeof(v->dsn) - 1),
        ATTR_STR(PROTO_A_TEXT, ATTR_OPTIONAL, &text, 0),
        ATTR_STR_LIST(PROTO_A_RCPT, ATTR_OPTIONAL, &rcpts, 0),
        ATTR_END,
    };
    struct str why = STR_INIT;
    enum router_class cls;

    ipc_request_start(&req, PROTO_RESOLVE, PROTO_RESOLVE_VERSION, PROTO_REQ_VERIFY);
    attr_add(&req, PROTO_A_ADDR, addr);
    if (clnt_call(rc, &req, &reply) < 0)
        goto fail;
    if (attr_scan(&reply, 0, spec, &why) < 0 || class_parse(class, &cls) < 0)
        goto bad;
    v->class = cls;
    strv_free(v->expanded);
    v->expanded = NULL;
    v->nexpanded = 0;
    str_clear(&v->text);
    if (strcmp(status, PROTO_OK) == 0) {
        if (rcpts.n == 0)
            goto bad;
        v->expanded = xcalloc(rcpts.n + 1, sizeof(*v->expanded));
        for (size_t i = 0; i < rcpts.n; i++)
            v->expanded[v->nexpanded++] = xstrdup(rcpts.v[i]);
        v->status = ROUTER_OK;
        v->code = 250;
        snprintf(v->dsn, sizeof(v->dsn), "2.1.5");
        goto out;
    }
    if (strcmp(status, PROTO_REJECT) != 0 && strcmp(status, PROTO_TEMPFAIL) != 0)
        goto bad;
    if (code == 0 || dsn == NULL || text == NULL)
        goto bad;
    v->status = strcmp(status, PROTO_REJECT) == 0 ? ROUTER_REJECT : ROUTER_TEMPFAIL;
    /* the class of code must agree with the status */
    if ((v->status == ROUTER_REJECT && (code < 500 || dsn[0] != '5'))
        || (v->status == ROUTER_TEMPFAIL && (code > 499 || dsn[0] != '4')))
        goto bad;
    v->code = (int)code;
    snprintf(v->dsn, sizeof(v->dsn), "%s", dsn);
    str_sets(&v->text, text);
    goto out;
bad:
    clnt_malformed(rc, PROTO_REQ_VERIFY, &why);
fail:
    tempfail(v, addr);
out:
    attr_scan_free(spec);
    attr_free(&req);
    attr_free(&reply);
    str_free(&why);
}

int resolve_route(struct resolve_clnt *rc, char *const *addrs, size_t n,
                  struct str *transports, struct str *nexthops)
{
    struct attr_list req = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    struct attr_strs routes = { NULL, 0 };
    const struct attr_spec spec[] = {
        ATTR_STR_LIST(PROTO_A_ROUTE, 0, &routes, 0),
        ATTR_END,
    };
    struct str why = STR_INIT;
    int ret = -1;

    ipc_request_start(&req, PROTO_RESOLVE, PROTO_RESOLVE_VERSION, PROTO_REQ_ROUTE);
    for (size_t i = 0; i < n; i++)
        attr_add(&req, PROTO_A_ADDR, addrs[i]);
    if (clnt_call(rc, &req, &reply) < 0)
        goto out;
    if (attr_scan(&reply, 0, spec, &why) < 0 || routes.n != n) {
        clnt_malformed(rc, PROTO_REQ_ROUTE, &why);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const char *colon = strchr(routes.v[i], ':');

        if (colon == NULL || colon == routes.v[i]) {
            clnt_malformed(rc, PROTO_REQ_ROUTE, NULL);
            goto out;
        }
        str_set(&transports[i], routes.v[i], (size_t)(colon - routes.v[i]));
        str_sets(&nexthops[i], colon + 1);
    }
    ret = 0;
out:
    attr_scan_free(spec);
    attr_free(&req);
    attr_free(&reply);
    str_free(&why);
    return ret;
}
