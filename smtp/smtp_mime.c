/* 8-bit to 7-bit conversion of a message for a server without 8BITMIME (RFC 6152
 * section 3 asks the client to convert or to bounce).  The message is walked line by
 * line as a tree of MIME entities: headers, multipart bodies (boundaries on a stack,
 * bounded depth), message/rfc822 bodies (a nested header), and leaves.  Two passes
 * over the same content: the scan records which leaves hold 8-bit bytes; the
 * conversion then re-encodes exactly those leaves (when their encoding is an identity
 * one: none, 7bit, 8bit, binary) as quoted-printable, replacing their
 * Content-Transfer-Encoding field, and changes a multipart's or message's declared
 * 8bit to 7bit.  8-bit bytes in header fields, preambles and epilogues are left as
 * they are (no encoding can carry them).  A header section too large to hold stops
 * the conversion: the rest goes out unchanged.
 *
 * An encoded line never starts with '-', so that none can be taken for a boundary.
 *
 * The content is untrusted: lines longer than MIME_LINE_MAX are processed in pieces,
 * boundaries and header sizes are bounded, and a malformed structure only means
 * that less is converted. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp.h"
#include "xmalloc.h"

#define MIME_DEPTH_MAX 20
#define MIME_PARTS_MAX 10000
#define MIME_HEADER_MAX (256u * 1024)
#define MIME_LINE_MAX 8192
#define MIME_BOUNDARY_MAX 200
#define MIME_OUT_FLUSH 16384
#define QP_LINE 76

enum mime_state {
    M_HEADER,       /* collecting an entity's header section */
    M_PASS,         /* multipart preamble or epilogue: unchanged */
    M_LEAF,         /* a leaf's body: scanned, or copied, or encoded */
    M_RAW,          /* given up: everything unchanged */
};

struct smtp_mime {
    const struct smtp_mime *ref;    /* the scan (convert mode), NULL in scan mode */
    smtp_mime_out out;
    void *arg;
    int err;

    enum mime_state state;
    bool top;                       /* the header being read is the message's */
    struct str hdr;
    char bound[MIME_DEPTH_MAX][MIME_BOUNDARY_MAX + 1];
    size_t blen[MIME_DEPTH_MAX];
    size_t depth;

    /* leaves */
    unsigned char *has8;            /* scan: per leaf, 1 when it holds 8-bit bytes */
    size_t nparts, cap, parts8;
    size_t leaf;
    bool qp;                        /* the current leaf is being encoded */
    size_t col;
    char pending_ws;

    /* input line assembly */
    struct str line;
    bool cont;                      /* line continues a piece already processed */
    struct str obuf;
};

struct smtp_mime *smtp_mime_new(struct smtp_mime *scanned, smtp_mime_out out, void *arg)
{
    struct smtp_mime *m = xcalloc(1, sizeof(*m));

    m->ref = scanned;
    m->out = out;
    m->arg = arg;
    m->state = M_HEADER;
    m->top = true;
    str_init(&m->hdr);
    str_init(&m->line);
    str_init(&m->obuf);
    return m;
}

void smtp_mime_free(struct smtp_mime *m)
{
    if (m == NULL)
        return;
    str_free(&m->hdr);
    str_free(&m->line);
    str_free(&m->obuf);
    free(m->has8);
    free(m);
}

size_t smtp_mime_parts8(const struct smtp_mime *m)
{
    return m->parts8;
}

/* ---- output ---- */

static void flush_out(struct smtp_mime *m)
{
    if (m->obuf.len > 0 && m->err == 0 && m->out != NULL)
        m->err = m->out(m->arg, m->obuf.s, m->obuf.len);
    str_clear(&m->obuf);
}

static void emit(struct smtp_mime *m, const char *s, size_t len)
{
    if (m->ref == NULL || m->err != 0)
        return;
    str_append(&m->obuf, s, len);
    if (m->obuf.len >= MIME_OUT_FLUSH)
        flush_out(m);
}

static void emits(struct smtp_mime *m, const char *s)
{
    emit(m, s, strlen(s));
}

/* ---- quoted-printable (RFC 2045 6.7) ---- */

