/* Mail addresses: the RFC 5321 Path grammar (4.1.2), the limits of 4.5.3.1, and
 * RFC 6531's UTF-8 extension.  addr_parse_path() reads text straight from the
 * network: it never reads past the NUL, checks every length, and accepts only what
 * the grammar allows, with two liberal exceptions: spaces before the '<', and a
 * bare address when the caller asks for it. */
#include "addr.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "str.h"

#define WHY_SYNTAX "Syntax error in address"
#define WHY_LONG "Address too long"
#define WHY_8BIT "8-bit address needs SMTPUTF8"
#define WHY_UTF8 "Invalid UTF-8 in address"
#define WHY_NULL "Null address not allowed here"
#define WHY_LITERAL "Invalid address literal"

#define LABEL_MAX 63

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* atext of RFC 5322, as RFC 5321 uses it. */
static bool is_atext(unsigned char c)
{
    return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* Length of the well-formed UTF-8 sequence of a non-ASCII character at p
 * (RFC 3629: no overlong forms, no surrogates, at most U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];

    if (c >= 0xC2 && c <= 0xDF)
        return (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 &&
                       (p[3] & 0xC0) == 0x80
                   ? 4
                   : 0;
    }
    return 0;
}

bool addr_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;

    for (size_t i = 0; i < len;) {
        size_t k = 1;
        if (p[i] >= 0x80) {
            k = utf8_len(p + i);
            if (k == 0 || k > len - i)
                return false;
        }
        i += k;
    }
    return true;
}

/* At p a byte >= 0x80: its length when allowed, else 0 with *why set. */
static size_t eight_bit(const unsigned char *p, int flags, const char **why)
{
    size_t n;

    if (!(flags & ADDR_SMTPUTF8)) {
        *why = WHY_8BIT;
        return 0;
    }
    n = utf8_len(p);
    if (n == 0)
        *why = WHY_UTF8;
    return n;
}

/* Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str], or with
 * UTF-8 any well-formed non-ASCII character where a letter may be.  Advances *pp
 * past the domain; 0 or -1 with *why. */
static int scan_domain(const unsigned char **pp, int flags, const char **why)
{
    const unsigned char *p = *pp, *start = p;

    for (;;) {
        const unsigned char *label = p;
        bool last_hyphen = false;

        while (*p != '\0') {
            if (is_alpha(*p) || is_digit(*p)) {
                last_hyphen = false;
                p++;
            } else if (*p == '-' && p != label) {
                last_hyphen = true;
                p++;
            } else if (*p >= 0x80) {
                size_t n = eight_bit(p, flags, why);
                if (n == 0)
                    return -1;
                last_hyphen = false;
                p += n;
            } else {
                break;
            }
            if (p - start > ADDR_DOMAIN_MAX) {
                *why = WHY_LONG;
                return -1;
            }
        }
        if (p == label || last_hyphen || p - label > LABEL_MAX) {
            *why = WHY_SYNTAX;
            return -1;
        }
        if (*p != '.')
            break;
        p++;
    }
    *pp = p;
    return 0;
}

/* address-literal = "[" ( IPv4 / "IPv6:" IPv6 ) "]"; general literals are refused. */
static int scan_literal(const unsigned char **pp, const char **why)
{
    const unsigned char *p = *pp + 1, *end;
    char buf[64];
    unsigned char bin[16];
    size_t n;

    end = (const unsigned char *)strchr((const char *)p, ']');
    if (end == NULL || (size_t)(end - p) >= sizeof(buf)) {
        *why = end == NULL ? WHY_SYNTAX : WHY_LITERAL;
        return -1;
    }
    n = (size_t)(end - p);
    memcpy(buf, p, n);
    buf[n] = '\0';
    if (strncasecmp(buf, "IPv6:", 5) == 0) {
        if (inet_pton(AF_INET6, buf + 5, bin) != 1) {
            *why = WHY_LITERAL;
            return -1;
        }
    } else if (inet_pton(AF_INET, buf, bin) != 1) {
        *why = WHY_LITERAL;
        return -1;
    }
    *pp = end + 1;
    return 0;
}

bool addr_domain_valid(const char *domain, bool utf8)
{
    const unsigned char *p = (const unsigned char *)domain;
    const char *why = NULL;

    if (domain == NULL || strlen(domain) > ADDR_DOMAIN_MAX)
        return false;
    if (*p == '[') {
        if (scan_literal(&p, &why) < 0)
            return false;
    } else if (scan_domain(&p, utf8 ? ADDR_SMTPUTF8 : 0, &why) < 0) {
        return false;
    }
    return *p == '\0';
}

