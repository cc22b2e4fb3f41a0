/* smtpd policy at the door (policy.h).  The order is Postfix's with smtpd_delay_reject:
 * client (check_client_access, then dnsbl_sites), HELO (check_helo_access, then the
 * FQDN check), sender (check_sender_access, FQDN, unknown domain), recipient
 * (check_recipient_access, FQDN).  OK in a table ends that stage's checks; DUNNO goes
 * on.  Table values come from the admin, names and addresses from the client: both are
 * bounded and never used as a format. */
#include "policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "checks.h"
#include "conf.h"
#include "dns.h"
#include "dnsbl.h"
#include "log.h"
#include "map.h"
#include "smtpd.h"
#include "xmalloc.h"

#define POLICY_TEXT_MAX 400     /* bytes of a table's reply text used */

static struct {
    struct maplist *client, *helo, *sender, *recipient;
    bool non_fqdn_helo, non_fqdn_sender, non_fqdn_recipient, unknown_sender;
    struct dns *dns;
    struct dnsbl *dnsbl;
    long threshold;
} pol;

void smtpd_policy_setup(struct smtpd_conf *cf, const struct conf *c)
{
    struct str err = STR_INIT;
    char **sites;

    (void)cf;
    pol.client = smtpd_maps_open(c, CONF_check_client_access);
    pol.helo = smtpd_maps_open(c, CONF_check_helo_access);
    pol.sender = smtpd_maps_open(c, CONF_check_sender_access);
    pol.recipient = smtpd_maps_open(c, CONF_check_recipient_access);
    pol.non_fqdn_helo = conf_bool(c, CONF_smtpd_reject_non_fqdn_helo_hostname);
    pol.non_fqdn_sender = conf_bool(c, CONF_smtpd_reject_non_fqdn_sender);
    pol.non_fqdn_recipient = conf_bool(c, CONF_smtpd_reject_non_fqdn_recipient);
    pol.unknown_sender = conf_bool(c, CONF_smtpd_reject_unknown_sender_domain);
    pol.threshold = (long)conf_count(c, CONF_dnsbl_threshold);
    sites = conf_list(c, CONF_dnsbl_sites);
    if (pol.unknown_sender || (sites != NULL && sites[0] != NULL)) {
        pol.dns = dns_open(c, &err);
        if (pol.dns == NULL)
            log_fatal("DNS resolver: %s", err.s ? err.s : "cannot open");
    }
    if (sites != NULL && sites[0] != NULL) {
        pol.dnsbl = dnsbl_open(sites, pol.dns, (int)conf_time_ms(c, CONF_dnsbl_timeout),
                               conf_time_ms(c, CONF_dnsbl_ttl), &err);
        if (pol.dnsbl == NULL)
            log_fatal("%s", err.s ? err.s : "dnsbl_sites: cannot parse");
    }
    strv_free(sites);
    str_free(&err);
}

void smtpd_policy_txn_free(struct smtpd_policy_txn *p)
{
    str_free(&p->why);
    str_free(&p->redirect);
    str_free(&p->filter);
    memset(p, 0, sizeof(*p));
}

void smtpd_policy_session_free(struct smtpd_policy_session *p)
{
    str_free(&p->dnsbl_reply);
    memset(p, 0, sizeof(*p));
}

/* ---- access tables ---- */

enum access { ACCESS_DUNNO, ACCESS_OK, ACCESS_REPLIED };

/* A reply code "4NN" or "5NN" at the start of v, with an optional enhanced status
 * code of the same class after it.  Returns the code (0 when v has none), dsn set. */
static int custom_code(const char *v, char dsn[16], const char **text)
{
    if (!(v[0] == '4' || v[0] == '5') || !isdigit((unsigned char)v[1])
        || !isdigit((unsigned char)v[2]) || !(v[3] == '\0' || v[3] == ' '))
        return 0;
    int code = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
    const char *p = v + 3;
    while (*p == ' ')
        p++;
    snprintf(dsn, 16, "%c.7.1", v[0]);
    /* d.ddd.ddd */
    if (p[0] == v[0] && p[1] == '.') {
        const char *q = p + 2;
        size_t a = 0, b = 0;
        while (isdigit((unsigned char)q[a]))
            a++;
        if (a >= 1 && a <= 3 && q[a] == '.') {
            while (isdigit((unsigned char)q[a + 1 + b]))
                b++;
            if (b >= 1 && b <= 3 && (q[a + 1 + b] == '\0' || q[a + 1 + b] == ' ')) {
                snprintf(dsn, 16, "%.*s", (int)(2 + a + 1 + b), p);
                p = q + a + 1 + b;
                while (*p == ' ')
                    p++;
            }
        }
    }
    *text = p;
    return code;
}

