/* Unit tests for lib/util/tls_relay.c: a TLS client in a child process (the blocking
 * stream of tls.h) talks through a relay driven here with poll(), to a plaintext
 * "server" that is the other end of the relay's socket pair.  A handshake and both
 * directions, a transfer much larger than the buffers, garbage instead of a
 * ClientHello, and a client that goes away. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "fd.h"
#include "str.h"
#include "stream.h"
#include "tls.h"
#include "tls_relay.h"
#include "unit.h"

#define BIG (1024 * 1024)

static struct str cert_path = STR_INIT, key_path = STR_INIT;

__attribute__((constructor)) static void ignore_sigpipe(void)
{
    signal(SIGPIPE, SIG_IGN);
}

static struct tls_ctx *server_ctx(void)
{
    struct str err = STR_INIT;
    struct tls_ctx *ctx;

    if (cert_path.len == 0) {
        str_printf(&cert_path, "%s/cert.pem", unit_tmpdir());
        str_printf(&key_path, "%s/key.pem", unit_tmpdir());
        if (tls_make_self_signed("mx.example.test", cert_path.s, key_path.s, &err) < 0) {
            fprintf(stderr, "tls_make_self_signed: %s\n", err.s);
            exit(2);
        }
    }
    ctx = tls_server_ctx(cert_path.s, key_path.s, &err);
    str_free(&err);
    return ctx;
}

enum client_mode { CLIENT_ECHO, CLIENT_BIG, CLIENT_GARBAGE, CLIENT_VANISH };

/* The child: exit 0 on the expected outcome. */
static _Noreturn void client(int fd, enum client_mode mode)
{
    struct str err = STR_INIT, line = STR_INIT;
    struct tls_ctx *ctx = tls_client_ctx(NULL, &err);
    struct stream *st = stream_fdopen(fd);
    size_t got = 0;

    stream_set_timeout(st, 10000);
    if (mode == CLIENT_GARBAGE) {
        static const char junk[] = "GET / HTTP/1.0\r\n\r\n";
        _exit(fd_write_all(fd, junk, sizeof(junk) - 1) < 0 ? 10 : 0);
    }
    if (ctx == NULL || tls_client_start(ctx, st, "mx.example.test", TLS_VERIFY_NONE, 10000,
                                        &err) < 0)
        _exit(11);
    if (mode == CLIENT_VANISH)
        _exit(0);
    if (stream_puts(st, "hello\r\n") < 0 || stream_flush(st) < 0)
        _exit(12);
    if (mode == CLIENT_ECHO) {
        if (stream_getline(st, &line, 100) != STREAM_LINE || strcmp(line.s, "world\r\n") != 0)
            _exit(13);
        if (stream_getline(st, &line, 100) != STREAM_EOF)
            _exit(14);
        _exit(0);
    }
    for (;;) {
        char buf[8192];
        ssize_t n = stream_read(st, buf, sizeof(buf));
        if (n < 0)
            _exit(15);
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != (char)('a' + (got + (size_t)i) % 26))
                _exit(16);
        got += (size_t)n;
    }
    _exit(got == BIG ? 0 : 17);
}

/* Drives r until it ends (or 20 s pass), as the plaintext server: reads what the
 * client sends into in, writes out (then closes its end when close_after).  The
 * relay's last status. */
static int drive(struct tls_relay *r, int app, struct str *in, const char *out, size_t out_len,
                 bool close_after, struct str *err)
{
    long long deadline = clock_ms() + 20000;
    size_t sent = 0;
    int rc = 1;

    fd_nonblock(app, true);
    while (rc == 1 && clock_ms() < deadline) {
        struct pollfd pfd[3];
        short ne, pe;
        bool moved;

        tls_relay_events(r, &ne, &pe);
        pfd[0] = (struct pollfd){ .fd = tls_relay_net_fd(r), .events = ne };
        pfd[1] = (struct pollfd){ .fd = tls_relay_plain_fd(r), .events = pe };
        pfd[2] = (struct pollfd){ .fd = app, .events = POLLIN };
        if (app >= 0 && sent < out_len && in->len > 0)
            pfd[2].events |= POLLOUT;
        (void)poll(pfd, 3, 100);
        if (app >= 0 && (pfd[2].revents & POLLIN)) {
            char buf[4096];
            ssize_t n = read(app, buf, sizeof(buf));
            if (n > 0)
                str_append(in, buf, (size_t)n);
        }
        if (app >= 0 && (pfd[2].revents & POLLOUT)) {
            ssize_t n = write(app, out + sent, out_len - sent);
            if (n > 0)
                sent += (size_t)n;
        }
        if (app >= 0 && close_after && sent == out_len && in->len > 0) {
            close(app);
            app = -1;
        }
        rc = tls_relay_run(r, &moved, err);
    }
    if (app >= 0)
        close(app);
    return rc;
}

