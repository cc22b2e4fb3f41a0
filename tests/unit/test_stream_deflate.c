/* Unit tests for lib/util/stream_deflate.c: a stream with the filter on one end of a
 * socketpair, zlib by hand (raw deflate, as an IMAP client) on the other. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
