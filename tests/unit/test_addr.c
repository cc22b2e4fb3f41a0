/* Unit tests for lib/mail/addr.c: RFC 5321 paths, quoting, splitting. */
#include "unit.h"

#include "addr.h"
#include "str.h"

#define N ADDR_ALLOW_NULL
#define U ADDR_SMTPUTF8
#define B ADDR_ALLOW_BARE

static const struct {
    const char *in;
    int flags;
    const char *addr;       /* internal form, NULL when the path is refused */
    const char *rest;       /* or the reason when refused */
} cases[] = {
    { "<a@b.example>", 0, "a@b.example", "" },
    { "<a@b>", 0, "a@b", "" },
    { " <a@b>", 0, "a@b", "" },
    { "   <a@b>  SIZE=100 BODY=8BITMIME", 0, "a@b", "SIZE=100 BODY=8BITMIME" },
    { "<a@b> SMTPUTF8", 0, "a@b", "SMTPUTF8" },
    { "<first.last@sub.example.com>", 0, "first.last@sub.example.com", "" },
    { "<a+tag@b>", 0, "a+tag@b", "" },
    { "<user%other@b>", 0, "user%other@b", "" },
    { "<host!user@b>", 0, "host!user@b", "" },
    { "<!#$%&'*+-/=?^_`{|}~@b>", 0, "!#$%&'*+-/=?^_`{|}~@b", "" },
    { "<\"a b\"@x>", 0, "a b@x", "" },
    { "<\"a\\\"b\"@x>", 0, "a\"b@x", "" },
    { "<\"a\\\\b\"@x>", 0, "a\\b@x", "" },
    { "<\"a@b\"@x>", 0, "a@b@x", "" },
    { "<\"a.\"@x>", 0, "a.@x", "" },
    { "<@r1.example:a@b>", 0, "a@b", "" },
    { "<@r1.example,@r2.example:a@b>", 0, "a@b", "" },
    { "<a@[192.0.2.1]>", 0, "a@[192.0.2.1]", "" },
    { "<a@[IPv6:2001:db8::1]>", 0, "a@[IPv6:2001:db8::1]", "" },
    { "<a@[ipv6:::1]>", 0, "a@[ipv6:::1]", "" },
    { "<a@x-y.z9>", 0, "a@x-y.z9", "" },
    { "<a@1.2>", 0, "a@1.2", "" },
    { "<postmaster>", 0, "postmaster", "" },
    { "<PostMaster>", 0, "postmaster", "" },
    { "<>", N, "", "" },
    { "<> BODY=7BIT", N, "", "BODY=7BIT" },
    { "a@b", B, "a@b", "" },
    { "a@b SIZE=1", B, "a@b", "SIZE=1" },
    { "<a@b>", B, "a@b", "" },
    { "<j\xc3\xb6rg@b\xc3\xbc" "cher.example>", U, "j\xc3\xb6rg@b\xc3\xbc" "cher.example", "" },
    { "<\"\xe2\x82\xac x\"@b>", U, "\xe2\x82\xac x@b", "" },

    { "<>", 0, NULL, "Null address not allowed here" },
    { "a@b", 0, NULL, "Syntax error in address" },
    { "", 0, NULL, "Syntax error in address" },
    { "<", 0, NULL, "Syntax error in address" },
    { "<a@b", 0, NULL, "Syntax error in address" },
    { "<a@b>x", 0, NULL, "Syntax error in address" },
    { "<a@b>>", 0, NULL, "Syntax error in address" },
    { "<a>", 0, NULL, "Syntax error in address" },
    { "<\"postmaster\">", 0, NULL, "Syntax error in address" },
    { "<@b>", 0, NULL, "Syntax error in address" },
    { "<a@>", 0, NULL, "Syntax error in address" },
    { "<a@@b>", 0, NULL, "Syntax error in address" },
    { "<a b@c>", 0, NULL, "Syntax error in address" },
    { "< a@b>", 0, NULL, "Syntax error in address" },
    { "<a@b >", 0, NULL, "Syntax error in address" },
    { "<.a@b>", 0, NULL, "Syntax error in address" },
    { "<a.@b>", 0, NULL, "Syntax error in address" },
    { "<a..b@c>", 0, NULL, "Syntax error in address" },
    { "<a@b.>", 0, NULL, "Syntax error in address" },
    { "<a@.b>", 0, NULL, "Syntax error in address" },
    { "<a@b..c>", 0, NULL, "Syntax error in address" },
    { "<a@-b>", 0, NULL, "Syntax error in address" },
    { "<a@b->", 0, NULL, "Syntax error in address" },
    { "<a@b_c>", 0, NULL, "Syntax error in address" },
    { "<a(b)@c>", 0, NULL, "Syntax error in address" },
    { "<a,b@c>", 0, NULL, "Syntax error in address" },
    { "<\"\"@c>", 0, NULL, "Syntax error in address" },
    { "<\"ab@c>", 0, NULL, "Syntax error in address" },
    { "<\"a\tb\"@c>", 0, NULL, "Syntax error in address" },
    { "<\"a\\\x01\"@c>", 0, NULL, "Syntax error in address" },
    { "<a\r@c>", 0, NULL, "Syntax error in address" },
    { "<@r1:>", 0, NULL, "Syntax error in address" },
    { "<@r1,a@b>", 0, NULL, "Syntax error in address" },
    { "<@r1 :a@b>", 0, NULL, "Syntax error in address" },
    { "<a@[1.2.3]>", 0, NULL, "Invalid address literal" },
    { "<a@[1.2.3.256]>", 0, NULL, "Invalid address literal" },
    { "<a@[IPv6:1.2.3.4]>", 0, NULL, "Invalid address literal" },
    { "<a@[2001:db8::1]>", 0, NULL, "Invalid address literal" },
    { "<a@[x-tag:stuff]>", 0, NULL, "Invalid address literal" },
    { "<a@[1.2.3.4>", 0, NULL, "Syntax error in address" },
    { "<a@[1.2.3.4]x>", 0, NULL, "Syntax error in address" },
    { "<j\xc3\xb6rg@b>", 0, NULL, "8-bit address needs SMTPUTF8" },
    { "<jorg@b\xc3\xbc>", 0, NULL, "8-bit address needs SMTPUTF8" },
    { "<\"\xc3\xb6\"@b>", 0, NULL, "8-bit address needs SMTPUTF8" },
    { "<j\xc3@b>", U, NULL, "Invalid UTF-8 in address" },
    { "<j\xc0\xaf@b>", U, NULL, "Invalid UTF-8 in address" },          /* overlong */
    { "<j\xed\xa0\x80@b>", U, NULL, "Invalid UTF-8 in address" },      /* surrogate */
    { "<j\xf4\x90\x80\x80@b>", U, NULL, "Invalid UTF-8 in address" },  /* > U+10FFFF */
    { "<j@\xff>", U, NULL, "Invalid UTF-8 in address" },
};

