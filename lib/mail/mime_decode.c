/* Content-Transfer-Encoding decoding (RFC 2045 6.7, 6.8): quoted-printable and base64,
 * streaming (any pieces, any line lengths, constant state) with a bound on the
 * output.  Broken input is decoded the forgiving way RFC 2045 suggests: base64 ignores
 * bytes outside its alphabet and stops at "="; a quoted-printable "=" not followed by
 * two hex digits or a line end is kept as it is; white space at the end of a line is
 * dropped (6.7 rule 3).  Line ends come out as they went in ("\r\n" or "\n"). */
#include <string.h>

#include "mime.h"
#include "mime_int.h"
#include "base64.h"

enum { Q_TEXT, Q_CR, Q_EQ, Q_EQHEX, Q_EQWS, Q_EQCR };

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

void mime_decoder_init(struct mime_decoder *d, enum mime_encoding enc, size_t max)
{
    memset(d, 0, sizeof(*d));
    d->enc = enc;
    d->max = max == 0 ? MIME_DECODE_MAX : max;
}

/* Output through a small buffer, so that str_append is not called per byte. */
struct obuf {
    struct mime_decoder *d;
    struct str *out;
    size_t n;
    char b[4096];
};

static void oflush(struct obuf *o)
{
    size_t n = o->n;

    if (o->d->written + n > o->d->max) {
        n = o->d->max - o->d->written;
        o->d->truncated = true;
    }
    str_append(o->out, o->b, n);
    o->d->written += n;
    o->n = 0;
}

static void oput(struct obuf *o, char c)
{
    if (o->n == sizeof(o->b))
        oflush(o);
    o->b[o->n++] = c;
}

static void oputs(struct obuf *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        oput(o, s[i]);
}

static void b64_update(struct mime_decoder *d, const unsigned char *s, size_t len,
                       struct obuf *o)
{
    for (size_t i = 0; i < len && !d->b64_end; i++) {
        int v;
        if (s[i] == '=') {
            d->b64_end = true;
            break;
        }
        if ((v = base64_value(s[i], '/')) < 0)
            continue;
        d->bits = ((d->bits << 6) | (unsigned)v) & 0xffffu;
        d->nbits += 6;
        if (d->nbits >= 8) {
            d->nbits -= 8;
            oput(o, (char)((d->bits >> d->nbits) & 0xff));
        }
    }
}

static void qp_ws_flush(struct mime_decoder *d, struct obuf *o)
{
    oputs(o, d->ws, d->nws);
    d->nws = 0;
}

static void qp_byte(struct mime_decoder *d, char c, struct obuf *o)
{
    int h;

    for (;;) {
        switch (d->qstate) {
        case Q_TEXT:
            if (c == ' ' || c == '\t') {
                if (d->nws == sizeof(d->ws))
                    qp_ws_flush(d, o);
                d->ws[d->nws++] = c;
            } else if (c == '\r') {
                d->qstate = Q_CR;
            } else if (c == '\n') {
                d->nws = 0;
                oput(o, '\n');
            } else if (c == '=') {
                qp_ws_flush(d, o);
                d->qstate = Q_EQ;
            } else {
                qp_ws_flush(d, o);
                oput(o, c);
            }
            return;
        case Q_CR:
            d->qstate = Q_TEXT;
            if (c == '\n') {
                d->nws = 0;
                oputs(o, "\r\n", 2);
                return;
            }
            qp_ws_flush(d, o);
            oput(o, '\r');
            continue;                   /* c again, as text */
        case Q_EQ:
            if (hexval((unsigned char)c) >= 0) {
                d->qhex = c;
                d->qstate = Q_EQHEX;
            } else if (c == ' ' || c == '\t') {
                d->ws[d->nws++] = c;    /* nws is 0 after "=" */
                d->qstate = Q_EQWS;
            } else if (c == '\r') {
                d->qstate = Q_EQCR;
            } else if (c == '\n') {
                d->qstate = Q_TEXT;     /* soft line break */
            } else {
                oput(o, '=');
                d->qstate = Q_TEXT;
                continue;
            }
            return;
        case Q_EQHEX:
            d->qstate = Q_TEXT;
            if ((h = hexval((unsigned char)c)) >= 0) {
                oput(o, (char)(hexval((unsigned char)d->qhex) * 16 + h));
                return;
            }
            oput(o, '=');
            oput(o, d->qhex);
            continue;
        case Q_EQWS:
            if (c == ' ' || c == '\t') {
                if (d->nws == sizeof(d->ws)) {
                    oput(o, '=');
                    qp_ws_flush(d, o);
                    d->qstate = Q_TEXT;
                    continue;
                }
                d->ws[d->nws++] = c;
                return;
            }
            if (c == '\r') {
                d->qstate = Q_EQCR;
                return;
            }
            if (c == '\n') {
                d->nws = 0;
                d->qstate = Q_TEXT;
                return;
            }
            oput(o, '=');
            qp_ws_flush(d, o);
            d->qstate = Q_TEXT;
            continue;
        case Q_EQCR:
            d->nws = 0;
            d->qstate = Q_TEXT;
            if (c == '\n')
                return;                 /* soft line break */
            oputs(o, "=\r", 2);
            continue;
        }
        return;
    }
}

