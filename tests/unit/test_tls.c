/* Unit tests for lib/util/tls.c and lib/util/tls_cert.c: a self-signed certificate, then
 * handshakes over a socketpair between a server stream (a child process) and a
 * client stream (this process). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "str.h"
#include "stream.h"
#include "tls.h"
#include "unit.h"

static struct str cert_path = STR_INIT, key_path = STR_INIT;
static struct str other_cert = STR_INIT, other_key = STR_INIT;

/* A peer that closed first must not kill the process writing close_notify. */
__attribute__((constructor)) static void ignore_sigpipe(void)
{
    signal(SIGPIPE, SIG_IGN);
}

/* Makes the test certificates once. */
static void certs(void)
{
    struct str err = STR_INIT;

    if (cert_path.len > 0)
        return;
    str_printf(&cert_path, "%s/cert.pem", unit_tmpdir());
    str_printf(&key_path, "%s/key.pem", unit_tmpdir());
    str_printf(&other_cert, "%s/other.pem", unit_tmpdir());
    str_printf(&other_key, "%s/other.key", unit_tmpdir());
    if (tls_make_self_signed("mx.example.test", cert_path.s, key_path.s, &err) < 0
        || tls_make_self_signed("other.example.test", other_cert.s, other_key.s, &err) < 0) {
        fprintf(stderr, "tls_make_self_signed: %s\n", err.s);
        exit(2);
    }
    str_free(&err);
}

TEST(self_signed_files)
{
    struct stat sb;
    struct str err = STR_INIT;
    struct tls_ctx *ctx;
    FILE *fp;
    X509 *x;

    certs();
    CHECK(stat(cert_path.s, &sb) == 0 && (sb.st_mode & 07777) == 0644);
    CHECK(stat(key_path.s, &sb) == 0 && (sb.st_mode & 07777) == 0600);
    ctx = tls_server_ctx(cert_path.s, key_path.s, &err);
    CHECK(ctx != NULL);
    tls_ctx_free(ctx);

    fp = fopen(cert_path.s, "r");
    CHECK(fp != NULL);
    if (fp == NULL)
        return;
    x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    CHECK(x != NULL);
    if (x != NULL) {
        char cn[256] = "";
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
        CHECK_STR(cn, "mx.example.test");
        CHECK(X509_check_host(x, "mx.example.test", 0, 0, NULL) == 1);
        CHECK(X509_check_host(x, "other.example.test", 0, 0, NULL) != 1);
        /* valid for about ten years */
        CHECK(X509_cmp_time(X509_get0_notAfter(x), NULL) > 0);
        {
            int days = 0, secs = 0;
            CHECK(ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) == 1);
            CHECK(days > 3640 && days <= 3650);
        }
        X509_free(x);
    }
    str_free(&err);
}

TEST(self_signed_bad_input)
{
    struct str err = STR_INIT, c = STR_INIT, k = STR_INIT;

    str_printf(&c, "%s/bad.pem", unit_tmpdir());
    str_printf(&k, "%s/bad.key", unit_tmpdir());
    CHECK(tls_make_self_signed("a,DNS:evil.test", c.s, k.s, &err) == -1);
    CHECK(err.len > 0);
    CHECK(access(k.s, F_OK) < 0);
    str_clear(&err);
    CHECK(tls_make_self_signed("ok.test", c.s, "/nonexistent/dir/key.pem", &err) == -1);
    CHECK(err.len > 0);
    str_clear(&err);
    CHECK(tls_server_ctx(c.s, k.s, &err) == NULL);
    CHECK(err.len > 0);
    str_clear(&err);
    certs();
    CHECK(tls_server_ctx(cert_path.s, other_key.s, &err) == NULL);   /* mismatched */
    CHECK(err.len > 0);
    str_free(&err);
    str_free(&c);
    str_free(&k);
}

/* What the server child does after accepting the socket. */
enum server_mode {
    SERVE_ECHO,         /* STARTTLS dialogue, handshake, echo one line */
    SERVE_HANDSHAKE,    /* handshake only; exit 0 when it fails cleanly */
};

