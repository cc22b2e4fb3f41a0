/* libFuzzer harness for the DNS answer parser of the SMTP client (lib/mail/dns.c:
 * dns_parse_mx, dns_parse_addrs), which reads packets from the network.
 * Build and run: make fuzz (build/fuzz/fuzz_dns), make fuzz-smoke-fuzz_dns.
 *
 * The first input byte picks the mode: odd, the rest is a raw answer packet; even,
 * the rest describes records that the harness packs into a well-formed answer (so
 * that CNAME chains, owner names, classes and record lengths are reached at once).
 * Checked: the status is one of the four and agrees with the count (DNS_OK with 1..max
 * entries, none otherwise), a reason is given for every failure, exchangers are
 * well-formed host names sorted by preference, addresses are numeric text of their
 * family that inet_pton reads back to the same text; and what was parsed, packed
 * again into a plain answer, parses to the same list (round trip). */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MX_MAX 8
#define ADDR_MAX 8

/* ---- packing ---- */

static void put8(struct str *p, unsigned v)
{
    str_appendc(p, (char)(v & 0xff));
}

static void put16(struct str *p, unsigned v)
{
    put8(p, v >> 8);
    put8(p, v);
}

static void put32(struct str *p, unsigned long v)
{
    put16(p, (unsigned)(v >> 16) & 0xffff);
    put16(p, (unsigned)v & 0xffff);
}

/* A dotted name as labels (no compression); "" is the root. */
static void put_name(struct str *p, const char *name)
{
    while (*name != '\0') {
        size_t n = strcspn(name, ".");
        put8(p, (unsigned)n);
        str_append(p, name, n);
        name += n;
        if (*name == '.')
            name++;
    }
    put8(p, 0);
}

/* Header of a response (rcode) to one question, with ancount answers. */
static void put_header(struct str *p, unsigned rcode, unsigned ancount, const char *qname,
                       unsigned qtype)
{
    put16(p, 0x1234);
    put16(p, 0x8180 | (rcode & 15));    /* QR, RD, RA */
    put16(p, 1);
    put16(p, ancount);
    put16(p, 0);
    put16(p, 0);
    put_name(p, qname);
    put16(p, qtype);
    put16(p, ns_c_in);
}

static void put_rr(struct str *p, const char *owner, unsigned type, unsigned class,
                   const void *rdata, size_t rdlen)
{
    put_name(p, owner);
    put16(p, type);
    put16(p, class);
    put32(p, 300);
    put16(p, (unsigned)rdlen);
    str_append(p, rdata, rdlen);
}

/* ---- checks ---- */

