/* Unit tests for lib/util/stream_deflate.c: a stream with the filter on one end of a
 * socketpair, zlib by hand (raw deflate, as an IMAP client) on the other. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "str.h"
#include "stream.h"
#include "stream_deflate.h"
#include "unit.h"

static void pair(struct stream **a, int *raw)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        perror("socketpair");
        exit(2);
    }
    *a = stream_fdopen(sv[0]);
    stream_set_timeout(*a, 2000);
    *raw = sv[1];
}

/* in compressed with raw deflate and a sync flush, appended to out. */
static void squeeze(z_stream *z, const void *in, size_t len, struct str *out)
{
    unsigned char buf[4096];

    z->next_in = (unsigned char *)(uintptr_t)in;
    z->avail_in = (uInt)len;
    do {
        z->next_out = buf;
        z->avail_out = sizeof(buf);
        CHECK(deflate(z, Z_SYNC_FLUSH) != Z_STREAM_ERROR);
        str_append(out, buf, sizeof(buf) - z->avail_out);
    } while (z->avail_out == 0);
}

static void send_all(int fd, const struct str *s)
{
    size_t off = 0;
    while (off < s->len) {
        ssize_t n = write(fd, s->s + off, s->len - off);
        if (n <= 0) {
            perror("write");
            exit(2);
        }
        off += (size_t)n;
    }
}

/* Reads what the stream sent until a read would block and inflates it. */
static void unsqueeze(int fd, z_stream *z, struct str *out)
{
    unsigned char in[8192], buf[8192];
    int fl = fcntl(fd, F_GETFL);

    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    for (;;) {
        ssize_t n = read(fd, in, sizeof(in));
        if (n <= 0)
            break;
        z->next_in = in;
        z->avail_in = (uInt)n;
        do {
            z->next_out = buf;
            z->avail_out = sizeof(buf);
            CHECK(inflate(z, Z_SYNC_FLUSH) != Z_DATA_ERROR);
            str_append(out, buf, sizeof(buf) - z->avail_out);
        } while (z->avail_in > 0 || z->avail_out == 0);
    }
    fcntl(fd, F_SETFL, fl);
}