/* Runs in the child: exit 0 on the expected outcome. */
static _Noreturn void serve(int fd, enum server_mode mode, int timeout_ms)
{
    struct str err = STR_INIT, line = STR_INIT;
    struct tls_ctx *ctx = tls_server_ctx(cert_path.s, key_path.s, &err);
    struct stream *st = stream_fdopen(fd);
    size_t discarded = 99;
    int rc;

    if (ctx == NULL)
        _exit(10);
    stream_set_timeout(st, 5000);
    if (mode == SERVE_HANDSHAKE) {
        rc = tls_server_start(ctx, st, timeout_ms, &discarded, &err);
        stream_close(st);
        tls_ctx_free(ctx);
        _exit(rc == -1 && err.len > 0 && discarded == 0 ? 0 : 11);
    }
    if (stream_getline(st, &line, 100) != STREAM_LINE || strcmp(line.s, "STARTTLS\r\n") != 0)
        _exit(12);
    stream_puts(st, "220 go ahead\r\n");
    if (tls_server_start(ctx, st, timeout_ms, &discarded, &err) < 0) {
        fprintf(stderr, "server: %s\n", err.s);
        _exit(13);
    }
    if (discarded != strlen("RSET\r\n"))
        _exit(14);
    if (!tls_active(st) || tls_version(st) == NULL || tls_cipher(st) == NULL)
        _exit(15);
    if (stream_getline(st, &line, 100) != STREAM_LINE || strcmp(line.s, "hello\r\n") != 0)
        _exit(16);
    stream_printf(st, "got %s\r\n", tls_version(st));
    if (stream_flush(st) < 0)
        _exit(17);
    if (stream_getline(st, &line, 100) != STREAM_EOF)
        _exit(18);
    stream_close(st);
    tls_ctx_free(ctx);
    str_free(&err);
    str_free(&line);
    _exit(0);
}

static pid_t start_server(int *client_fd, enum server_mode mode, int timeout_ms)
{
    int sv[2];
    pid_t pid;

    certs();
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        perror("socketpair");
        exit(2);
    }
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        close(sv[1]);
        serve(sv[0], mode, timeout_ms);
    }
    close(sv[0]);
    *client_fd = sv[1];
    return pid;
}

static int wait_server(pid_t pid)
{
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

TEST(handshake_and_data)
{
    struct str err = STR_INIT, line = STR_INIT;
    struct tls_ctx *ctx;
    struct stream *st;
    int fd;
    pid_t pid = start_server(&fd, SERVE_ECHO, 5000);
    const char *inject = "STARTTLS\r\nRSET\r\n";

    CHECK(write(fd, inject, strlen(inject)) == (ssize_t)strlen(inject));
    st = stream_fdopen(fd);
    stream_set_timeout(st, 5000);
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK_STR(line.s, "220 go ahead\r\n");
    CHECK(!tls_active(st));
    CHECK(tls_version(st) == NULL);
    ctx = tls_client_ctx(NULL, &err);
    CHECK(ctx != NULL);
    CHECK(tls_client_start(ctx, st, "mx.example.test", TLS_VERIFY_NONE, 5000, &err) == 0);
    CHECK(tls_active(st));
    CHECK(!tls_peer_verified(st));          /* self-signed, system CAs */
    CHECK(tls_version(st) != NULL && strncmp(tls_version(st), "TLSv1.", 6) == 0);
    CHECK(tls_cipher(st) != NULL);
    CHECK(tls_cipher_bits(st) >= 128);
    stream_puts(st, "hello\r\n");
    CHECK(stream_getline(st, &line, 100) == STREAM_LINE);
    CHECK(strncmp(line.s, "got TLSv1.", 10) == 0);
    stream_close(st);
    tls_ctx_free(ctx);
    CHECK(wait_server(pid) == 0);
    str_free(&err);
    str_free(&line);
}

TEST(large_transfer)
{
    /* Several TLS records each way through the non-blocking transport. */
    int sv[2];
    pid_t pid;
    struct str err = STR_INIT;
    static char buf[200000];
    size_t i;

    certs();
    for (i = 0; i < sizeof(buf); i++)
        buf[i] = (char)('a' + i % 26);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        struct tls_ctx *sctx = tls_server_ctx(cert_path.s, key_path.s, &err);
        struct stream *s = stream_fdopen(sv[0]);
        static char in[sizeof(buf)];
        close(sv[1]);
        stream_set_timeout(s, 5000);
        if (sctx == NULL || tls_server_start(sctx, s, 5000, NULL, &err) < 0)
            _exit(1);
        if (stream_read_full(s, in, sizeof(in)) < 0 || memcmp(in, buf, sizeof(in)) != 0)
            _exit(2);
        if (stream_write(s, in, sizeof(in)) < 0 || stream_flush(s) < 0)
            _exit(3);
        stream_close(s);
        tls_ctx_free(sctx);
        _exit(0);
    }
    close(sv[0]);
    {
        struct tls_ctx *ctx = tls_client_ctx(cert_path.s, &err);
        struct stream *st = stream_fdopen(sv[1]);
        static char back[sizeof(buf)];
        stream_set_timeout(st, 5000);
        CHECK(ctx != NULL);
        CHECK(tls_client_start(ctx, st, "mx.example.test", TLS_VERIFY_PEER, 5000, &err) == 0);
        CHECK(stream_write(st, buf, sizeof(buf)) == 0);
        CHECK(stream_flush(st) == 0);
        CHECK(stream_read_full(st, back, sizeof(back)) == 0);
        CHECK(memcmp(back, buf, sizeof(buf)) == 0);
        stream_close(st);
        tls_ctx_free(ctx);
    }
    CHECK(wait_server(pid) == 0);
    str_free(&err);
}

