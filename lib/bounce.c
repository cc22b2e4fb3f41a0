/* Non-delivery notices (RFC 3464 delivery status notifications) written as new queue
 * files.  The original message's envelope and headers come from the queue (first
 * written from network input): they are copied only as sanitised text, and only
 * up to bounce_size_limit bytes of headers. */
#include "bounce.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "str.h"

#define BOUNCE_TEXT_MAX 500         /* longest diagnostic text copied */

/* Appends s with anything but printable ASCII made '?', at most max bytes. */
static void append_clean(struct str *out, const char *s, size_t max)
{
    for (size_t i = 0; s != NULL && s[i] != '\0' && i < max; i++) {
        unsigned char c = (unsigned char)s[i];

        str_appendc(out, c >= 0x20 && c < 0x7f ? (char)c : '?');
    }
}

static void append_date(struct str *out, time_t t)
{
    char buf[64];
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL
        || strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
        snprintf(buf, sizeof(buf), "Thu, 01 Jan 1970 00:00:00 +0000");
    str_appends(out, buf);
}

static void append_addr(struct str *out, const char *addr)
{
    struct str q = STR_INIT;

    addr_quote(addr, &q);
    append_clean(out, q.s ? q.s : "", ADDR_PATH_MAX * 2);
    str_free(&q);
}

void bounce_format(struct str *out, const char *id, const struct queue_file *orig,
                   const struct bounce_rcpt *r, size_t n, const struct conf *conf,
                   const char *headers, size_t hlen, time_t now)
{
    const char *host = conf_str(conf, "myhostname");
    const char *name = conf_str(conf, "mail_name");
    struct str boundary = STR_INIT;

    str_printf(&boundary, "%s/", id);
    append_clean(&boundary, host, 200);

    str_appends(out, "From: MAILER-DAEMON@");
    append_clean(out, host, 255);
    str_appends(out, " (Mail Delivery System)\nTo: <");
    append_addr(out, orig->sender);
    str_appends(out, ">\nSubject: Undelivered Mail Returned to Sender\nDate: ");
    append_date(out, now);
    str_printf(out, "\nMessage-ID: <%s@", id);
    append_clean(out, host, 255);
    str_appends(out, ">\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n"
                     "Content-Type: multipart/report; report-type=delivery-status;\n"
                     "\tboundary=\"");
    str_append(out, boundary.s, boundary.len);
    str_appends(out, "\"\nContent-Transfer-Encoding: 7bit\n\n"
                     "This is a MIME-encapsulated message.\n\n");

    /* the part for people */
    str_printf(out, "--%s\nContent-Description: Notification\n"
                    "Content-Type: text/plain; charset=us-ascii\n\n", boundary.s);
    str_appends(out, "This is the ");
    append_clean(out, name, 100);
    str_appends(out, " mail system at host ");
    append_clean(out, host, 255);
    str_appends(out, ".\n\n"
                     "Your message could not be delivered to one or more of its\n"
                     "recipients, and no further attempts will be made for them.\n"
                     "Each failed address is listed below with the reason given.\n"
                     "The headers of your message follow at the end.\n\n"
                     "If you need help, write to the postmaster of this host and\n"
                     "include this notice.\n\n");
    for (size_t i = 0; i < n; i++) {
        str_appendc(out, '<');
        append_addr(out, r[i].addr);
        str_appends(out, ">: ");
        append_clean(out, r[i].text, BOUNCE_TEXT_MAX);
        str_appends(out, "\n\n");
    }

    /* the part for programs */
    str_printf(out, "--%s\nContent-Description: Delivery report\n"
                    "Content-Type: message/delivery-status\n\n", boundary.s);
    str_appends(out, "Reporting-MTA: dns; ");
    append_clean(out, host, 255);
    str_printf(out, "\nX-Postern-Queue-ID: %s\n", orig->id);
    str_appends(out, "Arrival-Date: ");
    append_date(out, orig->arrival);
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
        str_appends(out, "Action: failed\nStatus: ");
        append_clean(out, r[i].dsn != NULL ? r[i].dsn : "5.0.0", 15);
        str_appends(out, "\nDiagnostic-Code: smtp; ");
        append_clean(out, r[i].text, BOUNCE_TEXT_MAX);
        str_appends(out, "\n");
    }

    /* the original headers */
    str_printf(out, "\n--%s\nContent-Description: Undelivered Message Headers\n"
                    "Content-Type: text/rfc822-headers\n\n", boundary.s);
    str_append(out, headers, hlen);
    if (hlen > 0 && headers[hlen - 1] != '\n')
        str_appendc(out, '\n');
    str_printf(out, "\n--%s--\n", boundary.s);
    str_free(&boundary);
}

struct header_grab {
    struct str *buf;
    size_t max;
};

/* Collects content until the end of the header block or max bytes. */
static int grab_headers(void *arg, const char *data, size_t len)
{
    struct header_grab *g = arg;
    size_t start = g->buf->len;

    if (start == 0 && len > 0 && data[0] == '\n')
        return 1;
    if (len > g->max - start)
        len = g->max - start;
    str_append(g->buf, data, len);
    /* the block ends at the first empty line, maybe across chunks */
    for (size_t i = start > 0 ? start - 1 : 0; i + 1 < g->buf->len; i++) {
        if (g->buf->s[i] == '\n' && g->buf->s[i + 1] == '\n') {
            str_truncate(g->buf, i + 1);
            return 1;
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

int bounce_create(const char *qdir, struct queue_file *orig, const struct bounce_rcpt *r,
                  size_t n, const struct conf *conf, char id_out[QUEUE_ID_SIZE],
                  struct str *err)
{
    struct str headers = STR_INIT, msg = STR_INIT;
    struct header_grab g = { &headers, 0 };
    struct queue_writer *qw;
    long long limit = conf_size(conf, "bounce_size_limit");
    int ret = -1;

    if (orig->sender == NULL || orig->sender[0] == '\0') {
        log_info("%s: status=bounced, no bounce: null sender (%zu recipient%s)", orig->id,
                 n, n == 1 ? "" : "s");
        return 1;
    }
    g.max = limit > 0 && limit < (1 << 20) ? (size_t)limit : (1u << 20);
    if (queue_file_content(orig, grab_headers, &g) < 0) {
        str_sets(err, "cannot read the original message");
        goto out;
    }
    headers_clean(&headers);
    qw = qw_create(qdir, id_out, err);
    if (qw == NULL)
        goto out;
    bounce_format(&msg, id_out, orig, r, n, conf, headers.s ? headers.s : "", headers.len,
                  time(NULL));
    if (qw_sender(qw, "") < 0 || qw_attr(qw, "bounce_of", orig->id) < 0
        || qw_recipient(qw, orig->sender, NULL, NULL) < 0
        || qw_content(qw, msg.s, msg.len) < 0) {
        str_sets(err, "cannot write the notice");
        qw_abort(qw);
        goto out;
    }
    if (qw_commit(qw, "incoming", err) < 0)
        goto out;
    ret = 0;
out:
    str_free(&headers);
    str_free(&msg);
    return ret;
}
