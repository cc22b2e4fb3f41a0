/* libFuzzer harness for the MIME library (lib/mail/mime_*.c): arbitrary bytes as a
 * message.  Build and run: make fuzz (build/fuzz/fuzz_mime), make fuzz-smoke-fuzz_mime.
 *
 * Checked beyond "no crash":
 *   - every part lies within its parent and the buffer, in order; the root's sizes add
 *     up to the message with bare "\n" counted as "\r\n"; depth and part count bounded;
 *   - BODYSTRUCTURE, BODY and ENVELOPE are well-formed IMAP lists (balanced, strings
 *     and literals intact, no CR, LF or NUL outside a literal);
 *   - BODY[n] and BODY[n.MIME] of every part have the sizes the tree gives;
 *   - the walk hands over lines of at most MIME_WALK_LINE_MAX bytes;
 *   - RFC 2047 decoding of the input gives valid UTF-8;
 *   - quoted-printable and base64 decoding give the same output in two pieces as at once;
 *   - a section-spec that parses formats to one that parses to the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned c = s[i], len, cp, k;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            len = 2, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4, cp = c & 0x07;
        else
            return false;
        if (n - i < len)
            return false;
        for (k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        i += len;
    }
    return true;
}

/* An IMAP list as the functions write it: one parenthesised value or NIL. */
static void imap_list_ok(const char *s, size_t n)
{
    size_t i = 0;
    int depth = 0;

    if (n == 3 && memcmp(s, "NIL", 3) == 0)
        return;
    while (i < n) {
        char c = s[i];
        if (c == '(') {
            depth++;
            i++;
        } else if (c == ')') {
            if (--depth < 0)
                abort();
            i++;
        } else if (c == '"') {
            for (i++; i < n && s[i] != '"'; i++) {
                if (s[i] == '\\')
                    i++;
                if (i >= n || s[i] == '\r' || s[i] == '\n' || s[i] == '\0' ||
                    (unsigned char)s[i] >= 0x80)
                    abort();
            }
            if (i >= n)
                abort();
            i++;
        } else if (c == '{') {
            size_t len = 0;
            for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
                len = len * 10 + (size_t)(s[i] - '0');
            if (i + 3 > n || s[i] != '}' || s[i + 1] != '\r' || s[i + 2] != '\n')
                abort();
            i += 3;
            if (n - i < len || memchr(s + i, '\0', len) != NULL)
                abort();
            i += len;
        } else if (c == ' ' || (c >= '0' && c <= '9') || c == 'N' || c == 'I' || c == 'L') {
            i++;
        } else {
            abort();
        }
    }
    if (depth != 0)
        abort();
}

/* A line is at most MIME_WALK_LINE_MAX bytes; its raw bytes, when given, lie in the
 * message. */
static int on_line(void *arg, const struct mime_part *p, const char *line, size_t len,
                   const char *raw, size_t raw_len)
{
    const struct mime_msg *m = arg;
    uintptr_t b = (uintptr_t)m->buf, r = (uintptr_t)raw;

    (void)p;
    (void)line;
    if (len > MIME_WALK_LINE_MAX)
        abort();
    if (raw == NULL ? raw_len != 0 : r < b || r - b > m->len || raw_len > m->len - (r - b))
        abort();
    return 0;
}

static void check_tree(const struct mime_msg *m)
{
    size_t n = 0, lf = 0;

    for (size_t i = 0; i < m->len; i++)
        if (m->buf[i] == '\n' && (i == 0 || m->buf[i - 1] != '\r'))
            lf++;
    if (m->root->header_size + m->root->body_size != m->len + lf)
        abort();
    for (const struct mime_part *p = m->root; p != NULL; p = mime_part_next(p)) {
        n++;
        if (p->off > p->body_off || p->body_off > p->end || p->end > m->len)
            abort();
        if (p->body_size < p->end - p->body_off || p->header_size < p->body_off - p->off)
            abort();
        if (p->depth > MIME_DEPTH_MAX + 1)
            abort();
        if (p->parent != NULL && (p->off < p->parent->body_off || p->end > p->parent->end))
            abort();
        if (p->next != NULL && p->next->off < p->end)
            abort();
    }
    if (n != m->nparts || n > MIME_PARTS_MAX + 1)
        abort();
}