static void qp_emit(struct smtp_mime *m, const char *s, size_t w)
{
    if (m->col + w > QP_LINE - 1) {
        emit(m, "=\n", 2);
        m->col = 0;
    }
    emit(m, s, w);
    m->col += w;
}

static void qp_byte(struct smtp_mime *m, unsigned char c, bool literal)
{
    char buf[4];

    /* No encoded line starts with '-': after a soft break the rest of a line could
     * otherwise read as the boundary of an enclosing multipart ("--b"), ending the
     * part early for the recipient's reader. */
    if (literal && c == '-' && (m->col == 0 || m->col + 1 > QP_LINE - 1))
        literal = false;
    if (literal) {
        buf[0] = (char)c;
        qp_emit(m, buf, 1);
    } else {
        snprintf(buf, sizeof(buf), "=%02X", c);
        qp_emit(m, buf, 3);
    }
}

static void qp_flush_ws(struct smtp_mime *m, bool at_eol)
{
    if (m->pending_ws != 0) {
        qp_byte(m, (unsigned char)m->pending_ws, !at_eol);
        m->pending_ws = 0;
    }
}

static void qp_put(struct smtp_mime *m, const char *s, size_t len, bool eol)
{
    size_t n = eol ? len - 1 : len;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        qp_flush_ws(m, false);
        if (c == ' ' || c == '\t')
            m->pending_ws = (char)c;
        else
            qp_byte(m, c, c >= 33 && c <= 126 && c != '=');
    }
    if (eol) {
        qp_flush_ws(m, true);
        emit(m, "\n", 1);
        m->col = 0;
    }
}

/* ---- header sections ---- */

/* The value of the first field called name, unfolded, into out: true when found. */
static bool field_value(const struct str *hdr, const char *name, struct str *out)
{
    size_t nlen = strlen(name), pos = 0;

    str_clear(out);
    while (pos < hdr->len) {
        const char *f = hdr->s + pos;
        size_t end = pos;

        /* the field runs to the next line that does not start with white space */
        do {
            const char *nl = memchr(hdr->s + end, '\n', hdr->len - end);

            end = nl != NULL ? (size_t)(nl - hdr->s) + 1 : hdr->len;
        } while (end < hdr->len && (hdr->s[end] == ' ' || hdr->s[end] == '\t'));
        if (end - pos > nlen && strncasecmp(f, name, nlen) == 0) {
            size_t k = nlen;

            while (pos + k < end && (f[k] == ' ' || f[k] == '\t'))
                k++;
            if (pos + k < end && f[k] == ':') {
                for (k++; pos + k < end; k++)
                    str_appendc(out, f[k] == '\n' || f[k] == '\r' || f[k] == '\t' ? ' ' : f[k]);
                return true;
            }
        }
        pos = end;
    }
    return false;
}

/* Copies the header section, leaving out fields called drop (may be NULL). */
static void header_emit(struct smtp_mime *m, const char *drop)
{
    size_t pos = 0, dlen = drop ? strlen(drop) : 0;

    while (pos < m->hdr.len) {
        const char *f = m->hdr.s + pos;
        size_t end = pos;
        bool skip = false;

        do {
            const char *nl = memchr(m->hdr.s + end, '\n', m->hdr.len - end);

            end = nl != NULL ? (size_t)(nl - m->hdr.s) + 1 : m->hdr.len;
        } while (end < m->hdr.len && (m->hdr.s[end] == ' ' || m->hdr.s[end] == '\t'));
        if (drop != NULL && end - pos > dlen && strncasecmp(f, drop, dlen) == 0) {
            size_t k = dlen;

            while (pos + k < end && (f[k] == ' ' || f[k] == '\t'))
                k++;
            skip = pos + k < end && f[k] == ':';
        }
        if (!skip)
            emit(m, f, end - pos);
        pos = end;
    }
}

static void trim(struct str *s)
{
    size_t a = 0, b = s->len;

    while (a < b && (s->s[a] == ' ' || s->s[a] == '\t'))
        a++;
    while (b > a && (s->s[b - 1] == ' ' || s->s[b - 1] == '\t'))
        b--;
    memmove(s->s, s->s + a, b - a);
    str_truncate(s, b - a);
}

