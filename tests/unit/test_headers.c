/* Unit tests for lib/mail/headers.c: the header section reader. */
#include "unit.h"

#include <stdlib.h>

#include "headers.h"

#define S(lit) lit, sizeof(lit) - 1

TEST(fields_and_unfolding)
{
    const char msg[] = "From: a@b\nSubject: one\n two\r\n\tthree  \nX-Empty:\n\nbody: no\n";
    struct header_reader hr;
    struct header_field f;

    header_reader_init(&hr, msg, sizeof(msg) - 1);
    CHECK(header_next(&hr, &f) == 1);
    CHECK(header_name_is(&f, "from"));
    CHECK_STR(f.value, "a@b");
    CHECK(f.raw == msg && f.raw_len == 10);
    CHECK(header_next(&hr, &f) == 1);
    CHECK(header_name_is(&f, "SUBJECT"));
    CHECK_STR(f.value, "one two\tthree");
    CHECK(f.value_len == 13);
    CHECK(header_next(&hr, &f) == 1);
    CHECK(header_name_is(&f, "x-empty"));
    CHECK(f.value_len == 0);
    CHECK_STR(f.value, "");
    CHECK(header_next(&hr, &f) == 0);
    CHECK(header_next(&hr, &f) == 0);
    CHECK(hr.pos == (size_t)(strstr(msg, "body") - msg));
    header_reader_free(&hr);
    CHECK(header_section_len(msg, sizeof(msg) - 1) == (size_t)(strstr(msg, "body") - msg));
}

TEST(section_ends)
{
    /* CRLF empty line */
    CHECK(header_section_len(S("A: 1\r\n\r\nbody")) == 8);
    /* a line that is not a field */
    CHECK(header_section_len(S("A: 1\nnot a field\nB: 2\n")) == 5);
    /* first line a continuation: no section */
    CHECK(header_section_len(S(" A: 1\n")) == 0);
    /* mbox From_ line: not a field */
    CHECK(header_section_len(S("From a@b Mon\nA: 1\n")) == 0);
    /* no empty line, no final newline */
    CHECK(header_section_len(S("A: 1\nB: 2")) == 9);
    CHECK(header_section_len(S("")) == 0);
    CHECK(header_section_len(NULL, 0) == 0);
    /* obsolete space before the colon */
    CHECK(header_count(S("Received : x\nReceived: y\n\nReceived: z\n"), "received") == 2);
    /* a colon-less line ends it; a name with a control character is no name */
    CHECK(header_count(S("A\001B: 1\nA: 2\n"), "a") == 0);
    CHECK(header_section_len(S(":x\n")) == 0);
}

TEST(count)
{
    const char msg[] = "Delivered-To: Foo@Example.TEST\n"
                       "delivered-to:\n  bar@example.test \n"
                       "Subject: x\n\n"
                       "Delivered-To: body@example.test\n";

    CHECK(header_count(S(msg), "delivered-to") == 2);
    CHECK(header_count(S(msg), "subject") == 1);
    CHECK(header_count(S(msg), "received") == 0);
}

TEST(bounded)
{
    /* The reader never looks past len: cut the buffer at every position. */
    const char msg[] = "A: 1\n 2\r\nB:\t3\n\nbody\n";
    for (size_t n = 0; n <= sizeof(msg) - 1; n++) {
        char *copy = malloc(n ? n : 1);
        memcpy(copy, msg, n);
        size_t len = header_section_len(copy, n);
        CHECK(len <= n);
        (void)header_count(copy, n, "b");
        free(copy);
    }
    /* Many folded lines collect into one value. */
    size_t big = 200000;
    char *buf = malloc(big);
    memcpy(buf, "X: a", 4);
    for (size_t i = 4; i + 2 < big; i += 2) {
        buf[i] = '\n';
        buf[i + 1] = ' ';
    }
    buf[big - 2] = '\n';
    buf[big - 1] = '\n';
    struct header_reader hr;
    struct header_field f;
    header_reader_init(&hr, buf, big);
    CHECK(header_next(&hr, &f) == 1);
    CHECK(f.value_len == 1);
    CHECK(header_next(&hr, &f) == 0);
    CHECK(hr.pos == big);
    header_reader_free(&hr);
    free(buf);
}
