/* postern.conf values against their key's type and bounds (conf_keys.h): the parser
 * of each type, and the one-line rule a refused value breaks.  Values come from the
 * admin's file or command line: trusted no further than that, so every number is
 * checked for overflow and every length is bounded. */
#include "conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cidr.h"
#include "map.h"
#include "str.h"
#include "xmalloc.h"

static const char *const type_names[] = {
    [CONF_STR] = "string",
    [CONF_ENUM] = "one of a list of words",
    [CONF_HOST] = "host name",
    [CONF_HOSTPORT] = "host[:port]",
    [CONF_PATH] = "absolute path",
    [CONF_RELPATH] = "relative path",
    [CONF_MAPS] = "list of lookup tables",
    [CONF_USER] = "user name",
    [CONF_GROUP] = "group name",
    [CONF_LIST] = "list",
    [CONF_DOMAINS] = "list of domain names",
    [CONF_CIDRS] = "list of networks",
    [CONF_ADDRS] = "list of IP addresses",
    [CONF_ADDRPORTS] = "list of address[:port]",
    [CONF_COUNT] = "count",
    [CONF_TIME] = "time",
    [CONF_SIZE] = "size",
    [CONF_BOOL] = "yes/no",
};

const char *conf_type_name(enum conf_type t)
{
    if ((size_t)t < sizeof(type_names) / sizeof(type_names[0]) && type_names[t] != NULL)
        return type_names[t];
    return "unknown";
}

/* ---- numbers ---- */

/* A unit letter (either case) and what it multiplies by; the list ends with a 0
 * letter, whose factor applies to a number without a unit. */
struct conf_unit {
    char letter;
    long long mul;
};

static const struct conf_unit time_units[] = {
    { 'w', 7 * 86400 }, { 'd', 86400 }, { 'h', 3600 }, { 'm', 60 }, { 's', 1 }, { 0, 1 },
};
static const struct conf_unit size_units[] = {
    { 'g', 1024 * 1024 * 1024 }, { 'm', 1024 * 1024 }, { 'k', 1024 }, { 0, 1 },
};
static const struct conf_unit no_units[] = {
    { 0, 1 },
};

static const struct conf_unit *units_of(enum conf_type t)
{
    return t == CONF_TIME ? time_units : t == CONF_SIZE ? size_units : no_units;
}

/* Digits with an optional unit letter: 0, -1 not a number of this form, -2 too
 * large for a long long. */
static int number_parse(const char *s, const struct conf_unit *units, long long *out)
{
    unsigned long long v = 0;
    const char *p = s;
    size_t i;

    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > ((unsigned long long)LLONG_MAX - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    for (i = 0; units[i].letter != 0; i++)
        if (*p != '\0' && tolower((unsigned char)*p) == units[i].letter)
            break;
    if (units[i].letter != 0)
        p++;
    if (*p != '\0')
        return -1;
    if (v > (unsigned long long)(LLONG_MAX / units[i].mul))
        return -2;
    *out = (long long)v * units[i].mul;
    return 0;
}

/* v in the largest unit that states it exactly: 3600 seconds as "1h". */
static void amount_put(struct str *out, enum conf_type t, long long v)
{
    const struct conf_unit *u = units_of(t);

    for (size_t i = 0; u[i].letter != 0; i++) {
        if (v != 0 && v % u[i].mul == 0 && (u[i].mul > 1 || t == CONF_TIME)) {
            str_printf(out, "%lld%c", v / u[i].mul, u[i].letter);
            return;
        }
    }
    str_printf(out, "%lld%s", v, t == CONF_TIME ? "s" : "");
}

static int number_check(const struct conf_default *d, const char *s, long long *num,
                        struct str *why)
{
    int r = number_parse(s, units_of(d->type), num);

    if (r == -1) {
        str_appends(why, d->type == CONF_TIME
                    ? "must be a time: a number with an optional unit s, m, h, d or w"
                    : d->type == CONF_SIZE
                    ? "must be a size: a number of bytes with an optional unit k, m or g"
                    : "must be a whole number");
        return -1;
    }
    if (r == -2 || *num > d->max) {
        str_appends(why, "must be at most ");
        amount_put(why, d->type, d->max);
        return -1;
    }
    if (*num < d->min) {
        str_appends(why, "must be at least ");
        amount_put(why, d->type, d->min);
        return -1;
    }
    return 0;
}

/* ---- words ---- */

/* Is s one of the '|'-separated words? */
static bool word_in(const char *words, const char *s)
{
    size_t n = strlen(s);

    for (const char *w = words; w != NULL && *w != '\0';) {
        const char *bar = strchr(w, '|');
        size_t len = bar != NULL ? (size_t)(bar - w) : strlen(w);
        if (len == n && memcmp(w, s, n) == 0)
            return true;
        w = bar != NULL ? bar + 1 : w + len;
    }
    return false;
}

/* "a, b or c" */
static void words_put(struct str *out, const char *words)
{
    size_t n = 0, k = 0;

    for (const char *p = words; *p != '\0'; p++)
        n += *p == '|';
    for (const char *w = words;; k++) {
        const char *bar = strchr(w, '|');
        size_t len = bar != NULL ? (size_t)(bar - w) : strlen(w);
        if (k > 0)
            str_appends(out, k == n ? " or " : ", ");
        str_append(out, w, len);
        if (bar == NULL)
            break;
        w = bar + 1;
    }
}

/* ---- names and addresses ---- */

static bool host_char(unsigned char c, bool utf8)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || c == '-' || c == '_' || (utf8 && c >= 0x80);
}