static bool word_is(const char *v, const char *word, const char **rest)
{
    size_t n = strlen(word);

    if (strncasecmp(v, word, n) != 0 || !(v[n] == '\0' || v[n] == ' ' || v[n] == '\t'))
        return false;
    v += n;
    while (*v == ' ' || *v == '\t')
        v++;
    *rest = v;
    return true;
}

/* Acts on one table value.  stage: "Client host", "Helo command", "Sender address",
 * "Recipient address"; what: "[1.2.3.4]" or "<addr>" for the reply. */
static enum access access_act(struct smtpd_session *s, const char *rcpt, const char *stage,
                              const char *what, const char *value)
{
    struct smtpd_policy_txn *pt = &s->txn.policy;
    const char *text;
    char dsn[16];
    int code;

    while (*value == ' ' || *value == '\t')
        value++;
    if (word_is(value, "OK", &text) || (value[0] != '\0' && strspn(value, "0123456789")
                                        == strlen(value)))
        return ACCESS_OK;
    if (word_is(value, "DUNNO", &text))
        return ACCESS_DUNNO;
    if (word_is(value, "REJECT", &text)) {
        smtpd_reject(s, "RCPT", rcpt, 554, "5.7.1", "%s: %s rejected: %.*s", what, stage,
                     POLICY_TEXT_MAX, *text ? text : "Access denied");
        return ACCESS_REPLIED;
    }
    if (word_is(value, "DEFER", &text)) {
        smtpd_reject(s, "RCPT", rcpt, 450, "4.7.1", "%s: %s rejected: %.*s", what, stage,
                     POLICY_TEXT_MAX, *text ? text : "Access denied");
        return ACCESS_REPLIED;
    }
    if (word_is(value, "HOLD", &text) || word_is(value, "DISCARD", &text)) {
        bool hold = toupper((unsigned char)value[0]) == 'H';
        if (!pt->hold && !pt->discard) {
            str_clear(&pt->why);
            str_printf(&pt->why, "%s: RCPT from [%s]: %s: %.*s", hold ? "hold" : "discard",
                       s->addr, what, POLICY_TEXT_MAX, *text ? text : stage);
        }
        if (hold)
            pt->hold = true;
        else
            pt->discard = true;
        return hold ? ACCESS_DUNNO : ACCESS_OK;
    }
    if ((code = custom_code(value, dsn, &text)) != 0) {
        smtpd_reject(s, "RCPT", rcpt, code, dsn, "%s: %s rejected: %.*s", what, stage,
                     POLICY_TEXT_MAX, *text ? text : "Access denied");
        return ACCESS_REPLIED;
    }
    log_warn("access table: unknown action \"%.*s\" for %s", 100, value, what);
    smtpd_reject(s, "RCPT", rcpt, 451, "4.3.5", "%s: %s rejected: Server configuration error",
                 what, stage);
    return ACCESS_REPLIED;
}

/* Looks key up in ml: 1 found (value set), 0 not, -1 after a 451 reply. */
static int access_get(struct smtpd_session *s, struct maplist *ml, const char *rcpt,
                      const char *stage, const char *what, const char *key, struct str *value)
{
    struct str err = STR_INIT;
    int r = maplist_lookup(ml, key, value, &err);

    if (r < 0) {
        log_warn("%s lookup of \"%.*s\" failed: %s", stage, 200, key,
                 err.s ? err.s : "lookup error");
        smtpd_reject(s, "RCPT", rcpt, 451, "4.3.0", "%s: %s rejected: Temporary lookup failure",
                     what, stage);
    }
    str_free(&err);
    return r;
}

/* Tries the keys in order; the first found decides. */
static enum access access_keys(struct smtpd_session *s, struct maplist *ml, const char *rcpt,
                               const char *stage, const char *what, char **keys, size_t n)
{
    struct str v = STR_INIT;
    enum access a = ACCESS_DUNNO;

    for (size_t i = 0; i < n; i++) {
        int r = access_get(s, ml, rcpt, stage, what, keys[i], &v);
        if (r < 0) {
            a = ACCESS_REPLIED;
            break;
        }
        if (r == 1) {
            a = access_act(s, rcpt, stage, what, v.s ? v.s : "");
            break;
        }
    }
    str_free(&v);
    return a;
}

/* The keys of a domain (itself, then its parents) and, for an address, the address
 * first and "localpart@" last. */
