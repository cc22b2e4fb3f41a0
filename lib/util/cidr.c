/* CIDR blocks and address matching (see cidr.h).  Specs come from the config and
 * addresses from the socket layer; both are parsed strictly with inet_pton, never
 * with resolver functions. */
#include "cidr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "str.h"
#include "xmalloc.h"

#define CIDR_TEXT_MAX 64

static const unsigned char v4mapped_prefix[12] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

static void cidr_err(struct str *err, const char *why, const char *spec)
{
    if (err == NULL)
        return;
    str_clear(err);
    str_printf(err, "%.80s: %s", spec, why);
}

/* Copies text without surrounding brackets into buf: 0, or -1 when it does not fit
 * or the brackets are unbalanced. */
static int strip_brackets(const char *text, size_t len, char *buf, size_t bufsize)
{
    if (len > 0 && text[0] == '[') {
        if (len < 2 || text[len - 1] != ']')
            return -1;
        text++;
        len -= 2;
    } else if (memchr(text, '[', len) != NULL || memchr(text, ']', len) != NULL) {
        return -1;
    }
    if (len == 0 || len >= bufsize)
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    return 0;
}

static int addr_parse_n(const char *text, size_t len, int *family, unsigned char addr[16])
{
    char buf[CIDR_TEXT_MAX];

    if (strip_brackets(text, len, buf, sizeof(buf)) < 0)
        return -1;
    /* "IPv6:" as in an address literal */
    if (strncasecmp(buf, "ipv6:", 5) == 0)
        memmove(buf, buf + 5, strlen(buf + 5) + 1);
    memset(addr, 0, 16);
    if (strchr(buf, ':') == NULL) {
        if (inet_pton(AF_INET, buf, addr) != 1)
            return -1;
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, addr) != 1)
        return -1;
    *family = AF_INET6;
    return 0;
}

int cidr_addr_parse(const char *text, int *family, unsigned char addr[16])
{
    if (addr_parse_n(text, strlen(text), family, addr) < 0)
        return -1;
    if (*family == AF_INET6 && memcmp(addr, v4mapped_prefix, 12) == 0) {
        memmove(addr, addr + 12, 4);
        memset(addr + 4, 0, 12);
        *family = AF_INET;
    }
    return 0;
}

static bool bits_equal(const unsigned char *a, const unsigned char *b, unsigned prefix)
{
    unsigned full = prefix / 8, rest = prefix % 8;

    if (memcmp(a, b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

int cidr_parse(const char *spec, struct cidr *c, struct str *err)
{
    const char *slash = strchr(spec, '/');
    size_t alen = slash ? (size_t)(slash - spec) : strlen(spec);
    unsigned max, prefix;

    memset(c, 0, sizeof(*c));
    if (addr_parse_n(spec, alen, &c->family, c->addr) < 0) {
        cidr_err(err, "not an IPv4 or IPv6 address", spec);
        return -1;
    }
    max = c->family == AF_INET ? 32 : 128;
    if (slash == NULL) {
        prefix = max;
    } else {
        const char *p = slash + 1;
        if (*p == '\0' || strlen(p) > 3) {
            cidr_err(err, "bad prefix length", spec);
            return -1;
        }
        prefix = 0;
        for (; *p != '\0'; p++) {
            if (*p < '0' || *p > '9') {
                cidr_err(err, "bad prefix length", spec);
                return -1;
            }
            prefix = prefix * 10 + (unsigned)(*p - '0');
        }
        if (prefix > max) {
            cidr_err(err, "prefix length too large", spec);
            return -1;
        }
    }
    c->prefix = prefix;
    /* host bits must be zero: compare the address with itself masked */
    {
        unsigned char masked[16];
        unsigned nbytes = max / 8;

        memset(masked, 0, sizeof(masked));
        for (unsigned i = 0; i < nbytes; i++) {
            if (i * 8 + 8 <= prefix)
                masked[i] = c->addr[i];
            else if (i * 8 < prefix)
                masked[i] = (unsigned char)(c->addr[i] & (0xff << (8 - (prefix - i * 8))));
        }
        if (memcmp(masked, c->addr, nbytes) != 0) {
            cidr_err(err, "address bits set past the prefix length", spec);
            return -1;
        }
    }
    return 0;
}

static bool match_bytes(const struct cidr *c, int family, const unsigned char *a)
{
    if (family == c->family)
        return bits_equal(a, c->addr, c->prefix);
    /* a v4-mapped block written in IPv6 form still matches plain IPv4 clients */
    if (family == AF_INET && c->family == AF_INET6 && c->prefix >= 96
        && memcmp(c->addr, v4mapped_prefix, 12) == 0)
        return bits_equal(a, c->addr + 12, c->prefix - 96);
    return false;
}

int cidr_list_parse(char *const *items, struct cidr_list *cl, struct str *err)
{
    size_t n = items ? strv_len(items) : 0;

    cl->v = NULL;
    cl->n = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(items[i], CIDR_HOST_WORD) == 0) {
            if (cidr_host_append(cl) < 0) {
                if (err != NULL) {
                    str_clear(err);
                    str_printf(err, "%s: cannot list the interface addresses: %s",
                               CIDR_HOST_WORD, strerror(errno));
                }
                cidr_list_free(cl);
                return -1;
            }
            continue;
        }
        cl->v = xreallocarray(cl->v, cl->n + 1, sizeof(*cl->v));
        if (cidr_parse(items[i], &cl->v[cl->n], err) < 0) {
            cidr_list_free(cl);
            errno = EINVAL;
            return -1;
        }
        cl->n++;
    }
    return 0;
}

void cidr_list_free(struct cidr_list *cl)
{
    free(cl->v);
    cl->v = NULL;
    cl->n = 0;
}

bool cidr_list_match(const struct cidr_list *cl, const char *addr)
{
    int family;
    unsigned char a[16];

    if (cidr_addr_parse(addr, &family, a) < 0)
        return false;
    for (size_t i = 0; i < cl->n; i++)
        if (match_bytes(&cl->v[i], family, a))
            return true;
    return false;
}
