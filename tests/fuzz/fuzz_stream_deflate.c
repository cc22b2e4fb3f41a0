/* libFuzzer harness for the COMPRESS=DEFLATE filter (lib/util/stream_deflate.c): the
 * input is what a client sends after COMPRESS DEFLATE, raw deflate or anything else,
 * read line by line through the stream as imapd reads commands.
 * Checked: no line is longer than the reader's bound, the bytes that come out of a
 * valid stream are exactly what zlib itself inflates the input to (as far as lines
 * were read), and corrupt input ends in an error, never in a hang or a crash. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "str.h"
#include "stream.h"
#include "stream_deflate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINE_MAX_FUZZ 512
#define OUT_MAX (1u << 20)

/* zlib's own reading of the input: at most OUT_MAX bytes. */
static void reference(const uint8_t *data, size_t size, struct str *out)
{
    z_stream z;
    unsigned char buf[4096];

    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, -15) != Z_OK)
        abort();
    z.next_in = (unsigned char *)(uintptr_t)data;
    z.avail_in = (uInt)size;
    while (out->len < OUT_MAX) {
        int r;
        z.next_out = buf;
        z.avail_out = sizeof(buf);
        r = inflate(&z, Z_SYNC_FLUSH);
        str_append(out, buf, sizeof(buf) - z.avail_out);
        if (r != Z_OK || (z.avail_in == 0 && z.avail_out != 0))
            break;
    }
    inflateEnd(&z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fds[2];
    struct stream *st;
    struct str line = STR_INIT, got = STR_INIT, want = STR_INIT;
    int rounds = 0, r;

    if (size > 65536)
        return 0;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0)
        return 0;
    {
        int sz = 4 * 65536;
        (void)setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        (void)setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
    }
    if (size > 0 && write(fds[1], data, size) != (ssize_t)size) {
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    shutdown(fds[1], SHUT_WR);
    st = stream_fdopen(fds[0]);
    stream_set_timeout(st, 1000);
    if (stream_push_deflate(st) < 0)
        abort();
    while (rounds++ < 100000 && got.len < OUT_MAX) {
        /* every other line, ask first: inflating in pending() must not change what
         * the reads then return */
        if (rounds % 2)
            (void)stream_input_ready(st);
        r = stream_getline(st, &line, LINE_MAX_FUZZ);
        if (r <= 0)
            break;
        if (line.len > LINE_MAX_FUZZ)
            abort();
        str_append(&got, line.s, line.len);
    }
    reference(data, size, &want);
    if (got.len > want.len || memcmp(got.s ? got.s : "", want.s ? want.s : "", got.len) != 0)
        abort();
    stream_close(st);
    close(fds[1]);
    str_free(&line);
    str_free(&got);
    str_free(&want);
    return 0;
}
