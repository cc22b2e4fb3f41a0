/* Where to send and how to get there: the servers for a nexthop ("[host]:port" and
 * "[addr]:port" taken as they are, a domain through its MX records, or its own
 * addresses when it has none), and a session with one of them: connect, greeting,
 * EHLO (HELO when EHLO is refused), STARTTLS and AUTH as the next hop's policy
 * (smtp_policy.c) asks.  DNS answers and server replies are untrusted; dns.c and
 * smtp_reply.c check them. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns.h"
#include "log.h"
#include "smtp.h"
#include "sock.h"
#include "stream.h"
#include "tls.h"
#include "xmalloc.h"

/* ---- targets ---- */

static void fail_set(enum deliver_status *fail, char dsn[16], enum deliver_status st,
                     const char *code)
{
    *fail = st;
    snprintf(dsn, 16, "%s", code);
}

static bool name_ascii(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* Adds the addresses of host to the list; the lookup's status. */
static enum dns_status add_host(struct smtp_ctx *ctx, const char *host, struct smtp_target *t,
                                size_t max, size_t *n, struct str *err)
{
    struct dns_addr a[SMTP_ADDR_MAX];
    size_t na = 0;
    enum dns_status st;
    unsigned char buf[sizeof(struct in6_addr)];

    if (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1) {
        if (*n < max) {
            snprintf(t[*n].host, sizeof(t[*n].host), "%s", host);
            snprintf(t[*n].addr, sizeof(t[*n].addr), "%s", host);
            (*n)++;
        }
        return DNS_OK;
    }
    st = dns_addrs(ctx->dns, host, a, SMTP_ADDR_MAX, &na, err);
    for (size_t i = 0; i < na && *n < max; i++) {
        snprintf(t[*n].host, sizeof(t[*n].host), "%s", host);
        snprintf(t[*n].addr, sizeof(t[*n].addr), "%s", a[i].text);
        (*n)++;
    }
    return st;
}

int smtp_targets(struct smtp_ctx *ctx, const char *nexthop, unsigned *port,
                 struct smtp_target *t, size_t max, size_t *n, enum deliver_status *fail,
                 char dsn[16], struct str *err)
{
    char name[256];
    const char *p = nexthop, *end;
    bool literal = false;
    struct dns_mx mx[SMTP_MX_MAX];
    size_t nmx = 0, nlen;
    int nxdomain = 0;
    enum dns_status st;
    bool tempfail = false;

    *n = 0;
    *port = ctx->port;
    if (p[0] == '[') {
        literal = true;
        end = strchr(p, ']');
        if (end == NULL)
            goto bad;
        p++;
        if (strncasecmp(p, "ipv6:", 5) == 0)
            p += 5;
    } else {
        end = strchr(p, ':');
        if (end == NULL)
            end = p + strlen(p);
    }
    nlen = (size_t)(end - p);
    if (nlen == 0 || nlen >= sizeof(name))
        goto bad;
    memcpy(name, p, nlen);
    name[nlen] = '\0';
    if (nlen > 0 && name[nlen - 1] == '.')
        name[nlen - 1] = '\0';
    if (literal)
        end++;
    if (*end == ':') {
        char *e;
        unsigned long v;

        errno = 0;
        v = strtoul(end + 1, &e, 10);
        if (errno != 0 || *e != '\0' || e == end + 1 || v == 0 || v > 65535)
            goto bad;
        *port = (unsigned)v;
    } else if (*end != '\0') {
        goto bad;
    }
    if (!name_ascii(name)) {
        fail_set(fail, dsn, DELIVER_BOUNCE, "5.1.2");
        str_printf(err, "cannot look up %s: internationalised domain names are not supported",
                   nexthop);
        return -1;
    }
    if (literal) {
        st = add_host(ctx, name, t, max, n, err);
        goto addresses;
    }
    st = dns_mx(ctx->dns, name, mx, SMTP_MX_MAX, &nmx, &nxdomain, err);
    switch (st) {
    case DNS_NULLMX:
        fail_set(fail, dsn, DELIVER_BOUNCE, "5.1.10");
        str_clear(err);
        str_printf(err, "recipient domain %s does not accept mail (null MX)", name);
        return -1;
    case DNS_TEMPFAIL:
        fail_set(fail, dsn, DELIVER_DEFER, "4.4.3");
        {
            struct str why = STR_INIT;

            str_append(&why, err->s ? err->s : "", err->len);
            str_clear(err);
            str_printf(err, "Host or domain name not found. Name service error for name=%s "
                            "type=MX: %s", name, why.len ? why.s : "temporary failure");
            str_free(&why);
        }
        return -1;
    case DNS_NOTFOUND:
        if (nxdomain) {
            fail_set(fail, dsn, DELIVER_BOUNCE, "5.1.2");
            str_clear(err);
            str_printf(err, "Host or domain name not found: %s does not exist", name);
            return -1;
        }
        /* no MX: the domain's own addresses, as if it were its MX */
        snprintf(mx[0].host, sizeof(mx[0].host), "%s", name);
        mx[0].pref = 0;
        nmx = 1;
        break;
    case DNS_OK:
        break;
    }
    str_clear(err);
    /* our own name among the exchangers: only better ones may be used */
    {
        bool self = false;
        unsigned self_pref = 0;

        for (size_t i = 0; i < nmx; i++) {
            if (strcasecmp(mx[i].host, ctx->myhostname) == 0 && (!self || mx[i].pref < self_pref)) {
                self = true;
                self_pref = mx[i].pref;
            }
        }
        if (self) {
            size_t k = 0;

            for (size_t i = 0; i < nmx; i++)
                if (mx[i].pref < self_pref)
                    mx[k++] = mx[i];
            nmx = k;
            if (nmx == 0) {
                fail_set(fail, dsn, DELIVER_BOUNCE, "5.4.6");
                str_printf(err, "mail for %s loops back to myself", name);
                return -1;
            }
        }
    }
    st = DNS_NOTFOUND;
    for (size_t i = 0; i < nmx && *n < max; i++) {
        struct str why = STR_INIT;
        enum dns_status hs = add_host(ctx, mx[i].host, t, max, n, &why);

        if (hs == DNS_TEMPFAIL)
            tempfail = true;
        if (hs == DNS_OK)
            st = DNS_OK;
        else if (why.len > 0) {
            str_clear(err);
            str_append(err, why.s, why.len);
        }
        str_free(&why);
    }
    if (tempfail && st != DNS_OK)
        st = DNS_TEMPFAIL;
addresses:
    if (*n > 0)
        return 0;
    {
        struct str why = STR_INIT;

        str_append(&why, err->s ? err->s : "", err->len);
        str_clear(err);
        if (st == DNS_TEMPFAIL) {
            fail_set(fail, dsn, DELIVER_DEFER, "4.4.3");
            str_printf(err, "Host or domain name not found. Name service error for %s: %s",
                       name, why.len ? why.s : "temporary failure");
        } else if (literal || nmx == 1) {
            fail_set(fail, dsn, DELIVER_BOUNCE, "5.4.4");
            str_printf(err, "Host or domain name not found: no address for %s%s%s", name,
                       why.len ? ": " : "", why.len ? why.s : "");
        } else {
            fail_set(fail, dsn, DELIVER_DEFER, "4.4.4");
            str_printf(err, "no address for any mail exchanger of %s", name);
        }
        str_free(&why);
    }
    return -1;
bad:
    fail_set(fail, dsn, DELIVER_DEFER, "4.3.5");
    str_printf(err, "unusable next hop \"%s\"", nexthop);
    return -1;
}

/* ---- sessions ---- */

static void session_free(struct smtp_session *s)
{
    if (s->st != NULL)
        stream_close(s->st);
    str_free(&s->dest);
    free(s);
}

/* A command's reply (flushing first); 0, or -1 with err. */
static int command_reply(struct smtp_session *s, struct smtp_reply *r, struct str *err,
                         const char *cmd)
{
    if (smtp_command(s, "%s", cmd) < 0 || stream_flush(s->st) < 0) {
        str_printf(err, "lost connection with %s while sending %s", s->where, cmd);
        return -1;
    }
    if (smtp_reply_read(s, r, err) < 0) {
        str_printf(err, " (in reply to %s)", cmd);
        return -1;
    }
    return 0;
}

/* A refusal: BOUNCE for 5xx, DEFER for anything else. */
static void refused(struct smtp_session *s, const struct smtp_reply *r, const char *cmd,
                    enum deliver_status *fail, char dsn[16], struct str *err)
{
    fail_set(fail, dsn, r->code >= 500 ? DELIVER_BOUNCE : DELIVER_DEFER, r->dsn);
    str_printf(err, "host %s said: %s (in reply to %s)", s->where, r->text.s, cmd);
}

static struct smtp_session *session_open(struct smtp_ctx *ctx, const struct smtp_policy *pol,
                                         const struct smtp_target *t,
                                         unsigned port, bool allow_tls, bool *tls_failed,
                                         enum deliver_status *fail, char dsn[16],
                                         struct str *err)
{
    struct smtp_session *s;
    struct smtp_reply r;
    char cmd[300];
    int fd;

    *tls_failed = false;
    fd = sock_connect_inet(t->addr, port, ctx->connect_ms);
    if (fd < 0) {
        fail_set(fail, dsn, DELIVER_DEFER, "4.4.1");
        str_printf(err, "connect to %s[%s]:%u: %s", t->host, t->addr, port, strerror(errno));
        return NULL;
    }
    s = xcalloc(1, sizeof(*s));
    s->st = stream_fdopen(fd);
    stream_set_timeout(s->st, ctx->helo_ms);
    snprintf(s->host, sizeof(s->host), "%s", t->host);
    snprintf(s->addr, sizeof(s->addr), "%s", t->addr);
    s->port = port;
    snprintf(s->where, sizeof(s->where), "%s[%s]:%u", t->host, t->addr, port);
    str_init(&s->dest);
    smtp_reply_init(&r);
    if (smtp_reply_read(s, &r, err) < 0) {
        fail_set(fail, dsn, DELIVER_DEFER, "4.4.2");
        str_appends(err, " while receiving the initial server greeting");
        goto fail;
    }
    if (r.code != 220) {
        fail_set(fail, dsn, r.code >= 500 ? DELIVER_BOUNCE : DELIVER_DEFER, r.dsn);
        str_printf(err, "host %s refused to talk to me: %s", s->where, r.text.s);
        goto fail;
    }
    for (int round = 0; round < 2; round++) {
        snprintf(cmd, sizeof(cmd), "EHLO %s", ctx->myhostname);
        if (command_reply(s, &r, err, cmd) < 0) {
            fail_set(fail, dsn, DELIVER_DEFER, "4.4.2");
            goto fail;
        }
        if (r.code == 250) {
            smtp_ehlo_parse(s, &r);
        } else if (r.code >= 500 && round == 0) {
            snprintf(cmd, sizeof(cmd), "HELO %s", ctx->myhostname);
            if (command_reply(s, &r, err, cmd) < 0) {
                fail_set(fail, dsn, DELIVER_DEFER, "4.4.2");
                goto fail;
            }
            if (r.code != 250) {
                refused(s, &r, "HELO", fail, dsn, err);
                goto fail;
            }
            s->ext = 0;
        } else {
            refused(s, &r, "EHLO", fail, dsn, err);
            goto fail;
        }
        if (round == 1 || pol->level == SMTP_TLS_NONE || !allow_tls)
            break;
        if (ctx->tls == NULL || !(s->ext & SMTP_EXT_STARTTLS)) {
            if (pol->level == SMTP_TLS_MAY)
                break;
            fail_set(fail, dsn, DELIVER_DEFER, "4.7.4");
            if (ctx->tls == NULL)
                str_printf(err, "TLS is required for %s, but client TLS could not be set up",
                           s->where);
            else
                str_printf(err, "TLS is required%s, but was not offered by host %s",
                           pol->auth ? " to send a credential" : "", s->where);
            goto fail;
        }
        if (command_reply(s, &r, err, "STARTTLS") < 0) {
            fail_set(fail, dsn, DELIVER_DEFER, "4.4.2");
            goto fail;
        }
        if (r.code != 220) {
            if (pol->level == SMTP_TLS_MAY)
                break;
            refused(s, &r, "STARTTLS", fail, dsn, err);
            *fail = DELIVER_DEFER;
            goto fail;
        }
        {
            struct str why = STR_INIT;
            enum tls_verify v = pol->level == SMTP_TLS_VERIFY ? TLS_VERIFY_PEER
                                                              : TLS_VERIFY_NONE;
            const char *name = pol->match != SMTP_MATCH_HOSTNAME && pol->match_name[0]
                                   ? pol->match_name : s->host;

            if (tls_client_start(ctx->tls, s->st, name, v, ctx->helo_ms, &why) < 0) {
                fail_set(fail, dsn, DELIVER_DEFER, "4.7.5");
                str_printf(err, "TLS handshake with %s failed: %s", s->where,
                           why.len ? why.s : "error");
                str_free(&why);
                *tls_failed = true;
                goto fail;
            }
            str_free(&why);
        }
        s->tls = true;
        log_info("%s TLS connection established to %s: %s with cipher %s (%d bits)",
                 tls_peer_verified(s->st) ? "Verified" : "Anonymous", s->where,
                 tls_version(s->st) ? tls_version(s->st) : "?",
                 tls_cipher(s->st) ? tls_cipher(s->st) : "?", tls_cipher_bits(s->st));
        if (pol->level == SMTP_TLS_VERIFY && !tls_peer_verified(s->st)) {
            fail_set(fail, dsn, DELIVER_DEFER, "4.7.5");
            str_printf(err, "server certificate of %s not verified", s->where);
            goto fail;
        }
    }
    if (pol->auth && smtp_auth(ctx, s, pol, fail, dsn, err) < 0) {
        /* a refusal leaves a working connection: end it politely */
        smtp_reply_free(&r);
        smtp_session_close(ctx, s, strcmp(dsn, "4.4.2") != 0);
        return NULL;
    }
    smtp_reply_free(&r);
    return s;
fail:
    smtp_reply_free(&r);
    session_free(s);
    return NULL;
}

struct smtp_session *smtp_session_open(struct smtp_ctx *ctx, const struct smtp_policy *policy,
                                       const struct smtp_target *t,
                                       unsigned port, enum deliver_status *fail,
                                       char dsn[16], struct str *err)
{
    bool tls_failed;
    struct smtp_session *s = session_open(ctx, policy, t, port, true, &tls_failed, fail, dsn,
                                          err);

    if (s == NULL && tls_failed && policy->level == SMTP_TLS_MAY) {
        log_info("%s; trying again without TLS", err->s);
        str_clear(err);
        s = session_open(ctx, policy, t, port, false, &tls_failed, fail, dsn, err);
    }
    return s;
}

void smtp_session_close(struct smtp_ctx *ctx, struct smtp_session *s, bool polite)
{
    if (s == NULL)
        return;
    if (polite) {
        struct smtp_reply r;
        struct str err = STR_INIT;

        smtp_reply_init(&r);
        stream_set_timeout(s->st, ctx->helo_ms < 10000 ? ctx->helo_ms : 10000);
        if (smtp_command(s, "QUIT") == 0 && stream_flush(s->st) == 0)
            (void)smtp_reply_read(s, &r, &err);
        smtp_reply_free(&r);
        str_free(&err);
    }
    session_free(s);
}

int smtp_session_reset(struct smtp_ctx *ctx, struct smtp_session *s)
{
    struct smtp_reply r;
    struct str err = STR_INIT;
    int rc = -1;

    smtp_reply_init(&r);
    stream_set_timeout(s->st, ctx->helo_ms);
    if (command_reply(s, &r, &err, "RSET") == 0 && r.code == 250)
        rc = 0;
    smtp_reply_free(&r);
    str_free(&err);
    return rc;
}
