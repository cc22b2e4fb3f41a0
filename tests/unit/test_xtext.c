/* Unit tests for xtext (RFC 3461) checks and decoding. */
#include "unit.h"

#include "str.h"
#include "xtext.h"

TEST(valid)
{
    CHECK(xtext_valid("abc", 10));
    CHECK(xtext_valid("a+2Bb", 10));
    CHECK(!xtext_valid("", 10));
    CHECK(!xtext_valid("a b", 10));
    CHECK(!xtext_valid("a=b", 10));
    CHECK(!xtext_valid("a+2", 10));
    CHECK(!xtext_valid("a+2b", 10));          /* lower-case hex */
    CHECK(!xtext_valid("abcd", 3));
    CHECK(xtext_valid("abc", 3));
    CHECK(!xtext_valid("a\x80", 10));
}

TEST(decode)
{
    struct str d = STR_INIT;

    CHECK(xtext_decode("rfc+2Bx", 7, &d) == 0);
    CHECK_STR(d.s, "rfc+x");
    CHECK(xtext_decode("ab+41", 5, &d) == 0);
    CHECK_STR(d.s, "abA");
    CHECK(xtext_decode("ab+41", 4, &d) < 0);  /* escape cut by the length */
    CHECK(xtext_decode("a+20b", 5, &d) < 0);  /* space */
    CHECK(xtext_decode("a+0Ab", 5, &d) < 0);  /* control */
    CHECK(xtext_decode("a+7F", 4, &d) < 0);   /* DEL */
    CHECK(xtext_decode("a+G1", 4, &d) < 0);
    CHECK(xtext_decode("a+C3+A9", 7, &d) == 0 && d.len == 3);
    CHECK(xtext_decode("", 0, &d) == 0 && d.len == 0);
    str_free(&d);
}