/* BODY[n] and BODY[n.MIME] of each part, by its number. */
static void check_sections(const struct mime_msg *m)
{
    struct str out = STR_INIT;
    unsigned nums[MIME_DEPTH_MAX + 2];
    size_t k = 0;

    for (const struct mime_part *p = m->root; p != NULL && k++ < 200; p = mime_part_next(p)) {
        struct mime_section sec;
        const struct mime_part *q = p;
        size_t nn = 0;
        /* the number of p: indexes up the tree, an encapsulated message adding none */
        memset(&sec, 0, sizeof(sec));
        while (q->parent != NULL && nn < MIME_DEPTH_MAX + 2) {
            const struct mime_part *up = q->parent;
            if (mime_part_is_multipart(up))
                nums[nn++] = q->index;
            else if (up->parent == NULL || !mime_part_is_multipart(up->parent))
                nums[nn++] = 1;     /* a message/rfc822 entity's body is its part 1 */
            q = up;
        }
        if (p->parent == NULL || !mime_part_is_multipart(p->parent))
            continue;               /* reached only through the rule for part 1 */
        for (size_t i = 0; i < nn; i++)
            sec.nums[i] = nums[nn - 1 - i];
        sec.nnums = nn;
        if (mime_part_lookup(m, sec.nums, sec.nnums) != p)
            abort();
        str_clear(&out);
        if (mime_section_fetch(m, &sec, 0, &out) != 0 || out.len != p->body_size)
            abort();
        sec.text = MIME_SECT_MIME;
        str_clear(&out);
        if (mime_section_fetch(m, &sec, 0, &out) != 0 || out.len != p->header_size)
            abort();
    }
    str_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct mime_walk_ops ops = { NULL, on_line };
    struct mime_msg m;
    struct str s = STR_INIT, a = STR_INIT, b = STR_INIT;

    mime_parse(&m, buf, size);
    check_tree(&m);
    mime_imap_bodystructure(&m, m.root, true, &s);
    imap_list_ok(s.s, s.len);
    str_clear(&s);
    mime_imap_bodystructure(&m, m.root, false, &s);
    imap_list_ok(s.s, s.len);
    str_clear(&s);
    mime_imap_envelope(&m, m.root, &s);
    imap_list_ok(s.s, s.len);
    check_sections(&m);
    if (mime_walk(&m, &ops, size > 0 && (data[0] & 1) ? MIME_WALK_DECODE_ALL : 0, &m) != 0)
        abort();
    mime_free(&m);

    if (size < 4096) {
        str_clear(&s);
        mime_header_decode(buf, size, &s);
        if (!utf8_ok((const unsigned char *)s.s, s.len))
            abort();
    }
    for (int e = 0; e < 2; e++) {
        enum mime_encoding enc = e ? MIME_ENC_BASE64 : MIME_ENC_QP;
        struct mime_decoder d;
        size_t cut = size > 0 ? data[0] % (size + 1) : 0;
        str_clear(&a);
        str_clear(&b);
        (void)mime_decode(enc, buf, size, &a, 0);
        mime_decoder_init(&d, enc, 0);
        mime_decoder_update(&d, buf, cut, &b);
        mime_decoder_update(&d, buf + cut, size - cut, &b);
        (void)mime_decoder_finish(&d, &b);
        if (a.len != b.len || memcmp(a.s, b.s, a.len) != 0)
            abort();
    }
    if (size < 1024) {
        struct mime_section sec, sec2;
        if (mime_section_parse(buf, size, &sec) == 0) {
            str_clear(&a);
            mime_section_format(&sec, &a);
            if (mime_section_parse(a.s, a.len, &sec2) != 0)
                abort();
            str_clear(&b);
            mime_section_format(&sec2, &b);
            if (a.len != b.len || memcmp(a.s, b.s, a.len) != 0)
                abort();
            mime_section_free(&sec2);
            mime_section_free(&sec);
        }
    }
    str_free(&s);
    str_free(&a);
    str_free(&b);
    return 0;
}
