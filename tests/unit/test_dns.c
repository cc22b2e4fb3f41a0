/* Unit tests for lib/mail/dns.c: the answer parsers on handmade packets (good, truncated,
 * malformed, null MX, CNAME chains) and the dns_servers setting. */
#include <arpa/nameser.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "dns.h"
#include "str.h"
#include "unit.h"

/* A packet under construction. */
struct pkt {
    unsigned char b[2048];
    size_t len;
};

static void put8(struct pkt *p, unsigned v)
{
    p->b[p->len++] = (unsigned char)v;
}

static void put16(struct pkt *p, unsigned v)
{
    put8(p, (v >> 8) & 0xff);
    put8(p, v & 0xff);
}

static void put32(struct pkt *p, unsigned long v)
{
    put16(p, (unsigned)(v >> 16) & 0xffff);
    put16(p, (unsigned)v & 0xffff);
}

/* "a.b.c" as uncompressed labels ("" is the root). */
static void putname(struct pkt *p, const char *name)
{
    while (*name != '\0') {
        size_t n = strcspn(name, ".");

        put8(p, (unsigned)n);
        memcpy(p->b + p->len, name, n);
        p->len += n;
        name += n;
        if (*name == '.')
            name++;
    }
    put8(p, 0);
}

/* Header and question; flags: rcode in the low bits, 0x8000 QR set by default. */
static void start(struct pkt *p, unsigned rcode, unsigned extra_flags, unsigned ancount,
                  const char *qname, unsigned qtype)
{
    p->len = 0;
    put16(p, 0x1234);
    put16(p, 0x8180 | extra_flags | rcode);
    put16(p, 1);
    put16(p, ancount);
    put16(p, 0);
    put16(p, 0);
    putname(p, qname);
    put16(p, qtype);
    put16(p, ns_c_in);
}

/* A record header whose owner is the question name (pointer to offset 12). */
static void rr_head(struct pkt *p, unsigned type, unsigned rdlen)
{
    put16(p, 0xc00c);
    put16(p, type);
    put16(p, ns_c_in);
    put32(p, 300);
    put16(p, rdlen);
}

static void add_mx(struct pkt *p, unsigned pref, const char *host)
{
    size_t lenpos;

    rr_head(p, ns_t_mx, 0);
    lenpos = p->len - 2;
    put16(p, pref);
    putname(p, host);
    p->b[lenpos] = (unsigned char)((p->len - lenpos - 2) >> 8);
    p->b[lenpos + 1] = (unsigned char)((p->len - lenpos - 2) & 0xff);
}

TEST(mx_sorted)
{
    struct pkt p;
    struct dns_mx mx[10];
    size_t n = 99;
    int nx = 9;
    struct str err = STR_INIT;

    start(&p, 0, 0, 3, "b.test", ns_t_mx);
    add_mx(&p, 20, "mx2.b.test");
    add_mx(&p, 10, "mx1.b.test");
    add_mx(&p, 20, "mx3.b.test");
    CHECK(dns_parse_mx(p.b, p.len, mx, 10, &n, &nx, &err) == DNS_OK);
    CHECK(n == 3);
    CHECK(nx == 0);
    CHECK_STR(mx[0].host, "mx1.b.test");
    CHECK(mx[0].pref == 10);
    CHECK_STR(mx[1].host, "mx2.b.test");
    CHECK_STR(mx[2].host, "mx3.b.test");
    /* at most max, the best ones */
    CHECK(dns_parse_mx(p.b, p.len, mx, 1, &n, &nx, &err) == DNS_OK);
    CHECK(n == 1);
    CHECK_STR(mx[0].host, "mx1.b.test");
    str_free(&err);
}

TEST(mx_compressed_name)
{
    struct pkt p;
    struct dns_mx mx[4];
    size_t n;
    int nx;
    struct str err = STR_INIT;

    start(&p, 0, 0, 1, "b.test", ns_t_mx);
    rr_head(&p, ns_t_mx, 2 + 5);
    put16(&p, 5);
    put8(&p, 2);
    put8(&p, 'm');
    put8(&p, 'x');
    put16(&p, 0xc00c);     /* "mx" + pointer to b.test */
    CHECK(dns_parse_mx(p.b, p.len, mx, 4, &n, &nx, &err) == DNS_OK);
    CHECK(n == 1);
    CHECK_STR(mx[0].host, "mx.b.test");
    str_free(&err);
}

TEST(null_mx)
{
    struct pkt p;
    struct dns_mx mx[4];
    size_t n;
    int nx;
    struct str err = STR_INIT;

    start(&p, 0, 0, 1, "nomail.test", ns_t_mx);
    add_mx(&p, 0, "");
    CHECK(dns_parse_mx(p.b, p.len, mx, 4, &n, &nx, &err) == DNS_NULLMX);
    CHECK(n == 0);
    str_free(&err);
}

