/* Unit tests for lib/util/attr_scan.c: every type, flag and error of the typed
 * attribute scanner, on frames built in memory. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "attr_scan.h"
#include "str.h"
#include "unit.h"

/* A frame from "name=value" pairs. */
static void frame(struct attr_list *al, const char *const *pairs)
{
    attr_clear(al);
    for (; *pairs != NULL; pairs++) {
        const char *eq = strchr(*pairs, '=');
        char name[64];

        memcpy(name, *pairs, (size_t)(eq - *pairs));
        name[eq - *pairs] = '\0';
        attr_add(al, name, eq + 1);
    }
}

TEST(all_types)
{
    static const char *const in[] = {
        "req=verify", "n=-42", "addr=a@b", "rcpt=3", "addr=c@d", "rcpt=5", "blob=x", NULL,
    };
    struct attr_list al = ATTR_LIST_INIT;
    struct str err = STR_INIT;
    const char *req = NULL, *absent = "default";
    long long n = 0, opt = 7;
    struct attr_strs addrs;
    struct attr_ints rcpts, none;
    struct attr_data blob = { NULL, 0 };
    const struct attr_spec spec[] = {
        ATTR_STR("req", ATTR_NONEMPTY, &req, 16),
        ATTR_INT("n", 0, &n, -100, 100),
        ATTR_STR_LIST("addr", 0, &addrs, 0),
        ATTR_INT_LIST("rcpt", 0, &rcpts, 0, 10),
        ATTR_DATA("blob", 0, &blob, 0),
        ATTR_STR("absent", ATTR_OPTIONAL, &absent, 0),
        ATTR_INT("opt", ATTR_OPTIONAL, &opt, 0, 10),
        ATTR_INT_LIST("none", ATTR_OPTIONAL, &none, 0, 10),
        ATTR_END,
    };

    frame(&al, in);
    CHECK(attr_scan(&al, ATTR_SCAN_STRICT, spec, &err) == 0);
    CHECK_STR(req, "verify");
    CHECK(n == -42);
    CHECK(addrs.n == 2);
    CHECK_STR(addrs.n == 2 ? addrs.v[1] : NULL, "c@d");
    CHECK(rcpts.n == 2 && rcpts.v[0] == 3 && rcpts.v[1] == 5);
    CHECK(blob.len == 1 && blob.s[0] == 'x');
    /* optional and absent: left as they were; lists empty */
    CHECK_STR(absent, "default");
    CHECK(opt == 7);
    CHECK(none.n == 0 && none.v == NULL);
    attr_scan_free(spec);
    CHECK(addrs.v == NULL && addrs.n == 0 && rcpts.v == NULL);
    attr_free(&al);
    str_free(&err);
}

/* Scans pairs against one spec with flags: the return value, and the error text. */
static int scan1(const char *const *pairs, const struct attr_spec *spec, unsigned flags,
                 struct str *err)
{
    struct attr_list al = ATTR_LIST_INIT;
    int rc;

    frame(&al, pairs);
    rc = attr_scan(&al, flags, spec, err);
    if (rc == 0)
        attr_scan_free(spec);
    attr_free(&al);
    return rc;
}

TEST(unknown_skipped_unless_strict)
{
    static const char *const in[] = { "a=1", "future=x", NULL };
    struct str err = STR_INIT;
    const char *a = NULL;
    const struct attr_spec spec[] = { ATTR_STR("a", 0, &a, 0), ATTR_END };
    const struct attr_spec ignoring[] = {
        ATTR_STR("a", 0, &a, 0), ATTR_IGNORE("future"), ATTR_END,
    };

    CHECK(scan1(in, spec, 0, &err) == 0);
    CHECK(scan1(in, spec, ATTR_SCAN_STRICT, &err) == -1);
    CHECK_STR(err.s, "unexpected attribute \"future\"");
    /* an attribute a strict reader expects and does not look at */
    CHECK(scan1(in, ignoring, ATTR_SCAN_STRICT, &err) == 0);
    str_free(&err);
}

