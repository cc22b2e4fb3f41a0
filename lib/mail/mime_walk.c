/* A walk over a MIME tree for content checks (header_checks, mime_header_checks,
 * nested_header_checks, body_checks): every header field of every part with its
 * class, and every body line, decoded where the part is text.  Memory stays bounded
 * whatever the message: bodies are decoded in chunks and lines are handed over in
 * pieces of at most MIME_WALK_LINE_MAX bytes.  A line that is whole in the buffer
 * (no transfer decoding, not a piece) comes with its bytes there, line end
 * included, so that a caller can edit the message. */
#include <stdint.h>
#include <string.h>

#include "mime.h"
#include "mime_int.h"

#define CHUNK 65536

struct walk {
    const struct mime_msg *m;
    const struct mime_walk_ops *ops;
    unsigned flags;
    void *arg;
    bool piece;                 /* the next decoded line is the rest of a cut one */
};

/* Bytes of the line end at buf[k]: "\r\n" 2, "\n" 1, else 0. */
static size_t eol_len(const struct mime_msg *m, size_t k)
{
    if (k < m->len && m->buf[k] == '\n')
        return 1;
    if (k + 1 < m->len && m->buf[k] == '\r' && m->buf[k + 1] == '\n')
        return 2;
    return 0;
}

/* Raw lines of buf[b..e), line ends removed, long lines in pieces. */
static int raw_lines(struct walk *w, const struct mime_part *p, size_t b, size_t e)
{
    const char *s = w->m->buf;
    int r;

    if (w->ops->body_line == NULL)
        return 0;
    while (b < e) {
        const char *nl = memchr(s + b, '\n', e - b);
        size_t k = nl != NULL ? (size_t)(nl - s) : e, n = k - b;
        /* the line with its line end (at e: the one before a boundary) */
        size_t raw_len = nl != NULL ? n + 1 : n + eol_len(w->m, e);
        bool cut = false;
        if (n > 0 && s[b + n - 1] == '\r')
            n--;
        while (n > MIME_WALK_LINE_MAX) {
            if ((r = w->ops->body_line(w->arg, p, s + b, MIME_WALK_LINE_MAX, NULL, 0)) != 0)
                return r;
            b += MIME_WALK_LINE_MAX;
            n -= MIME_WALK_LINE_MAX;
            cut = true;
        }
        if ((r = w->ops->body_line(w->arg, p, s + b, n, cut ? NULL : s + b,
                                   cut ? 0 : raw_len)) != 0)
            return r;
        b = nl != NULL ? k + 1 : e;
    }
    return 0;
}

/* Complete lines of dec (all of it when last) converted and handed over; the rest
 * stays in dec.  raw_end: for an identity transfer encoding, the offset in the
 * buffer just after the bytes dec holds (they are the buffer's); else SIZE_MAX. */
static int decoded_lines(struct walk *w, const struct mime_part *p, const char *charset,
                         struct str *dec, bool last, struct str *utf, size_t raw_end)
{
    size_t b = 0;
    int r = 0;

    if (dec->len == 0)
        return 0;
    while (b < dec->len) {
        const char *nl = memchr(dec->s + b, '\n', dec->len - b);
        size_t n = nl != NULL ? (size_t)(nl - (dec->s + b)) : dec->len - b, next;
        if (nl != NULL && n > 0 && dec->s[b + n - 1] == '\r')
            n--;
        if (nl == NULL && !last && n <= MIME_WALK_LINE_MAX)
            break;                      /* wait for the rest of the line */
        const char *raw = NULL;
        size_t raw_len = 0;
        if (n > MIME_WALK_LINE_MAX) {
            n = MIME_WALK_LINE_MAX;     /* a piece */
            next = b + n;
            w->piece = true;
        } else {
            next = nl != NULL ? (size_t)(nl - dec->s) + 1 : dec->len;
            if (raw_end != SIZE_MAX && !w->piece) {
                size_t off = raw_end - dec->len + b;
                raw = w->m->buf + off;
                raw_len = next - b + (nl != NULL ? 0 : eol_len(w->m, raw_end));
            }
            w->piece = false;
        }
        str_clear(utf);
        if (charset != NULL)
            (void)mime_charset_to_utf8(charset, dec->s + b, n, utf, MIME_WALK_LINE_MAX * 4);
        else
            str_append(utf, dec->s + b, n);
        if ((r = w->ops->body_line(w->arg, p, utf->s, utf->len, raw, raw_len)) != 0)
            break;
        b = next;
    }
    memmove(dec->s, dec->s + b, dec->len - b);
    str_truncate(dec, dec->len - b);
    return r;
}

