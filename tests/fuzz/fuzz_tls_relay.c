/* libFuzzer harness for lib/util/tls_relay.c, what tlsproxy(8) runs on each TLS
 * client: the input is what a client sends, then it closes its side.  The relay is
 * run until it ends, within a bound; beyond "no crash" it must end (an input that
 * stops cannot keep it going), and nothing may reach the plaintext side before a
 * handshake completed.  The first byte picks a small or the default buffer; the
 * rest is the client's.
 * Build and run: make fuzz (build/fuzz/fuzz_tls_relay), make fuzz-smoke-fuzz_tls_relay. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd.h"
#include "str.h"
#include "tls.h"
#include "tls_relay.h"

#define FUZZ_INPUT_MAX 65536        /* fits in the socket buffer at once */
#define RUNS_MAX 1000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tls_ctx *ctx;

static void setup(void)
{
    char dir[] = "/tmp/fuzz_tls_relay.XXXXXX";
    struct str cert = STR_INIT, key = STR_INIT, err = STR_INIT;

    signal(SIGPIPE, SIG_IGN);
    if (mkdtemp(dir) == NULL)
        abort();
    str_printf(&cert, "%s/cert.pem", dir);
    str_printf(&key, "%s/key.pem", dir);
    if (tls_make_self_signed("mx.example.test", cert.s, key.s, &err) < 0
        || (ctx = tls_server_ctx(cert.s, key.s, &err)) == NULL) {
        fprintf(stderr, "fuzz_tls_relay: %s\n", err.s);
        abort();
    }
    unlink(cert.s);
    unlink(key.s);
    rmdir(dir);
    str_free(&cert);
    str_free(&key);
    str_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int net[2], plain[2], rc = 1, runs = 0;
    struct str err = STR_INIT;
    struct tls_relay *r;
    size_t buf = (data[0] & 1) ? 1024 : 16384;
    char junk[4096];

    if (size == 0 || size > FUZZ_INPUT_MAX)
        return 0;
    if (ctx == NULL)
        setup();
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, net) < 0
        || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, plain) < 0)
        abort();
    if (size > 1 && fd_write_all(net[0], data + 1, size - 1) < 0)
        abort();
    shutdown(net[0], SHUT_WR);
    fd_nonblock(net[0], true);
    fd_nonblock(plain[1], true);
    r = tls_relay_new(ctx, net[1], plain[0], buf, &err);
    if (r == NULL)
        abort();
    while (rc == 1 && runs++ < RUNS_MAX) {
        bool moved = false;
        rc = tls_relay_run(r, &moved, &err);
        /* what the server says goes nowhere: read it so that it never blocks */
        while (read(net[0], junk, sizeof(junk)) > 0)
            ;
        if (!tls_relay_handshaken(r) && read(plain[1], junk, sizeof(junk)) > 0)
            abort();
    }
    /* the client said all it had and closed: a handshake cannot still be waiting */
    if (rc == 1 && !tls_relay_handshaken(r))
        abort();
    tls_relay_free(r);
    close(net[0]);
    close(plain[1]);
    str_free(&err);
    return 0;
}
