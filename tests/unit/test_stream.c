/* Unit tests for lib/util/stream.c over socketpairs. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "str.h"
#include "stream.h"
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

static void put(int fd, const char *s)
{
    size_t n = strlen(s);
    if (write(fd, s, n) != (ssize_t)n)
        abort();
}

TEST(getline_lines)
{
    struct stream *st;
    int raw;
    struct str line = STR_INIT;
    pair(&st, &raw);
    put(raw, "one\ntwo\r\n\nlast");
    close(raw);
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK_STR(line.s, "one\n");
    CHECK(stream_pending(st) > 0);
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK_STR(line.s, "two\r\n");
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK_STR(line.s, "\n");
    CHECK(stream_getline(st, &line, 100) == STREAM_PARTIAL);
    CHECK_STR(line.s, "last");
    CHECK(stream_getline(st, &line, 100) == STREAM_EOF);
    CHECK(line.len == 0);
    CHECK(!stream_error(st));
    stream_close(st);
    str_free(&line);
}

TEST(getline_max_exact)
{
    struct stream *st;
    int raw;
    struct str line = STR_INIT;
    pair(&st, &raw);
    CHECK(write(raw, "abcd\nabcde\nab\0c\n", 16) == 16);
    close(raw);
    CHECK(stream_getline(st, &line, 5) == STREAM_LINE);      /* exactly max */
    CHECK_STR(line.s, "abcd\n");
    CHECK(stream_getline(st, &line, 5) == STREAM_PARTIAL);   /* max without LF */
    CHECK_STR(line.s, "abcde");
    CHECK(stream_getline(st, &line, 5) == STREAM_LINE);
    CHECK_STR(line.s, "\n");
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK(line.len == 5 && memcmp(line.s, "ab\0c\n", 5) == 0);
    CHECK(stream_getline(st, &line, 5) == STREAM_EOF);
    stream_close(st);
    str_free(&line);
}

TEST(getline_long_across_buffers)
{
    struct stream *st;
    int raw;
    struct str line = STR_INIT;
    pair(&st, &raw);
    size_t n = 100000;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n - 1] = '\n';
    big[n] = '\0';
    pid_t pid = fork();
    if (pid == 0) {
        stream_close(st);
        put(raw, big);
        put(raw, "tail\n");
        _exit(0);
    }
    close(raw);
    CHECK(stream_getline(st, &line, n) == STREAM_LINE);
    CHECK(line.len == n && line.s[n - 1] == '\n');
    CHECK(stream_getline(st, &line, 3) == STREAM_PARTIAL);
    CHECK_STR(line.s, "tai");
    CHECK(stream_getline(st, &line, 3) == STREAM_LINE);
    CHECK_STR(line.s, "l\n");
    CHECK(stream_getline(st, &line, 3) == STREAM_EOF);
    int status;
    waitpid(pid, &status, 0);
    stream_close(st);
    free(big);
    str_free(&line);
}

TEST(timeout)
{
    struct stream *st;
    int raw;
    struct str line = STR_INIT;
    char c;
    pair(&st, &raw);
    stream_set_timeout(st, 100);
    put(raw, "partial");
    errno = 0;
    CHECK(stream_getline(st, &line, 100) == -1);
    CHECK(errno == ETIMEDOUT);
    CHECK(stream_error(st));
    /* Errors are sticky. */
    put(raw, "\n");
    CHECK(stream_read(st, &c, 1) == -1);
    CHECK(errno == ETIMEDOUT);
    CHECK(stream_flush(st) == -1);
    close(raw);
    stream_close(st);
    str_free(&line);
}

TEST(deadline_and_clear_timeout)
{
    struct stream *st;
    int raw;
    struct str line = STR_INIT;
    char buf[16];
    long long start;
    ssize_t n;
    pair(&st, &raw);
    stream_set_timeout(st, 5000);
    /* The deadline ends a read that the idle timeout alone would let wait. */
    put(raw, "par");
    start = clock_ms();
    stream_set_deadline(st, start + 150);
    CHECK(stream_getline(st, &line, 100) == -1);
    CHECK(errno == ETIMEDOUT);
    CHECK(clock_ms() - start < 2000);
    CHECK(stream_error(st));
    /* A timeout can be cleared to send a last reply; other errors cannot. */
    CHECK(stream_clear_timeout(st) == 0);
    CHECK(!stream_error(st));
    CHECK(stream_clear_timeout(st) == -1);
    stream_set_deadline(st, 0);
    CHECK(stream_puts(st, "421 bye\r\n") == 0);
    CHECK(stream_flush(st) == 0);
    n = read(raw, buf, sizeof(buf));
    CHECK(n == 9 && memcmp(buf, "421 bye\r\n", 9) == 0);
    close(raw);
    CHECK(stream_getline(st, &line, 100) == STREAM_EOF);
    stream_close(st);
    str_free(&line);
}

