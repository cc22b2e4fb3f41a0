/* Client of the resolve service (resolve(8)): verify and route requests over one
 * kept connection, made lazily and once more after a failure.  The replies come from
 * a trusted daemon but are still checked for shape; anything wrong is a temporary
 * failure for the caller. */
#include "resolve_clnt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "log.h"
#include "sock.h"
#include "stream.h"
#include "xmalloc.h"

struct resolve_clnt {
    char *path;
    int timeout_ms;
    struct stream *st;
};

struct resolve_clnt *resolve_clnt_open(const char *path, int timeout_ms)
{
    struct resolve_clnt *rc = xcalloc(1, sizeof(*rc));

    rc->path = xstrdup(path);
    rc->timeout_ms = timeout_ms;
    return rc;
}

static void clnt_disconnect(struct resolve_clnt *rc)
{
    if (rc->st != NULL)
        stream_close(rc->st);
    rc->st = NULL;
}

void resolve_clnt_close(struct resolve_clnt *rc)
{
    if (rc == NULL)
        return;
    clnt_disconnect(rc);
    free(rc->path);
    free(rc);
}

/* One request and its reply: 0, or -1 after a reconnect and a second try. */
static int clnt_call(struct resolve_clnt *rc, const struct attr_list *req,
                     struct attr_list *reply)
{
    int saved = 0;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (rc->st == NULL) {
            int fd = sock_connect_unix(rc->path, rc->timeout_ms);

            if (fd < 0) {
                saved = errno;
                continue;
            }
            rc->st = stream_fdopen(fd);
            stream_set_timeout(rc->st, rc->timeout_ms);
        }
        if (attr_write(rc->st, req) == 0 && attr_read(rc->st, reply, ATTR_FRAME_MAX) == 1)
            return 0;
        saved = errno ? errno : EPIPE;
        clnt_disconnect(rc);
    }
    log_warn("resolve service %s: %s", rc->path, strerror(saved));
    return -1;
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

void resolve_verify(struct resolve_clnt *rc, const char *addr, struct router_verdict *v)
{
    struct attr_list req = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    const char *status, *class, *dsn, *text;
    long long code;
    size_t n = 0;

    attr_add(&req, "req", "verify");
    attr_add(&req, "addr", addr);
    if (clnt_call(rc, &req, &reply) < 0)
        goto fail;
    status = attr_get(&reply, "status");
    class = attr_get(&reply, "class");
    if (status == NULL || class == NULL)
        goto bad;
    if (strcmp(class, "local") == 0)
        v->class = ROUTER_LOCAL;
    else if (strcmp(class, "virtual") == 0)
        v->class = ROUTER_VIRTUAL;
    else if (strcmp(class, "relay") == 0)
        v->class = ROUTER_RELAY;
    else if (strcmp(class, "remote") == 0)
        v->class = ROUTER_REMOTE;
    else
        goto bad;
    strv_free(v->expanded);
    v->expanded = NULL;
    v->nexpanded = 0;
    str_clear(&v->text);
    if (strcmp(status, "ok") == 0) {
        for (size_t i = 0; i < reply.n; i++)
            if (strcmp(reply.v[i].name, "rcpt") == 0)
                n++;
        if (n == 0)
            goto bad;
        v->expanded = xcalloc(n + 1, sizeof(*v->expanded));
        for (size_t i = 0; i < reply.n; i++)
            if (strcmp(reply.v[i].name, "rcpt") == 0)
                v->expanded[v->nexpanded++] = xstrdup(reply.v[i].value);
        v->status = ROUTER_OK;
        v->code = 250;
        snprintf(v->dsn, sizeof(v->dsn), "2.1.5");
        goto out;
    }
    if (strcmp(status, "reject") != 0 && strcmp(status, "tempfail") != 0)
        goto bad;
    dsn = attr_get(&reply, "dsn");
    text = attr_get(&reply, "text");
    if (attr_get_int(&reply, "code", &code) < 0 || dsn == NULL || text == NULL
        || strlen(dsn) >= sizeof(v->dsn))
        goto bad;
    v->status = strcmp(status, "reject") == 0 ? ROUTER_REJECT : ROUTER_TEMPFAIL;
    /* the class of code must agree with the status */
    if ((v->status == ROUTER_REJECT && (code < 500 || code > 599 || dsn[0] != '5'))
        || (v->status == ROUTER_TEMPFAIL && (code < 400 || code > 499 || dsn[0] != '4')))
        goto bad;
    v->code = (int)code;
    snprintf(v->dsn, sizeof(v->dsn), "%s", dsn);
    str_sets(&v->text, text);
    goto out;
bad:
    log_warn("resolve service %s: malformed verify reply", rc->path);
    clnt_disconnect(rc);
fail:
    tempfail(v, addr);
out:
    attr_free(&req);
    attr_free(&reply);
}

int resolve_route(struct resolve_clnt *rc, char *const *addrs, size_t n,
                  struct str *transports, struct str *nexthops)
{
    struct attr_list req = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    size_t got = 0;
    int ret = -1;

    attr_add(&req, "req", "route");
    for (size_t i = 0; i < n; i++)
        attr_add(&req, "addr", addrs[i]);
    if (clnt_call(rc, &req, &reply) < 0)
        goto out;
    for (size_t i = 0; i < reply.n; i++) {
        const char *v = reply.v[i].value, *colon;

        if (strcmp(reply.v[i].name, "route") != 0)
            continue;
        if (got == n || (colon = strchr(v, ':')) == NULL || colon == v) {
            got = n + 1;
            break;
        }
        str_set(&transports[got], v, (size_t)(colon - v));
        str_sets(&nexthops[got], colon + 1);
        got++;
    }
    if (got != n) {
        log_warn("resolve service %s: malformed route reply", rc->path);
        clnt_disconnect(rc);
        goto out;
    }
    ret = 0;
out:
    attr_free(&req);
    attr_free(&reply);
    return ret;
}
