/* dnsbl: the dnsbl_sites syntax and the query names. */
#include "unit.h"
#include <string.h>
#include "dnsbl.h"
#include "str.h"

TEST(site_syntax)
{
    static const char *good[] = {
        "zen.example", "zen.example=127.0.0.[2..11]*3", "list.example*-5",
        "a.example=127.0.[0..255].[1;3;5..7]", "b.example=127.0.0.2",
    };
    static const char *bad[] = {
        "", "zen..example", "zen.example=127.0.0", "zen.example=127.0.0.[2..]",
        "zen.example=127.0.0.[11..2]", "zen.example=127.0.0.256", "zen.example*x",
        "zen.example*3=127.0.0.2", "zen.example=127.0.0.2junk", "zen example",
    };
    struct str err = STR_INIT;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        CHECK(dnsbl_site_check(good[i], &err) == 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        str_clear(&err);
        CHECK(dnsbl_site_check(bad[i], &err) == -1);
        CHECK(err.s != NULL && strstr(err.s, "dnsbl_sites") != NULL);
    }
    str_free(&err);
}

TEST(query_names)
{
    char out[300];

    CHECK(dnsbl_query_name("192.0.2.10", "zen.example", out, sizeof(out)));
    CHECK_STR(out, "10.2.0.192.zen.example");
    CHECK(dnsbl_query_name("2001:db8::1", "bl.example", out, sizeof(out)));
    CHECK_STR(out, "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example");
    CHECK(!dnsbl_query_name("not-an-ip", "zen.example", out, sizeof(out)));
    CHECK(!dnsbl_query_name("192.0.2.10", "zen.example", out, 10));
}