/* A relay of a fresh client in mode; *app the plaintext end. */
static struct tls_relay *start(struct tls_ctx *ctx, enum client_mode mode, size_t buf,
                               int *app, pid_t *pid)
{
    int net[2], plain[2];
    struct str err = STR_INIT;
    struct tls_relay *r;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, net) < 0
        || socketpair(AF_UNIX, SOCK_STREAM, 0, plain) < 0)
        return NULL;
    *pid = fork();
    if (*pid == 0) {
        close(net[1]);
        close(plain[0]);
        close(plain[1]);
        client(net[0], mode);
    }
    close(net[0]);
    r = tls_relay_new(ctx, net[1], plain[0], buf, &err);
    *app = plain[1];
    str_free(&err);
    return r;
}

static int child_status(pid_t pid)
{
    int status = -1;

    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

TEST(relay_both_ways)
{
    struct tls_ctx *ctx = server_ctx();
    struct str in = STR_INIT, err = STR_INIT;
    struct tls_relay *r;
    int app;
    pid_t pid;

    CHECK(ctx != NULL);
    r = start(ctx, CLIENT_ECHO, 0, &app, &pid);
    CHECK(r != NULL);
    if (r == NULL)
        return;
    CHECK(drive(r, app, &in, "world\r\n", 7, true, &err) == 0);
    CHECK(tls_relay_handshaken(r));
    CHECK(tls_relay_version(r) != NULL && strncmp(tls_relay_version(r), "TLSv1.", 6) == 0);
    CHECK(tls_relay_cipher(r) != NULL && tls_relay_cipher_bits(r) >= 128);
    CHECK_STR(in.s, "hello\r\n");
    CHECK_STR(tls_relay_closed_by(r), "server");
    tls_relay_free(r);
    CHECK(child_status(pid) == 0);
    str_free(&in);
    str_free(&err);
    tls_ctx_free(ctx);
}

TEST(relay_more_than_the_buffers)
{
    struct tls_ctx *ctx = server_ctx();
    struct str in = STR_INIT, err = STR_INIT;
    struct tls_relay *r;
    char *big = malloc(BIG);
    int app;
    pid_t pid;

    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)('a' + i % 26);
    r = start(ctx, CLIENT_BIG, 1024, &app, &pid);
    CHECK(r != NULL);
    if (r == NULL)
        return;
    CHECK(drive(r, app, &in, big, BIG, true, &err) == 0);
    tls_relay_free(r);
    CHECK(child_status(pid) == 0);
    free(big);
    str_free(&in);
    str_free(&err);
    tls_ctx_free(ctx);
}

TEST(garbage_instead_of_a_client_hello)
{
    struct tls_ctx *ctx = server_ctx();
    struct str in = STR_INIT, err = STR_INIT;
    struct tls_relay *r;
    int app;
    pid_t pid;

    r = start(ctx, CLIENT_GARBAGE, 0, &app, &pid);
    CHECK(r != NULL);
    if (r == NULL)
        return;
    CHECK(drive(r, app, &in, "", 0, false, &err) == -1);
    CHECK(!tls_relay_handshaken(r));
    CHECK(err.len > 0);
    CHECK(in.len == 0);
    tls_relay_free(r);
    CHECK(child_status(pid) == 0);
    str_free(&in);
    str_free(&err);
    tls_ctx_free(ctx);
}

TEST(client_goes_away)
{
    struct tls_ctx *ctx = server_ctx();
    struct str in = STR_INIT, err = STR_INIT;
    struct tls_relay *r;
    int app;
    pid_t pid;

    r = start(ctx, CLIENT_VANISH, 0, &app, &pid);
    CHECK(r != NULL);
    if (r == NULL)
        return;
    /* over (a clean end or an error), never stuck */
    CHECK(drive(r, app, &in, "", 0, false, &err) != 1);
    tls_relay_free(r);
    CHECK(child_status(pid) == 0);
    str_free(&in);
    str_free(&err);
    tls_ctx_free(ctx);
}