/* Labels of 1..63 bytes, dots between, at most 253 bytes in all. */
static bool host_valid(const char *s, size_t n, bool utf8)
{
    size_t label = 0;

    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (!host_char((unsigned char)s[i], utf8) || ++label > 63) {
            return false;
        }
    }
    return label > 0;
}

/* An IPv4 or IPv6 literal, no brackets. */
static bool ip_valid(const char *s, size_t n)
{
    char buf[INET6_ADDRSTRLEN + 1];
    unsigned char bin[sizeof(struct in6_addr)];

    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(AF_INET, buf, bin) == 1 || inet_pton(AF_INET6, buf, bin) == 1;
}

static bool port_valid(const char *s)
{
    long long v;
    return number_parse(s, no_units, &v) == 0 && v >= 1 && v <= 65535;
}

/* host, host:port, [host], [host]:port; inside brackets also an address literal,
 * "ipv6:" allowed before an IPv6 one.  addr_only: the host must be an address
 * (address, [address] or [address]:port). */
static bool hostport_valid(const char *s, bool addr_only)
{
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        const char *h = s + 1;
        if (close == NULL)
            return false;
        size_t n = (size_t)(close - h);
        if (!addr_only && n > 5 && strncasecmp(h, "ipv6:", 5) == 0) {
            h += 5;
            n -= 5;
        }
        if (!ip_valid(h, n) && (addr_only || !host_valid(h, n, false)))
            return false;
        return close[1] == '\0' || (close[1] == ':' && port_valid(close + 2));
    }
    if (addr_only)
        return ip_valid(s, strlen(s));
    const char *colon = strchr(s, ':');
    size_t n = colon != NULL ? (size_t)(colon - s) : strlen(s);
    return host_valid(s, n, false) && (colon == NULL || port_valid(colon + 1));
}

/* User and group names as useradd(8) takes them. */
static bool name_valid(const char *s)
{
    if (s[0] == '-' || s[0] == '\0')
        return false;
    for (const char *p = s; *p != '\0'; p++)
        if (!isascii((unsigned char)*p)
            || !(isalnum((unsigned char)*p) || *p == '.' || *p == '_' || *p == '-'))
            return false;
    return true;
}

static bool relpath_valid(const char *s)
{
    if (s[0] == '/')
        return false;
    for (const char *p = s; *p != '\0';) {
        size_t n = strcspn(p, "/");
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return false;
        p += n;
        while (*p == '/')
            p++;
    }
    return true;
}

/* ---- the types ---- */

/* One item of a list type: 0, or -1 with the rule in why. */
static int item_check(const struct conf_default *d, const char *item, struct str *why)
{
    struct str e = STR_INIT;
    struct cidr cidr;
    int rc = 0;

    switch (d->type) {
    case CONF_DOMAINS:
        if (!host_valid(item[0] == '.' ? item + 1 : item,
                        strlen(item[0] == '.' ? item + 1 : item), true)) {
            str_printf(why, "\"%s\" is not a domain name", item);
            rc = -1;
        }
        break;
    case CONF_CIDRS:
        if (d->words != NULL && word_in(d->words, item))
            break;
        str_init(&e);
        if (cidr_parse(item, &cidr, &e) < 0) {
            str_printf(why, "bad network %s", e.s != NULL ? e.s : item);
            rc = -1;
        }
        str_free(&e);
        break;
    case CONF_ADDRS:
        if (!word_in(d->words, item) && !ip_valid(item, strlen(item))) {
            str_printf(why, "\"%s\" is not an IP address", item);
            if (d->words != NULL) {
                str_appends(why, ", ");
                words_put(why, d->words);
            }
            rc = -1;
        }
        break;
    case CONF_ADDRPORTS:
        if (!hostport_valid(item, true)) {
            str_printf(why, "\"%s\" is not an IP address or [address]:port", item);
            rc = -1;
        }
        break;
    case CONF_MAPS:
        str_init(&e);
        if (map_spec_check(item, &e) < 0) {
            str_appends(why, e.s != NULL ? e.s : "bad lookup table");
            rc = -1;
        }
        str_free(&e);
        break;
    default:
        break;
    }
    return rc;
}

