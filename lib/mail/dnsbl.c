/* DNS blocklists (dnsbl.h): site syntax, query names, scoring and the per-client
 * cache.  The answers come from the network and are parsed by dns.c; an address
 * that does not match a site's filter does not count. */
#include "dnsbl.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "dns.h"
#include "log.h"
#include "xmalloc.h"

#define DNSBL_SITES_MAX 32      /* lists asked for one client */
#define DNSBL_CACHE 256         /* clients remembered */
#define DNSBL_WEIGHT_MAX 1000000

struct dnsbl_site {
    char *item;                 /* as written */
    char *domain;
    bool filtered;
    uint8_t octet[4][32];       /* filter: a bit per allowed value of each octet */
    long weight;
};

struct dnsbl_cached {
    char ip[64];                /* "" when free */
    long long expires;          /* clock_ms() */
    long score;
    char *site;
    char *txt;
};

struct dnsbl {
    struct dns *dns;
    struct dnsbl_site *sites;
    size_t n;
    int timeout_ms;
    long long ttl_ms;
    struct dnsbl_cached cache[DNSBL_CACHE];
};

static bool domain_ok(const char *d)
{
    size_t n = strlen(d), label = 0;

    if (n == 0 || n > 200)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = d[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '-' || c == '_'))
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0;
}

static int number(const char **p, unsigned max, unsigned *out)
{
    unsigned v = 0;
    const char *s = *p;

    if (*s < '0' || *s > '9')
        return -1;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (unsigned)(*s++ - '0');
        if (v > max)
            return -1;
    }
    *p = s;
    *out = v;
    return 0;
}

/* One octet of a filter: N, [N..M], [A;B;C] (each element may be a range). */
static int octet_parse(const char **p, uint8_t bits[32])
{
    const char *s = *p;
    unsigned lo, hi;

    memset(bits, 0, 32);
    if (*s != '[') {
        if (number(&s, 255, &lo) < 0)
            return -1;
        bits[lo / 8] |= (uint8_t)(1u << (lo % 8));
        *p = s;
        return 0;
    }
    s++;
    for (;;) {
        if (number(&s, 255, &lo) < 0)
            return -1;
        hi = lo;
        if (s[0] == '.' && s[1] == '.') {
            s += 2;
            if (number(&s, 255, &hi) < 0 || hi < lo)
                return -1;
        }
        for (unsigned v = lo; v <= hi; v++)
            bits[v / 8] |= (uint8_t)(1u << (v % 8));
        if (*s == ';') {
            s++;
            continue;
        }
        if (*s != ']')
            return -1;
        *p = s + 1;
        return 0;
    }
}

static int site_parse(const char *item, struct dnsbl_site *site, struct str *err)
{
    const char *eq = strchr(item, '='), *star = strrchr(item, '*');
    const char *dend = eq ? eq : star ? star : item + strlen(item);

    memset(site, 0, sizeof(*site));
    site->weight = 1;
    if (star != NULL && eq != NULL && star < eq)
        goto bad;
    site->domain = xstrndup(item, (size_t)(dend - item));
    if (!domain_ok(site->domain))
        goto bad;
    if (eq != NULL) {
        const char *p = eq + 1;
        site->filtered = true;
        for (int i = 0; i < 4; i++) {
            if (octet_parse(&p, site->octet[i]) < 0)
                goto bad;
            if (i < 3 && *p++ != '.')
                goto bad;
        }
        if (p != (star ? star : item + strlen(item)))
            goto bad;
    }
    if (star != NULL) {
        const char *p = star + 1;
        bool neg = *p == '-';
        unsigned w;
        if (neg)
            p++;
        if (number(&p, DNSBL_WEIGHT_MAX, &w) < 0 || *p != '\0')
            goto bad;
        site->weight = neg ? -(long)w : (long)w;
    }
    site->item = xstrdup(item);
    return 0;
bad:
    str_printf(err, "dnsbl_sites: bad item \"%s\" (expected domain[=filter][*weight])",
               item);
    free(site->domain);
    site->domain = NULL;
    return -1;
}

int dnsbl_site_check(const char *item, struct str *err)
{
    struct dnsbl_site s;

    if (site_parse(item, &s, err) < 0)
        return -1;
    free(s.domain);
    free(s.item);
    return 0;
}

struct dnsbl *dnsbl_open(char **sites, struct dns *dns, int timeout_ms, long long ttl_ms,
                         struct str *err)
{
    struct dnsbl *b = xcalloc(1, sizeof(*b));

    b->dns = dns;
    b->timeout_ms = timeout_ms;
    b->ttl_ms = ttl_ms;
    for (size_t i = 0; sites != NULL && sites[i] != NULL; i++) {
        if (b->n == DNSBL_SITES_MAX) {
            str_printf(err, "dnsbl_sites: at most %d lists", DNSBL_SITES_MAX);
            dnsbl_close(b);
            return NULL;
        }
        b->sites = xreallocarray(b->sites, b->n + 1, sizeof(*b->sites));
        if (site_parse(sites[i], &b->sites[b->n], err) < 0) {
            dnsbl_close(b);
            return NULL;
        }
        b->n++;
    }
    return b;
}

void dnsbl_close(struct dnsbl *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->sites[i].item);
        free(b->sites[i].domain);
    }
    for (size_t i = 0; i < DNSBL_CACHE; i++) {
        free(b->cache[i].site);
        free(b->cache[i].txt);
    }
    free(b->sites);
    free(b);
}