TEST(parse_table)
{
    struct str a = STR_INIT;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *rest = NULL, *why = NULL;
        int rc = addr_parse_path(cases[i].in, cases[i].flags, &a, &rest, &why);
        if (cases[i].addr != NULL) {
            if (rc != 0)
                fprintf(stderr, "  case %zu refused: %s\n", i, why);
            CHECK(rc == 0);
            if (rc == 0) {
                CHECK_STR(a.s ? a.s : "", cases[i].addr);
                CHECK_STR(rest, cases[i].rest);
            }
        } else {
            if (rc == 0)
                fprintf(stderr, "  case %zu accepted: %s\n", i, a.s);
            CHECK(rc == -1);
            CHECK_STR(why, cases[i].rest);
        }
    }
    str_free(&a);
}

TEST(limits)
{
    struct str a = STR_INIT, in = STR_INIT;
    const char *rest, *why = NULL;
    char local64[65], label63[64];

    memset(local64, 'l', 64);
    local64[64] = '\0';
    memset(label63, 'd', 63);
    label63[63] = '\0';

    str_printf(&in, "<%s@b>", local64);
    CHECK(addr_parse_path(in.s, 0, &a, &rest, &why) == 0);
    str_clear(&in);
    str_printf(&in, "<%sx@b>", local64);
    CHECK(addr_parse_path(in.s, 0, &a, &rest, &why) < 0);
    CHECK_STR(why, "Address too long");
    str_clear(&in);
    str_printf(&in, "<\"%s\"@b>", local64);                /* 66 with quotes */
    CHECK(addr_parse_path(in.s, 0, &a, &rest, &why) < 0);
    CHECK_STR(why, "Address too long");

    /* Labels: 63 is fine, 64 is not. */
    str_clear(&in);
    str_printf(&in, "<a@%s.x>", label63);
    CHECK(addr_parse_path(in.s, 0, &a, &rest, &why) == 0);
    str_clear(&in);
    str_printf(&in, "<a@%sd.x>", label63);
    CHECK(addr_parse_path(in.s, 0, &a, &rest, &why) < 0);

    /* Domain: 4 x 63 + 3 dots = 255 is fine alone (but no path can hold it); one
     * more is too long. */
    str_clear(&in);
    str_printf(&in, "%s.%s.%s.%s", label63, label63, label63, label63);
    CHECK(addr_domain_valid(in.s, false));
    str_appends(&in, ".x");
    CHECK(!addr_domain_valid(in.s, false));
    str_clear(&in);
    str_printf(&in, "<a@%s.%s.%s.%s>", label63, label63, label63, label63);
    CHECK(addr_parse_path(in.s, 0, &a, &rest, &why) < 0);
    CHECK_STR(why, "Address too long");
    str_clear(&in);
    str_printf(&in, "<a@%s.%s.%s.%s.x>", label63, label63, label63, label63);
    CHECK(addr_parse_path(in.s, 0, &a, &rest, &why) < 0);
    CHECK_STR(why, "Address too long");

    /* Path: 64 + 1 + 189 + 2 = 256 is fine, 257 is not. */
    str_clear(&in);
    str_printf(&in, "<%s@%s.%s.%.61s>", local64, label63, label63, label63);
    CHECK(in.len == 256);
    CHECK(addr_parse_path(in.s, 0, &a, &rest, &why) == 0);
    str_clear(&in);
    str_printf(&in, "<%s@%s.%s.%.62s>", local64, label63, label63, label63);
    CHECK(addr_parse_path(in.s, 0, &a, &rest, &why) < 0);
    CHECK_STR(why, "Address too long");
    /* A long source route counts too. */
    str_clear(&in);
    str_printf(&in, "<@%s.%s.%s.%s:a@b>", label63, label63, label63, label63);
    CHECK(addr_parse_path(in.s, 0, &a, &rest, &why) < 0);
    CHECK_STR(why, "Address too long");
    str_free(&in);
    str_free(&a);
}