TEST(read_full_and_eof)
{
    struct stream *st;
    int raw;
    char buf[16];
    pair(&st, &raw);
    put(raw, "0123456789");
    close(raw);
    CHECK(stream_read(st, buf, 3) == 3 && memcmp(buf, "012", 3) == 0);
    CHECK(stream_read_full(st, buf, 4) == 0 && memcmp(buf, "3456", 4) == 0);
    errno = 0;
    CHECK(stream_read_full(st, buf, 4) == -1);
    CHECK(errno == EPIPE);
    CHECK(stream_read(st, buf, 4) == 0);
    stream_close(st);
}

TEST(large_writes)
{
    struct stream *st;
    int raw;
    size_t n = 1 << 20;
    char *big = malloc(n), *got = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i * 7);
    pair(&st, &raw);
    pid_t pid = fork();
    if (pid == 0) {
        close(raw);
        if (stream_puts(st, "hdr:") < 0 || stream_printf(st, "%d,", 12) < 0
            || stream_write(st, big, n) < 0 || stream_write(st, "x", 1) < 0
            || stream_flush(st) < 0)
            _exit(1);
        _exit(0);
    }
    stream_close(st);
    st = stream_fdopen(raw);
    stream_set_timeout(st, 5000);
    char hdr[7];
    CHECK(stream_read_full(st, hdr, 7) == 0 && memcmp(hdr, "hdr:12,", 7) == 0);
    CHECK(stream_read_full(st, got, n) == 0);
    CHECK(memcmp(got, big, n) == 0);
    CHECK(stream_read_full(st, hdr, 1) == 0 && hdr[0] == 'x');
    CHECK(stream_read(st, hdr, 1) == 0);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    stream_close(st);
    free(big);
    free(got);
}

TEST(printf_long)
{
    struct stream *st;
    int raw;
    char buf[2100];
    char arg[2000];
    memset(arg, 'z', sizeof(arg) - 1);
    arg[sizeof(arg) - 1] = '\0';
    pair(&st, &raw);
    CHECK(stream_printf(st, "<%s>", arg) == 0);
    CHECK(stream_flush(st) == 0);
    CHECK(read(raw, buf, sizeof(buf)) == 2001);
    CHECK(buf[0] == '<' && buf[2000] == '>');
    close(raw);
    stream_close(st);
}

static ssize_t up_read(void *ctx, void *buf, size_t len, int timeout_ms)
{
    int fd = *(int *)ctx;
    ssize_t n = read(fd, buf, len);
    for (ssize_t i = 0; i < n; i++)
        if (((char *)buf)[i] >= 'a' && ((char *)buf)[i] <= 'z')
            ((char *)buf)[i] -= 32;
    return n;
}

static ssize_t up_write(void *ctx, const void *buf, size_t len, int timeout_ms)
{
    return write(*(int *)ctx, buf, len);
}

static int up_freed;
static void up_free(void *ctx)
{
    up_freed++;
    free(ctx);
}

static const struct stream_ops up_ops = { up_read, up_write, NULL, up_free, false };

TEST(set_transport_drops_input)
{
    struct stream *st;
    int raw;
    struct str line = STR_INIT;
    pair(&st, &raw);
    put(raw, "STARTTLS\nsmuggled\n");
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK_STR(line.s, "STARTTLS\n");
    CHECK(stream_puts(st, "220 go\n") == 0);
    int *ctx = malloc(sizeof(int));
    *ctx = stream_fd(st);
    CHECK(stream_set_transport(st, &up_ops, ctx) == 9);
    CHECK(stream_transport_ctx(st) == ctx);
    char buf[32];
    CHECK(read(raw, buf, sizeof(buf)) == 7);    /* flushed through the old one */
    put(raw, "hello\n");
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK_STR(line.s, "HELLO\n");
    close(raw);
    stream_close(st);
    CHECK(up_freed == 1);
    str_free(&line);
}

TEST(write_to_closed_peer)
{
    struct stream *st;
    int raw;
    pair(&st, &raw);
    close(raw);
    signal(SIGPIPE, SIG_IGN);
    CHECK(stream_puts(st, "x") == 0);
    CHECK(stream_flush(st) == -1);
    CHECK(stream_error(st));
    stream_close(st);
}

/* A transport that holds decoded bytes of its own (as TLS does): input_ready asks it. */
struct held {
    const char *s;
    size_t left;
};

static ssize_t held_read(void *ctx, void *buf, size_t len, int timeout_ms)
{
    struct held *h = ctx;
    size_t n = h->left < len ? h->left : len;

    (void)timeout_ms;
    memcpy(buf, h->s, n);
    h->s += n;
    h->left -= n;
    return (ssize_t)n;
}

