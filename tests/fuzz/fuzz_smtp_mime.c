/* libFuzzer harness for the SMTP client's 8-bit to 7-bit conversion (smtp/smtp_mime.c):
 * a scan pass, then the conversion pass, as smtp_data_send() runs them.
 * Build and run: make fuzz (build/fuzz/fuzz_smtp_mime), make fuzz-smoke-fuzz_smtp_mime.
 *
 * The first input byte picks the mode and the size of the pieces fed in:
 *   0  the rest is a whole message: fed in pieces or at once, the output is the same;
 *      there are never more 8-bit bytes out than in.
 *   1  the rest is the body of a single-part message under a fixed 7-bit header (the
 *      second byte picks its Content-Transfer-Encoding): with 8-bit bytes, the output
 *      is 7-bit, its lines at most 76 bytes, and it decodes back to the body exactly;
 *      without, it is the input unchanged.
 *   2  the rest is the parts of a multipart/mixed message, separated by NUL bytes (a
 *      part's first byte picks its encoding): each 8-bit part with an identity
 *      encoding comes out as quoted-printable that decodes back to it, with no line
 *      that could be taken for a boundary; every other part comes out unchanged. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "str.h"
#include "../../smtp/smtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PARTS_MAX 64
#define QP_LINE_MAX 76

static int collect(void *arg, const char *data, size_t len)
{
    str_append(arg, data, len);
    return 0;
}

/* Scans then converts msg, feeding piece bytes at a time (0: all at once). */
static size_t convert(const char *msg, size_t len, size_t piece, struct str *out)
{
    struct smtp_mime *scan = smtp_mime_new(NULL, NULL, NULL), *conv;
    size_t parts8;

    str_clear(out);
    for (size_t pos = 0; pos < len;) {
        size_t n = piece == 0 || len - pos < piece ? len - pos : piece;
        if (smtp_mime_feed(scan, msg + pos, n) != 0)
            abort();
        pos += n;
    }
    if (smtp_mime_finish(scan) != 0)
        abort();
    conv = smtp_mime_new(scan, collect, out);
    for (size_t pos = 0; pos < len;) {
        size_t n = piece == 0 || len - pos < piece ? len - pos : piece;
        if (smtp_mime_feed(conv, msg + pos, n) != 0)
            abort();
        pos += n;
    }
    if (smtp_mime_finish(conv) != 0)
        abort();
    parts8 = smtp_mime_parts8(scan);
    smtp_mime_free(conv);
    smtp_mime_free(scan);
    return parts8;
}

