/* The policy for one next hop: the TLS level (smtp_tls_policy_maps, else
 * smtp_tls_security_level), which certificate name "verify" checks, and the
 * credential of smtp_sasl_password_maps.  The maps are the administrator's, but their
 * values are still checked: an invalid one defers the mail rather than guessing.
 *
 * Keys looked up, in lower case (see smtp(8)):
 *   TLS policy:   the next hop as written ("[mx.example.org]:587", "example.org"),
 *                 then for a domain its name without the port and ".parent" domains;
 *   credentials:  the next hop as written, then without its port. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "map.h"
#include "smtp.h"

void smtp_policy_init(struct smtp_policy *p)
{
    memset(p, 0, sizeof(*p));
    str_init(&p->user);
    str_init(&p->password);
}

static void str_wipe(struct str *sb)
{
    if (sb->s != NULL)
        explicit_bzero(sb->s, sb->cap > 0 ? sb->cap : sb->len);
    str_free(sb);
}

void smtp_policy_free(struct smtp_policy *p)
{
    str_free(&p->user);
    str_wipe(&p->password);
}

static int level_of(const char *word, size_t len, enum smtp_tls_level *level)
{
#define IS(w) (len == sizeof(w) - 1 && strncasecmp(word, w, len) == 0)
    if (IS("none"))
        *level = SMTP_TLS_NONE;
    else if (IS("may"))
        *level = SMTP_TLS_MAY;
    else if (IS("encrypt"))
        *level = SMTP_TLS_ENCRYPT;
    else if (IS("verify") || IS("secure"))
        *level = SMTP_TLS_VERIFY;
    else
        return -1;
    return 0;
#undef IS
}

/* A host name for the certificate check: letters, digits, '-', '.', and a leading
 * "*." is not accepted (the certificate may hold wildcards, the policy may not). */
static bool name_ok(const char *s, size_t len)
{
    if (len == 0 || len >= 256 || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-' || c == '.'))
            return false;
    }
    return true;
}

int smtp_policy_parse(struct smtp_policy *p, const char *value, struct str *err)
{
    const char *s = value;
    bool have_level = false;

    for (;;) {
        size_t len;

        s += strspn(s, " \t,");
        if (*s == '\0')
            break;
        len = strcspn(s, " \t,");
        if (!have_level) {
            if (level_of(s, len, &p->level) < 0) {
                str_appends(err, "unknown TLS level \"");
                smtp_sanitise(err, s, len > 40 ? 40 : len);
                str_appends(err, "\" (none, may, encrypt, verify)");
                return -1;
            }
            have_level = true;
        } else if (len > 6 && strncasecmp(s, "match=", 6) == 0) {
            const char *v = s + 6;
            size_t vlen = len - 6;

            if (vlen == 8 && strncasecmp(v, "hostname", 8) == 0) {
                p->match = SMTP_MATCH_HOSTNAME;
            } else if (vlen == 7 && strncasecmp(v, "nexthop", 7) == 0) {
                p->match = SMTP_MATCH_NEXTHOP;
            } else if (name_ok(v, vlen)) {
                p->match = SMTP_MATCH_NAME;
                memcpy(p->match_name, v, vlen);
                p->match_name[vlen] = '\0';
            } else {
                str_appends(err, "bad match= name \"");
                smtp_sanitise(err, v, vlen > 60 ? 60 : vlen);
                str_appendc(err, '"');
                return -1;
            }
        } else {
            str_appends(err, "unknown attribute \"");
            smtp_sanitise(err, s, len > 40 ? 40 : len);
            str_appends(err, "\" (match=)");
            return -1;
        }
        s += len;
    }
    if (!have_level) {
        str_appends(err, "empty TLS policy");
        return -1;
    }
    return 0;
}

/* The name inside "[host]:port" or before "domain:port" ("IPv6:" dropped, no final
 * dot); false when the next hop does not have that shape. */
