/* One mail transaction: MAIL FROM, RCPT TO for each recipient of the request (sent
 * together when the server offers PIPELINING), DATA, the content, and the result of
 * every recipient from the replies: 2xx sent, 4xx deferred, 5xx bounced; a 4xx or 5xx
 * to MAIL or DATA decides for all.  The envelope comes from the queue file, which is
 * not trusted either: addresses with control characters are refused, DSN values are
 * checked before they go on the wire. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "log.h"
#include "smtp.h"
#include "stream.h"
#include "xmalloc.h"

struct trans {
    struct smtp_ctx *ctx;
    struct smtp_session *s;
    struct deliver_request *dr;
    bool *decided;
};

static void decide(struct trans *t, size_t i, enum deliver_status st, const char *dsn,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void decide(struct trans *t, size_t i, enum deliver_status st, const char *dsn,
                   const char *fmt, ...)
{
    struct str text = STR_INIT;
    va_list ap;

    if (t->decided[i])
        return;
    va_start(ap, fmt);
    str_vprintf(&text, fmt, ap);
    va_end(ap);
    deliver_result(t->dr, i, st, dsn, "%s", text.s);
    t->decided[i] = true;
    str_free(&text);
}

/* Every recipient still open gets the same result. */
static void decide_all(struct trans *t, enum deliver_status st, const char *dsn,
                       const char *text)
{
    for (size_t i = 0; i < t->dr->nrcpt; i++)
        decide(t, i, st, dsn, "%s", text);
}

static enum deliver_status class_of(int code)
{
    return code >= 500 ? DELIVER_BOUNCE : code >= 400 ? DELIVER_DEFER : DELIVER_OK;
}

static bool clean_text(const char *s, bool allow_8bit)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 || c == 0x7f || (c >= 0x80 && !allow_8bit))
            return false;
    }
    return true;
}

/* xtext (RFC 3461 4): printable ASCII other than '+' and '=' as is, the rest +XX. */
static void xtext(struct str *out, const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c > 32 && c < 127 && c != '+' && c != '=')
            str_appendc(out, (char)c);
        else
            str_printf(out, "+%02X", c);
    }
}

/* An xtext value as the queue keeps it (ENVID): printable, no '=', bounded. */
static bool xtext_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 32 || (unsigned char)s[i] >= 127 || s[i] == '=')
            return false;
    return true;
}

static bool notify_ok(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n < 40 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ,") == n;
}

static void mail_command(struct str *cmd, const struct smtp_session *s,
                         const struct queue_file *qf, bool body8, bool smtputf8)
{
    const char *ret = queue_file_attr(qf, "ret");
    const char *envid = queue_file_attr(qf, "envid");

    str_appends(cmd, "MAIL FROM:<");
    addr_quote(qf->sender ? qf->sender : "", cmd);
    str_appendc(cmd, '>');
    if (s->ext & SMTP_EXT_SIZE)
        str_printf(cmd, " SIZE=%zu", qf->content_size);
    if (body8 && (s->ext & SMTP_EXT_8BITMIME))
        str_appends(cmd, " BODY=8BITMIME");
    if (smtputf8)
        str_appends(cmd, " SMTPUTF8");
    if (s->ext & SMTP_EXT_DSN) {
        if (ret != NULL && (strcmp(ret, "FULL") == 0 || strcmp(ret, "HDRS") == 0))
            str_printf(cmd, " RET=%s", ret);
        if (envid != NULL && xtext_ok(envid, 100))
            str_printf(cmd, " ENVID=%s", envid);
    }
}

/* Is the recipient's NOTIFY handed to this server?  Then its notices are the
 * server's to send (RFC 3461 6.2.2), not ours. */
static bool notify_passed(const struct smtp_session *s, const struct queue_rcpt *r)
{
    return (s->ext & SMTP_EXT_DSN) && r->notify != NULL && notify_ok(r->notify);
}