/* A bare address (ADDR_ALLOW_BARE) is limited as the path it becomes with its
 * brackets: 254 bytes is fine and round-trips through addr_quote() within the
 * limit, 255 and 256 are refused (they were accepted, and then could not be written
 * back as a path the parser takes). */
TEST(bare_limit)
{
    struct str a = STR_INIT, b = STR_INIT, in = STR_INIT, q = STR_INIT;
    const char *rest, *why = NULL;
    char local64[65], label63[64];

    memset(local64, 'l', 64);
    local64[64] = '\0';
    memset(label63, 'd', 63);
    label63[63] = '\0';

    str_printf(&in, "%s@%s.%s.%.61s", local64, label63, label63, label63);
    CHECK(in.len == 254);
    CHECK(addr_parse_path(in.s, B, &a, &rest, &why) == 0);
    str_appendc(&q, '<');
    addr_quote(a.s, &q);
    str_appendc(&q, '>');
    CHECK(q.len == 256);
    CHECK(addr_parse_path(q.s, B, &b, &rest, &why) == 0);
    CHECK_STR(b.s, a.s);
    for (int extra = 1; extra <= 2; extra++) {
        str_clear(&in);
        str_printf(&in, "%s@%s.%s.%.*s", local64, label63, label63, 61 + extra, label63);
        CHECK(in.len == (size_t)(254 + extra));
        why = NULL;
        CHECK(addr_parse_path(in.s, B, &a, &rest, &why) < 0);
        CHECK_STR(why, "Address too long");
        CHECK(a.len == 0);
    }
    /* The same with a quoted local part: the quotes count as written. */
    str_clear(&in);
    str_printf(&in, "\"%.60s x\"@%s.%s.%.61s", local64, label63, label63, label63);
    CHECK(in.len == 254);
    CHECK(addr_parse_path(in.s, B, &a, &rest, &why) == 0);
    str_clear(&in);
    str_printf(&in, "\"%.60s x\"@%s.%s.%.62s", local64, label63, label63, label63);
    CHECK(addr_parse_path(in.s, B, &a, &rest, &why) < 0);
    CHECK_STR(why, "Address too long");
    str_free(&in);
    str_free(&q);
    str_free(&a);
    str_free(&b);
}

