/* Address classes, alias expansion, routes and mailboxes (see router.h).  Addresses
 * come from the network (through smtpd) and map values from the admin's tables: both
 * are checked before they name a file, and expansion is bounded in depth and count. */
#include "router.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "map.h"
#include "priv.h"
#include "xmalloc.h"

#define ROUTER_DEPTH_MAX 10

struct router {
    char **local_domains;           /* mydestination + myhostname + localhost */
    char **virtual_domains;
    char **relay_domains;
    char *myhostname;
    char *delimiters;
    char *relayhost;
    char *home_mailbox;
    char *vmail_base;
    char *default_privs;
    char *vmail_user;
    bool vmail_known;               /* vmail_uid, vmail_gid looked up */
    uid_t vmail_uid;
    gid_t vmail_gid;
    char *self_name;                /* the user we run as (not root), looked up once */
    long long expansion_limit;
    struct maplist *alias;
    struct maplist *valias;
    struct maplist *vmailbox;
    struct maplist *transport;
    struct map *passwd;
};

/* One address of an expansion: final, and whether a table named it (an alias that
 * points to itself exists even without a user). */
struct expansion {
    char **addr;
    bool *known;
    size_t n;
    size_t total;                   /* addresses produced, for expansion_limit */
};

const char *router_class_name(enum router_class c)
{
    switch (c) {
    case ROUTER_LOCAL:
        return "local";
    case ROUTER_VIRTUAL:
        return "virtual";
    case ROUTER_RELAY:
        return "relay";
    case ROUTER_REMOTE:
    default:
        return "remote";
    }
}

static char **strv_lower(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        for (char *p = v[i]; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    return v;
}

static char **strv_push(char **v, const char *s)
{
    size_t n = strv_len(v);

    v = xreallocarray(v, n + 2, sizeof(*v));
    v[n] = xstrdup(s);
    v[n + 1] = NULL;
    return v;
}

void router_close(struct router *r)
{
    if (r == NULL)
        return;
    strv_free(r->local_domains);
    strv_free(r->virtual_domains);
    strv_free(r->relay_domains);
    free(r->myhostname);
    free(r->delimiters);
    free(r->relayhost);
    free(r->home_mailbox);
    free(r->vmail_base);
    free(r->default_privs);
    free(r->vmail_user);
    free(r->self_name);
    if (r->alias)
        maplist_close(r->alias);
    if (r->valias)
        maplist_close(r->valias);
    if (r->vmailbox)
        maplist_close(r->vmailbox);
    if (r->transport)
        maplist_close(r->transport);
    if (r->passwd)
        map_close(r->passwd);
    free(r);
}

static struct maplist *open_maps(const struct conf *conf, enum conf_key key, struct str *err)
{
    struct str why = STR_INIT;
    struct maplist *ml = maplist_open(conf_str(conf, key), &why);

    if (ml == NULL)
        str_printf(err, "%s: %s", conf_key_name(key), why.s ? why.s : "cannot open");
    str_free(&why);
    return ml;
}

struct router *router_open(const struct conf *conf, struct str *err)
{
    struct router *r = xcalloc(1, sizeof(*r));

    r->myhostname = xstrdup(conf_str(conf, CONF_myhostname));
    for (char *p = r->myhostname; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    r->local_domains = strv_lower(conf_list(conf, CONF_mydestination));
    r->local_domains = strv_push(r->local_domains, r->myhostname);
    r->local_domains = strv_push(r->local_domains, "localhost");
    r->virtual_domains = strv_lower(conf_list(conf, CONF_virtual_mailbox_domains));
    r->relay_domains = strv_lower(conf_list(conf, CONF_relay_domains));
    r->delimiters = xstrdup(conf_str(conf, CONF_recipient_delimiter));
    r->relayhost = xstrdup(conf_str(conf, CONF_relayhost));
    r->home_mailbox = xstrdup(conf_str(conf, CONF_home_mailbox));
    r->vmail_base = xstrdup(conf_str(conf, CONF_virtual_mailbox_base));
    r->default_privs = xstrdup(conf_str(conf, CONF_default_privs));
    r->vmail_user = xstrdup(conf_str(conf, CONF_vmail_user));
    r->expansion_limit = conf_count(conf, CONF_expansion_limit);
    if ((r->alias = open_maps(conf, CONF_alias_maps, err)) == NULL
        || (r->valias = open_maps(conf, CONF_virtual_alias_maps, err)) == NULL
        || (r->vmailbox = open_maps(conf, CONF_virtual_mailbox_maps, err)) == NULL
        || (r->transport = open_maps(conf, CONF_transport_maps, err)) == NULL) {
        router_close(r);
        return NULL;
    }
    if ((r->passwd = map_open("unix:passwd", err)) == NULL) {
        router_close(r);
        return NULL;
    }
    return r;
}

void router_pin(struct router *r)
{
    maplist_pin(r->alias);
    maplist_pin(r->valias);
    maplist_pin(r->vmailbox);
    maplist_pin(r->transport);
    map_pin(r->passwd);
}

bool router_changed(const struct router *r)
{
    return maplist_changed(r->alias) || maplist_changed(r->valias)
           || maplist_changed(r->vmailbox) || maplist_changed(r->transport)
           || map_changed(r->passwd);
}

static bool domain_in(char *const *list, const char *domain)
{
    size_t dlen = strlen(domain);

    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        const char *d = list[i];

        if (strcasecmp(d, domain) == 0)
            return true;
        /* ".example.com" matches the subdomains of example.com */
        if (d[0] == '.') {
            size_t n = strlen(d);

            if (dlen > n && strcasecmp(domain + dlen - n, d) == 0)
                return true;
        }
    }
    return false;
}

enum router_class router_domain_class(struct router *r, const char *domain)
{
    if (domain_in(r->local_domains, domain))
        return ROUTER_LOCAL;
    if (domain_in(r->virtual_domains, domain))
        return ROUTER_VIRTUAL;
    if (domain_in(r->relay_domains, domain))
        return ROUTER_RELAY;
    return ROUTER_REMOTE;
}

/* The full form of addr: a domain-less address is at myhostname.  The domain is
 * lower-cased. */
static void addr_full(struct router *r, const char *addr, struct str *out)
{
    str_sets(out, addr);
    if (strrchr(addr, '@') == NULL) {
        str_appendc(out, '@');
        str_appends(out, r->myhostname);
    }
    addr_fold_domain(out->s);
}

static const char *addr_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');

    return at ? at + 1 : "";
}