TEST(garbage_instead_of_client_hello)
{
    int fd;
    pid_t pid = start_server(&fd, SERVE_HANDSHAKE, 5000);
    const char *junk = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
    char buf[512];

    CHECK(write(fd, junk, strlen(junk)) == (ssize_t)strlen(junk));
    if (read(fd, buf, sizeof(buf)) < 0)     /* an alert, or nothing */
        buf[0] = '\0';
    close(fd);
    CHECK(wait_server(pid) == 0);
}

TEST(client_vanishes_mid_handshake)
{
    int fd;
    pid_t pid = start_server(&fd, SERVE_HANDSHAKE, 5000);
    /* The first bytes of a TLS record header, then nothing. */
    static const unsigned char part[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01 };

    CHECK(write(fd, part, sizeof(part)) == (ssize_t)sizeof(part));
    close(fd);
    CHECK(wait_server(pid) == 0);
}

TEST(handshake_timeout)
{
    int fd;
    pid_t pid = start_server(&fd, SERVE_HANDSHAKE, 200);

    CHECK(wait_server(pid) == 0);           /* the client never speaks */
    close(fd);
}

/* Client handshake against a fresh server child: the client's result. */
static int client_try(const char *ca_file, const char *name, enum tls_verify verify,
                      struct str *err, bool *verified)
{
    int fd, rc = -1;
    pid_t pid = start_server(&fd, SERVE_HANDSHAKE, 5000);
    struct tls_ctx *ctx = tls_client_ctx(ca_file, err);
    struct stream *st = stream_fdopen(fd);

    stream_set_timeout(st, 5000);
    if (ctx != NULL)
        rc = tls_client_start(ctx, st, name, verify, 5000, err);
    *verified = rc == 0 && tls_peer_verified(st);
    stream_close(st);
    tls_ctx_free(ctx);
    kill(pid, SIGTERM);
    (void)wait_server(pid);
    return rc;
}

TEST(verify_peer)
{
    struct str err = STR_INIT;
    bool verified = true;

    certs();
    /* Without our certificate as CA: refused. */
    CHECK(client_try(NULL, "mx.example.test", TLS_VERIFY_PEER, &err, &verified) == -1);
    CHECK(strstr(err.s, "verif") != NULL);
    CHECK(!verified);
    str_clear(&err);
    CHECK(client_try(other_cert.s, "mx.example.test", TLS_VERIFY_PEER, &err, &verified) == -1);
    str_clear(&err);
    /* With it: accepted, but only under the right name. */
    CHECK(client_try(cert_path.s, "mx.example.test", TLS_VERIFY_PEER, &err, &verified) == 0);
    CHECK(verified);
    str_clear(&err);
    CHECK(client_try(cert_path.s, "wrong.example.test", TLS_VERIFY_PEER, &err, &verified) == -1);
    CHECK(err.len > 0);
    str_clear(&err);
    /* Level "may": the same mismatch is allowed but not called verified. */
    CHECK(client_try(cert_path.s, "wrong.example.test", TLS_VERIFY_NONE, &err, &verified) == 0);
    CHECK(!verified);
    str_clear(&err);
    CHECK(client_try(cert_path.s, NULL, TLS_VERIFY_PEER, &err, &verified) == -1);
    str_free(&err);
}
