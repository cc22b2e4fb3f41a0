/* libFuzzer harness for pop3d's command reading and argument parsing (pop3d/cmd.c) and
 * its SASL decoding (pop3d/sasl.c).  The input is what a client sends: it arrives
 * through a pipe and is read line by line as pop3d does, until EOF.
 * Build and run: make fuzz (build/fuzz/fuzz_pop3), make fuzz-smoke-fuzz_pop3.
 *
 * Checked against independent readings of the same bytes: which lines are good, bad
 * (too long, NUL) or the end; the keyword and arguments a good line splits into (they
 * make the line again); message numbers, TOP's count and its two arguments.  The
 * base64 decoder is compared with smtpd's (smtpd/auth_decode.c): what smtpd's strict
 * decoder takes, pop3d's takes the same way, and what pop3d's takes decodes to bytes
 * that encode back to a text smtpd's decoder reads the same; an accepted PLAIN message
 * rebuilds from its parts.  The error limit ends the session exactly when reached. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "str.h"
#include "fuzz_b64.h"
#include "stream.h"
#include "../../pop3d/pop3d.h"
#include "sasl.h"
#include "../../smtpd/auth_decode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct pop3_conf pop3_cf;

#define FUZZ_INPUT_MAX 65536

/* pop3d's line reading, independently: POP3_LINE_OK with the line, BAD, or EOF. */
static int ref_line(const uint8_t **pp, const uint8_t *end, struct str *line)
{
    const uint8_t *p = *pp, *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n;

    if (p == end || nl == NULL)
        return POP3_LINE_EOF;           /* EOF, or the last bytes without a line end */
    n = (size_t)(nl - p) + 1;
    *pp = nl + 1;
    if (n > POP3_CMD_MAX)
        return POP3_LINE_BAD;
    n--;
    if (n > 0 && p[n - 1] == '\r')
        n--;
    str_set(line, p, n);
    return memchr(p, '\0', n) != NULL ? POP3_LINE_BAD : POP3_LINE_OK;
}

static void check_sasl(const char *text)
{
    struct str d1 = STR_INIT, d2 = STR_INIT, enc = STR_INIT, user = STR_INIT,
               pass = STR_INIT, u2 = STR_INIT, p2 = STR_INIT;
    size_t len = strlen(text);
    int r1 = sasl_base64_decode(text, len, &d1);
    int r2 = smtpd_b64_decode(text, len, &d2);

    if (r2 == 0 && (r1 != 0 || d1.len != d2.len || memcmp(d1.s, d2.s, d1.len) != 0))
        abort();
    if (r1 == 0) {
        b64_encode(&d1, &enc);
        if (smtpd_b64_decode(enc.s, enc.len, &d2) != 0 || d1.len != d2.len
            || memcmp(d1.s, d2.s, d1.len) != 0)
            abort();
        if (sasl_plain(&d1, &user, &pass) == 0) {
            size_t zlen = strlen(d1.s);
            if (user.len == 0 || user.len > POP3_NAME_MAX || pass.len == 0)
                abort();
            if (memchr(user.s, '\0', user.len) != NULL || memchr(pass.s, '\0', pass.len) != NULL)
                abort();
            if ((zlen != 0 && (zlen != user.len || memcmp(d1.s, user.s, zlen) != 0))
                || zlen + 1 + user.len + 1 + pass.len != d1.len
                || memcmp(d1.s + zlen + 1, user.s, user.len) != 0
                || memcmp(d1.s + d1.len - pass.len, pass.s, pass.len) != 0)
                abort();
            /* smtpd's PLAIN reading agrees */
            if (smtpd_plain_split(&d1, &u2, &p2) != 0 || u2.len != user.len
                || memcmp(u2.s, user.s, user.len) != 0 || p2.len != pass.len
                || memcmp(p2.s, pass.s, pass.len) != 0)
                abort();
        }
    }
    str_free(&d1);
    str_free(&d2);
    str_free(&enc);
    str_free(&user);
    str_free(&pass);
    str_free(&u2);
    str_free(&p2);
}

