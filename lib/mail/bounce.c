/* Delivery status notifications (RFC 3464) written as new queue files.  The original
 * message's envelope and headers come from the queue (first written from network
 * input): envelope fields and headers are copied only as sanitised text, and at most
 * bounce_size_limit bytes of the original are returned. */
#include "bounce.h"
#include "headers.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "str.h"
#include "xtext.h"

#define BOUNCE_TEXT_MAX 500         /* longest diagnostic text copied */
#define BOUNCE_RETURN_MAX (1u << 24) /* cap on bounce_size_limit */

/* Appends s with anything but printable ASCII made '?', at most max bytes. */
static void append_clean(struct str *out, const char *s, size_t max)
{
    for (size_t i = 0; s != NULL && s[i] != '\0' && i < max; i++) {
        unsigned char c = (unsigned char)s[i];

        str_appendc(out, c >= 0x20 && c < 0x7f ? (char)c : '?');
    }
}

static void append_addr(struct str *out, const char *addr)
{
    struct str q = STR_INIT;

    addr_quote(addr, &q);
    append_clean(out, q.s ? q.s : "", ADDR_PATH_MAX * 2);
    str_free(&q);
}

/* ENVID is kept as xtext (RFC 3461 4): shown decoded when that gives printable
 * ASCII, else as it came. */
static void append_envid(struct str *out, const char *x)
{
    struct str d = STR_INIT;
    bool ok = xtext_decode(x, strnlen(x, 200), &d) == 0 && d.len > 0;

    for (size_t i = 0; ok && i < d.len; i++)
        if ((unsigned char)d.s[i] > 0x7e)
            ok = false;
    append_clean(out, ok ? d.s : x, 200);
    str_free(&d);
}

static const char *kind_action(enum bounce_kind k)
{
    switch (k) {
    case BOUNCE_DELAYED:
        return "delayed";
    case BOUNCE_DELIVERED:
        return "delivered";
    case BOUNCE_FAILED:
    default:
        return "failed";
    }
}

static const char *kind_dsn(enum bounce_kind k)
{
    switch (k) {
    case BOUNCE_DELAYED:
        return "4.0.0";
    case BOUNCE_DELIVERED:
        return "2.0.0";
    case BOUNCE_FAILED:
    default:
        return "5.0.0";
    }
}

static const char *kind_subject(const struct bounce_notice *bn)
{
    if (bn->postmaster)
        return "Postmaster Copy: Undelivered Mail";
    switch (bn->kind) {
    case BOUNCE_DELAYED:
        return "Delayed Mail (still being retried)";
    case BOUNCE_DELIVERED:
        return "Successful Mail Delivery Report";
    case BOUNCE_FAILED:
    default:
        return "Undelivered Mail Returned to Sender";
    }
}

static void human_part(struct str *out, const struct bounce_notice *bn,
                       const struct bounce_rcpt *r, size_t n, const struct conf *conf,
                       const struct queue_file *orig, bool whole)
{
    str_appends(out, "This is the ");
    append_clean(out, conf_str(conf, CONF_mail_name), 100);
    str_appends(out, " mail system at host ");
    append_clean(out, conf_str(conf, CONF_myhostname), 255);
    str_appends(out, ".\n\n");
    if (bn->postmaster) {
        str_appends(out, "A delivery status notification from this host could not be\n"
                         "delivered.  It is attached with the reasons below.\n"
                         "No further notice will be sent about it.\n\n");
    } else if (bn->kind == BOUNCE_DELAYED) {
        str_appends(out, "Your message could not be delivered yet to one or more of\n"
                         "its recipients.  This is only a warning: you do not need to\n"
                         "send it again.  Delivery will be tried again");
        if (bn->retry_until > 0) {
            str_appends(out, " until\n");
            header_date(out, bn->retry_until);
        }
        str_appends(out, ".\n\nThe reasons given so far are listed below.\n\n");
    } else if (bn->kind == BOUNCE_DELIVERED) {
        str_appends(out, "Your message was delivered to the recipients listed below,\n"
                         "as you asked.\n\n");
    } else {
        str_appends(out, "Your message could not be delivered to one or more of its\n"
                         "recipients, and no further attempts will be made for them.\n"
                         "Each failed address is listed below with the reason given.\n\n"
                         "If you need help, write to the postmaster of this host and\n"
                         "include this notice.\n\n");
    }
    for (size_t i = 0; i < n; i++) {
        str_appendc(out, '<');
        append_addr(out, r[i].addr);
        str_appends(out, ">: ");
        append_clean(out, r[i].text, BOUNCE_TEXT_MAX);
        str_appends(out, "\n\n");
    }
    if (!whole && bn->full && bn->kind == BOUNCE_FAILED)
        str_printf(out, "The message (%zu bytes) is too large to be returned in full;\n"
                        "its headers follow.\n\n", orig->content_size);
}

