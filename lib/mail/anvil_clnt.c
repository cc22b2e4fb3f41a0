/* Client of anvil(8) (see anvil_clnt.h): one kept connection per process, each call
 * one request and its reply.  anvil is a trusted daemon, but its replies are still
 * checked for version and shape; anything wrong is a failure the caller treats as
 * "no limit known" (fail open). */
#include "anvil_clnt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "attr_scan.h"
#include "clock.h"
#include "ipc_clnt.h"
#include "ipc_proto.h"
#include "log.h"
#include "proto.h"
#include "str.h"
#include "xmalloc.h"

#define ANVIL_REPLY_MAX 4096        /* largest reply frame */
#define ANVIL_WARN_INTERVAL_MS 60000
#define ANVIL_COUNT_MAX 4294967295LL

static struct ipc_clnt *anvil_ipc;
static char *anvil_path;
static int anvil_timeout_ms = ANVIL_CLNT_TIMEOUT_MS;
static long long anvil_warned = -1;

void anvil_clnt_init(const char *path, int timeout_ms)
{
    ipc_clnt_close(anvil_ipc);
    anvil_ipc = NULL;
    free(anvil_path);
    anvil_path = path != NULL ? xstrdup(path) : NULL;
    anvil_timeout_ms = timeout_ms > 0 ? timeout_ms : ANVIL_CLNT_TIMEOUT_MS;
}

/* At most one warning a minute: a flood while anvil is down must not flood the log. */
static void anvil_warn(const char *what, const struct str *why)
{
    long long now = clock_ms();

    if (anvil_warned >= 0 && now - anvil_warned < ANVIL_WARN_INTERVAL_MS)
        return;
    anvil_warned = now;
    log_warn("anvil service %s: %s%s%s (connection limits are not applied)",
             anvil_path != NULL ? anvil_path : PROTO_PATH_ANVIL, what,
             why != NULL && why->len > 0 ? ": " : "", why != NULL && why->len > 0 ? why->s : "");
}

/* One request and its reply, status checked: 0, or -1 (warned). */
static int anvil_call(struct attr_list *req, struct attr_list *reply)
{
    struct str err = STR_INIT;
    const char *status = NULL;
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_STATUS, 0, &status, 16),
        ATTR_END,
    };
    int ret;

    if (anvil_ipc == NULL)
        anvil_ipc = ipc_clnt_open(anvil_path != NULL ? anvil_path : PROTO_PATH_ANVIL,
                                  anvil_timeout_ms, ANVIL_REPLY_MAX);
    ret = ipc_call(anvil_ipc, PROTO_ANVIL, PROTO_ANVIL_VERSION, req, reply, &err);
    if (ret < 0) {
        anvil_warn("request failed", &err);
    } else if (attr_scan(reply, 0, spec, &err) < 0 || strcmp(status, PROTO_OK) != 0) {
        if (err.len == 0)
            str_printf(&err, "status %s", status);
        anvil_warn("malformed reply", &err);
        ipc_clnt_disconnect(anvil_ipc);
        ret = -1;
    }
    str_free(&err);
    return ret;
}

/* Reads two counts from a reply: 0, or -1 (warned). */
static int anvil_counts_scan(const struct attr_list *reply, const char *n1, unsigned *v1,
                             const char *n2, unsigned *v2)
{
    struct str err = STR_INIT;
    long long a = 0, b = 0;
    const struct attr_spec spec[] = {
        ATTR_INT(n1, 0, &a, 0, ANVIL_COUNT_MAX),
        ATTR_INT(n2, 0, &b, 0, ANVIL_COUNT_MAX),
        ATTR_END,
    };

    if (attr_scan(reply, 0, spec, &err) < 0) {
        anvil_warn("malformed reply", &err);
        ipc_clnt_disconnect(anvil_ipc);
        str_free(&err);
        return -1;
    }
    str_free(&err);
    *v1 = (unsigned)a;
    *v2 = (unsigned)b;
    return 0;
}

int anvil_connect(const char *service, const char *client, struct anvil_counts *counts)
{
    struct attr_list req = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    int ret;

    ipc_request_start(&req, PROTO_ANVIL, PROTO_ANVIL_VERSION, PROTO_REQ_CONNECT);
    attr_add(&req, PROTO_A_SERVICE, service);
    attr_add(&req, PROTO_A_CLIENT, client);
    ret = anvil_call(&req, &reply);
    if (ret == 0)
        ret = anvil_counts_scan(&reply, PROTO_A_CONNS, &counts->conns,
                                PROTO_A_RATE, &counts->rate);
    attr_free(&req);
    attr_free(&reply);
    return ret;
}

void anvil_disconnect(const char *service, const char *client)
{
    struct attr_list req = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;

    ipc_request_start(&req, PROTO_ANVIL, PROTO_ANVIL_VERSION, PROTO_REQ_DISCONNECT);
    attr_add(&req, PROTO_A_SERVICE, service);
    attr_add(&req, PROTO_A_CLIENT, client);
    (void)anvil_call(&req, &reply);
    attr_free(&req);
    attr_free(&reply);
}

int anvil_limit_hit(const char *service, const char *client)
{
    struct attr_list req = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    struct str err = STR_INIT;
    const char *log = NULL;
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_LOG, 0, &log, 8),
        ATTR_END,
    };
    int ret;

    ipc_request_start(&req, PROTO_ANVIL, PROTO_ANVIL_VERSION, PROTO_REQ_LIMIT);
    attr_add(&req, PROTO_A_SERVICE, service);
    attr_add(&req, PROTO_A_CLIENT, client);
    ret = anvil_call(&req, &reply);
    if (ret == 0) {
        if (attr_scan(&reply, 0, spec, &err) < 0
            || (strcmp(log, PROTO_YES) != 0 && strcmp(log, PROTO_NO) != 0)) {
            anvil_warn("malformed reply", &err);
            ipc_clnt_disconnect(anvil_ipc);
            ret = -1;
        } else {
            ret = strcmp(log, PROTO_YES) == 0;
        }
    }
    attr_free(&req);
    attr_free(&reply);
    str_free(&err);
    return ret;
}

static int anvil_login(const char *req_name, const char *client, const char *account,
                       struct anvil_fails *f)
{
    struct attr_list req = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    int ret;

    ipc_request_start(&req, PROTO_ANVIL, PROTO_ANVIL_VERSION, req_name);
    attr_add(&req, PROTO_A_CLIENT, client);
    attr_add(&req, PROTO_A_ACCOUNT, account);
    ret = anvil_call(&req, &reply);
    if (ret == 0 && f != NULL)
        ret = anvil_counts_scan(&reply, PROTO_A_CLIENT_FAILS, &f->client,
                                PROTO_A_ACCOUNT_FAILS, &f->account);
    attr_free(&req);
    attr_free(&reply);
    return ret;
}

int anvil_login_query(const char *client, const char *account, struct anvil_fails *f)
{
    return anvil_login(PROTO_REQ_LOGIN_QUERY, client, account, f);
}

int anvil_login_failed(const char *client, const char *account, struct anvil_fails *f)
{
    return anvil_login(PROTO_REQ_LOGIN_FAIL, client, account, f);
}

int anvil_login_ok(const char *client, const char *account)
{
    return anvil_login(PROTO_REQ_LOGIN_OK, client, account, NULL);
}