TEST(missing_required_always_an_error)
{
    static const char *const in[] = { "b=1", NULL };
    struct str err = STR_INIT;
    const char *a = NULL;
    struct attr_strs list;
    const struct attr_spec spec[] = { ATTR_STR("a", 0, &a, 0), ATTR_END };
    const struct attr_spec lspec[] = { ATTR_STR_LIST("a", 0, &list, 0), ATTR_END };

    CHECK(scan1(in, spec, 0, &err) == -1);
    CHECK_STR(err.s, "missing attribute \"a\"");
    CHECK(scan1(in, spec, ATTR_SCAN_STRICT, &err) == -1);
    /* a required list needs one value at least */
    CHECK(scan1(in, lspec, 0, &err) == -1);
    CHECK_STR(err.s, "missing attribute \"a\"");
    CHECK(list.v == NULL && list.n == 0);
    str_free(&err);
}

TEST(repeated_single_is_an_error)
{
    static const char *const in[] = { "a=1", "a=2", NULL };
    struct str err = STR_INIT;
    const char *s = NULL;
    long long n = 0;
    struct attr_data d;
    struct attr_ints list;
    const struct attr_spec str_spec[] = { ATTR_STR("a", ATTR_OPTIONAL, &s, 0), ATTR_END };
    const struct attr_spec int_spec[] = { ATTR_INT("a", 0, &n, 0, 9), ATTR_END };
    const struct attr_spec data_spec[] = { ATTR_DATA("a", 0, &d, 0), ATTR_END };
    const struct attr_spec list_spec[] = { ATTR_INT_LIST("a", 0, &list, 0, 9), ATTR_END };

    CHECK(scan1(in, str_spec, 0, &err) == -1);
    CHECK_STR(err.s, "attribute \"a\" given more than once");
    CHECK(scan1(in, int_spec, 0, &err) == -1);
    CHECK(scan1(in, data_spec, 0, &err) == -1);
    CHECK(scan1(in, list_spec, 0, &err) == 0);
    str_free(&err);
}