static size_t count8(const char *s, size_t len)
{
    size_t n = 0;

    for (size_t i = 0; i < len; i++)
        n += (unsigned char)s[i] >= 0x80;
    return n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Checks that s[0..len) is well-formed quoted-printable as the converter writes it
 * (7-bit, short lines, no trailing white space, no line a MIME reader could take for
 * the boundary, when there is one, even one that only compares the start of lines)
 * and decodes it into out. */
static void qp_decode_check(const char *s, size_t len, const char *boundary,
                            struct str *out)
{
    size_t pos = 0, blen = boundary ? strlen(boundary) : 0;

    str_clear(out);
    while (pos < len) {
        const char *nl = memchr(s + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (s + pos)) : len - pos;
        const char *l = s + pos;
        bool soft = n > 0 && l[n - 1] == '=';
        size_t limit = soft ? n - 1 : n;

        if (n > QP_LINE_MAX)
            abort();
        if (boundary != NULL && n >= 2 + blen && l[0] == '-' && l[1] == '-'
            && memcmp(l + 2, boundary, blen) == 0)
            abort();
        if (n > 0 && (l[n - 1] == ' ' || l[n - 1] == '\t'))
            abort();
        for (size_t i = 0; i < limit; i++) {
            unsigned char c = (unsigned char)l[i];
            if (c == '=') {
                int hi, lo;
                if (i + 2 >= limit)
                    abort();
                hi = hexval(l[i + 1]);
                lo = hexval(l[i + 2]);
                if (hi < 0 || lo < 0)
                    abort();
                str_appendc(out, (char)(hi * 16 + lo));
                i += 2;
            } else if ((c >= 33 && c <= 126) || c == ' ' || c == '\t') {
                str_appendc(out, (char)c);
            } else {
                abort();
            }
        }
        if (nl != NULL && !soft)
            str_appendc(out, '\n');
        if (nl == NULL && soft)
            abort();            /* a soft break needs a line after it */
        pos += n + (nl != NULL);
    }
}

static const char *const encodings[] = { NULL, "7bit", "8bit", "binary", "8BIT",
                                         "base64", "quoted-printable", "x-unknown" };

static bool identity(const char *cte)
{
    return cte == NULL || strcasecmp(cte, "7bit") == 0 || strcasecmp(cte, "8bit") == 0
           || strcasecmp(cte, "binary") == 0;
}

/* Mode 1: one body under a fixed header; sel picks the header. */
static void single_part(unsigned sel, const uint8_t *data, size_t size, size_t piece)
{
    static const char qp_field[] = "Content-Transfer-Encoding: quoted-printable\n";
    struct str msg = STR_INIT, out = STR_INIT, dec = STR_INIT;
    const char *cte = encodings[sel & 7];
    size_t parts8;

    str_appends(&msg, "From: a@example.org\nSubject: test\n");
    if (sel & 8)
        str_appends(&msg, "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n");
    if (cte != NULL)
        str_printf(&msg, "Content-Transfer-Encoding: %s\n", cte);
    str_appendc(&msg, '\n');
    str_append(&msg, data, size);
    parts8 = convert(msg.s, msg.len, piece, &out);
    if (parts8 != (count8((const char *)data, size) > 0))
        abort();
    if (parts8 == 0 || !identity(cte)) {
        if (out.len != msg.len || memcmp(out.s, msg.s, msg.len) != 0)
            abort();
    } else {
        const char *body = strstr(out.s, "\n\n"), *f;
        if (body == NULL || count8(out.s, out.len) != 0)
            abort();
        body += 2;
        /* one Content-Transfer-Encoding field, quoted-printable; a MIME-Version */
        f = memmem(out.s, (size_t)(body - out.s), qp_field, sizeof(qp_field) - 1);
        if (f == NULL || memmem(out.s, (size_t)(body - out.s), "Content-Transfer-Encoding",
                                25) != f
            || memmem(f + 1, (size_t)(body - f - 1), "Content-Transfer-Encoding", 25) != NULL
            || memmem(out.s, (size_t)(body - out.s), "MIME-Version: 1.0\n", 18) == NULL)
            abort();
        qp_decode_check(body, out.len - (size_t)(body - out.s), NULL, &dec);
        if (dec.len != size || memcmp(dec.s, data, size) != 0)
            abort();
    }
    str_free(&msg);
    str_free(&out);
    str_free(&dec);
}

struct part {
    const char *cte;
    struct str body;            /* as placed in the message: ends in '\n' */
};

/* Mode 2: parts of a multipart/mixed message; sel picks the boundary. */
static void multi_part(unsigned sel, const uint8_t *data, size_t size, size_t piece)
{
    static const char *const boundaries[] = { "b1", "=_b1", "simple boundary", "-" };
    const char *boundary = boundaries[sel & 3];
    size_t bl = strlen(boundary);
    struct part parts[PARTS_MAX];
    struct str msg = STR_INIT, out = STR_INIT, dec = STR_INIT;
    size_t np = 0, pos = 0, parts8 = 0, expect8 = 0;

    while (pos < size && np < PARTS_MAX) {
        const uint8_t *nul = memchr(data + pos, '\0', size - pos);
        size_t n = nul ? (size_t)(nul - (data + pos)) : size - pos;
        struct part *p = &parts[np++];

        p->cte = n > 0 ? encodings[data[pos] & 7] : NULL;
        str_init(&p->body);
        /* a body line that would end the part is spoilt: its first '-' becomes 'x' */
        for (size_t i = n > 0 ? 1 : 0; i < n;) {
            const uint8_t *l = data + pos + i;
            const uint8_t *nl = memchr(l, '\n', n - i);
            size_t ln = nl ? (size_t)(nl - l) + 1 : n - i;
            size_t at = p->body.len;

            str_append(&p->body, l, ln);
            if (ln >= 2 + bl && l[0] == '-' && l[1] == '-' && memcmp(l + 2, boundary, bl) == 0)
                p->body.s[at] = 'x';
            i += ln;
        }
        if (p->body.len == 0 || p->body.s[p->body.len - 1] != '\n')
            str_appendc(&p->body, '\n');
        if (count8(p->body.s, p->body.len) > 0) {
            parts8++;
            if (identity(p->cte))
                expect8++;
        }
        pos += n + 1;
    }
    str_printf(&msg, "From: a@example.org\nMIME-Version: 1.0\n"
                     "Content-Type: multipart/mixed; boundary=\"%s\"\n\npreamble\n", boundary);
    for (size_t i = 0; i < np; i++) {
        str_printf(&msg, "--%s\nContent-Type: text/plain\n", boundary);
        if (parts[i].cte != NULL)
            str_printf(&msg, "Content-Transfer-Encoding: %s\n", parts[i].cte);
        str_appendc(&msg, '\n');
        str_append(&msg, parts[i].body.s, parts[i].body.len);
    }
    str_printf(&msg, "--%s--\nepilogue\n", boundary);

    if (convert(msg.s, msg.len, piece, &out) != parts8)
        abort();
    if (expect8 == parts8 && count8(out.s, out.len) != 0)
        abort();
    /* walk the output part by part */
    {
        char open[32], close[32];
        const char *p = out.s, *end = out.s + out.len;
        size_t i = 0;

        snprintf(open, sizeof(open), "\n--%s\n", boundary);
        snprintf(close, sizeof(close), "\n--%s--\n", boundary);
        p = strstr(p, open);
        if (p == NULL && np > 0)
            abort();
        while (i < np) {
            const char *hdr = p + strlen(open), *body, *next;
            bool qp;

            body = strstr(hdr, "\n\n");
            if (body == NULL)
                abort();
            body += 2;
            next = i + 1 < np ? strstr(body - 1, open) : strstr(body - 1, close);
            if (next == NULL || next > end)
                abort();
            qp = count8(parts[i].body.s, parts[i].body.len) > 0 && identity(parts[i].cte);
            if (qp) {
                size_t blen = (size_t)(next + 1 - body);
                if (memmem(hdr, (size_t)(body - hdr),
                           "Content-Transfer-Encoding: quoted-printable\n", 44) == NULL)
                    abort();
                qp_decode_check(body, blen, boundary, &dec);
                if (dec.len != parts[i].body.len
                    || memcmp(dec.s, parts[i].body.s, dec.len) != 0)
                    abort();
            } else {
                if ((size_t)(next + 1 - body) != parts[i].body.len
                    || memcmp(body, parts[i].body.s, parts[i].body.len) != 0)
                    abort();
            }
            p = next;
            i++;
        }
    }
    for (size_t i = 0; i < np; i++)
        str_free(&parts[i].body);
    str_free(&msg);
    str_free(&out);
    str_free(&dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t pieces[] = { 0, 1, 2, 3, 7, 64, 1000, 8191, 8192, 8193 };
    struct str a = STR_INIT, b = STR_INIT;
    size_t piece;

    if (size == 0)
        return 0;
    piece = pieces[(data[0] >> 2) % (sizeof(pieces) / sizeof(pieces[0]))];
    switch (data[0] & 3) {
    case 0:
    case 3:
        if (convert((const char *)data + 1, size - 1, piece, &a)
            != convert((const char *)data + 1, size - 1, 0, &b))
            abort();
        if (a.len != b.len || memcmp(a.s, b.s, a.len) != 0)
            abort();
        if (count8(a.s, a.len) > count8((const char *)data + 1, size - 1))
            abort();
        break;
    case 1:
        if (size >= 2)
            single_part(data[1], data + 2, size - 2, piece);
        break;
    case 2:
        if (size >= 2)
            multi_part(data[1], data + 2, size - 2, piece);
        break;
    }
    str_free(&a);
    str_free(&b);
    return 0;
}
