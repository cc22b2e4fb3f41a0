/* The envelope sender of an authenticated client (MAIL FROM after AUTH): it must be an
 * address the login owns, so that a user cannot send as another one.  With
 * smtpd_sender_login_maps set, that map alone says who owns what (sender address,
 * else "@domain" -> logins); without it, a login owns
 *   - its own address (a virtual user's login is its address; a system user "bob"
 *     owns bob@ every local-class domain), with any address extension;
 *   - the addresses whose mail reaches it: an alias (virtual_alias_maps, alias_maps)
 *     whose expansion, as the resolve service computes it for RCPT, holds the login's
 *     address.
 * smtpd_sender_login_mismatch_allowed = yes turns the check off.  The sender is the
 * client's text, already parsed (addr.h) and with its domain folded; the login is
 * auth's canonical name. */
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "log.h"
#include "map.h"
#include "resolve_clnt.h"
#include "router.h"
#include "smtpd.h"

/* Whether the logins listed in value (comma or white space separated) hold login. */
static bool login_listed(const char *value, const char *login)
{
    size_t n = strlen(login);

    while (*value != '\0') {
        size_t len = strcspn(value, ", \t");
        if (len == n && strncasecmp(value, login, n) == 0)
            return true;
        value += len;
        value += strspn(value, ", \t");
    }
    return false;
}

/* smtpd_sender_login_maps: 1 owned, 0 not, -1 the lookup failed (logged). */
static int owned_by_map(const struct smtpd_conf *cf, const char *sender, const char *login)
{
    struct str value = STR_INIT, err = STR_INIT, key = STR_INIT;
    const char *at;
    int r;

    r = maplist_lookup(cf->sender_login_maps, sender, &value, &err);
    if (r == 0 && (at = strrchr(sender, '@')) != NULL) {
        str_sets(&key, at);
        r = maplist_lookup(cf->sender_login_maps, key.s, &value, &err);
    }
    if (r < 0)
        log_warn("smtpd_sender_login_maps: %s", err.len ? err.s : "lookup failed");
    else if (r > 0)
        r = login_listed(value.s, login) ? 1 : 0;
    str_free(&value);
    str_free(&err);
    str_free(&key);
    return r;
}

/* The local part of addr equals login (case-insensitively). */
static bool local_part_is(const char *addr, const char *login)
{
    const char *at = strrchr(addr, '@');
    size_t n = at != NULL ? (size_t)(at - addr) : strlen(addr);

    return n == strlen(login) && strncasecmp(addr, login, n) == 0;
}

/* Without a map: 1 owned, 0 not, -1 the resolve service failed (logged by it). */
static int owned_by_routing(struct smtpd_session *s, const char *sender, const char *login)
{
    const struct smtpd_conf *cf = s->cf;
    struct str own = STR_INIT, base = STR_INIT, ext = STR_INIT;
    struct router_verdict v;
    bool system_user = strchr(login, '@') == NULL;
    const char *plain = sender;
    int owned = 0;

    /* the login's address: a system user's at myhostname, as aliases name it */
    str_sets(&own, login);
    if (system_user) {
        str_appendc(&own, '@');
        str_appends(&own, cf->myhostname);
    }
    if (*cf->recipient_delimiter != '\0'
        && addr_strip_extension(sender, cf->recipient_delimiter, &base, &ext) == 1)
        plain = base.s;
    if (strcasecmp(plain, own.s) == 0) {
        owned = 1;
        goto out;
    }
    router_verdict_init(&v);
    resolve_verify(cf->resolve, sender, &v);
    if (v.status == ROUTER_TEMPFAIL) {
        owned = -1;
    } else if (system_user && v.class == ROUTER_LOCAL && local_part_is(plain, login)) {
        owned = 1;
    } else if (v.status == ROUTER_OK) {
        for (size_t i = 0; i < v.nexpanded && !owned; i++)
            if (strcasecmp(v.expanded[i], own.s) == 0)
                owned = 1;
    }
    router_verdict_free(&v);
out:
    str_free(&own);
    str_free(&base);
    str_free(&ext);
    return owned;
}

int smtpd_sender_login_check(struct smtpd_session *s, const char *sender)
{
    const struct smtpd_conf *cf = s->cf;
    const char *login = s->sasl_user.s;
    int r;

    if (!s->authenticated || *sender == '\0' || cf->sender_login_mismatch_allowed)
        return 0;
    if (cf->sender_login_maps != NULL)
        r = owned_by_map(cf, sender, login);
    else
        r = owned_by_routing(s, sender, login);
    if (r < 0) {
        smtpd_reject(s, "MAIL", NULL, 451, "4.3.0", "<%s>: Sender address rejected: "
                     "Temporary lookup failure", sender);
        return -1;
    }
    if (r == 0) {
        smtpd_reject(s, "MAIL", NULL, 553, "5.7.1", "<%s>: Sender address rejected: "
                     "not owned by user %s", sender, login);
        return -1;
    }
    return 0;
}