/* Local-part = Dot-string / Quoted-string.  Appends the unquoted form to out; the
 * length limit applies to the form on the wire. */
static int scan_local(const unsigned char **pp, int flags, struct str *out,
                      const char **why)
{
    const unsigned char *p = *pp, *start = p;

    if (*p == '"') {
        p++;
        for (;;) {
            if (*p == '"') {
                p++;
                break;
            }
            if (*p == '\\') {
                if (p[1] < 32 || p[1] > 126) {
                    *why = p[1] >= 0x80 ? WHY_8BIT : WHY_SYNTAX;
                    return -1;
                }
                str_appendc(out, (char)p[1]);
                p += 2;
            } else if (*p >= 0x80) {
                size_t n = eight_bit(p, flags, why);
                if (n == 0)
                    return -1;
                str_append(out, p, n);
                p += n;
            } else if (*p >= 32 && *p <= 126) {
                str_appendc(out, (char)*p++);
            } else {
                *why = WHY_SYNTAX;
                return -1;
            }
            if (p - start > ADDR_LOCAL_MAX) {
                *why = WHY_LONG;
                return -1;
            }
        }
        if (out->len == 0) {
            *why = WHY_SYNTAX;
            return -1;
        }
    } else {
        for (;;) {
            const unsigned char *atom = p;
            while (*p != '\0') {
                if (is_atext(*p)) {
                    p++;
                } else if (*p >= 0x80) {
                    size_t n = eight_bit(p, flags, why);
                    if (n == 0)
                        return -1;
                    p += n;
                } else {
                    break;
                }
                if (p - start > ADDR_LOCAL_MAX) {
                    *why = WHY_LONG;
                    return -1;
                }
            }
            if (p == atom) {
                *why = WHY_SYNTAX;
                return -1;
            }
            if (*p != '.')
                break;
            p++;
        }
        str_append(out, start, (size_t)(p - start));
    }
    if (p - start > ADDR_LOCAL_MAX) {
        *why = WHY_LONG;
        return -1;
    }
    *pp = p;
    return 0;
}

/* Mailbox, or "postmaster" alone.  Appends the internal form to out. */
static int scan_mailbox(const unsigned char **pp, int flags, struct str *out,
                        const char **why)
{
    const unsigned char *p = *pp, *dom;
    size_t local_start = out->len;

    if (scan_local(&p, flags, out, why) < 0)
        return -1;
    if (*p != '@') {
        if (strcasecmp(out->s + local_start, "postmaster") == 0 &&
            (*pp)[0] != '"') {
            str_truncate(out, local_start);
            str_appends(out, "postmaster");
            *pp = p;
            return 0;
        }
        *why = WHY_SYNTAX;
        return -1;
    }
    dom = ++p;
    if (*p == '[') {
        if (scan_literal(&p, why) < 0)
            return -1;
    } else if (scan_domain(&p, flags, why) < 0) {
        return -1;
    }
    if (p - dom > ADDR_DOMAIN_MAX) {
        *why = WHY_LONG;
        return -1;
    }
    str_appendc(out, '@');
    str_append(out, dom, (size_t)(p - dom));
    *pp = p;
    return 0;
}

/* A-d-l = At-domain *( "," At-domain ) ":"; checked and dropped. */
static int scan_route(const unsigned char **pp, int flags, const char **why)
{
    const unsigned char *p = *pp;

    for (;;) {
        if (*p != '@') {
            *why = WHY_SYNTAX;
            return -1;
        }
        p++;
        if (scan_domain(&p, flags, why) < 0)
            return -1;
        if (*p == ':')
            break;
        if (*p != ',') {
            *why = WHY_SYNTAX;
            return -1;
        }
        p++;
    }
    *pp = p + 1;
    return 0;
}

static bool dot_string(const char *local, size_t n);

/* Length of the external form addr_quote() makes of addr; *local_len gets that of its
 * local part. */
static size_t quoted_len(const char *addr, size_t *local_len)
{
    const char *at = strrchr(addr, '@');
    size_t n = at ? (size_t)(at - addr) : strlen(addr), q = n;

    if (!dot_string(addr, n)) {
        q += 2;
        for (size_t i = 0; i < n; i++)
            if (addr[i] == '"' || addr[i] == '\\')
                q++;
    }
    *local_len = q;
    return q + (at != NULL ? strlen(at) : 0);
}