static size_t domain_keys(const char *addr, char **keys, size_t max, char *buf, size_t size)
{
    const char *at = strrchr(addr, '@');
    const char *dom = at ? at + 1 : addr;
    size_t n = 0;

    if (at != NULL && n < max)
        keys[n++] = (char *)addr;
    for (const char *d = dom; d != NULL && *d != '\0' && n < max - 1;) {
        keys[n++] = (char *)d;
        d = strchr(d, '.');
        if (d != NULL)
            d++;
    }
    if (at != NULL && n < max && (size_t)(at - addr) + 2 <= size) {
        snprintf(buf, size, "%.*s@", (int)(at - addr), addr);
        keys[n++] = buf;
    }
    return n;
}

static enum access address_access(struct smtpd_session *s, struct maplist *ml,
                                  const char *rcpt, const char *stage, const char *addr)
{
    char *keys[130], local[300];
    struct str what = STR_INIT;
    enum access a;

    if (ml == NULL || addr[0] == '\0')
        return ACCESS_DUNNO;
    size_t n = domain_keys(addr, keys, 130, local, sizeof(local));
    str_printf(&what, "<%s>", addr);
    a = access_keys(s, ml, rcpt, stage, what.s, keys, n);
    str_free(&what);
    return a;
}

static enum access client_access(struct smtpd_session *s, const char *rcpt, const char *what)
{
    char nets[3][64], *keys[4];
    size_t n = 0;
    struct in_addr a4;

    if (pol.client == NULL)
        return ACCESS_DUNNO;
    keys[n++] = s->addr;
    if (inet_pton(AF_INET, s->addr, &a4) == 1) {
        const unsigned char *b = (const unsigned char *)&a4;
        snprintf(nets[0], sizeof(nets[0]), "%u.%u.%u", b[0], b[1], b[2]);
        snprintf(nets[1], sizeof(nets[1]), "%u.%u", b[0], b[1]);
        snprintf(nets[2], sizeof(nets[2]), "%u", b[0]);
        for (int i = 0; i < 3; i++)
            keys[n++] = nets[i];
    }
    return access_keys(s, pol.client, rcpt, "Client host", what, keys, n);
}

/* ---- address checks ---- */

/* A fully qualified domain: LDH labels, at least two, not all digits at the end; an
 * address literal counts as qualified. */
static bool fqdn(const char *d)
{
    size_t n = strlen(d), label = 0, labels = 0;
    bool last_alpha = false;

    if (n >= 2 && d[0] == '[' && d[n - 1] == ']')
        return true;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i <= n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.' || c == '\0') {
            if (label == 0)
                return false;
            labels++;
            label = 0;
            continue;
        }
        if (label == 0)
            last_alpha = false;
        if (!(isalnum(c) || c == '-' || c == '_' || c >= 0x80))
            return false;
        if (!isdigit(c))
            last_alpha = true;
        label++;
    }
    return labels >= 2 && last_alpha;
}

static const char *domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "";
}

/* 0 exists, 1 unknown (no MX, no address, or a null MX: *nullmx), 2 DNS failure. */
static int domain_lookup(const char *domain, bool *nullmx)
{
    struct dns_mx mx[4];
    struct dns_addr a[4];
    size_t n = 0;
    int nx = 0;
    struct str err = STR_INIT;
    enum dns_status st;
    int r;

    *nullmx = false;
    st = dns_mx(pol.dns, domain, mx, 4, &n, &nx, &err);
    if (st == DNS_OK)
        r = 0;
    else if (st == DNS_NULLMX)
        r = 1, *nullmx = true;
    else if (st == DNS_TEMPFAIL)
        r = 2;
    else if (nx)
        r = 1;
    else {
        st = dns_addrs(pol.dns, domain, a, 4, &n, &err);
        r = st == DNS_OK ? 0 : st == DNS_TEMPFAIL ? 2 : 1;
    }
    if (r == 2)
        log_info("sender domain %s: %s", domain, err.s ? err.s : "DNS failure");
    str_free(&err);
    return r;
}

