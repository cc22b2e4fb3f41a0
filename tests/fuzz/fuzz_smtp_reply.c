/* libFuzzer harness for the SMTP client's reading of server replies
 * (smtp/smtp_reply.c) and of the EHLO extensions (smtp/smtp_ehlo.c).  The input is
 * what a server sends: it arrives through a pipe and is read reply after reply until
 * an error or EOF.
 * Build and run: make fuzz (build/fuzz/fuzz_smtp_reply), make fuzz-smoke-fuzz_smtp_reply.
 *
 * Checked against an independent reading of the same bytes (lines of at most
 * SMTP_LINE_MAX bytes, one code per reply, the last line "NNN" or "NNN text"): the
 * same replies with the same codes and line texts, and an error exactly where that
 * reading finds one; every text printable and bounded, the enhanced code of the
 * reply's class.  Every 250 reply also goes through the EHLO parser and is compared
 * with an independent reading of its keywords. */
#include <ctype.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "str.h"
#include "stream.h"
#include "../../smtp/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_INPUT_MAX 65536

/* ---- the independent reading ---- */

struct ref {
    const uint8_t *p, *end;
};

/* The next reply: 1 with code and its sanitised lines, 0 at EOF or on an error
 * (what smtp_reply_read must report as -1). */
static int ref_reply(struct ref *r, int *code, struct str *lines)
{
    str_clear(lines);
    for (int n = 0; n < SMTP_REPLY_LINES_MAX; n++) {
        const uint8_t *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
        size_t len;
        int c;

        if (nl == NULL || (size_t)(nl - r->p) + 1 > SMTP_LINE_MAX)
            return 0;               /* EOF inside a line, or a line too long */
        len = (size_t)(nl - r->p) + 1;
        while (len > 0 && (r->p[len - 1] == '\n' || r->p[len - 1] == '\r'))
            len--;
        if (len < 3 || r->p[0] < '2' || r->p[0] > '5' || !isdigit(r->p[1])
            || !isdigit(r->p[2]) || (len > 3 && r->p[3] != ' ' && r->p[3] != '-'))
            return 0;
        c = (r->p[0] - '0') * 100 + (r->p[1] - '0') * 10 + (r->p[2] - '0');
        if (n == 0)
            *code = c;
        else if (c != *code)
            return 0;
        for (size_t i = 4; i < len; i++)
            str_appendc(lines, r->p[i] < 0x20 || r->p[i] >= 0x7f ? '?' : (char)r->p[i]);
        str_appendc(lines, '\n');
        {
            bool last = len == 3 || r->p[3] == ' ';
            r->p = nl + 1;
            if (last)
                return 1;
        }
    }
    return 0;                       /* endless */
}

/* The extensions listed by the lines after the first. */
static void ref_ehlo(const struct str *lines, unsigned *ext, unsigned long long *size)
{
    const char *p = strchr(lines->s, '\n');

    *ext = 0;
    *size = 0;
    while (p != NULL && p[1] != '\0') {
        const char *l = p + 1, *e = strchr(l, '\n');
        size_t len = (size_t)(e - l), kw = 0;

        while (kw < len && l[kw] != ' ')
            kw++;
        if (kw == 10 && strncasecmp(l, "PIPELINING", 10) == 0)
            *ext |= SMTP_EXT_PIPELINING;
        else if (kw == 8 && strncasecmp(l, "8BITMIME", 8) == 0)
            *ext |= SMTP_EXT_8BITMIME;
        else if (kw == 8 && strncasecmp(l, "SMTPUTF8", 8) == 0)
            *ext |= SMTP_EXT_SMTPUTF8;
        else if (kw == 3 && strncasecmp(l, "DSN", 3) == 0)
            *ext |= SMTP_EXT_DSN;
        else if (kw == 8 && strncasecmp(l, "STARTTLS", 8) == 0)
            *ext |= SMTP_EXT_STARTTLS;
        else if ((kw == 4 && strncasecmp(l, "AUTH", 4) == 0)
                 || (kw > 5 && strncasecmp(l, "AUTH=", 5) == 0)) {
            /* the mechanisms: words after "AUTH " or "AUTH=" */
            *ext |= SMTP_EXT_AUTH_OTHER;
            for (size_t i = 5; i < len;) {
                size_t w = 0;
                while (i + w < len && l[i + w] != ' ')
                    w++;
                if (w == 5 && strncasecmp(l + i, "PLAIN", 5) == 0)
                    *ext |= SMTP_EXT_AUTH_PLAIN;
                if (w == 5 && strncasecmp(l + i, "LOGIN", 5) == 0)
                    *ext |= SMTP_EXT_AUTH_LOGIN;
                i += w + 1;
            }
        } else if (kw == 4 && strncasecmp(l, "SIZE", 4) == 0) {
            *ext |= SMTP_EXT_SIZE;
            if (len > 4) {
                unsigned long long v = 0;
                for (size_t i = 5; i < len && i < 24 && isdigit((unsigned char)l[i]); i++)
                    v = v * 10 + (unsigned)(l[i] - '0');
                *size = v;
            }
        }
        p = e;
    }
}