int addr_parse_path(const char *arg, int flags, struct str *addr, const char **rest,
                    const char **why)
{
    const unsigned char *p = (const unsigned char *)arg, *open;
    const char *dummy;

    if (why == NULL)
        why = &dummy;
    *why = WHY_SYNTAX;
    str_clear(addr);
    while (*p == ' ')
        p++;
    open = p;
    if (*p == '<') {
        p++;
        if (*p == '>') {
            if (!(flags & ADDR_ALLOW_NULL)) {
                *why = WHY_NULL;
                return -1;
            }
            p++;
        } else {
            if (*p == '@' && scan_route(&p, flags, why) < 0)
                goto fail;
            if (scan_mailbox(&p, flags, addr, why) < 0)
                goto fail;
            if (*p != '>') {
                *why = WHY_SYNTAX;
                goto fail;
            }
            p++;
        }
    } else if (flags & ADDR_ALLOW_BARE) {
        if (*p == '\0') {
            if (!(flags & ADDR_ALLOW_NULL)) {
                *why = WHY_NULL;
                return -1;
            }
        } else if (scan_mailbox(&p, flags, addr, why) < 0) {
            goto fail;
        }
    } else {
        goto fail;
    }
    if (p - open > ADDR_PATH_MAX) {
        *why = WHY_LONG;
        goto fail;
    }
    /* What is accepted must fit the limits again when written back as "<...>": the
     * form written is never longer than a bracketed path read, but a bare address
     * gains its two brackets. */
    if (addr->len > 0) {
        size_t local_len, len = quoted_len(addr->s, &local_len);

        if (len + 2 > ADDR_PATH_MAX || local_len > ADDR_LOCAL_MAX) {
            *why = WHY_LONG;
            goto fail;
        }
    }
    if (*p != '\0' && *p != ' ') {
        *why = WHY_SYNTAX;
        goto fail;
    }
    while (*p == ' ')
        p++;
    if (rest != NULL)
        *rest = (const char *)p;
    return 0;

fail:
    str_clear(addr);
    return -1;
}

bool addr_local_safe(const char *local)
{
    size_t n = 0;

    if (local == NULL || local[0] == '\0' || local[0] == '.')
        return false;
    for (const unsigned char *p = (const unsigned char *)local; *p; p++, n++)
        if (*p == '/' || *p < 32 || *p == 127 || n >= ADDR_LOCAL_MAX)
            return false;
    return true;
}

/* Whether local (n bytes) is a Dot-string and can go out unquoted. */
static bool dot_string(const char *local, size_t n)
{
    bool at_start = true;

    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)local[i];
        if (c == '.') {
            if (at_start)
                return false;
            at_start = true;
        } else if (is_atext(c) || c >= 0x80) {
            at_start = false;
        } else {
            return false;
        }
    }
    return !at_start;
}

void addr_quote(const char *addr, struct str *out)
{
    const char *at = strrchr(addr, '@');
    size_t n = at ? (size_t)(at - addr) : strlen(addr);

    if (*addr == '\0')
        return;
    if (dot_string(addr, n)) {
        str_append(out, addr, n);
    } else {
        str_appendc(out, '"');
        for (size_t i = 0; i < n; i++) {
            if (addr[i] == '"' || addr[i] == '\\')
                str_appendc(out, '\\');
            str_appendc(out, addr[i]);
        }
        str_appendc(out, '"');
    }
    if (at != NULL)
        str_appends(out, at);
}

void addr_fold_domain(char *addr)
{
    char *at = strrchr(addr, '@');

    if (at == NULL)
        return;
    for (char *p = at + 1; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
}

int addr_strip_extension(const char *addr, const char *delimiters, struct str *base,
                         struct str *ext)
{
    const char *at = strrchr(addr, '@');
    size_t n = at ? (size_t)(at - addr) : strlen(addr);
    size_t cut = 0;
    bool found = false;

    str_clear(ext);
    if (delimiters != NULL && *delimiters != '\0') {
        for (cut = 1; cut < n; cut++)
            if (strchr(delimiters, addr[cut]) != NULL) {
                found = true;
                break;
            }
    }
    if (!found) {
        str_sets(base, addr);
        return 0;
    }
    str_set(base, addr, cut);
    if (at != NULL)
        str_appends(base, at);
    str_set(ext, addr + cut + 1, n - cut - 1);
    return 1;
}