TEST(integer_bounds_and_syntax)
{
    struct str err = STR_INIT;
    long long n = 0;
    struct attr_ints list;
    const struct attr_spec spec[] = { ATTR_INT("n", 0, &n, -5, 5), ATTR_END };
    const struct attr_spec wide[] = { ATTR_INT("n", 0, &n, LLONG_MIN, LLONG_MAX), ATTR_END };
    const struct attr_spec lspec[] = { ATTR_INT_LIST("n", 0, &list, 0, 5), ATTR_END };
    static const char *const ok_lo[] = { "n=-5", NULL }, *const ok_hi[] = { "n=5", NULL };
    static const char *const lo[] = { "n=-6", NULL }, *const hi[] = { "n=6", NULL };
    static const char *const bad[][2] = {
        { "n=", NULL }, { "n=x", NULL }, { "n= 1", NULL }, { "n=+1", NULL }, { "n=1x", NULL },
        { "n=-", NULL }, { "n=99999999999999999999", NULL },
    };
    static const char *const big[] = { "n=-9223372036854775808", NULL };
    static const char *const lbad[] = { "n=1", "n=6", NULL };

    CHECK(scan1(ok_lo, spec, 0, &err) == 0 && n == -5);
    CHECK(scan1(ok_hi, spec, 0, &err) == 0 && n == 5);
    CHECK(scan1(lo, spec, 0, &err) == -1);
    CHECK_STR(err.s, "attribute \"n\": not a number in -5..5");
    CHECK(scan1(hi, spec, 0, &err) == -1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(scan1(bad[i], wide, 0, &err) == -1);
    CHECK(scan1(big, wide, 0, &err) == 0 && n == LLONG_MIN);
    /* every value of a list is checked, and the list released on failure */
    CHECK(scan1(lbad, lspec, 0, &err) == -1);
    CHECK(list.v == NULL && list.n == 0);
    str_free(&err);
}

TEST(texts_lengths_and_nul)
{
    struct attr_list al = ATTR_LIST_INIT;
    struct str err = STR_INIT;
    const char *s = NULL;
    struct attr_data d = { NULL, 0 };
    struct attr_strs list;
    const struct attr_spec spec[] = { ATTR_STR("s", 0, &s, 3), ATTR_END };
    const struct attr_spec nonempty[] = { ATTR_STR("s", ATTR_NONEMPTY, &s, 0), ATTR_END };
    const struct attr_spec data[] = { ATTR_DATA("s", 0, &d, 3), ATTR_END };
    const struct attr_spec lspec[] = { ATTR_STR_LIST("s", 0, &list, 3), ATTR_END };

    attr_add(&al, "s", "abc");
    CHECK(attr_scan(&al, 0, spec, &err) == 0);
    CHECK_STR(s, "abc");
    attr_clear(&al);
    attr_add(&al, "s", "abcd");
    CHECK(attr_scan(&al, 0, spec, &err) == -1);
    CHECK_STR(err.s, "attribute \"s\": longer than 3 bytes");
    CHECK(attr_scan(&al, 0, data, &err) == -1);
    CHECK(attr_scan(&al, 0, lspec, &err) == -1);
    /* texts hold no NUL byte; data may */
    attr_clear(&al);
    attr_addn(&al, "s", "a\0b", 3);
    CHECK(attr_scan(&al, 0, spec, &err) == -1);
    CHECK_STR(err.s, "attribute \"s\": a NUL byte in a text");
    CHECK(attr_scan(&al, 0, data, &err) == 0);
    CHECK(d.len == 3 && memcmp(d.s, "a\0b", 3) == 0);
    /* empty */
    attr_clear(&al);
    attr_add(&al, "s", "");
    CHECK(attr_scan(&al, 0, spec, &err) == 0);
    CHECK_STR(s, "");
    CHECK(attr_scan(&al, 0, nonempty, &err) == -1);
    CHECK_STR(err.s, "attribute \"s\": empty");
    attr_free(&al);
    str_free(&err);
}

TEST(error_never_quotes_a_value)
{
    static const char *const in[] = { "password=hunter2hunter2", NULL };
    struct str err = STR_INIT;
    const char *p = NULL;
    const struct attr_spec spec[] = { ATTR_STR("password", 0, &p, 4), ATTR_END };

    CHECK(scan1(in, spec, 0, &err) == -1);
    CHECK(strstr(err.s, "hunter2") == NULL);
    str_free(&err);
}

TEST(many_specs)
{
    struct attr_list al = ATTR_LIST_INIT;
    struct str err = STR_INIT;
    static const char *const names[] = {
        "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9",
        "b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9",
    };
    long long v[20];
    struct attr_spec spec[21];

    for (size_t i = 0; i < 20; i++) {
        spec[i] = (struct attr_spec)ATTR_INT(names[i], 0, &v[i], 0, 100);
        attr_add_int(&al, names[i], (long long)i);
    }
    spec[20] = (struct attr_spec)ATTR_END;
    CHECK(attr_scan(&al, ATTR_SCAN_STRICT, spec, &err) == 0);
    CHECK(v[19] == 19 && v[0] == 0);
    attr_free(&al);
    str_free(&err);
}

TEST(decode_from_memory)
{
    struct attr_list al = ATTR_LIST_INIT, in = ATTR_LIST_INIT;
    struct str buf = STR_INIT;

    attr_add(&al, "user", "u");
    attr_addn(&al, "pending", "x\0y", 3);
    attr_encode(&al, &buf);
    CHECK(buf.len == 27 && memcmp(buf.s, "6:user=u,11:pending=x\0y,0:,", 27) == 0);
    CHECK(attr_decode(buf.s, buf.len, &in, 0) == 0);
    CHECK(in.n == 2 && in.v[1].len == 3);
    /* bytes after the frame, a frame cut short, nothing */
    str_appendc(&buf, 'x');
    CHECK(attr_decode(buf.s, buf.len, &in, 0) == -1 && in.n == 0);
    CHECK(attr_decode(buf.s, buf.len - 3, &in, 0) == -1);
    CHECK(attr_decode("", 0, &in, 0) == -1);
    CHECK(attr_decode(buf.s, buf.len - 1, &in, 8) == -1);   /* too large */
    attr_free(&al);
    attr_free(&in);
    str_free(&buf);
}