TEST(quote)
{
    static const struct { const char *in, *out; } q[] = {
        { "a@b", "a@b" },
        { "a.b@c", "a.b@c" },
        { "a b@x", "\"a b\"@x" },
        { "a\"b@x", "\"a\\\"b\"@x" },
        { "a\\b@x", "\"a\\\\b\"@x" },
        { "a@b@x", "\"a@b\"@x" },
        { "a.@x", "\"a.\"@x" },
        { ".a@x", "\".a\"@x" },
        { "a..b@x", "\"a..b\"@x" },
        { "postmaster", "postmaster" },
        { "", "" },
        { "user%h!x@b", "user%h!x@b" },
        { "j\xc3\xb6rg@b", "j\xc3\xb6rg@b" },
    };
    struct str out = STR_INIT, a = STR_INIT;

    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        str_clear(&out);
        addr_quote(q[i].in, &out);
        CHECK_STR(out.s ? out.s : "", q[i].out);
    }
    /* Round trip: parse the quoted form again. */
    for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
        const char *rest, *why;
        if (q[i].in[0] == '\0')
            continue;
        str_clear(&out);
        str_appendc(&out, '<');
        addr_quote(q[i].in, &out);
        str_appendc(&out, '>');
        CHECK(addr_parse_path(out.s, ADDR_SMTPUTF8, &a, &rest, &why) == 0);
        CHECK_STR(a.s, q[i].in);
    }
    str_free(&out);
    str_free(&a);
}

TEST(domains_fold_extension)
{
    struct str l = STR_INIT, d = STR_INIT, base = STR_INIT, ext = STR_INIT;
    char fold[] = "MiXed@ExAmPle.COM";
    char nofold[] = "NoDomain";

    CHECK(addr_domain_valid("example.com", false));
    CHECK(addr_domain_valid("[10.0.0.1]", false));
    CHECK(addr_domain_valid("[IPv6:::1]", false));
    CHECK(!addr_domain_valid("", false));
    CHECK(!addr_domain_valid("a..b", false));
    CHECK(!addr_domain_valid("a b", false));
    CHECK(!addr_domain_valid("[10.0.0.1]x", false));
    CHECK(!addr_domain_valid("b\xc3\xbc.de", false));
    CHECK(addr_domain_valid("b\xc3\xbc.de", true));

    CHECK(addr_local_safe("user"));
    CHECK(addr_local_safe("a.b+c"));
    CHECK(!addr_local_safe(""));
    CHECK(!addr_local_safe("."));
    CHECK(!addr_local_safe(".."));
    CHECK(!addr_local_safe(".hidden"));
    CHECK(!addr_local_safe("a/b"));
    CHECK(!addr_local_safe("a\nb"));
    CHECK(!addr_local_safe("a\177"));
    CHECK(addr_local_safe("llllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll"));
    CHECK(!addr_local_safe("lllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllllll"));

    addr_fold_domain(fold);
    CHECK_STR(fold, "MiXed@example.com");
    addr_fold_domain(nofold);
    CHECK_STR(nofold, "NoDomain");

    CHECK(addr_strip_extension("user+tag@d", "+", &base, &ext) == 1);
    CHECK_STR(base.s, "user@d");
    CHECK_STR(ext.s, "tag");
    CHECK(addr_strip_extension("user-a+b@d", "+-", &base, &ext) == 1);
    CHECK_STR(base.s, "user@d");
    CHECK_STR(ext.s, "a+b");
    CHECK(addr_strip_extension("user@d", "+", &base, &ext) == 0);
    CHECK_STR(base.s, "user@d");
    CHECK(ext.len == 0);
    CHECK(addr_strip_extension("+tag@d", "+", &base, &ext) == 0);
    CHECK_STR(base.s, "+tag@d");
    CHECK(addr_strip_extension("user+@d", "+", &base, &ext) == 1);
    CHECK_STR(base.s, "user@d");
    CHECK_STR(ext.s, "");
    CHECK(addr_strip_extension("user+x", "+", &base, &ext) == 1);
    CHECK_STR(base.s, "user");
    CHECK(addr_strip_extension("user+x@d", "", &base, &ext) == 0);
    CHECK(addr_strip_extension("user+x@d", NULL, &base, &ext) == 0);
    str_free(&l);
    str_free(&d);
    str_free(&base);
    str_free(&ext);
}
