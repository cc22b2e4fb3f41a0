/* Client of the auth service (auth(8)): login and token lookup requests, each over
 * a connection of its own (ipc_clnt.h), a login's preceded by the client's descriptor.  Replies come from a trusted daemon but are still
 * checked for version and shape: anything unexpected is a temporary failure for the
 * caller.  Requests and replies carry passwords and tokens: their frames are wiped
 * before they are freed. */
#include "auth_clnt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attr.h"
#include "attr_scan.h"
#include "fd.h"
#include "ipc_clnt.h"
#include "ipc_proto.h"
#include "log.h"
#include "proto.h"
#include "stream.h"
#include "xmalloc.h"

#define AUTH_REPLY_MAX (64u << 10)
#define AUTH_STATUS_MAX 16          /* longest status word */
#define AUTH_DELAY_MAX_MS 3600000   /* longest delay taken from a reply */

struct auth_clnt {
    struct ipc_clnt *ipc;
};

void auth_result_init(struct auth_result *r)
{
    memset(r, 0, sizeof(*r));
    str_init(&r->user);
    str_init(&r->token);
    str_init(&r->maildir);
    str_init(&r->text);
}

void auth_result_free(struct auth_result *r)
{
    if (r->token.s != NULL)
        explicit_bzero(r->token.s, r->token.len);
    str_free(&r->user);
    str_free(&r->token);
    str_free(&r->maildir);
    str_free(&r->text);
}

struct auth_clnt *auth_clnt_open(const char *path, int timeout_ms)
{
    struct auth_clnt *ac = xcalloc(1, sizeof(*ac));

    ac->ipc = ipc_clnt_open(path, timeout_ms, AUTH_REPLY_MAX);
    return ac;
}

void auth_clnt_close(struct auth_clnt *ac)
{
    if (ac == NULL)
        return;
    ipc_clnt_close(ac->ipc);
    free(ac);
}

/* What every reply may carry; the fields of a successful one are checked by the
 * caller. */
struct auth_reply {
    const char *status, *text, *user, *token, *maildir;
    long long uid, gid, delay;
};

/* Sends req and scans the reply into rp: the status (AUTH_OK, AUTH_FAIL with r->text,
 * AUTH_TEMPFAIL with r->text), or -1 when there was no usable answer (logged). */
static int clnt_call(struct auth_clnt *ac, int client_fd, const struct attr_list *req,
                     struct attr_list *reply, struct auth_reply *rp, struct auth_result *r)
{
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_STATUS, 0, &rp->status, AUTH_STATUS_MAX),
        ATTR_STR(PROTO_A_TEXT, ATTR_OPTIONAL, &rp->text, 0),
        ATTR_STR(PROTO_A_USER, ATTR_OPTIONAL | ATTR_NONEMPTY, &rp->user, 0),
        ATTR_STR(PROTO_A_TOKEN, ATTR_OPTIONAL | ATTR_NONEMPTY, &rp->token, 0),
        ATTR_STR(PROTO_A_MAILDIR, ATTR_OPTIONAL | ATTR_NONEMPTY, &rp->maildir, 0),
        ATTR_INT(PROTO_A_UID, ATTR_OPTIONAL, &rp->uid, 0, (uid_t)-1),
        ATTR_INT(PROTO_A_GID, ATTR_OPTIONAL, &rp->gid, 0, (gid_t)-1),
        ATTR_INT(PROTO_A_DELAY, ATTR_OPTIONAL, &rp->delay, 0, AUTH_DELAY_MAX_MS),
        ATTR_END,
    };
    struct str err = STR_INIT;
    int st = -1;

    memset(rp, 0, sizeof(*rp));
    rp->uid = rp->gid = -1;
    /* A fresh connection for each request: nothing is held between logins. */
    ipc_clnt_disconnect(ac->ipc);
    if (ipc_clnt_connect(ac->ipc) < 0) {
        log_warn("auth service %s: connect: %s", ipc_clnt_path(ac->ipc),
                 errno == ETIMEDOUT ? "timed out (auth saturated?)" : strerror(errno));
        goto out;
    }
    if (client_fd >= 0 && fd_send(stream_fd(ipc_clnt_stream(ac->ipc)), client_fd, "F", 1) < 0) {
        log_warn("auth service %s: passing the client's connection: %s",
                 ipc_clnt_path(ac->ipc), strerror(errno));
        goto out;
    }
    if (ipc_call(ac->ipc, PROTO_AUTH, PROTO_AUTH_VERSION, req, reply, &err) < 0) {
        log_warn("auth service %s", err.s);
        goto out;
    }
    if (attr_scan(reply, 0, spec, &err) < 0) {
        log_warn("auth service %s: malformed reply: %s", ipc_clnt_path(ac->ipc), err.s);
        ipc_clnt_disconnect(ac->ipc);
        goto out;
    }
    if (strcmp(rp->status, PROTO_OK) == 0) {
        st = AUTH_OK;
        goto out;
    }
    str_sets(&r->text, rp->text != NULL ? rp->text : "");
    if (strcmp(rp->status, PROTO_FAIL) == 0) {
        st = AUTH_FAIL;
    } else if (strcmp(rp->status, PROTO_TEMPFAIL) == 0) {
        st = AUTH_TEMPFAIL;
    } else {
        log_warn("auth service %s: malformed reply: unknown status", ipc_clnt_path(ac->ipc));
        ipc_clnt_disconnect(ac->ipc);
    }
