/* smtpd DATA and BDAT: the Received: header, the message content decoded (data_decode)
 * and written to the queue file as it arrives, the size, line length and hop count
 * checks, and the commit that makes the message durable before "250 Ok: queued".
 * Content bytes are untrusted; they are read to the end of the data even when the
 * message is refused, so that the client and server stay in step. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "addr.h"
#include "checks.h"
#include "clock.h"
#include "conf.h"
#include "data_decode.h"
#include "headers.h"
#include "log.h"
#include "proto.h"
#include "smtpd.h"
#include "stream.h"
#include "wakeup.h"
#include "xmalloc.h"

#define BDAT_PIECE 65536
#define BDAT_DIGITS_MAX 18

struct smtpd_data {
    struct smtpd_session *s;
    struct data_decoder dec;
    bool in_header;             /* still in the header section */
    size_t received;            /* Received: fields seen there */
    long long size;             /* bytes of decoded client content */
    long long raw;              /* BDAT: bytes announced so far */
    long long header_size;      /* bytes of the client's header section so far */
    bool too_big;
    bool header_too_big;
    bool write_failed;
    int write_errno;            /* of the first failed write */
    /* content checks (checks.c) and milters (milter_smtpd.c): the message, our
     * Received: field first, kept until its end, then written to the queue file */
    bool keeping;
    bool keep_too_big;
    size_t keep_max;
    struct str keep;
};

void smtpd_data_free(struct smtpd_data *d)
{
    data_decode_free(&d->dec);
    str_free(&d->keep);
    free(d);
}

/* One decoded content line ('\n' at its end): count, check, write. */
static int data_line(void *arg, const char *line, size_t len)
{
    struct smtpd_data *d = arg;
    struct smtpd_session *s = d->s;
    long long limit = s->cf->message_size_limit;

    d->size += (long long)len;
    if (limit > 0 && d->size > limit)
        d->too_big = true;
    if (d->in_header) {
        if (len == 1)
            d->in_header = false;
        else if (len > 9 && strncasecmp(line, "Received:", 9) == 0)
            d->received++;
        d->header_size += (long long)len;
        if (d->header_size > s->cf->header_size_limit)
            d->header_too_big = true;
    }
    if (d->too_big || d->header_too_big || d->dec.too_long || d->write_failed
        || s->txn.qw_failed)
        return 0;
    if (d->keeping) {
        if (d->keep.len + len > d->keep_max)
            d->keep_too_big = true;
        else
            str_append(&d->keep, line, len);
        return 0;
    }
    if (qw_content(s->txn.qw, line, len) < 0) {
        log_warn("%s: queue file write error: %s", s->txn.id, strerror(errno));
        d->write_failed = true;
        d->write_errno = errno;
    }
    return 0;
}

static void received_header(struct smtpd_session *s, struct str *out)
{
    const struct smtpd_txn *t = &s->txn;
    str_printf(out, "Received: from %s ([%s])\n", s->helo.len ? s->helo.s : "unknown",
               s->addr);
    smtpd_tls_received(s, out);
    str_printf(out, "\tby %s (%s) with %s id %s", s->cf->myhostname,
               conf_str(s->cf->conf, CONF_mail_name), smtpd_protocol(s), t->id);
    if (t->rcpt_accepted == 1 && t->first_rcpt.len > 0) {
        str_appends(out, "\n\tfor <");
        addr_quote(t->first_rcpt.s, out);
        str_appends(out, ">");
    }
    str_appends(out, "; ");
    header_date(out, time(NULL));
    str_appendc(out, '\n');
}

/* Starts the content: decoder and Received: header.  NULL when out of memory. */
static struct smtpd_data *data_begin(struct smtpd_session *s, enum data_mode mode)
{
    struct smtpd_data *d = xcalloc(1, sizeof(*d));
    struct str hdr = STR_INIT;