static bool nexthop_name(const char *nexthop, char *out, size_t size, bool *bracketed,
                         bool *has_port)
{
    const char *p = nexthop, *end;
    size_t n;

    *bracketed = p[0] == '[';
    if (*bracketed) {
        if ((end = strchr(++p, ']')) == NULL)
            return false;
        if (strncasecmp(p, "ipv6:", 5) == 0)
            p += 5;
        *has_port = end[1] == ':';
    } else {
        end = p + strcspn(p, ":");
        *has_port = *end == ':';
    }
    n = (size_t)(end - p);
    if (n > 0 && p[n - 1] == '.')
        n--;
    if (n == 0 || n >= size)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* 1 found, 0 not, -1 failed: the first of keys that the list knows. */
static int lookup_first(struct maplist *ml, const char *const *keys, size_t nkeys,
                        struct str *value, struct str *err)
{
    for (size_t i = 0; i < nkeys; i++) {
        int r;

        if (keys[i] == NULL)
            continue;
        r = maplist_lookup(ml, keys[i], value, err);
        if (r != 0)
            return r;
    }
    return 0;
}

static int tls_policy(struct smtp_ctx *ctx, const char *nexthop, const char *name,
                      bool bracketed, bool has_port, struct smtp_policy *p,
                      enum deliver_status *fail, char dsn[16], struct str *err)
{
    struct str value = STR_INIT, why = STR_INIT;
    int r = 0;

    if (ctx->tls_policy != NULL && maplist_count(ctx->tls_policy) > 0) {
        const char *keys[2] = { nexthop, !bracketed && has_port ? name : NULL };

        r = lookup_first(ctx->tls_policy, keys, 2, &value, &why);
        /* a domain's parents: ".example.org" covers every name below it */
        for (const char *d = bracketed ? NULL : strchr(name, '.'); r == 0 && d != NULL;
             d = strchr(d + 1, '.'))
            r = maplist_lookup(ctx->tls_policy, d, &value, &why);
    }
    if (r < 0) {
        *fail = DELIVER_DEFER;
        snprintf(dsn, 16, "4.3.0");
        str_printf(err, "TLS policy lookup for %s failed: %s", nexthop,
                   why.len ? why.s : "map error");
    } else if (r > 0) {
        if (smtp_policy_parse(p, value.s ? value.s : "", &why) < 0) {
            *fail = DELIVER_DEFER;
            snprintf(dsn, 16, "4.3.5");
            str_printf(err, "invalid TLS policy for %s in smtp_tls_policy_maps: %s",
                       nexthop, why.s);
            log_warn("%s", err->s);
            r = -1;
        }
    }
    str_free(&value);
    str_free(&why);
    return r < 0 ? -1 : 0;
}

static int credential(struct smtp_ctx *ctx, const char *nexthop, bool has_port,
                      struct smtp_policy *p, enum deliver_status *fail, char dsn[16],
                      struct str *err)
{
    struct str value = STR_INIT, why = STR_INIT, bare = STR_INIT;
    const char *colon;
    int r;

    if (ctx->sasl_passwords == NULL || maplist_count(ctx->sasl_passwords) == 0)
        return 0;
    if (has_port) {
        const char *end = nexthop[0] == '[' ? strchr(nexthop, ']') : strchr(nexthop, ':');

        str_append(&bare, nexthop, (size_t)(end - nexthop) + (nexthop[0] == '['));
    }
    {
        const char *keys[2] = { nexthop, has_port ? bare.s : NULL };

        r = lookup_first(ctx->sasl_passwords, keys, 2, &value, &why);
    }
    str_free(&bare);
    if (r < 0) {
        *fail = DELIVER_DEFER;
        snprintf(dsn, 16, "4.3.0");
        str_printf(err, "password lookup for %s failed: %s", nexthop,
                   why.len ? why.s : "map error");
        goto out;
    }
    if (r == 0)
        goto out;
    colon = value.s != NULL ? strchr(value.s, ':') : NULL;
    if (colon == NULL || colon == value.s || (size_t)(colon - value.s) > SMTP_CRED_MAX
        || strlen(colon + 1) > SMTP_CRED_MAX) {
        *fail = DELIVER_DEFER;
        snprintf(dsn, 16, "4.3.5");
        str_printf(err, "invalid entry for %s in smtp_sasl_password_maps "
                        "(user:password, each at most %d bytes)", nexthop, SMTP_CRED_MAX);
        log_warn("%s", err->s);
        r = -1;
        goto out;
    }
    str_append(&p->user, value.s, (size_t)(colon - value.s));
    str_sets(&p->password, colon + 1);
    p->auth = true;
out:
    str_wipe(&value);
    str_free(&why);
    return r < 0 ? -1 : 0;
}

int smtp_policy_get(struct smtp_ctx *ctx, const char *nexthop, struct smtp_policy *p,
                    enum deliver_status *fail, char dsn[16], struct str *err)
{
    char name[256];
    bool bracketed = false, has_port = false;

    p->level = ctx->tls_level;
    p->match = SMTP_MATCH_HOSTNAME;
    p->match_name[0] = '\0';
    p->auth = false;
    snprintf(p->nexthop, sizeof(p->nexthop), "%s", nexthop);
    if (!nexthop_name(nexthop, name, sizeof(name), &bracketed, &has_port))
        return 0;           /* smtp_targets() reports the unusable next hop */
    if (tls_policy(ctx, nexthop, name, bracketed, has_port, p, fail, dsn, err) < 0)
        return -1;
    if (p->match == SMTP_MATCH_NEXTHOP)
        snprintf(p->match_name, sizeof(p->match_name), "%s", name);
    if (credential(ctx, nexthop, has_port, p, fail, dsn, err) < 0)
        return -1;
    /* credentials never travel in plaintext */
    if (p->auth && p->level < SMTP_TLS_ENCRYPT)
        p->level = SMTP_TLS_ENCRYPT;
    return 0;
}