static bool host_ok(const char *s)
{
    size_t n = strlen(s), label = 0;

    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                   || c == '-' || c == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

static void check_status(enum dns_status st, size_t n, size_t max, const struct str *err)
{
    if (st != DNS_OK && st != DNS_NOTFOUND && st != DNS_TEMPFAIL && st != DNS_NULLMX)
        abort();
    if (st == DNS_OK ? n == 0 || n > max : n != 0)
        abort();
    if (st != DNS_OK && err->len == 0)
        abort();
}

static void mx_check(const uint8_t *pkt, size_t len, bool again)
{
    struct dns_mx mx[MX_MAX], mx2[MX_MAX];
    struct str err = STR_INIT, p = STR_INIT;
    size_t n = 99, n2 = 99;
    int nx = -1, nx2 = -1;
    enum dns_status st = dns_parse_mx(pkt, len, mx, MX_MAX, &n, &nx, &err);

    check_status(st, n, MX_MAX, &err);
    if (nx != 0 && nx != 1)
        abort();
    if (nx == 1 && st != DNS_NOTFOUND)
        abort();
    for (size_t i = 0; i < n; i++) {
        if (!host_ok(mx[i].host) || mx[i].pref > 65535)
            abort();
        if (i > 0 && mx[i - 1].pref > mx[i].pref)
            abort();
    }
    if (st == DNS_OK && again) {
        /* the same list, packed again, reads the same */
        put_header(&p, 0, (unsigned)n, "example.org", ns_t_mx);
        for (size_t i = 0; i < n; i++) {
            struct str rd = STR_INIT;
            put16(&rd, mx[i].pref);
            put_name(&rd, mx[i].host);
            put_rr(&p, "example.org", ns_t_mx, ns_c_in, rd.s, rd.len);
            str_free(&rd);
        }
        str_clear(&err);
        if (dns_parse_mx((const unsigned char *)p.s, p.len, mx2, MX_MAX, &n2, &nx2, &err)
            != DNS_OK || n2 != n || nx2 != 0)
            abort();
        for (size_t i = 0; i < n; i++)
            if (strcmp(mx[i].host, mx2[i].host) != 0 || mx[i].pref != mx2[i].pref)
                abort();
    }
    str_free(&err);
    str_free(&p);
}

static void addr_check(const uint8_t *pkt, size_t len, bool again)
{
    struct dns_addr a[ADDR_MAX], a2[ADDR_MAX];
    struct str err = STR_INIT, p = STR_INIT;
    size_t n = 99, n2 = 99;
    enum dns_status st = dns_parse_addrs(pkt, len, a, ADDR_MAX, &n, &err);

    check_status(st, n, ADDR_MAX, &err);
    if (st == DNS_NULLMX)
        abort();
    for (size_t i = 0; i < n; i++) {
        unsigned char bin[16];
        char text[64];

        if (a[i].family != a[0].family || (a[i].family != AF_INET && a[i].family != AF_INET6))
            abort();
        if (memchr(a[i].text, '\0', sizeof(a[i].text)) == NULL
            || inet_pton(a[i].family, a[i].text, bin) != 1
            || inet_ntop(a[i].family, bin, text, sizeof(text)) == NULL
            || strcmp(text, a[i].text) != 0)
            abort();
    }
    if (st == DNS_OK && again) {
        unsigned type = a[0].family == AF_INET ? ns_t_a : ns_t_aaaa;

        put_header(&p, 0, (unsigned)n, "host.example.org", type);
        for (size_t i = 0; i < n; i++) {
            unsigned char bin[16];
            if (inet_pton(a[i].family, a[i].text, bin) != 1)
                abort();
            put_rr(&p, "host.example.org", type, ns_c_in, bin, type == ns_t_a ? 4 : 16);
        }
        str_clear(&err);
        if (dns_parse_addrs((const unsigned char *)p.s, p.len, a2, ADDR_MAX, &n2, &err)
            != DNS_OK || n2 != n)
            abort();
        for (size_t i = 0; i < n; i++)
            if (a2[i].family != a[i].family || strcmp(a2[i].text, a[i].text) != 0)
                abort();
    }
    str_free(&err);
    str_free(&p);
}

/* ---- the structured mode ---- */

static const char *const names[] = {
    "example.org", "EXAMPLE.org", "alias.example.org", "mx1.example.org", "mx2.example.net",
    "", "bad name.example", "a..b", "-x.example", "_srv.example.org", "host.example.org",
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

struct cursor {
    const uint8_t *p;
    size_t left;
};

static unsigned take(struct cursor *c)
{
    if (c->left == 0)
        return 0;
    c->left--;
    return *c->p++;
}

static void build(struct cursor *c, struct str *pkt)
{
    static const unsigned types[] = { ns_t_mx, ns_t_a, ns_t_aaaa, ns_t_cname, ns_t_txt };
    unsigned flags = take(c), nrr = take(c) % 24;
    unsigned qtype = types[flags % 3];
    const char *qname = names[(flags >> 2) % 4];

    put_header(pkt, (flags >> 4) % 4 == 3 ? ns_r_nxdomain : 0, nrr, qname, qtype);
    for (unsigned i = 0; i < nrr; i++) {
        unsigned sel = take(c), type = types[sel % 5];
        const char *owner = names[(sel >> 3) % NNAMES];
        unsigned class = (sel & 0x80) ? ns_c_chaos : ns_c_in;
        struct str rd = STR_INIT;
        unsigned k = take(c);

        switch (type) {
        case ns_t_mx:
            put16(&rd, take(c) % 4);
            put_name(&rd, names[k % NNAMES]);
            if (k & 0x80)
                put8(&rd, 0);           /* one byte too many */
            break;
        case ns_t_cname:
            put_name(&rd, names[k % NNAMES]);
            break;
        default: {
            unsigned n = type == ns_t_a ? 4 : type == ns_t_aaaa ? 16 : 8;
            if (k & 0x80)
                n = k & 31;             /* a wrong length */
            for (unsigned j = 0; j < n; j++)
                put8(&rd, take(c));
        }
        }
        put_rr(pkt, owner, type, class, rd.s, rd.len);
        str_free(&rd);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1) {
        mx_check(data + 1, size - 1, true);
        addr_check(data + 1, size - 1, true);
    } else {
        struct cursor c = { data + 1, size - 1 };
        struct str pkt = STR_INIT;

        build(&c, &pkt);
        mx_check((const uint8_t *)pkt.s, pkt.len, true);
        addr_check((const uint8_t *)pkt.s, pkt.len, true);
        str_free(&pkt);
    }
    return 0;
}