    d->s = s;
    d->in_header = true;
    d->keeping = smtpd_checks_enabled() || smtpd_milter_active(s);
    d->keep_max = smtpd_checks_max(s->cf->message_size_limit);
    if (data_decode_init(&d->dec, mode, s->cf->line_length_limit, data_line, d) < 0) {
        free(d);
        return NULL;
    }
    received_header(s, &hdr);
    if (d->keeping) {
        str_append(&d->keep, hdr.s, hdr.len);
    } else if (!s->txn.qw_failed && qw_content(s->txn.qw, hdr.s, hdr.len) < 0) {
        log_warn("%s: queue file write error: %s", s->txn.id, strerror(errno));
        d->write_failed = true;
        d->write_errno = errno;
    }
    str_free(&hdr);
    return d;
}

/* A failed queue file write: "452 4.3.1" when the file system is full, else 451. */
static void write_error_reply(struct smtpd_session *s, int e)
{
    if (e == ENOSPC || e == EDQUOT) {
        log_warn("%s: reject: queue file system full from [%s]", s->txn.id, s->addr);
        smtpd_reply(s, 452, "4.3.1 Insufficient system storage");
    } else {
        smtpd_reply(s, 451, "4.3.0 Error: queue file write error");
    }
}

/* The content is complete: check it, commit the queue file, reply, end the
 * transaction.  d is freed. */
static void data_end(struct smtpd_session *s, struct smtpd_data *d, const char *cmd)
{
    struct smtpd_txn *t = &s->txn;
    struct str err = STR_INIT;
    int code = 0;
    const char *dsn = NULL;
    char text[400];
    const char *to = NULL;
    /* the message as kept, after the content checks' header edits */
    struct str msg = STR_INIT;
    bool ok = false;

    if (d->keep_too_big) {
        smtpd_reject(s, cmd, NULL, 552, "5.3.4", "Message too large for content checks");
    } else if (d->dec.too_long) {
        smtpd_reject(s, cmd, NULL, 554, "5.6.0", "Message line too long");
    } else if (d->too_big) {
        smtpd_reject(s, cmd, NULL, 552, "5.3.4", "Message size exceeds fixed limit");
    } else if (d->header_too_big) {
        smtpd_reject(s, cmd, NULL, 552, "5.3.4", "Message header too large");
    } else if (s->cf->hopcount_limit > 0 && d->received > (size_t)s->cf->hopcount_limit) {
        smtpd_reject(s, cmd, NULL, 554, "5.4.6", "Too many hops");
    } else if (d->write_failed || t->qw_failed) {
        write_error_reply(s, d->write_errno);
    } else {
        ok = true;
    }
    /* Header and body rules first, then the milters (DESIGN: cheap checks first). */
    if (ok && d->keeping) {
        const char *buf = d->keep.s ? d->keep.s : "";
        if (smtpd_checks_enabled()
            && smtpd_checks_run(s, buf, d->keep.len, &code, &dsn, text, sizeof(text),
                                &msg) != 0) {
            smtpd_reply(s, code, "%s %s", dsn, text);
            ok = false;
        } else if (!smtpd_checks_enabled()) {
            str_append(&msg, buf, d->keep.len);
        } else if (!t->policy.discard && smtpd_checks_envelope(s, cmd) < 0) {
            ok = false;                 /* answered */
        }
    }
    to = t->policy.hold ? "hold" : "incoming";
    if (ok && t->policy.discard) {
        /* an access table or a content check said DISCARD: taken, logged, not queued */
        if (t->policy.why.len > 0)
            log_info("%s: %s; from=<%s> proto=%s helo=<%s>", t->id, t->policy.why.s,
                     t->sender.s, smtpd_protocol(s), s->helo.len ? s->helo.s : "");
        to = NULL;
    } else if (ok && d->keeping && smtpd_milter_active(s)
               && smtpd_milter_message(s, &msg, cmd, &to) < 0) {
        ok = false;                     /* refused by a filter: answered */
    } else if (ok && to == NULL) {
        log_info("%s: from=<%s>, nrcpt=%zu: discarded by a filter", t->id, t->sender.s,
                 t->nrcpt);
    }
    if (ok && to == NULL) {
        smtpd_reply(s, 250, "2.0.0 Ok: queued as %s", t->id);
        s->oks[strcmp(cmd, "DATA") == 0 ? CMD_DATA : CMD_BDAT]++;
    } else if (ok && d->keeping && msg.len > 0 && qw_content(t->qw, msg.s, msg.len) < 0) {
        log_warn("%s: queue file write error: %s", t->id, strerror(errno));
        write_error_reply(s, errno);
    } else if (ok) {
        size_t size = qw_content_size(t->qw);
        struct queue_writer *qw = t->qw;

        t->qw = NULL;                   /* qw_commit frees it either way */
        if (qw_commit(qw, to, &err) < 0) {
            int e = errno;
            log_warn("%s: cannot commit queue file: %s", t->id,
                     err.s ? err.s : "unknown error");
            write_error_reply(s, e);
        } else {
            if (t->policy.hold && t->policy.why.len > 0)
                log_info("%s: %s; from=<%s> proto=%s helo=<%s>", t->id, t->policy.why.s,
                         t->sender.s, smtpd_protocol(s), s->helo.len ? s->helo.s : "");
            log_info("%s: from=<%s>, size=%zu, nrcpt=%zu (queue %s)", t->id,
                     t->sender.s, size, t->nrcpt, strcmp(to, "hold") == 0 ? "hold" : "active");
            smtpd_reply(s, 250, "2.0.0 Ok: queued as %s", t->id);
            s->junk = 0;            /* a client that moves mail is not idling */
            s->oks[strcmp(cmd, "DATA") == 0 ? CMD_DATA : CMD_BDAT]++;
            wakeup_send(PROTO_PATH_QMGR, PROTO_REQ_WAKEUP);
        }
    }
    str_free(&msg);
    if (t->data == d)
        t->data = NULL;
    smtpd_data_free(d);
    str_free(&err);
    smtpd_txn_reset(s);
}

