/* Unit tests for lib/util/tls_relay.c: a TLS client in a child process (the blocking
 * stream of tls.h) talks through a relay driven here with poll(), to a plaintext
 * "server" that is the other end of the relay's socket pair.  A handshake and both
 * directions, a transfer much larger than the buffers (driven by poll alone, as
 * tlsproxy does), garbage instead of a
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
#define UPLOAD (64 * 1024)      /* what the upload test's client sends: more than 64 buffers */

static struct str cert_path = STR_INIT, key_path = STR_INIT;
/* The upload test's signals: the driver says go once handshaken, the client says
 * sent once all its bytes are in the socket. */
static int go_pipe[2] = { -1, -1 }, sent_pipe[2] = { -1, -1 };

/* Waits (at most 10 s) for a byte on fd: whether it came. */
static bool signal_wait(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    char c;

    return poll(&p, 1, 10000) == 1 && read(fd, &c, 1) == 1;
}

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

enum client_mode { CLIENT_ECHO, CLIENT_BIG, CLIENT_UPLOAD, CLIENT_GARBAGE, CLIENT_VANISH };

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
    if (mode == CLIENT_UPLOAD) {
        /* UPLOAD bytes when told, then wait for the server to close once it has
         * them all */
        if (!signal_wait(go_pipe[0]))
            _exit(20);
        for (size_t sent = 0; sent < UPLOAD;) {
            char buf[8192];
            size_t n = UPLOAD - sent < sizeof(buf) ? UPLOAD - sent : sizeof(buf);
            for (size_t i = 0; i < n; i++)
                buf[i] = (char)('a' + (sent + i) % 26);
            if (stream_write(st, buf, n) < 0)
                _exit(18);
            sent += n;
        }
        if (stream_flush(st) < 0 || write(sent_pipe[1], "s", 1) != 1)
            _exit(18);
        _exit(stream_getline(st, &line, 100) == STREAM_EOF ? 0 : 19);
    }
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

/* As tlsproxy drives a relay: run only when poll shows an event or the relay has
 * more at once (tls_relay_more), reading what reaches the plaintext end into *got
 * and closing it once want bytes came.  The relay's last status, -2 when nothing
 * woke for 3 s with bytes still missing (a stall), -3 when the client gave no sign. */
static int drive_on_events(struct tls_relay *r, int app, size_t want, size_t *got,
                           struct str *err)
{
    long long deadline = clock_ms() + 20000;
    bool waited = false;
    int rc = 1;

    fd_nonblock(app, true);
    while (rc == 1 && clock_ms() < deadline) {
        struct pollfd pfd[3];
        short ne, pe;
        bool moved, more = tls_relay_more(r);

        /* Once handshaken, all the client sends is let in before the next run, so
         * that the runs take it in whole buffers and one stops inside its last
         * record. */
        if (!waited && tls_relay_handshaken(r)) {
            if (write(go_pipe[1], "g", 1) != 1 || !signal_wait(sent_pipe[0]))
                return -3;
            waited = true;
        }

        tls_relay_events(r, &ne, &pe);
        pfd[0] = (struct pollfd){ .fd = ne != 0 ? tls_relay_net_fd(r) : -1, .events = ne };
        pfd[1] = (struct pollfd){ .fd = pe != 0 ? tls_relay_plain_fd(r) : -1, .events = pe };
        pfd[2] = (struct pollfd){ .fd = app, .events = POLLIN };
        if (poll(pfd, 3, more ? 0 : 3000) == 0 && !more)
            return -2;
        if (app >= 0 && (pfd[2].revents & POLLIN)) {
            char buf[65536];
            ssize_t n = read(app, buf, sizeof(buf));
            if (n > 0)
                *got += (size_t)n;
            if (*got >= want) {
                close(app);
                app = -1;
            }
        }
        if (more || pfd[0].revents != 0 || pfd[1].revents != 0 || app < 0)
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

/* Records larger than the buffer leave decrypted bytes inside OpenSSL, which wake no
 * descriptor: a relay driven only by events must still deliver the last of them. */
TEST(upload_driven_by_events_only_arrives_whole)
{
    struct tls_ctx *ctx = server_ctx();
    struct str err = STR_INIT;
    struct tls_relay *r;
    size_t got = 0;
    int app;
    pid_t pid;

    if (pipe(go_pipe) < 0 || pipe(sent_pipe) < 0)
        return;
    r = start(ctx, CLIENT_UPLOAD, 1000, &app, &pid);
    CHECK(r != NULL);
    if (r == NULL)
        return;
    CHECK(drive_on_events(r, app, UPLOAD, &got, &err) == 0);
    CHECK(got == UPLOAD);
    tls_relay_free(r);
    CHECK(child_status(pid) == 0);
    for (int i = 0; i < 2; i++) {
        close(go_pipe[i]);
        close(sent_pipe[i]);
    }
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
