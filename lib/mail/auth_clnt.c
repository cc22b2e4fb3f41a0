/* Client of the auth service (auth(8)): login and token lookup requests over one
 * kept connection, made lazily and once more after a failure.  Replies come from a
 * trusted daemon but are still checked for shape: anything unexpected is a
 * temporary failure for the caller. */
#include "auth_clnt.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "log.h"
#include "sock.h"
#include "stream.h"
#include "xmalloc.h"

#define AUTH_REPLY_MAX (64u << 10)

struct auth_clnt {
    char *path;
    int timeout_ms;
    struct stream *st;
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

    ac->path = xstrdup(path);
    ac->timeout_ms = timeout_ms;
    return ac;
}

static void clnt_disconnect(struct auth_clnt *ac)
{
    if (ac->st != NULL)
        stream_close(ac->st);
    ac->st = NULL;
}

void auth_clnt_close(struct auth_clnt *ac)
{
    if (ac == NULL)
        return;
    clnt_disconnect(ac);
    free(ac->path);
    free(ac);
}

/* One request and its reply: 0, or -1 after a reconnect and a second try. */
static int clnt_call(struct auth_clnt *ac, const struct attr_list *req, struct attr_list *reply)
{
    int saved = 0;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (ac->st == NULL) {
            int fd = sock_connect_unix(ac->path, ac->timeout_ms);

            if (fd < 0) {
                saved = errno;
                continue;
            }
            ac->st = stream_fdopen(fd);
            stream_set_timeout(ac->st, ac->timeout_ms);
        }
        if (attr_write(ac->st, req) == 0 && attr_read(ac->st, reply, AUTH_REPLY_MAX) == 1)
            return 0;
        saved = errno ? errno : EPIPE;
        clnt_disconnect(ac);
    }
    log_warn("auth service %s: %s", ac->path, strerror(saved));
    return -1;
}

static void attr_wipe(struct attr_list *al)
{
    for (size_t i = 0; i < al->n; i++)
        if (al->v[i].value != NULL)
            explicit_bzero(al->v[i].value, al->v[i].len);
}

/* A text value without NUL bytes, or NULL. */
static const char *text_get(const struct attr_list *al, const char *name)
{
    for (size_t i = 0; i < al->n; i++)
        if (strcmp(al->v[i].name, name) == 0)
            return strlen(al->v[i].value) == al->v[i].len ? al->v[i].value : NULL;
    return NULL;
}

/* Status of a reply: fail and tempfail copy "text"; -1 when malformed. */
static int reply_status(const struct attr_list *reply, struct auth_result *r)
{
    const char *status = text_get(reply, "status"), *text = text_get(reply, "text");

    if (status == NULL)
        return -1;
    if (strcmp(status, "ok") == 0)
        return AUTH_OK;
    str_sets(&r->text, text != NULL ? text : "");
    if (strcmp(status, "fail") == 0)
        return AUTH_FAIL;
    if (strcmp(status, "tempfail") == 0)
        return AUTH_TEMPFAIL;
    return -1;
}

static enum auth_status clnt_tempfail(struct auth_clnt *ac, struct auth_result *r,
                                      const char *why)
{
    if (why != NULL) {
        log_warn("auth service %s: %s", ac->path, why);
        clnt_disconnect(ac);
    }
    str_sets(&r->text, "authentication service unavailable");
    return AUTH_TEMPFAIL;
}

enum auth_status auth_login(struct auth_clnt *ac, const char *service, const char *user,
                            const char *password, const char *client, struct auth_result *r)
{
    struct attr_list req = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    const char *u, *t;
    enum auth_status st;
    int s;

    attr_add(&req, "req", "auth");
    attr_add(&req, "service", service);
    attr_add(&req, "user", user);
    attr_add(&req, "password", password);
    attr_add(&req, "client", client != NULL ? client : "unknown");
    if (clnt_call(ac, &req, &reply) < 0) {
        st = clnt_tempfail(ac, r, NULL);
        goto out;
    }
    s = reply_status(&reply, r);
    if (s < 0) {
        st = clnt_tempfail(ac, r, "malformed auth reply");
        goto out;
    }
    st = (enum auth_status)s;
    if (st == AUTH_OK) {
        u = text_get(&reply, "user");
        t = text_get(&reply, "token");
        if (u == NULL || t == NULL || *u == '\0' || *t == '\0') {
            st = clnt_tempfail(ac, r, "malformed auth reply");
            goto out;
        }
        str_sets(&r->user, u);
        str_sets(&r->token, t);
    }
out:
    attr_wipe(&req);
    attr_wipe(&reply);
    attr_free(&req);
    attr_free(&reply);
    return st;
}

/* A decimal id that fits in an id_t-sized unsigned value: 0, or -1. */
static int id_get(const struct attr_list *al, const char *name, unsigned long long max,
                  unsigned long long *out)
{
    long long v;

    if (attr_get_int(al, name, &v) < 0 || v < 0 || (unsigned long long)v > max)
        return -1;
    *out = (unsigned long long)v;
    return 0;
}

enum auth_status auth_lookup(struct auth_clnt *ac, const char *token, struct auth_result *r)
{
    struct attr_list req = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    const char *u, *m;
    unsigned long long uid, gid;
    enum auth_status st;
    int s;

    attr_add(&req, "req", "lookup");
    attr_add(&req, "token", token);
    if (clnt_call(ac, &req, &reply) < 0) {
        st = clnt_tempfail(ac, r, NULL);
        goto out;
    }
    s = reply_status(&reply, r);
    if (s < 0) {
        st = clnt_tempfail(ac, r, "malformed lookup reply");
        goto out;
    }
    st = (enum auth_status)s;
    if (st == AUTH_OK) {
        u = text_get(&reply, "user");
        m = text_get(&reply, "maildir");
        if (u == NULL || *u == '\0' || m == NULL || m[0] != '/'
            || id_get(&reply, "uid", (uid_t)-1, &uid) < 0
            || id_get(&reply, "gid", (gid_t)-1, &gid) < 0) {
            st = clnt_tempfail(ac, r, "malformed lookup reply");
            goto out;
        }
        str_sets(&r->user, u);
        str_sets(&r->maildir, m);
        r->uid = (uid_t)uid;
        r->gid = (gid_t)gid;
    }
out:
    attr_wipe(&req);
    attr_free(&req);
    attr_free(&reply);
    return st;
}
