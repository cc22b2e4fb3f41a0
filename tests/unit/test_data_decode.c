/* Unit tests for smtpd's message content decoder (smtpd/data_decode.c, built into
 * this test program): line ends, dot-stuffing, the end-of-data rule and the
 * sequences that must never end a message, long lines, BDAT chunk boundaries. */
#include "unit.h"

#include "../../smtpd/data_decode.c"
#include "str.h"

struct result {
    struct str out;
    size_t used;
    int rc;
    bool ended;
    bool too_long;
};

static int collect(void *arg, const char *line, size_t len)
{
    str_append(arg, line, len);
    return 0;
}

/* Decodes in in pieces of at most step bytes (0: all at once). */
static void run(enum data_mode mode, size_t line_max, const char *in, size_t step,
                bool finish, struct result *r)
{
    struct data_decoder d;
    size_t n = strlen(in), pos = 0;

    str_init(&r->out);
    r->used = 0;
    r->rc = 0;
    data_decode_init(&d, mode, line_max, collect, &r->out);
    while (pos < n && !d.ended) {
        size_t piece = step == 0 || n - pos < step ? n - pos : step, used;
        r->rc = data_decode(&d, in + pos, piece, &used);
        pos += used;
        if (r->rc < 0)
            break;
    }
    if (finish)
        data_decode_finish(&d);
    r->used = pos;
    r->ended = d.ended;
    r->too_long = d.too_long;
    data_decode_free(&d);
}

static void dot(const char *in, const char *want, bool ended, size_t used)
{
    for (size_t step = 0; step <= 3; step++) {
        struct result r;
        run(DATA_MODE_DOT, 1000, in, step, false, &r);
        CHECK_STR(r.out.s, want);
        CHECK(r.ended == ended);
        if (ended)
            CHECK(r.used == used);
        str_free(&r.out);
    }
}

TEST(plain_data)
{
    dot("Subject: x\r\n\r\nbody\r\n.\r\n", "Subject: x\n\nbody\n", true, 23);
    dot(".\r\n", "", true, 3);
    dot("a\r\n.\r\nMAIL FROM:<x>\r\n", "a\n", true, 6);
    dot("..leading dot\r\n.\r\n", ".leading dot\n", true, 18);
    dot("...\r\n.\r\n", "..\n", true, 8);
}

TEST(bare_line_ends)
{
    dot("a\nb\r\n.\r\n", "a\nb\n", true, 8);
    dot("a\rb\r\n.\r\n", "a\nb\n", true, 8);
    dot("a\r\r\n.\r\n", "a\n\n", true, 7);
    dot("a\n\n.\r\n", "a\n\n\n", false, 0);      /* preceding line ended in bare LF */
}

TEST(smuggling_never_ends)
{
    /* <LF>.<LF> */
    dot("x\r\n\n.\nMAIL FROM:<evil>\r\n", "x\n\n.\nMAIL FROM:<evil>\n", false, 0);
    /* <LF>.<CR><LF> */
    dot("x\n.\r\nMAIL FROM:<evil>\r\n", "x\n\nMAIL FROM:<evil>\n", false, 0);
    /* <CR>.<CR> */
    dot("x\r.\rMAIL FROM:<evil>\r\n", "x\n.\nMAIL FROM:<evil>\n", false, 0);
    /* <CR><LF>.<LF> */
    dot("x\r\n.\nRCPT TO:<y>\r\n", "x\n.\nRCPT TO:<y>\n", false, 0);
    /* <CR><LF>.<CR> then text */
    dot("x\r\n.\rQUIT\r\n", "x\n.\nQUIT\n", false, 0);
    /* after all that, a real end still works */
    dot("x\n.\nA\r\n.\r\nnext", "x\n.\nA\n", true, 10);
}

TEST(no_cr_in_output)
{
    struct result r;

    run(DATA_MODE_DOT, 1000, "a\rb\rc\r\r\r\n\r\n.\r\n", 1, false, &r);
    CHECK(strchr(r.out.s, '\r') == NULL);
    CHECK_STR(r.out.s, "a\nb\nc\n\n\n\n");
    CHECK(r.ended);
    str_free(&r.out);
}

TEST(long_lines)
{
    struct result r;

    /* line_max counts the line end: 8 bytes "abcdef\r\n" fit, 9 do not */
    run(DATA_MODE_DOT, 8, "abcdef\r\nabcdefg\r\nok\r\n.\r\n", 0, false, &r);
    CHECK_STR(r.out.s, "abcdef\nok\n");
    CHECK(r.too_long);
    CHECK(r.ended);
    str_free(&r.out);

    run(DATA_MODE_DOT, 8, "abcdefg\nabcdefgh\r\n.\r\n", 2, false, &r);
    CHECK(r.too_long);
    CHECK(r.ended);
    CHECK_STR(r.out.s, "abcdefg\n");
    str_free(&r.out);

    /* a very long line: the terminator after it is still found */
    {
        struct str big = STR_INIT;
        for (int i = 0; i < 5000; i++)
            str_appendc(&big, 'x');
        str_appends(&big, "\r\n.\r\nNOOP\r\n");
        run(DATA_MODE_DOT, 100, big.s, 7, false, &r);
        CHECK(r.too_long);
        CHECK(r.ended);
        CHECK(r.used == big.len - 6);
        CHECK_STR(r.out.s, "");
        str_free(&r.out);
        str_free(&big);
    }
}

TEST(bdat)
{
    struct result r;

    /* no dot handling, no terminator; CR at a piece boundary joins the LF */
    for (size_t step = 0; step <= 4; step++) {
        run(DATA_MODE_BDAT, 1000, "a\r\n.\r\n..b\rc\nd\r", step, true, &r);
        CHECK_STR(r.out.s, "a\n.\n..b\nc\nd\n");
        CHECK(!r.ended);
        str_free(&r.out);
    }
    run(DATA_MODE_BDAT, 1000, "no newline at end", 0, true, &r);
    CHECK_STR(r.out.s, "no newline at end\n");
    str_free(&r.out);
    run(DATA_MODE_BDAT, 1000, "", 0, true, &r);
    CHECK_STR(r.out.s, "");
    str_free(&r.out);
}

static int stop_at_second(void *arg, const char *line, size_t len)
{
    int *count = arg;
    (void)line;
    (void)len;
    return ++*count == 2;
}

TEST(callback_stops)
{
    struct data_decoder d;
    int count = 0;
    size_t used;

    data_decode_init(&d, DATA_MODE_DOT, 100, stop_at_second, &count);
    CHECK(data_decode(&d, "a\r\nb\r\nc\r\n", 9, &used) == -1);
    CHECK(used == 6);
    data_decode_free(&d);
}