/* Why DATA or BDAT cannot start a message now: the reply text after the code, or
 * NULL when a message may follow. */
static const char *data_refusal(const struct smtpd_session *s, int *code)
{
    const struct smtpd_txn *t = &s->txn;

    *code = 503;
    if (!t->active)
        return "5.5.1 Error: need MAIL command";
    if (t->rcpt_accepted == 0) {
        if (s->counts[CMD_RCPT] > 0) {
            *code = 554;
            return "5.5.1 Error: no valid recipients";
        }
        return "5.5.1 Error: need RCPT command";
    }
    if (t->qw_failed || t->qw == NULL) {
        *code = 451;
        return "4.3.0 Error: queue file write error";
    }
    return NULL;
}

void smtpd_cmd_data(struct smtpd_session *s, char *arg)
{
    struct smtpd_txn *t = &s->txn;
    struct smtpd_data *d;
    const char *why;
    int code;

    if (*arg != '\0') {
        smtpd_reply(s, 501, "5.5.4 Syntax: DATA");
        return;
    }
    if (t->bdat) {
        smtpd_reply(s, 503, "5.5.1 Error: DATA after BDAT");
        return;
    }
    if ((why = data_refusal(s, &code)) != NULL) {
        smtpd_reply(s, code, "%s", why);
        return;
    }
    if (smtpd_milter_data(s, "DATA") < 0) {
        smtpd_txn_reset(s);
        return;
    }
    d = data_begin(s, DATA_MODE_DOT);
    if (d == NULL)
        log_fatal("out of memory");
    t->data = d;
    s->phase_deadline = clock_ms() + s->cf->data_deadline_ms;
    s->phase = "DATA";
    smtpd_reply(s, 354, "End data with <CR><LF>.<CR><LF>");
    while (!d->dec.ended) {
        size_t used;
        int r = smtpd_read_line(s, &s->line, s->cf->line_length_limit);

        if (r <= 0) {
            smtpd_txn_reset(s);         /* aborts the queue file */
            return;
        }
        (void)data_decode(&d->dec, s->line.s, s->line.len, &used);
    }
    data_end(s, d, "DATA");
}

/* Reads n bytes of chunk data into the decoder of d, or throws them away when d is
 * NULL: 0, or -1 when the connection is lost. */