static int list_check(const struct conf_default *d, const char *s, struct str *why)
{
    struct str e = STR_INIT;
    char **v;
    size_t n = 0;
    int rc = 0;

    str_init(&e);
    if (d->type == CONF_MAPS) {
        v = map_specs_split(s, &e);
        if (v == NULL) {
            str_appends(why, e.s);
            str_free(&e);
            return -1;
        }
    } else {
        v = conf_list_split(s);
    }
    str_free(&e);
    while (v[n] != NULL)
        n++;
    if (n < (size_t)d->min) {
        if (d->min == 1)
            str_appends(why, "must not be empty");
        else
            str_printf(why, "must have at least %lld items", d->min);
        rc = -1;
    } else if (n > (size_t)d->max) {
        str_printf(why, "must have at most %lld item%s", d->max, d->max == 1 ? "" : "s");
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = item_check(d, v[i], why);
    strv_free(v);
    return rc;
}

static int text_check(const struct conf_default *d, const char *s, struct str *why)
{
    size_t n = strlen(s);
    bool ok = true;
    const char *rule = NULL;

    if (n == 0) {
        if (d->min == 0)
            return 0;
        str_appends(why, "must not be empty");
        return -1;
    }
    if (n < (size_t)d->min || n > (size_t)d->max) {
        str_printf(why, "must be at %s %lld bytes long", n < (size_t)d->min ? "least" : "most",
                   n < (size_t)d->min ? d->min : d->max);
        return -1;
    }
    switch (d->type) {
    case CONF_HOST:
        ok = host_valid(s, n, false);
        rule = "must be a host name (letters, digits, '-' and '_', dots between labels)";
        break;
    case CONF_HOSTPORT:
        ok = hostport_valid(s, false);
        rule = "must be host, host:port, [host] or [host]:port (port 1..65535)";
        break;
    case CONF_PATH:
        ok = s[0] == '/';
        rule = "must be an absolute path";
        break;
    case CONF_RELPATH:
        ok = relpath_valid(s);
        rule = "must be a relative path without \"..\"";
        break;
    case CONF_USER:
    case CONF_GROUP:
        ok = name_valid(s);
        rule = d->type == CONF_USER ? "must be a user name (letters, digits, '.', '_', '-')"
                                    : "must be a group name (letters, digits, '.', '_', '-')";
        break;
    default:
        break;
    }
    if (!ok) {
        str_appends(why, rule);
        return -1;
    }
    return 0;
}

int conf_value_check(const struct conf_default *d, const char *s, long long *num,
                     struct str *why)
{
    long long dummy;

    if (num == NULL)
        num = &dummy;
    *num = 0;
    switch (d->type) {
    case CONF_COUNT:
    case CONF_TIME:
    case CONF_SIZE:
        return number_check(d, s, num, why);
    case CONF_BOOL:
        if (strcasecmp(s, "yes") == 0 || strcasecmp(s, "no") == 0) {
            *num = strcasecmp(s, "yes") == 0;
            return 0;
        }
        str_appends(why, "must be yes or no");
        return -1;
    case CONF_ENUM:
        if ((s[0] == '\0' && d->min == 0) || (s[0] != '\0' && word_in(d->words, s)))
            return 0;
        str_appends(why, "must be ");
        if (d->min == 0)
            str_appends(why, "empty or ");
        str_appends(why, strchr(d->words, '|') != NULL ? "one of " : "");
        words_put(why, d->words);
        return -1;
    case CONF_LIST:
    case CONF_DOMAINS:
    case CONF_CIDRS:
    case CONF_ADDRS:
    case CONF_ADDRPORTS:
    case CONF_MAPS:
        return list_check(d, s, why);
    case CONF_STR:
    case CONF_HOST:
    case CONF_HOSTPORT:
    case CONF_PATH:
    case CONF_RELPATH:
    case CONF_USER:
    case CONF_GROUP:
        return text_check(d, s, why);
    }
    str_appends(why, "has a key of unknown type");
    return -1;
}

int conf_check(enum conf_key k, const char *value, struct str *why)
{
    if ((size_t)k >= conf_ndefaults) {
        str_appends(why, "cannot be set");
        return -1;
    }
    return conf_value_check(&conf_defaults[k], value, NULL, why);
}

char **conf_list_split(const char *s)
{
    size_t n = 0;
    char **v = xcalloc(1, sizeof(*v));

    for (;;) {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        if (*s == '\0')
            break;
        const char *start = s;
        while (*s != '\0' && *s != ' ' && *s != '\t' && *s != ',')
            s++;
        v = xreallocarray(v, n + 2, sizeof(*v));
        v[n++] = xstrndup(start, (size_t)(s - start));
        v[n] = NULL;
    }
    return v;
}