void mime_decoder_update(struct mime_decoder *d, const char *in, size_t len,
                         struct str *out)
{
    struct obuf o;

    o.d = d;
    o.out = out;
    o.n = 0;
    if (d->truncated)
        return;
    switch (d->enc) {
    case MIME_ENC_BASE64:
        b64_update(d, (const unsigned char *)in, len, &o);
        break;
    case MIME_ENC_QP:
        for (size_t i = 0; i < len; i++)
            qp_byte(d, in[i], &o);
        break;
    default:
        /* identity encodings (and unknown ones: callers check first) */
        if (d->written + len > d->max) {
            len = d->max - d->written;
            d->truncated = true;
        }
        str_append(out, in, len);
        d->written += len;
        return;
    }
    oflush(&o);
}

bool mime_decoder_finish(struct mime_decoder *d, struct str *out)
{
    struct obuf o;

    o.d = d;
    o.out = out;
    o.n = 0;
    if (d->enc == MIME_ENC_QP && !d->truncated) {
        /* the end of the data is a line end: trailing white space goes */
        if (d->qstate == Q_EQHEX) {
            oput(&o, '=');
            oput(&o, d->qhex);
        } else if (d->qstate == Q_CR) {
            oput(&o, '\r');
        }
        d->nws = 0;
        d->qstate = Q_TEXT;
        oflush(&o);
    }
    return d->truncated;
}

int mime_decode(enum mime_encoding enc, const char *in, size_t len, struct str *out,
                size_t max)
{
    struct mime_decoder d;

    mime_decoder_init(&d, enc, max);
    mime_decoder_update(&d, in, len, out);
    return mime_decoder_finish(&d, out) ? 1 : 0;
}

int mime_part_decode(const struct mime_msg *m, const struct mime_part *p,
                     struct str *out, size_t max)
{
    if (p->encoding == MIME_ENC_UNKNOWN)
        return -1;
    return mime_decode(p->encoding, m->buf + p->body_off, p->end - p->body_off, out, max);
}

int mime_part_text(const struct mime_msg *m, const struct mime_part *p,
                   struct str *out, size_t max)
{
    struct str raw = STR_INIT;
    const struct mime_param *cs;
    int r;

    if (max == 0)
        max = MIME_DECODE_MAX;
    if (p->encoding == MIME_ENC_UNKNOWN)
        return -1;
    if (strcmp(p->type, "text") != 0)
        return mime_part_decode(m, p, out, max);
    r = mime_part_decode(m, p, &raw, max);
    cs = mime_param_find(p->params, p->nparams, "charset");
    (void)mime_charset_to_utf8(cs != NULL ? cs->value : NULL, raw.s, raw.len, out, max);
    str_free(&raw);
    return r;
}