/* "type/subtype" (lower case) and the boundary parameter of a Content-Type value. */
static void content_type(const struct str *v, struct str *type, struct str *boundary)
{
    const char *p = v->s ? v->s : "";

    str_clear(type);
    str_clear(boundary);
    p += strspn(p, " \t");
    while (*p != '\0' && *p != ';' && *p != ' ' && *p != '\t' && *p != '(') {
        str_appendc(type, (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p));
        p++;
    }
    while ((p = strchr(p, ';')) != NULL) {
        p++;
        p += strspn(p, " \t");
        if (strncasecmp(p, "boundary", 8) != 0)
            continue;
        p += 8;
        p += strspn(p, " \t");
        if (*p != '=')
            continue;
        p++;
        p += strspn(p, " \t");
        str_clear(boundary);
        if (*p == '"') {
            for (p++; *p != '\0' && *p != '"'; p++) {
                if (*p == '\\' && p[1] != '\0')
                    p++;
                str_appendc(boundary, *p);
            }
        } else {
            while (*p != '\0' && *p != ';' && *p != ' ' && *p != '\t')
                str_appendc(boundary, *p++);
        }
        break;
    }
}

static bool identity_encoding(const struct str *cte, bool present)
{
    return !present || cte->len == 0 || strcasecmp(cte->s, "7bit") == 0
           || strcasecmp(cte->s, "8bit") == 0 || strcasecmp(cte->s, "binary") == 0;
}

static bool eight_bit_encoding(const struct str *cte, bool present)
{
    return present && (strcasecmp(cte->s, "8bit") == 0 || strcasecmp(cte->s, "binary") == 0);
}

/* The header section is complete (blank is the line that ended it, may be empty). */
static void header_done(struct smtp_mime *m, const char *blank, size_t blen)
{
    struct str ct = STR_INIT, cte = STR_INIT, type = STR_INIT, boundary = STR_INIT;
    struct str mv = STR_INIT;
    bool have_ct = field_value(&m->hdr, "Content-Type", &ct);
    bool have_cte = field_value(&m->hdr, "Content-Transfer-Encoding", &cte);
    bool have_mv = field_value(&m->hdr, "MIME-Version", &mv);
    bool top = m->top;

    trim(&cte);
    if (have_ct)
        content_type(&ct, &type, &boundary);
    m->top = false;
    if (strncmp(type.s ? type.s : "", "multipart/", 10) == 0 && boundary.len > 0
        && boundary.len <= MIME_BOUNDARY_MAX && m->depth < MIME_DEPTH_MAX
        && memchr(boundary.s, '\n', boundary.len) == NULL) {
        memcpy(m->bound[m->depth], boundary.s, boundary.len);
        m->blen[m->depth] = boundary.len;
        m->depth++;
        m->state = M_PASS;
        if (eight_bit_encoding(&cte, have_cte)) {
            header_emit(m, "Content-Transfer-Encoding");
            emits(m, "Content-Transfer-Encoding: 7bit\n");
        } else {
            header_emit(m, NULL);
        }
    } else if (strcmp(type.s ? type.s : "", "message/rfc822") == 0) {
        m->state = M_HEADER;    /* the enclosed message's header follows */
        if (eight_bit_encoding(&cte, have_cte)) {
            header_emit(m, "Content-Transfer-Encoding");
            emits(m, "Content-Transfer-Encoding: 7bit\n");
        } else {
            header_emit(m, NULL);
        }
    } else {
        m->leaf = m->nparts++;
        m->state = M_LEAF;
        m->qp = false;
        m->col = 0;
        m->pending_ws = 0;
        if (m->ref == NULL) {
            if (m->leaf < MIME_PARTS_MAX) {
                if (m->leaf >= m->cap) {
                    m->cap = m->cap ? m->cap * 2 : 16;
                    m->has8 = xreallocarray(m->has8, m->cap, 1);
                }
                m->has8[m->leaf] = 0;
            }
        } else {
            m->qp = m->leaf < MIME_PARTS_MAX && m->leaf < m->ref->nparts
                    && m->ref->has8[m->leaf] && identity_encoding(&cte, have_cte);
        }
        if (m->qp) {
            header_emit(m, "Content-Transfer-Encoding");
            if (top && !have_mv)
                emits(m, "MIME-Version: 1.0\n");
            emits(m, "Content-Transfer-Encoding: quoted-printable\n");
        } else {
            header_emit(m, NULL);
        }
    }
    emit(m, blank, blen);
    str_clear(&m->hdr);
    str_free(&ct);
    str_free(&cte);
    str_free(&type);
    str_free(&boundary);
    str_free(&mv);
}

