/* Reading a server's replies and writing commands.  The server is untrusted: each
 * line is bounded (SMTP_LINE_MAX), a reply has at most SMTP_REPLY_LINES_MAX lines,
 * every line must carry the same three-digit code, and the text kept is sanitised
 * and bounded.  Anything else is a malformed reply, reported with its text. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtp.h"
#include "stream.h"

void smtp_reply_init(struct smtp_reply *r)
{
    r->code = 0;
    r->dsn[0] = '\0';
    str_init(&r->text);
    str_init(&r->lines);
}

void smtp_reply_free(struct smtp_reply *r)
{
    str_free(&r->text);
    str_free(&r->lines);
}

void smtp_sanitise(struct str *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        str_appendc(out, c < 0x20 || c >= 0x7f ? '?' : (char)c);
    }
}

/* Digits at s, between 1 and 3 of them: their count, or 0. */
static size_t digits13(const char *s)
{
    size_t n = strspn(s, "0123456789");

    return n >= 1 && n <= 3 ? n : 0;
}

/* "X.Y.Z " at the start of text with X the code's class (RFC 3463): copied into
 * dsn; otherwise the class with ".0.0". */
static void reply_dsn(struct smtp_reply *r, const char *text)
{
    size_t a, b;

    if (text[0] == '0' + r->code / 100 && text[1] == '.' && (a = digits13(text + 2)) > 0
        && text[2 + a] == '.' && (b = digits13(text + 3 + a)) > 0
        && (text[3 + a + b] == ' ' || text[3 + a + b] == '\0')) {
        memcpy(r->dsn, text, 3 + a + b);
        r->dsn[3 + a + b] = '\0';
        return;
    }
    snprintf(r->dsn, sizeof(r->dsn), "%d.0.0", r->code / 100);
}

static int reply_fail(struct smtp_session *s, struct str *err, const char *what,
                      const char *line, size_t len)
{
    str_printf(err, "%s from %s", what, s->where);
    if (line != NULL) {
        str_appends(err, ": ");
        smtp_sanitise(err, line, len > 200 ? 200 : len);
    }
    errno = EPROTO;
    return -1;
}

int smtp_reply_read(struct smtp_session *s, struct smtp_reply *r, struct str *err)
{
    struct str line = STR_INIT;
    int rc = -1;

    r->code = 0;
    r->dsn[0] = '\0';
    str_clear(&r->text);
    str_clear(&r->lines);
    for (size_t n = 0;; n++) {
        int got, code;
        size_t len;
        bool last;

        if (n == SMTP_REPLY_LINES_MAX) {
            reply_fail(s, err, "endless reply", NULL, 0);
            goto out;
        }
        got = stream_getline(s->st, &line, SMTP_LINE_MAX);
        if (got < 0) {
            if (errno == ETIMEDOUT)
                str_printf(err, "conversation with %s timed out", s->where);
            else
                str_printf(err, "lost connection with %s", s->where);
            goto out;
        }
        if (got == STREAM_EOF || (got == STREAM_PARTIAL && line.len < SMTP_LINE_MAX)) {
            str_printf(err, "lost connection with %s", s->where);
            errno = EPIPE;
            goto out;
        }
        if (got == STREAM_PARTIAL) {
            reply_fail(s, err, "reply line too long", line.s, line.len);
            goto out;
        }
        len = line.len;
        while (len > 0 && (line.s[len - 1] == '\n' || line.s[len - 1] == '\r'))
            len--;
        if (len < 3 || line.s[0] < '2' || line.s[0] > '5' || line.s[1] < '0' || line.s[1] > '9'
            || line.s[2] < '0' || line.s[2] > '9' || (len > 3 && line.s[3] != ' ' && line.s[3] != '-')) {
            reply_fail(s, err, "malformed reply", line.s, len);
            goto out;
        }
        code = (line.s[0] - '0') * 100 + (line.s[1] - '0') * 10 + (line.s[2] - '0');
        if (n == 0)
            r->code = code;
        else if (code != r->code) {
            reply_fail(s, err, "malformed reply (codes differ)", line.s, len);
            goto out;
        }
        last = len == 3 || line.s[3] == ' ';
        {
            const char *t = len > 4 ? line.s + 4 : "";
            size_t tlen = len > 4 ? len - 4 : 0;

            smtp_sanitise(&r->lines, t, tlen);
            str_appendc(&r->lines, '\n');
            if (n == 0)
                str_printf(&r->text, "%d", code);
            if (r->text.len < SMTP_TEXT_MAX && tlen > 0) {
                size_t room = SMTP_TEXT_MAX - r->text.len;

                str_appendc(&r->text, ' ');
                smtp_sanitise(&r->text, t, tlen < room ? tlen : room);
            }
        }
        if (last)
            break;
    }
    {
        const char *first = r->lines.s;
        char buf[32];
        size_t k = strcspn(first, "\n");

        if (k >= sizeof(buf))
            k = sizeof(buf) - 1;
        memcpy(buf, first, k);
        buf[k] = '\0';
        reply_dsn(r, buf);
    }
    rc = 0;
out:
    str_free(&line);
    return rc;
}

int smtp_command(struct smtp_session *s, const char *fmt, ...)
{
    va_list ap;
    int rc;

    va_start(ap, fmt);
    rc = stream_vprintf(s->st, fmt, ap);
    va_end(ap);
    if (rc == 0)
        rc = stream_write(s->st, "\r\n", 2);
    return rc;
}