static int leaf_body(struct walk *w, const struct mime_part *p)
{
    bool text = strcmp(p->type, "text") == 0;
    const struct mime_param *cs;
    struct mime_decoder d;
    struct str dec = STR_INIT, utf = STR_INIT;
    size_t b = p->body_off;
    bool identity;
    int r = 0;

    if (w->ops->body_line == NULL)
        return 0;
    if (p->encoding == MIME_ENC_UNKNOWN ||
        (!text && !(w->flags & MIME_WALK_DECODE_ALL) && strcmp(p->type, "message") != 0))
        return raw_lines(w, p, p->body_off, p->end);
    /* without transfer decoding, dec holds the buffer's bytes up to b */
    identity = p->encoding == MIME_ENC_7BIT || p->encoding == MIME_ENC_8BIT
               || p->encoding == MIME_ENC_BINARY;
    cs = text ? mime_param_find(p->params, p->nparams, "charset") : NULL;
    mime_decoder_init(&d, p->encoding, SIZE_MAX);
    w->piece = false;
    while (b < p->end && r == 0) {
        size_t n = p->end - b > CHUNK ? CHUNK : p->end - b;
        mime_decoder_update(&d, w->m->buf + b, n, &dec);
        b += n;
        r = decoded_lines(w, p, text ? (cs != NULL ? cs->value : "us-ascii") : NULL, &dec,
                          false, &utf, identity ? b : SIZE_MAX);
    }
    if (r == 0) {
        (void)mime_decoder_finish(&d, &dec);
        r = decoded_lines(w, p, text ? (cs != NULL ? cs->value : "us-ascii") : NULL, &dec,
                          true, &utf, identity ? b : SIZE_MAX);
    }
    str_free(&dec);
    str_free(&utf);
    return r;
}

static enum mime_header_kind field_kind(const struct mime_part *p,
                                        const struct mime_field *f)
{
    if ((f->name_len >= 8 && mime_eq_nocase(f->name, 8, "content-")) ||
        mime_field_is(f, "mime-version"))
        return MIME_HDR_MIME;
    if (p->parent == NULL)
        return MIME_HDR_PRIMARY;
    if (strcmp(p->parent->type, "message") == 0)
        return MIME_HDR_NESTED;
    return MIME_HDR_MIME;
}

static int headers(struct walk *w, const struct mime_part *p, struct str *v)
{
    struct mime_field_iter it;
    struct mime_field f;
    size_t n = 0;
    int r;

    if (w->ops->header == NULL)
        return 0;
    mime_field_iter_init(&it, w->m->buf + p->off, p->body_off - p->off);
    while (mime_field_next(&it, &f) == 1) {
        if (++n > MIME_HEADER_FIELDS_MAX)
            break;
        (void)mime_field_value(&f, v, 0);
        if ((r = w->ops->header(w->arg, p, field_kind(p, &f), &f, v->s, v->len)) != 0)
            return r;
    }
    return 0;
}

/* p and what it holds, in message order (recursion bounded by MIME_DEPTH_MAX). */
static int walk_part(struct walk *w, const struct mime_part *p, struct str *v)
{
    const struct mime_msg *m = w->m;
    size_t b;
    int r;

    if ((r = headers(w, p, v)) != 0)
        return r;
    if (p->children == NULL)
        return leaf_body(w, p);
    if (!mime_part_is_multipart(p))
        return walk_part(w, p->children, v);    /* the encapsulated message */
    /* preamble, boundary lines and epilogue as they are, the parts between them */
    b = p->body_off;
    for (const struct mime_part *c = p->children; c != NULL; c = c->next) {
        if (c->off > b && (r = raw_lines(w, p, b, c->off)) != 0)
            return r;
        if ((r = walk_part(w, c, v)) != 0)
            return r;
        b = c->end > b ? c->end : b;
        /* the line end before a boundary belongs to it, not to a line */
        if (b < p->end && m->buf[b] == '\r')
            b++;
        if (b < p->end && m->buf[b] == '\n')
            b++;
    }
    if (p->end > b)
        return raw_lines(w, p, b, p->end);
    return 0;
}

int mime_walk(const struct mime_msg *m, const struct mime_walk_ops *ops, unsigned flags,
              void *arg)
{
    struct walk w = { m, ops, flags, arg, false };
    struct str v = STR_INIT;
    int r = walk_part(&w, m->root, &v);

    str_free(&v);
    return r;
}