TEST(nxdomain_and_nodata)
{
    struct pkt p;
    struct dns_mx mx[4];
    struct dns_addr a[4];
    size_t n;
    int nx;
    struct str err = STR_INIT;

    start(&p, ns_r_nxdomain, 0, 0, "gone.test", ns_t_mx);
    CHECK(dns_parse_mx(p.b, p.len, mx, 4, &n, &nx, &err) == DNS_NOTFOUND);
    CHECK(nx == 1);
    start(&p, 0, 0, 0, "nomx.test", ns_t_mx);
    CHECK(dns_parse_mx(p.b, p.len, mx, 4, &n, &nx, &err) == DNS_NOTFOUND);
    CHECK(nx == 0);
    start(&p, 0, 0, 0, "host.test", ns_t_aaaa);
    CHECK(dns_parse_addrs(p.b, p.len, a, 4, &n, &err) == DNS_NOTFOUND);
    str_free(&err);
}

TEST(server_failures)
{
    struct pkt p;
    struct dns_mx mx[4];
    size_t n;
    int nx;
    struct str err = STR_INIT;

    start(&p, ns_r_servfail, 0, 0, "b.test", ns_t_mx);
    CHECK(dns_parse_mx(p.b, p.len, mx, 4, &n, &nx, &err) == DNS_TEMPFAIL);
    start(&p, ns_r_refused, 0, 0, "b.test", ns_t_mx);
    CHECK(dns_parse_mx(p.b, p.len, mx, 4, &n, &nx, &err) == DNS_TEMPFAIL);
    /* truncated flag */
    start(&p, 0, 0x0200, 1, "b.test", ns_t_mx);
    add_mx(&p, 10, "mx.b.test");
    CHECK(dns_parse_mx(p.b, p.len, mx, 4, &n, &nx, &err) == DNS_TEMPFAIL);
    /* a query, not a response */
    start(&p, 0, 0, 1, "b.test", ns_t_mx);
    p.b[2] &= 0x7f;
    add_mx(&p, 10, "mx.b.test");
    CHECK(dns_parse_mx(p.b, p.len, mx, 4, &n, &nx, &err) == DNS_TEMPFAIL);
    str_free(&err);
}

TEST(truncated_packets)
{
    struct pkt p;
    struct dns_mx mx[4];
    struct dns_addr a[4];
    size_t n;
    int nx;
    struct str err = STR_INIT;

    start(&p, 0, 0, 2, "b.test", ns_t_mx);
    add_mx(&p, 10, "mx1.b.test");
    add_mx(&p, 20, "mx2.b.test");
    for (size_t cut = 0; cut < p.len; cut++) {
        enum dns_status st = dns_parse_mx(p.b, cut, mx, 4, &n, &nx, &err);
        CHECK(st == DNS_TEMPFAIL);
        if (st != DNS_TEMPFAIL)
            fprintf(stderr, "  cut at %zu\n", cut);
    }
    CHECK(dns_parse_mx(p.b, p.len, mx, 4, &n, &nx, &err) == DNS_OK);

    start(&p, 0, 0, 1, "h.test", ns_t_a);
    rr_head(&p, ns_t_a, 4);
    put32(&p, 0x7f000001);
    for (size_t cut = 0; cut < p.len; cut++)
        CHECK(dns_parse_addrs(p.b, cut, a, 4, &n, &err) == DNS_TEMPFAIL);
    CHECK(dns_parse_addrs(p.b, p.len, a, 4, &n, &err) == DNS_OK);
    CHECK(n == 1);
    CHECK_STR(a[0].text, "127.0.0.1");
    str_free(&err);
}