static void rcpt_command(struct str *cmd, const struct smtp_session *s,
                         const struct queue_rcpt *r)
{
    str_appends(cmd, "RCPT TO:<");
    addr_quote(r->addr, cmd);
    str_appendc(cmd, '>');
    if (s->ext & SMTP_EXT_DSN) {
        if (notify_passed(s, r))
            str_printf(cmd, " NOTIFY=%s", r->notify);
        if (r->orcpt != NULL && r->orcpt[0] != '\0' && clean_text(r->orcpt, false)
            && strlen(r->orcpt) < 400) {
            str_appends(cmd, " ORCPT=rfc822;");
            xtext(cmd, r->orcpt);
        }
    }
}

int smtp_transaction(struct smtp_ctx *ctx, struct smtp_session *s, struct queue_file *qf,
                     struct deliver_request *dr, bool *decided)
{
    struct trans t = { ctx, s, dr, decided };
    const char *body = queue_file_attr(qf, "body");
    const char *utf8 = queue_file_attr(qf, "smtputf8");
    bool body8 = body != NULL && strcasecmp(body, "8BITMIME") == 0;
    bool smtputf8 = utf8 != NULL && (strcmp(utf8, "yes") == 0 || strcmp(utf8, "1") == 0);
    bool convert = false;
    struct str err = STR_INIT, cmd = STR_INIT;
    struct smtp_reply r;
    size_t *cmd_rcpt, ncmds = 0, naccepted = 0;
    bool *accepted, mail_failed = false;
    int rc = -1;