static int sender_stage(struct smtpd_session *s, const char *rcpt)
{
    struct smtpd_policy_txn *pt = &s->txn.policy;
    const char *sender = s->txn.sender.s ? s->txn.sender.s : "";
    const char *dom = domain_of(sender);

    if (sender[0] == '\0')
        return 0;
    switch (address_access(s, pol.sender, rcpt, "Sender address", sender)) {
    case ACCESS_REPLIED: return -1;
    case ACCESS_OK: return 0;
    case ACCESS_DUNNO: break;
    }
    if (pol.non_fqdn_sender && !fqdn(dom)) {
        smtpd_reject(s, "RCPT", rcpt, 504, "5.5.2",
                     "<%s>: Sender address rejected: need fully-qualified address", sender);
        return -1;
    }
    if (pol.unknown_sender && dom[0] != '[') {
        bool nullmx = false;
        if (pt->sender_domain == 0)
            pt->sender_domain = 1 + domain_lookup(dom, &nullmx) + (nullmx ? 3 : 0);
        if (pt->sender_domain == 2) {
            smtpd_reject(s, "RCPT", rcpt, 550, "5.1.8",
                         "<%s>: Sender address rejected: Domain not found", sender);
            return -1;
        }
        if (pt->sender_domain == 5) {
            smtpd_reject(s, "RCPT", rcpt, 550, "5.7.27",
                         "<%s>: Sender address rejected: Domain %s does not accept mail "
                         "(nullMX)", sender, dom);
            return -1;
        }
        if (pt->sender_domain == 3) {
            smtpd_reject(s, "RCPT", rcpt, 450, "4.1.8",
                         "<%s>: Sender address rejected: Domain not found", sender);
            return -1;
        }
    }
    return 0;
}

static int client_stage(struct smtpd_session *s, const char *rcpt)
{
    struct smtpd_policy_session *ps = &s->policy;
    char what[80];

    snprintf(what, sizeof(what), "[%s]", s->addr);
    switch (client_access(s, rcpt, what)) {
    case ACCESS_REPLIED: return -1;
    case ACCESS_OK: return 0;
    case ACCESS_DUNNO: break;
    }
    if (pol.dnsbl == NULL)
        return 0;
    if (ps->dnsbl == 0) {
        struct dnsbl_verdict v = { 0, STR_INIT, STR_INIT };
        dnsbl_lookup(pol.dnsbl, s->addr, &v);
        ps->dnsbl = 1;
        if (v.score >= pol.threshold && v.site.len > 0) {
            ps->dnsbl = 2;
            str_clear(&ps->dnsbl_reply);
            str_printf(&ps->dnsbl_reply, "Service unavailable; client [%s] blocked using %s",
                       s->addr, v.site.s);
            if (v.txt.len > 0)
                str_printf(&ps->dnsbl_reply, "; %s", v.txt.s);
        }
        str_free(&v.site);
        str_free(&v.txt);
    }
    if (ps->dnsbl == 2) {
        smtpd_reject(s, "RCPT", rcpt, 554, "5.7.1", "%s", ps->dnsbl_reply.s);
        return -1;
    }
    return 0;
}

static int helo_stage(struct smtpd_session *s, const char *rcpt)
{
    const char *helo = s->helo.len ? s->helo.s : "";
    char *keys[130];
    size_t n = 0;
    struct str what = STR_INIT;
    enum access a = ACCESS_DUNNO;

    if (helo[0] == '\0')
        return 0;
    str_printf(&what, "<%s>", helo);
    if (pol.helo != NULL) {
        for (const char *d = helo; d != NULL && *d != '\0' && n < 130;) {
            keys[n++] = (char *)d;
            d = strchr(d, '.');
            if (d != NULL)
                d++;
        }
        a = access_keys(s, pol.helo, rcpt, "Helo command", what.s, keys, n);
    }
    if (a == ACCESS_DUNNO && pol.non_fqdn_helo && !fqdn(helo)) {
        smtpd_reject(s, "RCPT", rcpt, 504, "5.5.2",
                     "%s: Helo command rejected: need fully-qualified hostname", what.s);
        a = ACCESS_REPLIED;
    }
    str_free(&what);
    return a == ACCESS_REPLIED ? -1 : 0;
}

static int recipient_stage(struct smtpd_session *s, const char *rcpt)
{
    switch (address_access(s, pol.recipient, rcpt, "Recipient address", rcpt)) {
    case ACCESS_REPLIED: return -1;
    case ACCESS_OK: return 0;
    case ACCESS_DUNNO: break;
    }
    if (pol.non_fqdn_recipient && !fqdn(domain_of(rcpt))) {
        smtpd_reject(s, "RCPT", rcpt, 504, "5.5.2",
                     "<%s>: Recipient address rejected: need fully-qualified address", rcpt);
        return -1;
    }
    return 0;
}

int smtpd_policy_rcpt(struct smtpd_session *s, const char *rcpt)
{
    /* permit_mynetworks, permit_sasl_authenticated */
    if (s->trusted || s->authenticated)
        return 0;
    /* DISCARD ends the checks: the message is taken and dropped */
    int (*stage[])(struct smtpd_session *, const char *) = {
        client_stage, helo_stage, sender_stage, recipient_stage,
    };
    for (size_t i = 0; i < sizeof(stage) / sizeof(stage[0]); i++) {
        if (s->txn.policy.discard)
            return 0;
        if (stage[i](s, rcpt) < 0)
            return -1;
    }
    return 0;
}