TEST(malformed_records)
{
    struct pkt p;
    struct dns_mx mx[4];
    struct dns_addr a[4];
    size_t n;
    int nx;
    struct str err = STR_INIT;

    /* compression pointer loop in the exchange name */
    start(&p, 0, 0, 1, "b.test", ns_t_mx);
    rr_head(&p, ns_t_mx, 4);
    put16(&p, 10);
    put16(&p, 0xc000 | (unsigned)p.len);
    CHECK(dns_parse_mx(p.b, p.len, mx, 4, &n, &nx, &err) == DNS_TEMPFAIL);
    /* rdlength longer than the name it holds */
    start(&p, 0, 0, 1, "b.test", ns_t_mx);
    rr_head(&p, ns_t_mx, 2 + 12);
    put16(&p, 10);
    putname(&p, "mx.b.test");
    put8(&p, 0);
    CHECK(dns_parse_mx(p.b, p.len, mx, 4, &n, &nx, &err) == DNS_TEMPFAIL);
    /* a host name with characters no host name has */
    start(&p, 0, 0, 1, "b.test", ns_t_mx);
    add_mx(&p, 10, "m x.b.test");
    CHECK(dns_parse_mx(p.b, p.len, mx, 4, &n, &nx, &err) == DNS_TEMPFAIL);
    /* one bad record beside a good one: the good one is used */
    start(&p, 0, 0, 2, "b.test", ns_t_mx);
    add_mx(&p, 10, "bad/name.b.test");
    add_mx(&p, 20, "mx.b.test");
    CHECK(dns_parse_mx(p.b, p.len, mx, 4, &n, &nx, &err) == DNS_OK);
    CHECK(n == 1);
    CHECK_STR(mx[0].host, "mx.b.test");
    /* an A record of the wrong size */
    start(&p, 0, 0, 1, "h.test", ns_t_a);
    rr_head(&p, ns_t_a, 3);
    put8(&p, 1);
    put8(&p, 2);
    put8(&p, 3);
    CHECK(dns_parse_addrs(p.b, p.len, a, 4, &n, &err) == DNS_TEMPFAIL);
    /* the answer count promises more than the packet holds */
    start(&p, 0, 0, 5, "h.test", ns_t_a);
    rr_head(&p, ns_t_a, 4);
    put32(&p, 0x01020304);
    CHECK(dns_parse_addrs(p.b, p.len, a, 4, &n, &err) == DNS_TEMPFAIL);
    /* garbage */
    memset(p.b, 0xff, 64);
    CHECK(dns_parse_addrs(p.b, 64, a, 4, &n, &err) == DNS_TEMPFAIL);
    CHECK(dns_parse_mx(p.b, 64, mx, 4, &n, &nx, &err) == DNS_TEMPFAIL);
    str_free(&err);
}

TEST(cname_chain)
{
    struct pkt p;
    struct dns_addr a[4];
    size_t n, name_at;
    struct str err = STR_INIT;

    start(&p, 0, 0, 3, "www.c.test", ns_t_aaaa);
    /* an unrelated AAAA record first: ignored */
    put8(&p, 5);
    memcpy(p.b + p.len, "other", 5);
    p.len += 5;
    put16(&p, 0xc00c + 4);     /* other.c.test */
    put16(&p, ns_t_aaaa);
    put16(&p, ns_c_in);
    put32(&p, 60);
    put16(&p, 16);
    for (int i = 0; i < 16; i++)
        put8(&p, 0xee);
    rr_head(&p, ns_t_cname, 0);
    {
        size_t lenpos = p.len - 2;

        name_at = p.len;
        putname(&p, "host.c.test");
        p.b[lenpos + 1] = (unsigned char)(p.len - name_at);
    }
    put16(&p, 0xc000 | (unsigned)name_at);
    put16(&p, ns_t_aaaa);
    put16(&p, ns_c_in);
    put32(&p, 60);
    put16(&p, 16);
    for (int i = 0; i < 15; i++)
        put8(&p, 0);
    put8(&p, 1);
    CHECK(dns_parse_addrs(p.b, p.len, a, 4, &n, &err) == DNS_OK);
    CHECK(n == 1);
    CHECK_STR(a[0].text, "::1");
    CHECK(a[0].family == 10 /* AF_INET6 */);
    str_free(&err);
}

TEST(cname_loop)
{
    struct pkt p;
    struct dns_addr a[4];
    size_t n;
    struct str err = STR_INIT;

    /* www.c.test CNAME www.c.test */
    start(&p, 0, 0, 1, "www.c.test", ns_t_a);
    rr_head(&p, ns_t_cname, 2);
    put16(&p, 0xc00c);
    CHECK(dns_parse_addrs(p.b, p.len, a, 4, &n, &err) == DNS_TEMPFAIL);
    str_free(&err);
}

TEST(wrong_question_type)
{
    struct pkt p;
    struct dns_mx mx[4];
    size_t n;
    int nx;
    struct str err = STR_INIT;

    start(&p, 0, 0, 0, "b.test", ns_t_a);
    CHECK(dns_parse_mx(p.b, p.len, mx, 4, &n, &nx, &err) == DNS_TEMPFAIL);
    str_free(&err);
}

TEST(servers_setting)
{
    struct str err = STR_INIT;
    struct conf *c = conf_load(unit_tmpdir(), &err);
    struct dns *d;

    CHECK(c != NULL);
    if (c == NULL)
        return;
    CHECK(conf_set(c, "dns_servers", "127.0.0.1, [::1]:5353, [192.0.2.1]:53", &err) == 0);
    d = dns_open(c, &err);
    CHECK(d != NULL);
    dns_close(d);
    /* what dns_open could not use, the configuration refuses when it is set */
    str_clear(&err);
    CHECK(conf_set(c, "dns_servers", "[127.0.0.1]:99999", &err) == -1);
    CHECK(strstr(err.s, "dns_servers") != NULL);
    CHECK(conf_set(c, "dns_servers", "a, b, c, d", &err) == -1);
    CHECK(conf_set(c, "dns_servers", "host.test", &err) == -1);
    d = dns_open(c, &err);
    CHECK(d != NULL);
    dns_close(d);
    conf_free(c);
    str_free(&err);
}