static ssize_t held_write(void *ctx, const void *buf, size_t len, int timeout_ms)
{
    (void)ctx;
    (void)buf;
    (void)timeout_ms;
    return (ssize_t)len;
}

static size_t held_pending(void *ctx)
{
    return ((struct held *)ctx)->left;
}

static const struct stream_ops held_ops = {
    .read = held_read,
    .write = held_write,
    .pending = held_pending,
    .free = NULL,
};

TEST(input_ready)
{
    struct stream *st;
    int raw;
    struct str line = STR_INIT;
    struct held h = { "held\r\n", 6 };

    pair(&st, &raw);
    CHECK(!stream_input_ready(st));
    /* bytes in the socket are poll's business, not buffered input */
    put(raw, "a NOOP\r\nb NOOP\r\n");
    CHECK(!stream_input_ready(st));
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK(stream_input_ready(st));      /* the second line sits in the buffer */
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK_STR(line.s, "b NOOP\r\n");
    CHECK(!stream_input_ready(st));
    /* a transport's own decoded bytes count */
    stream_set_transport(st, &held_ops, &h);
    CHECK(stream_input_ready(st));
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK_STR(line.s, "held\r\n");
    CHECK(!stream_input_ready(st));
    str_free(&line);
    stream_close(st);
    close(raw);
}

TEST(input_ready_after_failure)
{
    struct stream *st;
    int raw;
    struct str line = STR_INIT;

    pair(&st, &raw);
    stream_set_timeout(st, 10);
    CHECK(stream_getline(st, &line, 100) == -1 && errno == ETIMEDOUT);
    /* a read now fails at once: no wait on the fd is wanted */
    CHECK(stream_input_ready(st));
    str_free(&line);
    stream_close(st);
    close(raw);
}

TEST(nowait_reads_and_takes)
{
    struct stream *st;
    int raw;
    struct str out = STR_INIT;
    pair(&st, &raw);
    errno = 0;
    CHECK(stream_fill_nowait(st) == -1 && errno == EAGAIN);
    CHECK(!stream_error(st));
    CHECK(!stream_input_ready(st));
    put(raw, "a1 NOOP\r\na2 LOG");
    CHECK(stream_fill_nowait(st) == 15);
    CHECK(stream_input_ready(st));
    CHECK(stream_take_line(st, &out, 100));
    CHECK_STR(out.s, "a1 NOOP\r\n");
    str_clear(&out);
    CHECK(!stream_take_line(st, &out, 3));          /* bounded by max */
    CHECK_STR(out.s, "a2 ");
    CHECK(!stream_take_line(st, &out, 100));        /* no '\n' yet: all taken */
    CHECK_STR(out.s, "a2 LOG");
    CHECK(stream_take(st, &out, 10) == 0);
    put(raw, "OUT\r\n{5}");
    CHECK(stream_fill_nowait(st) == 8);
    CHECK(stream_take(st, &out, 3) == 3);
    CHECK_STR(out.s, "a2 LOGOUT");
    close(raw);
    CHECK(stream_take_line(st, &out, 100));
    CHECK(stream_fill_nowait(st) == 3);             /* buffered: no read */
    CHECK(stream_take(st, &out, 100) == 3);
    CHECK(stream_fill_nowait(st) == 0);             /* EOF */
    stream_close(st);
    str_free(&out);
}

TEST(queued_output)
{
    struct stream *st;
    int raw;
    char *big = malloc(1 << 20), buf[65536];
    size_t got = 0;
    pair(&st, &raw);
    CHECK(fcntl(stream_fd(st), F_SETFL, O_NONBLOCK) == 0);
    stream_set_queue(st, 4 << 20);
    memset(big, 'x', 1 << 20);
    for (int i = 0; i < 3; i++)
        CHECK(stream_write(st, big, 1 << 20) == 0);  /* more than the socket takes */
    CHECK(stream_flush(st) == 0);                    /* queued, not written */
    CHECK(stream_output_pending(st) == 3u << 20);
    CHECK(stream_flush_nowait(st) == 1);             /* some of it: the peer reads none */
    CHECK(stream_output_pending(st) < 3u << 20);
    while (got < 3u << 20) {
        ssize_t n = read(raw, buf, sizeof(buf));
        if (n <= 0)
            break;
        got += (size_t)n;
        if (stream_output_pending(st) > 0)
            CHECK(stream_flush_nowait(st) >= 0);
    }
    CHECK(got == 3u << 20);
    CHECK(stream_output_pending(st) == 0);
    CHECK(!stream_error(st));
    close(raw);
    stream_close(st);
    free(big);
}