/* ---- lines ---- */

/* Index of the innermost boundary the line is, or -1; *closing for "--b--". */
static long boundary_match(const struct smtp_mime *m, const char *s, size_t len, bool *closing)
{
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' '
                       || s[len - 1] == '\t'))
        len--;
    if (len < 3 || s[0] != '-' || s[1] != '-')
        return -1;
    for (size_t k = m->depth; k-- > 0;) {
        size_t bl = m->blen[k];

        if (len < 2 + bl || memcmp(s + 2, m->bound[k], bl) != 0)
            continue;
        if (len == 2 + bl) {
            *closing = false;
            return (long)k;
        }
        if (len == 4 + bl && s[2 + bl] == '-' && s[3 + bl] == '-') {
            *closing = true;
            return (long)k;
        }
    }
    return -1;
}

/* Ends the entity in progress before a boundary or at the end. */
static void entity_end(struct smtp_mime *m)
{
    if (m->state == M_HEADER && m->hdr.len > 0) {
        header_emit(m, NULL);
        str_clear(&m->hdr);
    }
    if (m->state == M_LEAF && m->qp)
        qp_flush_ws(m, true);
}

static void segment(struct smtp_mime *m, const char *s, size_t len, bool sol, bool eol)
{
    bool closing;
    long k;

    if (m->state == M_RAW) {
        emit(m, s, len);
        return;
    }
    if (sol && m->depth > 0 && (eol || len < MIME_LINE_MAX)
        && (k = boundary_match(m, s, len, &closing)) >= 0) {
        entity_end(m);
        m->depth = (size_t)k + 1;
        emit(m, s, len);
        if (closing) {
            m->depth = (size_t)k;
            m->state = M_PASS;
        } else {
            m->state = M_HEADER;
        }
        return;
    }
    switch (m->state) {
    case M_HEADER:
        if (sol && eol && (len == 1 || (len == 2 && s[0] == '\r'))) {
            header_done(m, s, len);
            return;
        }
        str_append(&m->hdr, s, len);
        if (m->hdr.len > MIME_HEADER_MAX) {
            emit(m, m->hdr.s, m->hdr.len);
            str_clear(&m->hdr);
            m->state = M_RAW;
        }
        return;
    case M_PASS:
        emit(m, s, len);
        return;
    case M_LEAF:
        if (m->ref == NULL) {
            if (m->leaf < MIME_PARTS_MAX && !m->has8[m->leaf]) {
                for (size_t i = 0; i < len; i++) {
                    if ((unsigned char)s[i] >= 0x80) {
                        m->has8[m->leaf] = 1;
                        m->parts8++;
                        break;
                    }
                }
            }
        } else if (m->qp) {
            qp_put(m, s, len, eol);
        } else {
            emit(m, s, len);
        }
        return;
    case M_RAW:
        break;
    }
}

int smtp_mime_feed(struct smtp_mime *m, const char *data, size_t len)
{
    while (len > 0 && m->err == 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl != NULL ? (size_t)(nl - data) + 1 : len;

        if (m->line.len + take <= MIME_LINE_MAX) {
            str_append(&m->line, data, take);
            if (nl != NULL) {
                segment(m, m->line.s, m->line.len, !m->cont, true);
                str_clear(&m->line);
                m->cont = false;
            }
        } else {
            take = MIME_LINE_MAX - m->line.len;
            str_append(&m->line, data, take);
            segment(m, m->line.s, m->line.len, !m->cont, false);
            str_clear(&m->line);
            m->cont = true;
        }
        data += take;
        len -= take;
    }
    return m->err;
}

int smtp_mime_finish(struct smtp_mime *m)
{
    if (m->line.len > 0)
        segment(m, m->line.s, m->line.len, !m->cont, false);
    str_clear(&m->line);
    entity_end(m);
    flush_out(m);
    return m->err;
}
