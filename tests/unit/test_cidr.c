/* Unit tests for lib/util/cidr.c: parsing of blocks, IPv4 and IPv6 matching, lists. */
#include "unit.h"

#include <sys/socket.h>

#include "cidr.h"
#include "str.h"

static bool m(const char *spec, const char *addr)
{
    struct cidr c;
    struct cidr_list one = { &c, 1 };

    if (cidr_parse(spec, &c, NULL) < 0)
        return false;
    return cidr_list_match(&one, addr);
}

static bool bad(const char *spec)
{
    struct cidr c;
    struct str err = STR_INIT;
    int r = cidr_parse(spec, &c, &err);

    if (r == 0 && err.len != 0)
        r = 1;
    str_free(&err);
    return r < 0;
}

TEST(ipv4_blocks)
{
    CHECK(m("127.0.0.0/8", "127.0.0.1"));
    CHECK(m("127.0.0.0/8", "127.255.255.254"));
    CHECK(!m("127.0.0.0/8", "128.0.0.1"));
    CHECK(m("10.1.2.3", "10.1.2.3"));
    CHECK(!m("10.1.2.3", "10.1.2.4"));
    CHECK(m("192.168.0.0/23", "192.168.1.200"));
    CHECK(!m("192.168.0.0/23", "192.168.2.1"));
    CHECK(m("0.0.0.0/0", "203.0.113.9"));
    CHECK(!m("0.0.0.0/0", "::1"));
    CHECK(m("[10.0.0.0]/8", "10.9.9.9"));
    CHECK(m("172.16.0.0/12", "172.31.255.255"));
    CHECK(!m("172.16.0.0/12", "172.32.0.0"));
}

TEST(ipv6_blocks)
{
    CHECK(m("[::1]/128", "::1"));
    CHECK(m("::1", "::1"));
    CHECK(!m("[::1]/128", "::2"));
    CHECK(!m("[::1]/128", "127.0.0.1"));
    CHECK(m("2001:db8::/32", "2001:db8:ffff::1"));
    CHECK(!m("2001:db8::/32", "2001:db9::1"));
    CHECK(m("[2001:db8::]/33", "2001:db8:7fff::1"));
    CHECK(!m("[2001:db8::]/33", "2001:db8:8000::1"));
    CHECK(m("::/0", "fe80::1"));
    CHECK(m("[fe80::]/10", "[fe80::abcd]"));
    CHECK(m("[IPv6:2001:db8::1]", "2001:db8::1"));
}

TEST(v4_mapped)
{
    CHECK(m("127.0.0.0/8", "::ffff:127.0.0.1"));
    CHECK(!m("127.0.0.0/8", "::ffff:128.0.0.1"));
    CHECK(m("[::ffff:10.0.0.0]/104", "10.2.3.4"));
    CHECK(!m("[::ffff:10.0.0.0]/104", "11.2.3.4"));
}

TEST(bad_specs)
{
    CHECK(bad(""));
    CHECK(bad("localhost"));
    CHECK(bad("10.0.0.0/33"));
    CHECK(bad("::/129"));
    CHECK(bad("10.0.0.0/"));
    CHECK(bad("10.0.0.0/8x"));
    CHECK(bad("10.0.0.0/-1"));
    CHECK(bad("10.0.0.0/0008"));
    CHECK(bad("10.0.0.1/8"));           /* host bits set */
    CHECK(bad("2001:db8::1/32"));
    CHECK(bad("[::1"));
    CHECK(bad("::1]"));
    CHECK(bad("1.2.3"));
    CHECK(bad("1.2.3.4.5"));
    CHECK(bad("fe80::1%eth0"));
    CHECK(bad("[0123456789012345678901234567890123456789012345678901234567890123456789]"));
    CHECK(!bad("10.0.0.0/8"));
    CHECK(!bad("[::1]/128"));
    CHECK(!m("10.0.0.0/8", "not-an-address"));
    CHECK(!m("10.0.0.0/8", ""));
}

TEST(lists)
{
    char *items[] = { "127.0.0.0/8", "[::1]/128", "192.0.2.0/24", NULL };
    char *broken[] = { "127.0.0.0/8", "nonsense", NULL };
    char *none[] = { NULL };
    struct cidr_list cl;
    struct str err = STR_INIT;

    CHECK(cidr_list_parse(items, &cl, &err) == 0);
    CHECK(cl.n == 3);
    CHECK(cidr_list_match(&cl, "127.0.0.1"));
    CHECK(cidr_list_match(&cl, "::1"));
    CHECK(cidr_list_match(&cl, "192.0.2.77"));
    CHECK(!cidr_list_match(&cl, "198.51.100.1"));
    CHECK(!cidr_list_match(&cl, "2001:db8::1"));
    cidr_list_free(&cl);

    CHECK(cidr_list_parse(broken, &cl, &err) == -1);
    CHECK(strstr(err.s, "nonsense") != NULL);
    CHECK(cl.n == 0 && cl.v == NULL);

    CHECK(cidr_list_parse(none, &cl, &err) == 0);
    CHECK(!cidr_list_match(&cl, "127.0.0.1"));
    cidr_list_free(&cl);
    CHECK(cidr_list_parse(NULL, &cl, &err) == 0);
    cidr_list_free(&cl);
    str_free(&err);
}

TEST(host_word)
{
    char *items[] = { "host", "10.0.0.0/8", NULL };
    struct cidr_list cl;
    struct str err = STR_INIT, text = STR_INIT;

    /* The loopback interface's 127.0.0.1 is this host's; the rest of 127/8 is not. */
    CHECK(cidr_list_parse(items, &cl, &err) == 0);
    CHECK(cidr_list_match(&cl, "127.0.0.1"));
    CHECK(!cidr_list_match(&cl, "127.0.0.2"));
    CHECK(cidr_list_match(&cl, "10.9.8.7"));
    for (size_t i = 0; i < cl.n; i++)
        CHECK(cl.v[i].prefix == (cl.v[i].family == AF_INET ? 32u : 128u)
              || (cl.v[i].family == AF_INET && cl.v[i].prefix == 8));
    cidr_list_free(&cl);
    CHECK(cidr_host_text(&text) == 0);
    CHECK(strstr(text.s, "127.0.0.1/32") != NULL);
    str_free(&text);
    str_free(&err);
}