void bounce_format(struct str *out, const char *id, const struct queue_file *orig,
                   const struct bounce_notice *bn, const struct bounce_rcpt *r, size_t n,
                   const struct conf *conf, const char *orig_text, size_t olen, bool whole,
                   time_t now)
{
    const char *host = conf_str(conf, CONF_myhostname);
    const char *envid = queue_file_attr(orig, "envid");
    struct str boundary = STR_INIT;
    bool eight = false;

    for (size_t i = 0; i < olen && !eight; i++)
        eight = (unsigned char)orig_text[i] >= 0x80;
    str_printf(&boundary, "%s/", id);
    append_clean(&boundary, host, 200);

    str_appends(out, "From: MAILER-DAEMON@");
    append_clean(out, host, 255);
    str_appends(out, " (Mail Delivery System)\nTo: <");
    append_addr(out, bn->to);
    str_printf(out, ">\nSubject: %s\nDate: ", kind_subject(bn));
    header_date(out, now);
    str_printf(out, "\nMessage-ID: <%s@", id);
    append_clean(out, host, 255);
    str_appends(out, ">\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n"
                     "Content-Type: multipart/report; report-type=delivery-status;\n"
                     "\tboundary=\"");
    str_append(out, boundary.s, boundary.len);
    str_printf(out, "\"\nContent-Transfer-Encoding: %s\n\n"
                    "This is a MIME-encapsulated message.\n\n", eight ? "8bit" : "7bit");

    /* the part for people */
    str_printf(out, "--%s\nContent-Description: Notification\n"
                    "Content-Type: text/plain; charset=us-ascii\n\n", boundary.s);
    human_part(out, bn, r, n, conf, orig, whole);

    /* the part for programs */
    str_printf(out, "--%s\nContent-Description: Delivery report\n"
                    "Content-Type: message/delivery-status\n\n", boundary.s);
    str_appends(out, "Reporting-MTA: dns; ");
    append_clean(out, host, 255);
    str_appends(out, "\n");
    if (envid != NULL && envid[0] != '\0') {
        str_appends(out, "Original-Envelope-Id: ");
        append_envid(out, envid);
        str_appends(out, "\n");
    }
    str_printf(out, "X-Postern-Queue-ID: %s\n", orig->id);
    if (orig->sender != NULL && orig->sender[0] != '\0') {
        str_appends(out, "X-Postern-Sender: rfc822; ");
        append_clean(out, orig->sender, ADDR_PATH_MAX);
        str_appends(out, "\n");
    }
    str_appends(out, "Arrival-Date: ");
    header_date(out, orig->arrival);
    str_appends(out, "\n");
    for (size_t i = 0; i < n; i++) {
        str_appends(out, "\nFinal-Recipient: rfc822; ");
        append_clean(out, r[i].addr, ADDR_PATH_MAX);
        str_appends(out, "\n");
        if (r[i].orcpt != NULL && r[i].orcpt[0] != '\0') {
            str_appends(out, "Original-Recipient: rfc822; ");
            append_clean(out, r[i].orcpt, ADDR_PATH_MAX);
            str_appends(out, "\n");
        }
        str_appends(out, "Action: ");
        append_clean(out, r[i].action != NULL ? r[i].action : kind_action(bn->kind), 20);
        str_appends(out, "\nStatus: ");
        append_clean(out, r[i].dsn != NULL ? r[i].dsn : kind_dsn(bn->kind), 15);
        str_appends(out, "\nDiagnostic-Code: X-Postern; ");
        append_clean(out, r[i].text, BOUNCE_TEXT_MAX);
        str_appends(out, "\n");
        if (bn->kind == BOUNCE_DELAYED && bn->retry_until > 0) {
            str_appends(out, "Will-Retry-Until: ");
            header_date(out, bn->retry_until);
            str_appends(out, "\n");
        }
    }

    /* the original */
    if (whole)
        str_printf(out, "\n--%s\nContent-Description: %s\n"
                        "Content-Type: message/rfc822\n\n", boundary.s,
                   bn->kind == BOUNCE_FAILED ? "Undelivered Message" : "Message");
    else
        str_printf(out, "\n--%s\nContent-Description: %s\n"
                        "Content-Type: text/rfc822-headers\n\n", boundary.s,
                   bn->kind == BOUNCE_FAILED ? "Undelivered Message Headers"
                                              : "Message Headers");
    str_append(out, orig_text, olen);
    if (olen > 0 && orig_text[olen - 1] != '\n')
        str_appendc(out, '\n');
    str_printf(out, "\n--%s--\n", boundary.s);
    str_free(&boundary);
}

struct grab {
    struct str *buf;
    size_t max;
    bool headers_only;
};

/* Collects content: the header block (to its empty line) or everything, at most
 * max bytes. */