static void check_args(const char *args)
{
    static const size_t maxes[] = { 0, 1, 9, 10, 99, 1000000, SIZE_MAX };
    bool digits = args[0] >= '1' && args[0] <= '9';
    size_t ndig = 0, spaces = 0;
    long long count;
    char *copy, *a, *b;

    for (const char *p = args; *p; p++) {
        if (*p < '0' || *p > '9')
            digits = false;
        else
            ndig++;
        spaces += *p == ' ';
    }
    /* message numbers: [1-9][0-9]* no larger than max */
    for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
        size_t got = pop3_msgno(args, maxes[i]), want = 0;

        if (digits) {
            unsigned long long v = 0;
            bool over = false;
            for (const char *p = args; *p; p++) {
                unsigned d = (unsigned)(*p - '0');
                if (v > (SIZE_MAX - d) / 10)
                    over = true;
                else
                    v = v * 10 + d;
            }
            want = !over && v <= maxes[i] ? (size_t)v : 0;
        }
        if (got != want)
            abort();
    }
    /* TOP's count: 1 to 18 digits */
    {
        bool ok = args[0] != '\0' && ndig == strlen(args) && ndig <= 18;
        long long v = -1;
        if ((pop3_count(args, &count) == 0) != ok)
            abort();
        if (ok) {
            v = 0;
            for (const char *p = args; *p; p++)
                v = v * 10 + (*p - '0');
            if (count != v)
                abort();
        }
    }
    /* TOP's two arguments: exactly one space, inside */
    copy = strdup(args);
    {
        size_t n = strlen(args);
        bool ok = spaces == 1 && n > 0 && args[0] != ' ' && args[n - 1] != ' ';
        if (pop3_two_args(copy, &a, &b) != ok)
            abort();
        if (ok && (strlen(a) + 1 + strlen(b) != n || strncmp(args, a, strlen(a)) != 0
                   || strcmp(args + strlen(a) + 1, b) != 0))
            abort();
    }
    free(copy);
    check_sasl(args);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct str line = STR_INIT, ref = STR_INIT, orig = STR_INIT;
    const uint8_t *rp;
    struct stream *st, *out;
    unsigned errors = 0;
    int p[2], null;

    if (size == 0 || size > FUZZ_INPUT_MAX || pipe2(p, O_CLOEXEC) < 0)
        return 0;
    null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null < 0)
        abort();
    (void)fcntl(p[1], F_SETPIPE_SZ, FUZZ_INPUT_MAX);
    for (size_t off = 1; off < size;) {
        ssize_t n = write(p[1], data + off, size - off);
        if (n <= 0)
            abort();
        off += (size_t)n;
    }
    close(p[1]);
    memset(&pop3_cf, 0, sizeof(pop3_cf));
    pop3_cf.error_limit = data[0] % 8;          /* 0: no limit */
    pop3_cf.timeout_ms = 1000;
    pop3_cf.command_deadline_ms = 10000;
    st = stream_fdopen(p[0]);
    stream_set_timeout(st, 1000);
    out = stream_fdopen(null);
    rp = data + 1;
    for (;;) {
        int got = pop3_getline(st, &line, POP3_CMD_MAX, 0);
        int want = ref_line(&rp, data + size, &ref);
        const char *kw, *args;

        if (got != want)
            abort();
        if (got == POP3_LINE_EOF)
            break;
        if (got == POP3_LINE_BAD) {
            bool more = pop3_err(out, &errors, "%s", "line too long");
            if (more != (pop3_cf.error_limit == 0 || errors < (unsigned)pop3_cf.error_limit))
                abort();
            if (!more)
                break;
            continue;
        }
        if (line.len != ref.len || memcmp(line.s, ref.s, ref.len) != 0)
            abort();
        str_set(&orig, line.s, line.len);
        pop3_split(&line, &kw, &args);
        /* the keyword (upper case, no space) and the arguments make the line again */
        if (strchr(kw, ' ') != NULL || strlen(kw) > orig.len)
            abort();
        for (size_t i = 0; kw[i]; i++) {
            char c = orig.s[i];
            if (kw[i] != (c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c))
                abort();
        }
        if (args == NULL ? strlen(kw) != orig.len
                         : strlen(kw) + 1 + strlen(args) != orig.len
                               || strcmp(args, orig.s + strlen(kw) + 1) != 0)
            abort();
        if (args != NULL)
            check_args(args);
    }
    stream_close(st);
    stream_close(out);
    str_free(&line);
    str_free(&ref);
    str_free(&orig);
    return 0;
}