static int bdat_read(struct smtpd_session *s, struct smtpd_data *d, long long n)
{
    char buf[BDAT_PIECE];

    while (n > 0) {
        size_t piece = n > BDAT_PIECE ? BDAT_PIECE : (size_t)n, used;

        if (stream_pending(s->st) < piece && smtpd_flush(s) < 0)
            return -1;
        if (stream_read_full(s->st, buf, piece) < 0) {
            if (errno == ETIMEDOUT)
                return smtpd_read_timed_out(s, s->phase_deadline);
            log_info("lost connection after BDAT from [%s]", s->addr);
            s->done = true;
            return -1;
        }
        if (d != NULL)
            (void)data_decode(&d->dec, buf, piece, &used);
        n -= (long long)piece;
    }
    return 0;
}

/* "BDAT size [LAST]": 0 with *size and *last, or -1. */
static int bdat_args(const char *arg, long long *size, bool *last)
{
    long long n = 0;
    size_t digits = 0;

    while (arg[digits] >= '0' && arg[digits] <= '9') {
        if (digits == BDAT_DIGITS_MAX)
            return -1;
        n = n * 10 + (arg[digits] - '0');
        digits++;
    }
    if (digits == 0)
        return -1;
    arg += digits;
    while (*arg == ' ')
        arg++;
    *last = false;
    if (*arg != '\0') {
        if (!smtpd_word_is(arg, "LAST"))
            return -1;
        arg += 4;
        while (*arg == ' ')
            arg++;
        if (*arg != '\0')
            return -1;
        *last = true;
    }
    *size = n;
    return 0;
}

static void bdat_run(struct smtpd_session *s, char *arg)
{
    struct smtpd_txn *t = &s->txn;
    long long size, limit = s->cf->message_size_limit;
    const char *why;
    bool last;
    int code;

    if (bdat_args(arg, &size, &last) < 0) {
        /* the chunk's length is unknown: the session cannot go on in step */
        smtpd_reply(s, 501, "5.5.4 Syntax: BDAT count [LAST]");
        smtpd_reply(s, 421, "4.5.0 Error: lost synchronization");
        smtpd_flush(s);
        s->done = true;
        return;
    }
    if ((why = data_refusal(s, &code)) != NULL) {
        /* the chunk is read first: its bytes are not commands */
        if (bdat_read(s, NULL, size) < 0)
            return;
        smtpd_reply(s, code, "%s", why);
        return;
    }
    if (!t->bdat && smtpd_milter_data(s, "BDAT") < 0) {
        /* refused by a filter, answered after the chunk (its bytes are not commands) */
        if (bdat_read(s, NULL, size) == 0)
            smtpd_flush(s);
        smtpd_txn_reset(s);
        return;
    }
    if (!t->bdat) {
        t->bdat = true;
        t->data = data_begin(s, DATA_MODE_BDAT);
        if (t->data == NULL)
            log_fatal("out of memory");
    }
    if ((limit > 0 && size > limit - t->data->raw) || size > LLONG_MAX - t->data->raw) {
        if (bdat_read(s, NULL, size) < 0) {
            smtpd_txn_reset(s);
            return;
        }
        smtpd_reject(s, "BDAT", NULL, 552, "5.3.4", "Message size exceeds fixed limit");
        smtpd_txn_reset(s);
        return;
    }
    t->data->raw += size;
    if (bdat_read(s, t->data, size) < 0) {
        smtpd_txn_reset(s);
        return;
    }
    if (!last) {
        smtpd_reply(s, 250, "2.0.0 Ok: %lld bytes", size);
        s->oks[CMD_BDAT]++;
        return;
    }
    (void)data_decode_finish(&t->data->dec);
    data_end(s, t->data, "BDAT");
}

void smtpd_cmd_bdat(struct smtpd_session *s, char *arg)
{
    /* One deadline for the chunks of a message (or one refused chunk): it starts
     * with the first BDAT and ends with the transaction. */
    if (s->phase_deadline == 0) {
        s->phase_deadline = clock_ms() + s->cf->data_deadline_ms;
        s->phase = "BDAT";
        stream_set_deadline(s->st, s->phase_deadline);
    }
    bdat_run(s, arg);
    if (!s->txn.bdat && s->phase_deadline != 0) {
        s->phase_deadline = 0;
        s->phase = NULL;
        stream_set_deadline(s->st, 0);
    }
}
