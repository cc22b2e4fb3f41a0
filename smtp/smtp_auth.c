/* SMTP AUTH as a client (RFC 4954): PLAIN (RFC 4616) with an initial response, or
 * LOGIN when the server offers no PLAIN.  Only ever on a session under TLS: the
 * caller checks, and so does this file.  The credential comes from
 * smtp_sasl_password_maps; it is never logged, and the buffers that held it encoded
 * are wiped.  The server's replies are untrusted (smtp_reply.c); 334 challenges are
 * not interpreted.  Results: 235 goes on; 535 (wrong credential, an administrator's
 * problem) defers with 4.7.8 and the server's text; other 4xx defer, other 5xx are a
 * refusal (bounce when every server says so). */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "smtp.h"
#include "stream.h"

static void base64(struct str *out, const unsigned char *in, size_t len)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    for (size_t i = 0; i < len; i += 3) {
        unsigned v = (unsigned)in[i] << 16;

        if (i + 1 < len)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        str_appendc(out, tab[(v >> 18) & 63]);
        str_appendc(out, tab[(v >> 12) & 63]);
        str_appendc(out, i + 1 < len ? tab[(v >> 6) & 63] : '=');
        str_appendc(out, i + 2 < len ? tab[v & 63] : '=');
    }
}

static void wipe(struct str *sb)
{
    if (sb->s != NULL)
        explicit_bzero(sb->s, sb->cap > 0 ? sb->cap : sb->len);
    str_clear(sb);
}

/* Sends line (secret: never quoted) and reads the reply; 0, or -1 with err. */
static int step(struct smtp_session *s, const char *line, size_t len, const char *what,
                struct smtp_reply *r, struct str *err)
{
    if (stream_write(s->st, line, len) < 0 || stream_write(s->st, "\r\n", 2) < 0
        || stream_flush(s->st) < 0) {
        str_printf(err, "lost connection with %s while sending %s", s->where, what);
        return -1;
    }
    if (smtp_reply_read(s, r, err) < 0) {
        str_printf(err, " (in reply to %s)", what);
        return -1;
    }
    return 0;
}

static void set_fail(enum deliver_status *fail, char dsn[16], enum deliver_status st,
                     const char *code)
{
    *fail = st;
    snprintf(dsn, 16, "%s", code);
}

int smtp_auth(struct smtp_ctx *ctx, struct smtp_session *s, const struct smtp_policy *p,
              enum deliver_status *fail, char dsn[16], struct str *err)
{
    bool plain = (s->ext & SMTP_EXT_AUTH_PLAIN) != 0;
    const char *what = plain ? "AUTH PLAIN" : "AUTH LOGIN";
    struct str line = STR_INIT, raw = STR_INIT;
    struct smtp_reply r;
    int rc = -1;

    if (!s->tls) {
        set_fail(fail, dsn, DELIVER_DEFER, "4.7.0");
        str_printf(err, "not sending the credential for %s to %s without TLS", p->nexthop,
                   s->where);
        return -1;
    }
    if (!(s->ext & (SMTP_EXT_AUTH_PLAIN | SMTP_EXT_AUTH_LOGIN))) {
        set_fail(fail, dsn, DELIVER_DEFER, "4.7.0");
        str_printf(err, "a credential for %s is configured, but host %s offers %s", p->nexthop,
                   s->where, (s->ext & SMTP_EXT_AUTH_OTHER)
                                 ? "no AUTH mechanism this client uses (PLAIN, LOGIN)"
                                 : "no AUTH");
        return -1;
    }
    smtp_reply_init(&r);
    stream_set_timeout(s->st, ctx->helo_ms);
    if (plain) {
        /* authzid empty, NUL, authcid, NUL, password */
        str_appendc(&raw, '\0');
        str_append(&raw, p->user.s, p->user.len);
        str_appendc(&raw, '\0');
        str_append(&raw, p->password.s, p->password.len);
        str_appends(&line, "AUTH PLAIN ");
        base64(&line, (const unsigned char *)raw.s, raw.len);
        if (step(s, line.s, line.len, what, &r, err) < 0)
            goto broken;
    } else {
        if (step(s, "AUTH LOGIN", 10, what, &r, err) < 0)
            goto broken;
        if (r.code == 334) {
            base64(&line, (const unsigned char *)p->user.s, p->user.len);
            if (step(s, line.s, line.len, what, &r, err) < 0)
                goto broken;
        }
        if (r.code == 334) {
            wipe(&line);
            base64(&line, (const unsigned char *)p->password.s, p->password.len);
            if (step(s, line.s, line.len, what, &r, err) < 0)
                goto broken;
        }
    }
    if (r.code == 334) {
        /* a challenge where none belongs: cancel */
        set_fail(fail, dsn, DELIVER_DEFER, "4.7.0");
        str_printf(err, "host %s sent an unexpected challenge (in reply to %s)", s->where,
                   what);
        if (step(s, "*", 1, what, &r, err) < 0)
            goto broken;
        goto out;
    }
    if (r.code == 235) {
        log_info("authenticated to %s as %s (%s)", s->where, p->user.s, what + 5);
        rc = 0;
    } else if (r.code == 535) {
        set_fail(fail, dsn, DELIVER_DEFER, "4.7.8");
        str_printf(err, "SASL authentication failed: host %s said: %s (in reply to %s)",
                   s->where, r.text.s, what);
    } else {
        set_fail(fail, dsn, r.code >= 500 ? DELIVER_BOUNCE : DELIVER_DEFER,
                 r.code >= 400 ? r.dsn : "4.7.0");
        str_printf(err, "host %s said: %s (in reply to %s)", s->where, r.text.s, what);
    }
    goto out;
broken:
    set_fail(fail, dsn, DELIVER_DEFER, "4.4.2");
out:
    wipe(&line);
    wipe(&raw);
    str_free(&line);
    str_free(&raw);
    smtp_reply_free(&r);
    return rc;
}
