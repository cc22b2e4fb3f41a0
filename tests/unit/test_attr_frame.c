/* Unit tests for lib/util/attr_frame.c: the end of a frame in partial input, and the
 * malformed and oversized cases, checked against attr_decode on whole frames. */
#include "unit.h"

#include <errno.h>

#include "attr.h"
#include "attr_frame.h"
#include "str.h"

static int end(const char *s, size_t max, size_t *n)
{
    return attr_frame_end(s, strlen(s), max, n);
}

TEST(whole_and_partial_frames)
{
    const char *f = "10:req=wakeup,7:client=,0:,";
    size_t n = 0, len = strlen(f);
    struct attr_list al = ATTR_LIST_INIT;

    CHECK(end(f, 0, &n) == 1 && n == len);
    CHECK(attr_decode(f, n, &al, 0) == 0);
    CHECK_STR(attr_get(&al, "req"), "wakeup");
    /* every proper prefix is incomplete */
    for (size_t i = 0; i < len; i++) {
        size_t m = 0;
        CHECK(attr_frame_end(f, i, 0, &m) == 0);
    }
    /* a second frame behind the first is not part of it */
    {
        struct str two = STR_INIT;
        str_printf(&two, "%s%s", f, "0:,");
        CHECK(attr_frame_end(two.s, two.len, 0, &n) == 1 && n == len);
        str_free(&two);
    }
    CHECK(end("0:,", 0, &n) == 1 && n == 3);
    attr_free(&al);
}

TEST(malformed)
{
    size_t n = 0;

    errno = 0;
    CHECK(end("x:,", 0, &n) < 0 && errno == EPROTO);
    CHECK(end(":,", 0, &n) < 0);
    CHECK(end("01:a,0:,", 0, &n) < 0);           /* leading zero */
    CHECK(end("3:a=b;0:,", 0, &n) < 0);          /* no comma */
    CHECK(end("12345678901:", 0, &n) < 0);       /* eleven digits */
    CHECK(end("3:a=b,x", 0, &n) < 0);
}

TEST(oversized)
{
    size_t n = 0;

    errno = 0;
    CHECK(end("100:", 64, &n) < 0 && errno == EMSGSIZE);
    errno = 0;
    CHECK(end("9999999999:", 0, &n) < 0 && errno == EMSGSIZE);
    /* just fits: "3:a=b," (6) + "0:," (3) = 9 */
    CHECK(end("3:a=b,0:,", 9, &n) == 1 && n == 9);
    CHECK(end("3:a=b,0:,", 8, &n) < 0);
    /* a stream of digits never ends the frame but is bounded */
    errno = 0;
    CHECK(end("3:a=b,3:a=b,3:a=b,", 10, &n) < 0 && errno == EMSGSIZE);
}