static int grab(void *arg, const char *data, size_t len)
{
    struct grab *g = arg;
    size_t start = g->buf->len;

    if (g->headers_only && start == 0 && len > 0 && data[0] == '\n')
        return 1;
    if (len > g->max - start)
        len = g->max - start;
    str_append(g->buf, data, len);
    if (g->headers_only) {
        /* the block ends at the first empty line, maybe across chunks */
        for (size_t i = start > 0 ? start - 1 : 0; i + 1 < g->buf->len; i++) {
            if (g->buf->s[i] == '\n' && g->buf->s[i + 1] == '\n') {
                str_truncate(g->buf, i + 1);
                return 1;
            }
        }
    }
    return g->buf->len >= g->max ? 1 : 0;
}

/* Keeps only whole lines of printable text (and tabs) of the header block. */
static void headers_clean(struct str *h)
{
    struct str out = STR_INIT;

    while (h->len > 0 && h->s[h->len - 1] != '\n')
        h->len--;
    for (size_t i = 0; i < h->len; i++) {
        unsigned char c = (unsigned char)h->s[i];

        str_appendc(&out, c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7f) ? (char)c : '?');
    }
    str_free(h);
    *h = out;
}

/* NUL bytes would end the text early for readers of the notice. */
static void content_clean(struct str *c)
{
    for (size_t i = 0; i < c->len; i++)
        if (c->s[i] == '\0')
            c->s[i] = '?';
}

static void qualify(const struct conf *conf, const char *addr, struct str *out)
{
    str_sets(out, addr);
    if (addr[0] != '\0' && strrchr(addr, '@') == NULL) {
        str_appendc(out, '@');
        str_appends(out, conf_str(conf, CONF_myorigin));
    }
}

void bounce_double_sender(const struct conf *conf, struct str *out)
{
    qualify(conf, conf_str(conf, CONF_double_bounce_sender), out);
}

enum bounce_route bounce_route(const struct queue_file *orig, const struct conf *conf,
                               struct str *sender, struct str *to)
{
    struct str dbl = STR_INIT;
    enum bounce_route rt;

    bounce_double_sender(conf, &dbl);
    str_clear(sender);
    str_clear(to);
    if (orig->sender != NULL && orig->sender[0] != '\0') {
        if (dbl.len > 0 && strcasecmp(orig->sender, dbl.s) == 0) {
            rt = BOUNCE_DROP;
        } else {
            str_sets(sender, "");
            str_sets(to, orig->sender);
            rt = BOUNCE_TO_SENDER;
        }
    } else {
        str_sets(sender, dbl.s ? dbl.s : "");
        str_sets(to, conf_str(conf, CONF_bounce_notice_recipient));
        rt = to->len > 0 ? BOUNCE_TO_POSTMASTER : BOUNCE_DROP;
    }
    str_free(&dbl);
    return rt;
}

int bounce_notice_create(const char *qdir, struct queue_file *orig,
                         const struct bounce_notice *bn, const struct bounce_rcpt *r,
                         size_t n, const struct conf *conf, char id_out[QUEUE_ID_SIZE],
                         struct str *err)
{
    struct str text = STR_INIT, msg = STR_INIT;
    struct grab g = { &text, 0, true };
    struct queue_writer *qw;
    long long limit = conf_size(conf, CONF_bounce_size_limit);
    bool whole = false;
    int ret = -1;

    if (bn->nrcpts == 0 || n == 0) {
        str_sets(err, "a notice without recipients");
        return -1;
    }
    g.max = limit > 0 && limit < BOUNCE_RETURN_MAX ? (size_t)limit : BOUNCE_RETURN_MAX;
    if (bn->full && orig->content_size <= g.max) {
        whole = true;
        g.headers_only = false;
        g.max = orig->content_size > 0 ? orig->content_size : 1;
    }
    if (queue_file_content(orig, grab, &g) < 0) {
        str_sets(err, "cannot read the original message");
        goto out;
    }
    if (whole)
        content_clean(&text);
    else
        headers_clean(&text);
    qw = qw_create(qdir, id_out, err);
    if (qw == NULL)
        goto out;
    bounce_format(&msg, id_out, orig, bn, r, n, conf, text.s ? text.s : "", text.len, whole,
                  time(NULL));
    if (qw_sender(qw, bn->sender) < 0 || qw_attr(qw, "bounce_of", orig->id) < 0)
        goto write_failed;
    for (size_t i = 0; i < bn->nrcpts; i++)
        if (qw_recipient(qw, bn->rcpts[i], bn->to, NULL) < 0)
            goto write_failed;
    if (qw_content(qw, msg.s, msg.len) < 0)
        goto write_failed;
    if (qw_commit(qw, "incoming", err) < 0)
        goto out;
    ret = 0;
    goto out;
write_failed:
    str_sets(err, "cannot write the notice");
    qw_abort(qw);
out:
    str_free(&text);
    str_free(&msg);
    return ret;
}

