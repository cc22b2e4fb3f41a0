/* smtp: the delivery agent for remote mail (see smtp(8)).  Serves connections from
 * qmgr on private/smtp: each carries delivery requests (deliver.h), one at a time;
 * a request is one message for one or more recipients with the same nexthop.  The
 * agent finds the servers (MX records, or the nexthop's own address), talks SMTP to
 * the first that answers and replies with a result per recipient.  A finished
 * session stays open for a few seconds for the next request to the same nexthop.
 * Runs chrooted in the queue directory as mail_owner; the resolver, the TLS
 * context and the maps (smtp_tls_policy_maps, smtp_sasl_password_maps) are set up
 * before the chroot.  Trusts the request frames as far as
 * deliver.c checks them, and nothing the network says. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf.h"
#include "deliver.h"
#include "deliver_serve.h"
#include "dns.h"
#include "log.h"
#include "map.h"
#include "server.h"
#include "server_wait.h"
#include "smtp.h"
#include "str.h"
#include "stream.h"
#include "tls.h"
#include "xmalloc.h"

static struct smtp_ctx smtp_ctx;

/* A map list named by key, opened now and kept open through the chroot. */
static struct maplist *maps_open(const struct conf *c, enum conf_key key)
{
    struct str err = STR_INIT;
    struct maplist *ml = maplist_open(conf_str(c, key), &err);

    if (ml == NULL)
        log_fatal("%s: %s", conf_key_name(key), err.len ? err.s : "cannot open");
    maplist_pin(ml);
    str_free(&err);
    return ml;
}

static void smtp_pre_jail(struct server *srv)
{
    struct smtp_ctx *ctx = &smtp_ctx;
    struct str err = STR_INIT;
    const char *level = conf_str(srv->conf, CONF_smtp_tls_security_level);
    long long port = conf_count(srv->conf, CONF_smtp_destination_port);

    ctx->conf = srv->conf;
    ctx->myhostname = conf_str(srv->conf, CONF_myhostname);
    ctx->port = (unsigned)port;
    ctx->connect_ms = (int)conf_time_ms(srv->conf, CONF_smtp_connect_timeout);
    ctx->helo_ms = (int)conf_time_ms(srv->conf, CONF_smtp_helo_timeout);
    ctx->data_ms = (int)conf_time_ms(srv->conf, CONF_smtp_data_timeout);
    if (strcmp(level, "none") == 0)
        ctx->tls_level = SMTP_TLS_NONE;
    else if (strcmp(level, "may") == 0)
        ctx->tls_level = SMTP_TLS_MAY;
    else if (strcmp(level, "encrypt") == 0)
        ctx->tls_level = SMTP_TLS_ENCRYPT;
    else if (strcmp(level, "verify") == 0)
        ctx->tls_level = SMTP_TLS_VERIFY;
    else
        log_panic("smtp_tls_security_level \"%s\" is in the table but not handled", level);
    ctx->dns = dns_open(srv->conf, &err);
    if (ctx->dns == NULL)
        log_fatal("%s", err.len ? err.s : "cannot set up the DNS resolver");
    ctx->tls_policy = maps_open(srv->conf, CONF_smtp_tls_policy_maps);
    ctx->sasl_passwords = maps_open(srv->conf, CONF_smtp_sasl_password_maps);
    /* a map may ask for TLS where the global level does not */
    if (ctx->tls_level != SMTP_TLS_NONE || maplist_count(ctx->tls_policy) > 0
        || maplist_count(ctx->sasl_passwords) > 0) {
        const char *ca = conf_str(srv->conf, CONF_smtp_tls_CAfile);

        str_clear(&err);
        ctx->tls = tls_client_ctx(ca[0] != '\0' ? ca : NULL, &err);
        if (ctx->tls == NULL) {
            if (ctx->tls_level >= SMTP_TLS_ENCRYPT)
                log_fatal("cannot set up client TLS: %s", err.len ? err.s : "error");
            log_warn("cannot set up client TLS, sending without: %s", err.len ? err.s : "error");
        }
    }
    srv->ctx = ctx;
    str_free(&err);
}

/* ---- the kept session ---- */

static void cache_drop(struct smtp_ctx *ctx, bool polite)
{
    smtp_session_close(ctx, ctx->cached, polite);
    ctx->cached = NULL;
}

/* The kept session when it serves nexthop and still answers RSET, else NULL. */
static struct smtp_session *cache_take(struct smtp_ctx *ctx, const char *nexthop)
{
    struct smtp_session *s = ctx->cached;

    if (s == NULL)
        return NULL;
    ctx->cached = NULL;
    if (strcmp(s->dest.s, nexthop) != 0 || time(NULL) - s->idle_since > SMTP_REUSE_IDLE) {
        smtp_session_close(ctx, s, true);
        return NULL;
    }
    if (smtp_session_reset(ctx, s) < 0) {
        smtp_session_close(ctx, s, false);
        return NULL;
    }
    return s;
}

static void cache_put(struct smtp_ctx *ctx, struct smtp_session *s, const char *nexthop)
{
    cache_drop(ctx, true);
    if (s->uses >= SMTP_REUSE_MAX) {
        smtp_session_close(ctx, s, true);
        return;
    }
    str_sets(&s->dest, nexthop);
    s->idle_since = time(NULL);
    ctx->cached = s;
}

/* ---- one request ---- */

static void all_results(struct deliver_request *dr, bool *decided, enum deliver_status st,
                        const char *dsn, const char *text)
{
    for (size_t i = 0; i < dr->nrcpt; i++) {
        if (!decided[i]) {
            deliver_result(dr, i, st, dsn, "%s", text);
            decided[i] = true;
        }
    }
}