TEST(both_ways_and_unread_input)
{
    struct stream *st;
    int raw;
    z_stream zc, zd;
    struct str wire = STR_INIT, line = STR_INIT, got = STR_INIT;

    memset(&zc, 0, sizeof(zc));
    memset(&zd, 0, sizeof(zd));
    CHECK(deflateInit2(&zc, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    CHECK(inflateInit2(&zd, -15) == Z_OK);
    pair(&st, &raw);
    /* The command in clear, then compressed bytes already in the same read. */
    str_sets(&wire, "a COMPRESS DEFLATE\r\n");
    squeeze(&zc, "b NOOP\r\n", 8, &wire);
    send_all(raw, &wire);
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK_STR(line.s, "a COMPRESS DEFLATE\r\n");
    stream_puts(st, "a OK go\r\n");
    CHECK(stream_push_deflate(st) == 0);
    CHECK(stream_pending(st) > 0);
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK_STR(line.s, "b NOOP\r\n");
    /* the clear reply went out before the filter */
    {
        char buf[64];
        ssize_t n = read(raw, buf, sizeof(buf) - 1);
        CHECK(n == 9 && memcmp(buf, "a OK go\r\n", 9) == 0);
    }
    /* a large reply, compressed, comes back whole */
    for (int i = 0; i < 5000; i++)
        stream_printf(st, "* %d EXISTS\r\n", i);
    CHECK(stream_flush(st) == 0);
    unsqueeze(raw, &zd, &got);
    CHECK(got.len > 50000);
    CHECK(memcmp(got.s, "* 0 EXISTS\r\n", 12) == 0);
    CHECK(memcmp(got.s + got.len - 15, "* 4999 EXISTS\r\n", 15) == 0);
    /* more input later, a line split across writes */
    str_clear(&wire);
    squeeze(&zc, "c LOG", 5, &wire);
    send_all(raw, &wire);
    str_clear(&wire);
    squeeze(&zc, "OUT\r\n", 5, &wire);
    send_all(raw, &wire);
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK_STR(line.s, "c LOGOUT\r\n");
    deflateEnd(&zc);
    inflateEnd(&zd);
    str_free(&wire);
    str_free(&line);
    str_free(&got);
    stream_close(st);
    close(raw);
}

TEST(bomb_is_bounded_by_the_reader)
{
    struct stream *st;
    int raw;
    z_stream zc;
    struct str wire = STR_INIT, line = STR_INIT, zeros = STR_INIT;

    memset(&zc, 0, sizeof(zc));
    CHECK(deflateInit2(&zc, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    pair(&st, &raw);
    CHECK(stream_push_deflate(st) == 0);
    /* 4 MiB without a line end compresses to a few KiB */
    str_reserve(&zeros, 4 << 20);
    memset(zeros.s, 'A', 4 << 20);
    zeros.len = 4 << 20;
    squeeze(&zc, zeros.s, zeros.len, &wire);
    CHECK(wire.len < 65536);
    send_all(raw, &wire);
    /* the reader gets at most its own bound at a time */
    CHECK(stream_getline(st, &line, 8192) == STREAM_PARTIAL);
    CHECK(line.len == 8192);
    deflateEnd(&zc);
    str_free(&wire);
    str_free(&line);
    str_free(&zeros);
    stream_close(st);
    close(raw);
}

TEST(garbage_is_an_error)
{
    struct stream *st;
    int raw;
    struct str line = STR_INIT;
    /* 0xff: a reserved block type (BTYPE 11) */
    static const char junk[] = "\xff\xff\xff\xff garbage";

    pair(&st, &raw);
    CHECK(stream_push_deflate(st) == 0);
    CHECK(write(raw, junk, sizeof(junk) - 1) == (ssize_t)sizeof(junk) - 1);
    CHECK(stream_getline(st, &line, 100) == -1);
    CHECK(errno == EPROTO);
    CHECK(stream_error(st));
    str_free(&line);
    stream_close(st);
    close(raw);
}

TEST(eof_of_the_peer)
{
    struct stream *st;
    int raw;
    struct str line = STR_INIT;

    pair(&st, &raw);
    CHECK(stream_push_deflate(st) == 0);
    close(raw);
    CHECK(stream_getline(st, &line, 100) == STREAM_EOF);
    str_free(&line);
    stream_close(st);
}

TEST(input_ready_counts_inflated_bytes_only)
{
    struct stream *st;
    int raw;
    z_stream zc;
    struct str wire = STR_INIT, line = STR_INIT;

    memset(&zc, 0, sizeof(zc));
    CHECK(deflateInit2(&zc, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    pair(&st, &raw);
    CHECK(stream_push_deflate(st) == 0);
    CHECK(!stream_input_ready(st));
    /* two commands in one flush: the second is ready once the first is read */
    squeeze(&zc, "a NOOP\r\nb NOOP\r\n", 16, &wire);
    send_all(raw, &wire);
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK_STR(line.s, "a NOOP\r\n");
    CHECK(stream_input_ready(st));
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK_STR(line.s, "b NOOP\r\n");
    CHECK(!stream_input_ready(st));
    /* a command, then the first byte of the next flush in the same read: that byte
     * inflates to nothing yet, so nothing is ready and a poll must wait for the rest */
    str_clear(&wire);
    squeeze(&zc, "c NOOP\r\n", 8, &wire);
    {
        struct str next = STR_INIT, one = STR_INIT;
        squeeze(&zc, "d NOOP\r\n", 8, &next);
        str_set(&one, next.s, 1);
        send_all(raw, &wire);
        send_all(raw, &one);
        CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
        CHECK_STR(line.s, "c NOOP\r\n");
        CHECK(!stream_input_ready(st));
        str_set(&one, next.s + 1, next.len - 1);
        send_all(raw, &one);
        CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
        CHECK_STR(line.s, "d NOOP\r\n");
        str_free(&next);
        str_free(&one);
    }
    /* more than every buffer inflates from one flush: all of it is handed out, and
     * what zlib keeps back counts as ready */
    {
        struct str big = STR_INIT;
        for (int i = 0; i < 4000; i++)
            str_printf(&big, "e%d NOOP\r\n", i);
        str_clear(&wire);
        squeeze(&zc, big.s, big.len, &wire);
        send_all(raw, &wire);
        for (int i = 0; i < 4000; i++) {
            char want[32];
            snprintf(want, sizeof(want), "e%d NOOP\r\n", i);
            CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
            if (strcmp(line.s, want) != 0) {
                CHECK_STR(line.s, want);
                break;
            }
            CHECK(stream_input_ready(st) == (i < 3999));
        }
        str_free(&big);
    }
    deflateEnd(&zc);
    str_free(&wire);
    str_free(&line);
    stream_close(st);
    close(raw);
}

TEST(large_literal_read_whole)
{
    struct stream *st;
    int raw;
    z_stream zc;
    struct str wire = STR_INIT, line = STR_INIT, msg = STR_INIT;
    char *got = malloc(1 << 20);
    pid_t pid;

    memset(&zc, 0, sizeof(zc));
    CHECK(deflateInit2(&zc, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    pair(&st, &raw);
    CHECK(stream_push_deflate(st) == 0);
    for (int i = 0; msg.len < (1 << 20); i++)
        str_printf(&msg, "%07d the quick brown fox\r\n", i);
    str_truncate(&msg, 1 << 20);
    str_appends(&msg, "\r\nnext\r\n");
    squeeze(&zc, msg.s, msg.len, &wire);
    /* the socket buffer is smaller than that: a child writes while we read */
    pid = fork();
    if (pid == 0) {
        send_all(raw, &wire);
        _exit(0);
    }
    CHECK(stream_read_full(st, got, 1 << 20) == 0);
    CHECK(memcmp(got, msg.s, 1 << 20) == 0);
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK_STR(line.s, "\r\n");
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK_STR(line.s, "next\r\n");
    CHECK(!stream_input_ready(st));
    waitpid(pid, NULL, 0);
    deflateEnd(&zc);
    free(got);
    str_free(&wire);
    str_free(&line);
    str_free(&msg);
    stream_close(st);
    close(raw);
}

/* A hand-made fixed-Huffman deflate block, written bit by bit (RFC 1951 3.2.6). */
struct bits {
    struct str out;
    unsigned acc, n;
};

static void put_bits(struct bits *b, unsigned v, unsigned n)     /* LSB first */
{
    for (unsigned i = 0; i < n; i++) {
        b->acc |= ((v >> i) & 1u) << b->n;
        if (++b->n == 8) {
            str_appendc(&b->out, (char)b->acc);
            b->acc = b->n = 0;
        }
    }
}

static void put_code(struct bits *b, unsigned code, unsigned n)  /* Huffman: MSB first */
{
    for (unsigned i = n; i-- > 0;)
        put_bits(b, (code >> i) & 1u, 1);
}

static void put_literal(struct bits *b, unsigned char c)
{
    if (c < 144)
        put_code(b, 0x30 + c, 8);
    else
        put_code(b, 0x190 + (c - 144u), 9);
}

TEST(input_held_inside_zlib_is_ready)
{
    struct stream *st;
    int raw;
    struct bits b = { STR_INIT, 0, 0 };
    struct str line = STR_INIT;
    int lines = 0;
    bool ready_ok = true;

    /* "a NOOP\r\n", then 64 matches of 258 bytes at distance 2: 8256 more "\r\n"
     * lines.  The input ends with the last match, with no block end and no flush
     * after it: when the first 16 KiB have been inflated, zlib has consumed every
     * input byte and still holds the rest of that match. */
    put_bits(&b, 0, 1);                 /* BFINAL 0 */
    put_bits(&b, 1, 2);                 /* BTYPE 01: fixed Huffman */
    for (const char *p = "a NOOP\r\n"; *p; p++)
        put_literal(&b, (unsigned char)*p);
    for (int i = 0; i < 64; i++) {
        put_code(&b, 0xc0 + (285 - 280), 8);    /* length 258 */
        put_code(&b, 1, 5);                     /* distance 2 */
    }
    if (b.n > 0)
        str_appendc(&b.out, (char)b.acc);
    pair(&st, &raw);
    CHECK(stream_push_deflate(st) == 0);
    send_all(raw, &b.out);
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK_STR(line.s, "a NOOP\r\n");
    for (int i = 0; i < 64 * 258 / 2; i++) {
        if (!stream_input_ready(st)) {
            ready_ok = false;
            break;
        }
        if (stream_getline(st, &line, 100) != STREAM_LINE || strcmp(line.s, "\r\n") != 0)
            break;
        lines++;
    }
    CHECK(ready_ok);
    CHECK(lines == 64 * 258 / 2);
    CHECK(!stream_input_ready(st));
    str_free(&b.out);
    str_free(&line);
    stream_close(st);
    close(raw);
}