size_t dnsbl_count(const struct dnsbl *b)
{
    return b ? b->n : 0;
}

bool dnsbl_query_name(const char *ip, const char *domain, char *out, size_t size)
{
    unsigned char a[16];
    int n;

    if (inet_pton(AF_INET, ip, a) == 1) {
        n = snprintf(out, size, "%u.%u.%u.%u.%s", a[3], a[2], a[1], a[0], domain);
    } else if (inet_pton(AF_INET6, ip, a) == 1) {
        char nib[65];
        static const char hex[] = "0123456789abcdef";
        for (int i = 0; i < 16; i++) {
            nib[4 * i] = hex[a[15 - i] & 0xf];
            nib[4 * i + 1] = '.';
            nib[4 * i + 2] = hex[a[15 - i] >> 4];
            nib[4 * i + 3] = '.';
        }
        nib[64] = '\0';
        n = snprintf(out, size, "%s%s", nib, domain);
    } else {
        return false;
    }
    return n > 0 && (size_t)n < size && (size_t)n <= 253;
}

static bool filter_match(const struct dnsbl_site *s, const char *addr)
{
    unsigned char a[4];

    if (inet_pton(AF_INET, addr, a) != 1)
        return false;
    if (!s->filtered)
        return a[0] == 127;
    for (int i = 0; i < 4; i++)
        if (!(s->octet[i][a[i] / 8] & (1u << (a[i] % 8))))
            return false;
    return true;
}

static struct dnsbl_cached *cache_find(struct dnsbl *b, const char *ip)
{
    long long now = clock_ms();

    for (size_t i = 0; i < DNSBL_CACHE; i++)
        if (b->cache[i].ip[0] != '\0' && strcmp(b->cache[i].ip, ip) == 0
            && b->cache[i].expires > now)
            return &b->cache[i];
    return NULL;
}

static void cache_put(struct dnsbl *b, const char *ip, const struct dnsbl_verdict *v)
{
    struct dnsbl_cached *c = &b->cache[0];

    for (size_t i = 0; i < DNSBL_CACHE; i++) {
        if (b->cache[i].ip[0] == '\0') {
            c = &b->cache[i];
            break;
        }
        if (b->cache[i].expires < c->expires)
            c = &b->cache[i];
    }
    free(c->site);
    free(c->txt);
    snprintf(c->ip, sizeof(c->ip), "%s", ip);
    c->expires = clock_ms() + b->ttl_ms;
    c->score = v->score;
    c->site = xstrdup(v->site.len ? v->site.s : "");
    c->txt = xstrdup(v->txt.len ? v->txt.s : "");
}

void dnsbl_lookup(struct dnsbl *b, const char *ip, struct dnsbl_verdict *v)
{
    struct dnsbl_cached *c;
    struct dns_q *q;
    struct str err = STR_INIT;
    bool cacheable = true;

    v->score = 0;
    str_clear(&v->site);
    str_clear(&v->txt);
    if (b == NULL || b->n == 0 || strlen(ip) >= sizeof(b->cache[0].ip))
        return;
    if ((c = cache_find(b, ip)) != NULL) {
        v->score = c->score;
        str_sets(&v->site, c->site);
        str_sets(&v->txt, c->txt);
        return;
    }
    /* an A and a TXT question per list */
    q = xcalloc(2 * b->n, sizeof(*q));
    for (size_t i = 0; i < b->n; i++) {
        if (!dnsbl_query_name(ip, b->sites[i].domain, q[2 * i].name, sizeof(q[0].name))) {
            free(q);
            return;
        }
        memcpy(q[2 * i + 1].name, q[2 * i].name, sizeof(q[0].name));
        q[2 * i].type = ns_t_a;
        q[2 * i + 1].type = ns_t_txt;
    }
    dns_query_many(b->dns, q, 2 * b->n, b->timeout_ms);
    for (size_t i = 0; i < b->n; i++) {
        const struct dnsbl_site *s = &b->sites[i];
        struct dns_addr addr[16];
        size_t na = 0;
        enum dns_status st = q[2 * i].status;

        str_clear(&err);
        if (st == DNS_OK)
            st = dns_parse_addrs(q[2 * i].ans, q[2 * i].len, addr, 16, &na, &err);
        else
            str_sets(&err, "no answer");
        if (st == DNS_TEMPFAIL) {
            log_warn("dnsbl %s: lookup of [%s] failed (%s); not counted", s->domain, ip,
                     err.s ? err.s : "no answer");
            cacheable = false;
            continue;
        }
        if (st != DNS_OK)
            continue;
        for (size_t k = 0; k < na; k++) {
            if (!filter_match(s, addr[k].text))
                continue;
            v->score += s->weight;
            log_info("dnsbl: [%s] listed by %s (%s), weight %ld", ip, s->item,
                     addr[k].text, s->weight);
            if (s->weight > 0 && v->site.len == 0) {
                str_sets(&v->site, s->domain);
                if (q[2 * i + 1].status == DNS_OK)
                    (void)dns_parse_txt(q[2 * i + 1].ans, q[2 * i + 1].len, &v->txt, &err);
            }
            break;
        }
    }
    /* a clean result with a failed list is asked again; a listing is kept */
    if (cacheable || v->site.len > 0)
        cache_put(b, ip, v);
    dns_q_free(q, 2 * b->n);
    free(q);
    str_free(&err);
}
