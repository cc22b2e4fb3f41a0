/* libFuzzer harness for the milter client (lib/mail/milter.c) and the end of a
 * message through filters (lib/mail/milter_msg.c): the input is everything a filter
 * sends back, fed through a UNIX socket by a thread playing the filter, while the
 * client goes through every stage of one message (CONNECT to the end of the message)
 * and applies what it got.
 * Build and run: make fuzz (build/fuzz/fuzz_milter), make fuzz-smoke-fuzz_milter.
 *
 * Checked beyond "no crash": the verdict is one of the enum; envelope changes are
 * bounded (MILTER_ENV_MAX) and each names a non-empty string without a NUL; the
 * message the filters leave has a header section in which every line starts a field
 * ("name:" with a printable name) or continues one, so that nothing a filter sends
 * can end the header early or smuggle a line into the body. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "headers.h"
#include "milter.h"
#include "milter_msg.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_INPUT_MAX (256 * 1024)

static int listen_fd = -1;
static char sock_path[108];

struct feed {
    const uint8_t *data;
    size_t size;
};

/* The filter's side: what the input holds, then the end of its writes; what the
 * client sends is read and thrown away until it closes. */
static void *feeder(void *arg)
{
    struct feed *f = arg;
    int fd = accept(listen_fd, NULL, NULL);
    char sink[65536];

    if (fd < 0)
        return NULL;
    for (size_t off = 0; off < f->size;) {
        ssize_t n = write(fd, f->data + off, f->size - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    while (read(fd, sink, sizeof(sink)) > 0)
        ;
    close(fd);
    return NULL;
}

static int setup(void)
{
    struct sockaddr_un sa;
    char dir[] = "/tmp/fuzz-milter-XXXXXX";

    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(sock_path, sizeof(sock_path), "%s/s", dir);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0
        || listen(listen_fd, 4) < 0)
        return -1;
    return 0;
}

static const char MESSAGE[] =
    "Received: from client.example (client.example [192.0.2.1])\n"
    "\tby mx.example.org with ESMTP id 0000000000000000000000\n"
    "From: a@example.org\n"
    "Subject: fuzz\n"
    "\n"
    "body line one\n"
    "body line two\n";

/* Every line of the header section starts a field or continues one. */
static int header_ok(const char *s, size_t len)
{
    size_t hlen = header_section_len(s, len), pos = 0;

    while (pos < hlen) {
        const char *nl = memchr(s + pos, '\n', hlen - pos);
        size_t l = nl ? (size_t)(nl - (s + pos)) : hlen - pos;

        if (l == 0)
            break;                          /* the empty line ending the section */
        if (s[pos] != ' ' && s[pos] != '\t') {
            size_t n = 0;
            while (n < l && s[pos + n] != ':') {
                if ((unsigned char)s[pos + n] <= 32 || (unsigned char)s[pos + n] >= 127)
                    return 0;
                n++;
            }
            if (n == 0 || n == l)
                return 0;
        }
        pos += l + 1;
    }
    /* the fields the section holds are the ones the reader finds */
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    struct milter_timeouts t = { 1000, 1000, 1000 };
    struct milter *m;
    struct milter_result r;
    struct str spec = STR_INIT, err = STR_INIT, msg = STR_INIT;
    struct feed f = { data, size };
    pthread_t th;
    const char *who = NULL;
    const char *mail[] = { "<a@example.org>", "SIZE=100", NULL };
    const char *rcpt[] = { "<b@example.net>", NULL };
    const char *macros[] = { "j", "mx.example.org", "{client_addr}", "192.0.2.1", NULL };

    if (size > FUZZ_INPUT_MAX)
        return 0;
    if (!ready) {
        if (setup() < 0)
            abort();
        ready = 1;
    }
    str_printf(&spec, "unix:%s", sock_path);
    if (milter_new(spec.s, &t, &m, &err) < 0)
        abort();
    if (pthread_create(&th, NULL, feeder, &f) != 0)
        abort();
    milter_result_init(&r);
    milter_macros(m, 'C', macros);
    milter_connect(m, "client.example", "192.0.2.1", 25, &r);
    milter_result_free(&r);
    milter_helo(m, "client.example", &r);
    milter_result_free(&r);
    milter_mail(m, mail, &r);
    milter_result_free(&r);
    milter_rcpt(m, rcpt, &r);
    milter_result_free(&r);
    milter_data(m, &r);
    milter_result_free(&r);
    str_append(&msg, MESSAGE, sizeof(MESSAGE) - 1);
    milter_msg_run(&m, 1, "0000000000000000000000", MILTER_TEMPFAIL, &msg, &r, &who);
    if (r.verdict != MILTER_CONTINUE && r.verdict != MILTER_ACCEPT
        && r.verdict != MILTER_REJECT && r.verdict != MILTER_TEMPFAIL
        && r.verdict != MILTER_DISCARD && r.verdict != MILTER_FAILED)
        abort();
    if (r.nmods > MILTER_ENV_MAX)
        abort();
    for (size_t i = 0; i < r.nmods; i++) {
        const struct milter_mod *md = &r.mods[i];
        if (md->type != MILTER_MOD_CHGFROM && md->type != MILTER_MOD_ADDRCPT
            && md->type != MILTER_MOD_DELRCPT)
            abort();
        if (md->value.len == 0 || strlen(md->value.s) != md->value.len)
            abort();
    }
    if (r.verdict == MILTER_CONTINUE && !header_ok(msg.s ? msg.s : "", msg.len))
        abort();
    milter_result_free(&r);
    milter_free(m);
    pthread_join(th, NULL);
    str_free(&spec);
    str_free(&err);
    str_free(&msg);
    return 0;
}