/* Looks addr up as a full address, less its extension, then "@domain" (when
 * catchall).  1 found, 0 not, -1 failure. */
static int lookup_address(struct router *r, struct maplist *ml, const char *addr,
                          bool catchall, struct str *value, struct str *err)
{
    struct str base = STR_INIT, ext = STR_INIT, key = STR_INIT;
    int rc;

    rc = maplist_lookup(ml, addr, value, err);
    if (rc == 0 && r->delimiters[0] != '\0'
        && addr_strip_extension(addr, r->delimiters, &base, &ext) == 1)
        rc = maplist_lookup(ml, base.s, value, err);
    if (rc == 0 && catchall) {
        str_sets(&key, "@");
        str_appends(&key, addr_domain(addr));
        rc = maplist_lookup(ml, key.s, value, err);
    }
    str_free(&base);
    str_free(&ext);
    str_free(&key);
    return rc;
}

/* The local part of addr, and the same less its extension. */
static void local_parts(struct router *r, const char *addr, struct str *local,
                        struct str *base)
{
    const char *at = strrchr(addr, '@');
    size_t n = at ? (size_t)(at - addr) : strlen(addr);

    str_set(local, addr, n);
    str_set(base, addr, n);
    if (r->delimiters[0] != '\0') {
        size_t cut = strcspn(local->s, r->delimiters);

        if (cut > 0 && cut < local->len)
            str_truncate(base, cut);
    }
}

/* alias_maps: by local part, then local part less extension. */
static int lookup_alias(struct router *r, const char *addr, struct str *value,
                        struct str *err)
{
    struct str local = STR_INIT, base = STR_INIT;
    int rc;