    smtp_reply_init(&r);
    cmd_rcpt = xcalloc(dr->nrcpt + 1, sizeof(*cmd_rcpt));
    accepted = xcalloc(dr->nrcpt + 1, sizeof(*accepted));
    if (smtputf8 && !(s->ext & SMTP_EXT_SMTPUTF8)) {
        str_printf(&err, "SMTPUTF8 is required, but was not offered by host %s", s->where);
        decide_all(&t, DELIVER_BOUNCE, "5.6.7", err.s);
        rc = 0;
        goto out;
    }
    if ((s->ext & SMTP_EXT_SIZE) && s->size_max > 0 && qf->content_size > s->size_max) {
        str_printf(&err, "message size %zu exceeds size limit %llu of server %s",
                   qf->content_size, s->size_max, s->where);
        decide_all(&t, DELIVER_BOUNCE, "5.3.4", err.s);
        rc = 0;
        goto out;
    }
    if (qf->sender != NULL && !clean_text(qf->sender, smtputf8)) {
        decide_all(&t, DELIVER_BOUNCE, "5.1.7", "bad sender address syntax in the queue file");
        rc = 0;
        goto out;
    }
    if (body8 && !(s->ext & SMTP_EXT_8BITMIME)) {
        bool has8 = false;

        if (smtp_data_8bit(qf, &has8) < 0) {
            decide_all(&t, DELIVER_DEFER, "4.3.0", "cannot read the queue file");
            rc = 0;
            goto out;
        }
        convert = has8;
    }
    /* the commands: [0] MAIL, then one RCPT for each open recipient */
    for (size_t i = 0; i < dr->nrcpt; i++) {
        size_t idx = dr->rcpt[i].index;

        if (decided[i])
            continue;
        if (idx >= qf->nrcpt || qf->rcpt[idx].done) {
            decide(&t, i, DELIVER_DEFER, "4.3.0", "recipient not pending in the queue file");
            continue;
        }
        if (!clean_text(qf->rcpt[idx].addr, smtputf8)) {
            decide(&t, i, DELIVER_BOUNCE, "5.1.3", "bad recipient address syntax");
            continue;
        }
        cmd_rcpt[ncmds++] = i;
    }
    if (ncmds == 0) {
        rc = 0;
        goto out;
    }
    stream_set_timeout(s->st, ctx->helo_ms);
    for (size_t next = 0; next <= ncmds;) {
        /* position 0 is MAIL, k >= 1 is the RCPT for cmd_rcpt[k - 1] */
        size_t batch = (s->ext & SMTP_EXT_PIPELINING) ? SMTP_PIPELINE_MAX : 1;
        size_t end = next + batch > ncmds + 1 ? ncmds + 1 : next + batch;

        for (size_t k = next; k < end; k++) {
            str_clear(&cmd);
            if (k == 0)
                mail_command(&cmd, s, qf, body8, smtputf8);
            else
                rcpt_command(&cmd, s, &qf->rcpt[dr->rcpt[cmd_rcpt[k - 1]].index]);
            if (smtp_command(s, "%s", cmd.s) < 0)
                break;
        }
        if (stream_flush(s->st) < 0) {
            str_printf(&err, "lost connection with %s while sending %s", s->where,
                       next == 0 ? "MAIL FROM" : "RCPT TO");
            goto broken;
        }
        for (size_t k = next; k < end; k++) {
            const char *what = k == 0 ? "MAIL FROM" : "RCPT TO";

            if (smtp_reply_read(s, &r, &err) < 0) {
                str_printf(&err, " (in reply to %s command)", what);
                goto broken;
            }
            if (k == 0) {
                if (r.code / 100 != 2) {
                    mail_failed = true;
                    for (size_t j = 0; j < ncmds; j++)
                        decide(&t, cmd_rcpt[j], class_of(r.code), r.dsn,
                               "host %s said: %s (in reply to MAIL FROM command)", s->where,
                               r.text.s);
                }
                continue;
            }
            if (mail_failed)
                continue;
            if (r.code / 100 == 2) {
                accepted[cmd_rcpt[k - 1]] = true;
                naccepted++;
            } else {
                decide(&t, cmd_rcpt[k - 1], class_of(r.code), r.dsn,
                       "host %s said: %s (in reply to RCPT TO command)", s->where, r.text.s);
            }
        }
        next = end;
        if (mail_failed && !(s->ext & SMTP_EXT_PIPELINING))
            break;
    }
    if (mail_failed || naccepted == 0) {
        rc = 0;
        goto out;
    }
    if (smtp_command(s, "DATA") < 0 || stream_flush(s->st) < 0) {
        str_printf(&err, "lost connection with %s while sending DATA", s->where);
        goto broken;
    }
    if (smtp_reply_read(s, &r, &err) < 0) {
        str_appends(&err, " (in reply to DATA command)");
        goto broken;
    }
    if (r.code != 354) {
        for (size_t i = 0; i < dr->nrcpt; i++)
            if (accepted[i])
                decide(&t, i, r.code / 100 == 2 ? DELIVER_DEFER : class_of(r.code), r.dsn,
                       "host %s said: %s (in reply to DATA command)", s->where, r.text.s);
        rc = 0;
        goto out;
    }
    stream_set_timeout(s->st, ctx->data_ms);
    if (smtp_data_send(s, qf, convert) < 0) {
        str_printf(&err, "lost connection with %s while sending the message", s->where);
        goto broken;
    }
    if (smtp_reply_read(s, &r, &err) < 0) {
        str_appends(&err, " (in reply to end of DATA command)");
        goto broken;
    }
    s->uses++;
    for (size_t i = 0; i < dr->nrcpt; i++) {
        if (!accepted[i])
            continue;
        if (r.code / 100 == 2) {
            decide(&t, i, DELIVER_OK, r.dsn, "delivered via %s%s: %s", s->where,
                   convert ? " (8-bit body sent as quoted-printable)" : "", r.text.s);
            if (dr->rcpt[i].index < qf->nrcpt
                && notify_passed(s, &qf->rcpt[dr->rcpt[i].index]))
                dr->rcpt[i].notified = true;
        } else
            decide(&t, i, class_of(r.code), r.dsn,
                   "host %s said: %s (in reply to end of DATA command)", s->where, r.text.s);
    }
    rc = 0;
    goto out;
broken:
    log_warn("%s: %s", dr->id, err.s);
    decide_all(&t, DELIVER_DEFER, "4.4.2", err.s);
    rc = -1;
out:
    smtp_reply_free(&r);
    str_free(&err);
    str_free(&cmd);
    free(cmd_rcpt);
    free(accepted);
    return rc;
}