out:
    ipc_clnt_disconnect(ac->ipc);
    str_free(&err);
    return st;
}

static enum auth_status clnt_tempfail(struct auth_clnt *ac, struct auth_result *r,
                                      const char *why)
{
    if (why != NULL) {
        log_warn("auth service %s: %s", ipc_clnt_path(ac->ipc), why);
        ipc_clnt_disconnect(ac->ipc);
    }
    str_sets(&r->text, "authentication service unavailable");
    return AUTH_TEMPFAIL;
}

enum auth_status auth_login(struct auth_clnt *ac, const char *service, const char *user,
                            const char *password, int client_fd, struct auth_result *r)
{
    struct attr_list req = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    struct auth_reply rp;
    enum auth_status st;
    int s;

    ipc_request_start(&req, PROTO_AUTH, PROTO_AUTH_VERSION, PROTO_REQ_AUTH);
    attr_add(&req, PROTO_A_SERVICE, service);
    attr_add(&req, PROTO_A_USER, user);
    attr_add(&req, PROTO_A_PASSWORD, password);
    s = clnt_call(ac, client_fd, &req, &reply, &rp, r);
    if (s < 0) {
        st = clnt_tempfail(ac, r, NULL);
    } else if (s == AUTH_OK && (rp.user == NULL || rp.token == NULL)) {
        st = clnt_tempfail(ac, r, "malformed auth reply");
    } else {
        st = (enum auth_status)s;
        if (st == AUTH_OK) {
            str_sets(&r->user, rp.user);
            str_sets(&r->token, rp.token);
        }
        if (st == AUTH_OK || st == AUTH_FAIL)
            r->delay_ms = rp.delay;
    }
    attr_wipe(&req);
    attr_wipe(&reply);
    attr_free(&req);
    attr_free(&reply);
    return st;
}

enum auth_status auth_lookup(struct auth_clnt *ac, const char *token, struct auth_result *r)
{
    struct attr_list req = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    struct auth_reply rp;
    enum auth_status st;
    int s;

    ipc_request_start(&req, PROTO_AUTH, PROTO_AUTH_VERSION, PROTO_REQ_LOOKUP);
    attr_add(&req, PROTO_A_TOKEN, token);
    s = clnt_call(ac, -1, &req, &reply, &rp, r);
    if (s < 0) {
        st = clnt_tempfail(ac, r, NULL);
    } else if (s == AUTH_OK && (rp.user == NULL || rp.maildir == NULL || rp.maildir[0] != '/'
                                || rp.uid < 0 || rp.gid < 0)) {
        st = clnt_tempfail(ac, r, "malformed lookup reply");
    } else {
        st = (enum auth_status)s;
        if (st == AUTH_OK) {
            str_sets(&r->user, rp.user);
            str_sets(&r->maildir, rp.maildir);
            r->uid = (uid_t)rp.uid;
            r->gid = (gid_t)rp.gid;
        }
    }
    attr_wipe(&req);
    attr_wipe(&reply);
    attr_free(&req);
    attr_free(&reply);
    return st;
}

void auth_delay_wait(long long ms, const volatile sig_atomic_t *stop)
{
    struct timespec left;

    if (ms <= 0)
        return;
    left.tv_sec = (time_t)(ms / 1000);
    left.tv_nsec = (long)(ms % 1000) * 1000000L;
    while ((stop == NULL || !*stop) && nanosleep(&left, &left) < 0 && errno == EINTR)
        ;
}