    local_parts(r, addr, &local, &base);
    rc = maplist_lookup(r->alias, local.s, value, err);
    if (rc == 0 && base.len != local.len)
        rc = maplist_lookup(r->alias, base.s, value, err);
    str_free(&local);
    str_free(&base);
    return rc;
}

static void verdict_set(struct router_verdict *v, enum router_status st, int code,
                        const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void verdict_set(struct router_verdict *v, enum router_status st, int code,
                        const char *dsn, const char *fmt, ...)
{
    va_list ap;

    v->status = st;
    v->code = code;
    snprintf(v->dsn, sizeof(v->dsn), "%s", dsn);
    str_clear(&v->text);
    va_start(ap, fmt);
    str_vprintf(&v->text, fmt, ap);
    va_end(ap);
}

static bool exp_has(const struct expansion *e, const char *addr)
{
    for (size_t i = 0; i < e->n; i++)
        if (strcasecmp(e->addr[i], addr) == 0)
            return true;
    return false;
}

static void exp_add(struct expansion *e, const char *addr, bool known)
{
    if (exp_has(e, addr))
        return;
    e->addr = xreallocarray(e->addr, e->n + 2, sizeof(*e->addr));
    e->known = xreallocarray(e->known, e->n + 1, sizeof(*e->known));
    e->addr[e->n] = xstrdup(addr);
    e->known[e->n] = known;
    e->n++;
    e->addr[e->n] = NULL;
}

/* Splits a table value into addresses (commas and white space between them). */
static char **value_split(const char *value)
{
    char **v = xcalloc(1, sizeof(*v));
    const char *p = value;

    while (*p) {
        size_t n;

        p += strspn(p, ", \t\r\n");
        n = strcspn(p, ", \t\r\n");
        if (n == 0)
            break;
        char *item = xstrndup(p, n);
        v = strv_push(v, item);
        free(item);
        p += n;
    }
    return v;
}

struct chain {
    const char *addr;
    const struct chain *up;
};

static bool chain_has(const struct chain *c, const char *addr)
{
    for (; c != NULL; c = c->up)
        if (strcasecmp(c->addr, addr) == 0)
            return true;
    return false;
}

static int expand(struct router *r, const char *addr, const struct chain *up, int depth,
                  struct expansion *e, struct router_verdict *v);

/* Is addr's local part, less any extension, "postmaster"? */
static bool is_postmaster(struct router *r, const char *addr)
{
    struct str local = STR_INIT, base = STR_INIT;
    bool yes;

    local_parts(r, addr, &local, &base);
    yes = strcasecmp(base.s ? base.s : "", "postmaster") == 0;
    str_free(&local);
    str_free(&base);
    return yes;
}

/* RFC 5321 4.5.1: postmaster@ every local and virtual domain exists, whatever the
 * tables say.  Called when no alias named addr: postmaster@DOMAIN without a mailbox
 * of its own goes to postmaster@myhostname (and so through alias_maps' "postmaster");
 * postmaster@myhostname without an alias goes to root@myhostname (alias_maps' "root",
 * else the system user root).  1 when addr was expanded that way, 0 when it is no
 * postmaster address (or has its own mailbox), -1 on failure (v set, or a lookup
 * error in err). */
static int postmaster_fallback(struct router *r, const char *addr, enum router_class class,
                               const struct chain *up, int depth, struct expansion *e,
                               struct router_verdict *v, struct str *err)
{
    struct str value = STR_INIT, to = STR_INIT;
    const struct chain here = { addr, up };
    int rc = 0;

    if ((class != ROUTER_LOCAL && class != ROUTER_VIRTUAL) || !is_postmaster(r, addr))
        return 0;
    if (class == ROUTER_VIRTUAL) {
        rc = lookup_address(r, r->vmailbox, addr, false, &value, err);
        if (rc != 0) {
            rc = rc > 0 ? 0 : -1;       /* a mailbox of its own, or a failure */
            goto out;
        }
    }
    if (strcasecmp(addr_domain(addr), r->myhostname) != 0)
        str_printf(&to, "postmaster@%s", r->myhostname);
    else
        str_printf(&to, "root@%s", r->myhostname);
    addr_fold_domain(to.s);
    if (chain_has(&here, to.s)) {
        rc = 0;
        goto out;
    }
    rc = expand(r, to.s, &here, depth + 1, e, v) < 0 ? -1 : 1;
out:
    str_free(&value);
    str_free(&to);
    return rc;
}

/* Expands addr (full form) into e.  0, or -1 with v set (reject or tempfail). */
static int expand(struct router *r, const char *addr, const struct chain *up, int depth,
                  struct expansion *e, struct router_verdict *v)
{
    struct str value = STR_INIT, err = STR_INIT, item = STR_INIT;
    struct chain here = { addr, up };
    enum router_class class = router_domain_class(r, addr_domain(addr));
    char **items = NULL;
    int rc, ret = -1;

    if (depth > ROUTER_DEPTH_MAX) {
        verdict_set(v, ROUTER_REJECT, 554, "5.4.6",
                    "<%s>: alias expansion too deep (mail forwarding loop)", addr);
        return -1;
    }
    rc = lookup_address(r, r->valias, addr, true, &value, &err);
    if (rc == 0 && class == ROUTER_LOCAL)
        rc = lookup_alias(r, addr, &value, &err);
    if (rc < 0) {
        log_warn("<%s>: table lookup failed: %s", addr, err.s ? err.s : "unknown error");
        verdict_set(v, ROUTER_TEMPFAIL, 451, "4.3.0", "<%s>: Temporary lookup failure", addr);
        goto out;
    }
    if (rc == 0) {
        rc = postmaster_fallback(r, addr, class, up, depth, e, v, &err);
        if (rc < 0) {
            if (v->status == ROUTER_OK) {
                log_warn("<%s>: table lookup failed: %s", addr, err.s ? err.s : "unknown error");
                verdict_set(v, ROUTER_TEMPFAIL, 451, "4.3.0", "<%s>: Temporary lookup failure",
                            addr);
            }
            goto out;
        }
        if (rc == 0)
            exp_add(e, addr, false);
        ret = 0;
        goto out;
    }
    items = value_split(value.s ? value.s : "");
    for (size_t i = 0; items[i] != NULL; i++) {
        const char *it = items[i];

        if (it[0] == '|' || it[0] == '/' || strncasecmp(it, ":include:", 9) == 0) {
            log_warn("<%s>: alias value \"%s\" refused: commands, files and includes"
                     " are not supported", addr, it);
            continue;
        }
        if (++e->total > (size_t)r->expansion_limit) {
            verdict_set(v, ROUTER_REJECT, 554, "5.4.6", "<%s>: alias expansion limit exceeded",
                        addr);
            goto out;
        }
        if (strrchr(it, '@') == NULL) {
            str_sets(&item, it);
            str_appendc(&item, '@');
            str_appends(&item, r->myhostname);
        } else {
            str_sets(&item, it);
        }
        addr_fold_domain(item.s);
        /* an alias naming itself is final and exists; a longer loop ends here and
         * the address must exist on its own */
        if (strcasecmp(item.s, addr) == 0 || chain_has(&here, item.s)) {
            exp_add(e, item.s, strcasecmp(item.s, addr) == 0);
            continue;
        }
        if (expand(r, item.s, &here, depth + 1, e, v) < 0)
            goto out;
    }
    ret = 0;
out:
    strv_free(items);
    str_free(&value);
    str_free(&err);
    str_free(&item);
    return ret;
}

/* Does the final address addr exist?  1 yes, 0 no (v set), -1 failure (v set). */
static int exists(struct router *r, const char *addr, bool known, struct router_verdict *v)
{
    struct str value = STR_INIT, err = STR_INIT, local = STR_INIT, base = STR_INIT;
    enum router_class class = router_domain_class(r, addr_domain(addr));
    int rc = 1;

    switch (class) {
    case ROUTER_LOCAL:
        if (known)
            break;
        local_parts(r, addr, &local, &base);
        str_lower(&base);
        rc = base.len > 0 && strlen(base.s) == base.len
             ? map_lookup(r->passwd, base.s, &value, &err) : 0;
        if (rc == 0)
            verdict_set(v, ROUTER_REJECT, 550, "5.1.1",
                        "<%s>: Recipient address rejected: User unknown in local"
                        " recipient table", addr);
        break;
    case ROUTER_VIRTUAL:
        rc = lookup_address(r, r->vmailbox, addr, true, &value, &err);
        if (rc == 0)
            verdict_set(v, ROUTER_REJECT, 550, "5.1.1",
                        "<%s>: Recipient address rejected: User unknown in virtual"
                        " mailbox table", addr);
        break;
    case ROUTER_RELAY:
    case ROUTER_REMOTE:
        break;
    }
    if (rc < 0) {
        log_warn("<%s>: table lookup failed: %s", addr, err.s ? err.s : "unknown error");
        verdict_set(v, ROUTER_TEMPFAIL, 451, "4.3.0", "<%s>: Temporary lookup failure", addr);
    }
    str_free(&value);
    str_free(&err);
    str_free(&local);
    str_free(&base);
    return rc;
}

void router_verdict_init(struct router_verdict *v)
{
    memset(v, 0, sizeof(*v));
    str_init(&v->text);
}

void router_verdict_free(struct router_verdict *v)
{
    strv_free(v->expanded);
    str_free(&v->text);
    memset(v, 0, sizeof(*v));       /* the strings are STR_INIT again */
}

void router_verify(struct router *r, const char *addr, struct router_verdict *v)
{
    struct expansion e = { NULL, NULL, 0, 0 };
    struct str full = STR_INIT;

    strv_free(v->expanded);
    v->expanded = NULL;
    v->nexpanded = 0;
    str_clear(&v->text);
    v->dsn[0] = '\0';
    v->code = 0;
    v->status = ROUTER_OK;
    if (addr[0] == '\0' || strlen(addr) > ADDR_PATH_MAX) {
        v->class = ROUTER_REMOTE;
        verdict_set(v, ROUTER_REJECT, 553, "5.1.3", "<%s>: bad recipient address syntax",
                    addr);
        return;
    }
    addr_full(r, addr, &full);
    v->class = router_domain_class(r, addr_domain(full.s));
    if (expand(r, full.s, NULL, 0, &e, v) < 0)
        goto out;
    if (e.n == 0) {
        verdict_set(v, ROUTER_REJECT, 550, "5.1.1",
                    "<%s>: Recipient address rejected: alias has no deliverable address",
                    full.s);
        goto out;
    }
    for (size_t i = 0; i < e.n; i++)
        if (exists(r, e.addr[i], e.known[i], v) <= 0)
            goto out;
    v->status = ROUTER_OK;
    v->code = 250;
    snprintf(v->dsn, sizeof(v->dsn), "2.1.5");
    v->expanded = e.addr;
    v->nexpanded = e.n;
    e.addr = NULL;
out:
    strv_free(e.addr);
    free(e.known);
    str_free(&full);
}

/* "transport:nexthop" from a table value. */
static void route_parse(const char *value, const char *domain, struct str *transport,
                        struct str *nexthop)
{
    const char *colon = strchr(value, ':');

    if (colon == NULL) {
        str_sets(transport, value);
        str_clear(nexthop);
    } else {
        str_set(transport, value, (size_t)(colon - value));
        str_sets(nexthop, colon + 1);
    }
    if (transport->len == 0)
        str_sets(transport, "smtp");
    if (nexthop->len == 0 && strcmp(transport->s, "error") != 0
        && strcmp(transport->s, "defer") != 0)
        str_sets(nexthop, domain);
}

enum router_status router_route(struct router *r, const char *addr, struct str *transport,
                                struct str *nexthop, struct str *err)
{
    struct str full = STR_INIT, value = STR_INIT;
    enum router_status st = ROUTER_OK;
    const char *domain;
    int rc;

    addr_full(r, addr, &full);
    domain = addr_domain(full.s);
    switch (router_domain_class(r, domain)) {
    case ROUTER_LOCAL:
    case ROUTER_VIRTUAL:
        str_sets(transport, "local");
        str_sets(nexthop, domain);
        goto out;
    case ROUTER_RELAY:
    case ROUTER_REMOTE:
        break;
    }
    rc = maplist_lookup(r->transport, full.s, &value, err);
    if (rc == 0)
        rc = maplist_lookup(r->transport, domain, &value, err);
    for (const char *p = strchr(domain, '.'); rc == 0 && p != NULL; p = strchr(p + 1, '.')) {
        rc = maplist_lookup(r->transport, p, &value, err);
    }
    if (rc < 0) {
        if (err->len == 0)
            str_sets(err, "transport table lookup failed");
        st = ROUTER_TEMPFAIL;
        goto out;
    }
    if (rc > 0) {
        route_parse(value.s ? value.s : "", domain, transport, nexthop);
    } else if (r->relayhost[0] != '\0') {
        str_sets(transport, "smtp");
        str_sets(nexthop, r->relayhost);
    } else {
        str_sets(transport, "smtp");
        str_sets(nexthop, domain);
    }
out:
    str_free(&full);
    str_free(&value);
    return st;
}

void router_mailbox_init(struct router_mailbox *mb)
{
    memset(mb, 0, sizeof(*mb));
    str_init(&mb->path);
    str_init(&mb->user);
}

void router_mailbox_free(struct router_mailbox *mb)
{
    str_free(&mb->path);
    str_free(&mb->user);
    memset(mb, 0, sizeof(*mb));
}

/* A relative path under a store: components not empty, ".", ".."; no control
 * characters; ends in '/'. */
static bool relpath_safe(const char *p)
{
    size_t len = strlen(p);

    if (len < 2 || p[0] == '/' || p[len - 1] != '/')
        return false;
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return false;
    while (*p) {
        size_t n = strcspn(p, "/");

        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += n;
        if (*p == '/')
            p++;
    }
    return true;
}

/* "name:uid:gid:home" from unix:passwd. */
static int passwd_parse(const char *v, struct str *name, uid_t *uid, gid_t *gid,
                        struct str *home)
{
    const char *c1 = strchr(v, ':'), *c2, *c3;
    char *end;
    unsigned long long n;

    if (c1 == NULL || (c2 = strchr(c1 + 1, ':')) == NULL || (c3 = strchr(c2 + 1, ':')) == NULL)
        return -1;
    str_set(name, v, (size_t)(c1 - v));
    errno = 0;
    n = strtoull(c1 + 1, &end, 10);
    if (errno || end != c2 || n > (uid_t)-1)
        return -1;
    *uid = (uid_t)n;
    n = strtoull(c2 + 1, &end, 10);
    if (errno || end != c3 || n > (gid_t)-1)
        return -1;
    *gid = (gid_t)n;
    str_sets(home, c3 + 1);
    return 0;
}

static enum router_status mailbox_local(struct router *r, const char *addr,
                                        struct router_mailbox *mb, struct str *err)
{
    struct str local = STR_INIT, base = STR_INIT, value = STR_INIT, home = STR_INIT;
    struct str lerr = STR_INIT;
    enum router_status st = ROUTER_TEMPFAIL;
    int rc;

    local_parts(r, addr, &local, &base);
    str_lower(&base);
    if (strlen(base.s) != base.len || !addr_local_safe(base.s)) {
        str_printf(err, "<%s>: unsafe local part", addr);
        st = ROUTER_REJECT;
        goto out;
    }
    rc = map_lookup(r->passwd, base.s, &value, &lerr);
    if (rc < 0) {
        str_printf(err, "<%s>: user lookup failed: %s", addr, lerr.s ? lerr.s : "error");
        goto out;
    }
    if (rc == 0) {
        str_printf(err, "<%s>: no such user", addr);
        st = ROUTER_REJECT;
        goto out;
    }
    if (passwd_parse(value.s, &mb->user, &mb->uid, &mb->gid, &home) < 0 || home.s[0] != '/') {
        str_printf(err, "<%s>: bad password entry", addr);
        goto out;
    }
    if (!relpath_safe(r->home_mailbox)) {
        str_printf(err, "home_mailbox \"%s\" is not a relative path ending in '/'",
                   r->home_mailbox);
        goto out;
    }
    if (mb->uid == 0) {
        if (priv_lookup(r->default_privs, &mb->uid, &mb->gid, &lerr) < 0) {
            str_printf(err, "default_privs: %s", lerr.s ? lerr.s : "unknown user");
            goto out;
        }
        if (mb->uid == 0) {
            str_sets(err, "default_privs must not be root");
            goto out;
        }
    }
    str_set(&mb->path, home.s, home.len);
    while (mb->path.len > 1 && mb->path.s[mb->path.len - 1] == '/')
        str_truncate(&mb->path, mb->path.len - 1);
    if (mb->path.len > 1)
        str_appendc(&mb->path, '/');
    str_appends(&mb->path, r->home_mailbox);
    mb->create = false;
    st = ROUTER_OK;
out:
    str_free(&local);
    str_free(&base);
    str_free(&value);
    str_free(&home);
    str_free(&lerr);
    return st;
}

static enum router_status mailbox_virtual(struct router *r, const char *addr,
                                          struct router_mailbox *mb, struct str *err)
{
    struct str value = STR_INIT, lerr = STR_INIT;
    enum router_status st = ROUTER_TEMPFAIL;
    int rc;

    rc = lookup_address(r, r->vmailbox, addr, true, &value, &lerr);
    if (rc < 0) {
        str_printf(err, "<%s>: mailbox lookup failed: %s", addr, lerr.s ? lerr.s : "error");
        goto out;
    }
    if (rc == 0) {
        str_printf(err, "<%s>: no such virtual mailbox", addr);
        st = ROUTER_REJECT;
        goto out;
    }
    if (strlen(value.s) != value.len || !relpath_safe(value.s)) {
        str_printf(err, "<%s>: unsafe virtual mailbox path", addr);
        goto out;
    }
    if (r->vmail_base[0] != '/') {
        str_printf(err, "virtual_mailbox_base \"%s\" is not absolute", r->vmail_base);
        goto out;
    }
    /* The owner of the virtual mailboxes is looked up once, not once per
     * recipient (each lookup reads the password file); a failed lookup is tried
     * again next time. */
    if (priv_is_root()) {
        if (!r->vmail_known) {
            if (priv_lookup(r->vmail_user, &r->vmail_uid, &r->vmail_gid, &lerr) < 0) {
                str_printf(err, "vmail_user: %s", lerr.s ? lerr.s : "unknown user");
                goto out;
            }
            r->vmail_known = true;
        }
        mb->uid = r->vmail_uid;
        mb->gid = r->vmail_gid;
        if (mb->uid == 0) {
            str_sets(err, "vmail_user must not be root");
            goto out;
        }
        str_sets(&mb->user, r->vmail_user);
    } else {
        mb->uid = getuid();
        mb->gid = getgid();
        if (r->self_name == NULL) {
            struct passwd *pw = getpwuid(mb->uid);
            char uidbuf[32];

            if (pw != NULL && pw->pw_name != NULL) {
                r->self_name = xstrdup(pw->pw_name);
            } else {
                snprintf(uidbuf, sizeof(uidbuf), "%lu", (unsigned long)mb->uid);
                r->self_name = xstrdup(uidbuf);
            }
        }
        str_sets(&mb->user, r->self_name);
    }
    str_sets(&mb->path, r->vmail_base);
    while (mb->path.len > 1 && mb->path.s[mb->path.len - 1] == '/')
        str_truncate(&mb->path, mb->path.len - 1);
    str_appendc(&mb->path, '/');
    str_appends(&mb->path, value.s);
    mb->create = true;
    st = ROUTER_OK;
out:
    str_free(&value);
    str_free(&lerr);
    return st;
}

enum router_status router_mailbox(struct router *r, const char *addr,
                                  struct router_mailbox *mb, struct str *err)
{
    struct str full = STR_INIT;
    enum router_status st;

    str_clear(&mb->path);
    str_clear(&mb->user);
    addr_full(r, addr, &full);
    switch (router_domain_class(r, addr_domain(full.s))) {
    case ROUTER_LOCAL:
        st = mailbox_local(r, full.s, mb, err);
        break;
    case ROUTER_VIRTUAL:
        st = mailbox_virtual(r, full.s, mb, err);
        break;
    default:
        str_printf(err, "<%s>: not a local or virtual domain", full.s);
        st = ROUTER_REJECT;
        break;
    }
    str_free(&full);
    return st;
}