static void log_summary(const struct deliver_request *dr, const struct smtp_session *s)
{
    size_t sent = 0, deferred = 0, bounced = 0;

    for (size_t i = 0; i < dr->nrcpt; i++) {
        switch (dr->rcpt[i].status) {
        case DELIVER_OK:
            sent++;
            break;
        case DELIVER_DEFER:
            deferred++;
            break;
        case DELIVER_BOUNCE:
            bounced++;
            break;
        }
    }
    log_info("%s: relay=%s, conn_use=%u, tls=%s%s%s, sent=%zu, deferred=%zu, bounced=%zu",
             dr->id, s->where, s->uses, s->tls ? tls_version(s->st) : "none",
             s->tls ? " " : "", s->tls ? tls_cipher(s->st) : "", sent, deferred, bounced);
}

static void smtp_deliver(void *arg, struct deliver_request *dr)
{
    struct smtp_ctx *ctx = arg;
    struct queue_file qf;
    struct str err = STR_INIT, path = STR_INIT;
    struct smtp_target *targets = NULL;
    struct smtp_session *s;
    struct smtp_policy pol;
    bool *decided = xcalloc(dr->nrcpt + 1, sizeof(*decided));
    const char *nexthop = dr->nexthop.s ? dr->nexthop.s : "";
    enum deliver_status fail = DELIVER_DEFER;
    char dsn[16] = "4.4.1";
    size_t ntargets = 0;
    unsigned port;

    dr->dead = false;
    smtp_policy_init(&pol);
    str_printf(&path, "active/%s", dr->id);
    if (queue_file_open(path.s, O_RDONLY, &qf, &err) < 0) {
        log_warn("%s: cannot open the queue file: %s", dr->id,
                 err.len ? err.s : strerror(errno));
        all_results(dr, decided, DELIVER_DEFER, "4.3.0", "cannot open the queue file");
        goto out_nofile;
    }
    if (smtp_policy_get(ctx, nexthop, &pol, &fail, dsn, &err) < 0) {
        all_results(dr, decided, fail, dsn, err.s);
        goto out;
    }
    s = cache_take(ctx, nexthop);
    if (s == NULL) {
        targets = xcalloc(SMTP_TARGETS_MAX, sizeof(*targets));
        str_clear(&err);
        if (smtp_targets(ctx, nexthop, &port, targets, SMTP_TARGETS_MAX, &ntargets, &fail,
                         dsn, &err) < 0) {
            all_results(dr, decided, fail, dsn, err.s ? err.s : "no route");
            goto out;
        }
        /* a 5xx greeting bounces only when every server gave one */
        fail = DELIVER_BOUNCE;
        for (size_t i = 0; i < ntargets && s == NULL; i++) {
            enum deliver_status f = DELIVER_DEFER;
            char d[16] = "4.4.1";
            struct str why = STR_INIT;

            s = smtp_session_open(ctx, &pol, &targets[i], port, &f, d, &why);
            if (s == NULL) {
                log_info("%s: %s", dr->id, why.s ? why.s : "connection failed");
                if (f != DELIVER_BOUNCE)
                    fail = DELIVER_DEFER;
                snprintf(dsn, sizeof(dsn), "%s", d);
                str_clear(&err);
                str_append(&err, why.s ? why.s : "", why.len);
            }
            str_free(&why);
        }
        if (s == NULL) {
            if (fail != DELIVER_BOUNCE && dsn[0] != '4')
                snprintf(dsn, sizeof(dsn), "4.4.1");
            /* no server of the next hop took a session: qmgr may pause it */
            dr->dead = fail != DELIVER_BOUNCE;
            all_results(dr, decided, fail, dsn, err.len ? err.s : "no server answered");
            goto out;
        }
    }
    if (smtp_transaction(ctx, s, &qf, dr, decided) == 0) {
        log_summary(dr, s);
        cache_put(ctx, s, nexthop);
    } else {
        log_summary(dr, s);
        smtp_session_close(ctx, s, false);
    }
    all_results(dr, decided, DELIVER_DEFER, "4.4.2", "delivery not finished");
out:
    queue_file_close(&qf);
out_nofile:
    smtp_policy_free(&pol);
    free(targets);
    free(decided);
    str_free(&err);
    str_free(&path);
}

/* ---- the request loop ---- */

/* Housekeeping between requests: a kept session is closed when its idle time is
 * over; while one is kept, the wait ticks faster. */
static int wait_tick(void *arg)
{
    struct smtp_ctx *ctx = arg;

    if (ctx->cached != NULL && time(NULL) - ctx->cached->idle_since > SMTP_REUSE_IDLE)
        cache_drop(ctx, true);
    return ctx->cached != NULL ? 250 : 1000;
}

static void smtp_service(struct server *srv, int *fd)
{
    struct smtp_ctx *ctx = srv->ctx;
    struct stream *st;
    int ipc_ms = (int)conf_time_ms(srv->conf, CONF_ipc_timeout);
    struct server_wait w = { .idle_ms = conf_time_ms(srv->conf, CONF_max_idle),
                             .tick = wait_tick, .arg = ctx };
    const struct deliver_agent agent = { .deliver = smtp_deliver, .ctx = ctx };

    st = stream_fdopen(*fd);
    *fd = -1;
    stream_set_timeout(st, ipc_ms);
    deliver_serve(st, &w, &agent);
    cache_drop(ctx, true);
    stream_close(st);
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .name = "smtp",
        .pre_jail = smtp_pre_jail,
        .service = smtp_service,
    };

    server_main(argc, argv, &opts);
}