/* ---- checks ---- */

static void check_text(const struct str *s, bool newlines)
{
    for (size_t i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->s[i];
        if ((c < 0x20 || c >= 0x7f) && !(newlines && c == '\n'))
            abort();
    }
}

static void check_reply(const struct smtp_reply *r)
{
    const char *d = r->dsn;
    size_t a, b;

    if (r->code < 200 || r->code > 599)
        abort();
    if (d[0] != '0' + r->code / 100 || d[1] != '.')
        abort();
    a = strspn(d + 2, "0123456789");
    if (a < 1 || a > 3 || d[2 + a] != '.')
        abort();
    b = strspn(d + 3 + a, "0123456789");
    if (b < 1 || b > 3 || d[3 + a + b] != '\0')
        abort();
    if (r->text.len < 3 || r->text.len > SMTP_TEXT_MAX + 1 || r->text.s[0] != '0' + r->code / 100)
        abort();
    check_text(&r->text, false);
    check_text(&r->lines, true);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_session s;
    struct smtp_reply r;
    struct str err = STR_INIT, ref_lines = STR_INIT;
    struct ref ref = { data, data + size };
    int p[2];

    if (size > FUZZ_INPUT_MAX || pipe2(p, O_CLOEXEC) < 0)
        return 0;
    (void)fcntl(p[1], F_SETPIPE_SZ, FUZZ_INPUT_MAX);
    for (size_t off = 0; off < size;) {
        ssize_t n = write(p[1], data + off, size - off);
        if (n <= 0) {
            close(p[0]);
            close(p[1]);
            return 0;
        }
        off += (size_t)n;
    }
    close(p[1]);
    memset(&s, 0, sizeof(s));
    s.st = stream_fdopen(p[0]);
    stream_set_timeout(s.st, 1000);
    strcpy(s.where, "mx.example.org[192.0.2.1]:25");
    smtp_reply_init(&r);
    for (;;) {
        int code = 0;
        int want = ref_reply(&ref, &code, &ref_lines);
        int got = smtp_reply_read(&s, &r, &err);

        if ((got == 0) != (want == 1))
            abort();
        if (got < 0) {
            if (err.len == 0)
                abort();
            check_text(&err, false);
            break;
        }
        check_reply(&r);
        if (r.code != code || r.lines.len != ref_lines.len
            || memcmp(r.lines.s, ref_lines.s, ref_lines.len) != 0)
            abort();
        if (r.code == 250) {
            unsigned ext;
            unsigned long long sz;

            smtp_ehlo_parse(&s, &r);
            ref_ehlo(&r.lines, &ext, &sz);
            if (s.ext != ext || s.size_max != sz)
                abort();
            if ((s.ext & (SMTP_EXT_AUTH_PLAIN | SMTP_EXT_AUTH_LOGIN))
                && !(s.ext & SMTP_EXT_AUTH_OTHER))
                abort();
        }
    }
    smtp_reply_free(&r);
    stream_close(s.st);
    str_free(&err);
    str_free(&ref_lines);
    return 0;
}
