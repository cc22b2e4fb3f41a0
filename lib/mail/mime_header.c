/* Header fields of a MIME entity: iteration over a header section, unfolding, lookup
 * by name, and RFC 2047 encoded-word decoding to UTF-8.  Input is untrusted: every
 * scan is bounded by the section, an unfolded value by its caller's maximum, and a
 * broken encoded word is left as it is. */
#include <string.h>

#include "mime.h"
#include "mime_int.h"

#define ENCODED_WORD_MAX 1024

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

void mime_field_iter_init(struct mime_field_iter *it, const char *buf, size_t len)
{
    it->buf = buf;
    it->len = len;
    it->pos = 0;
}

/* End of the line at pos (after its "\n", or len) and its length without line end. */
static size_t line_at(const char *buf, size_t len, size_t pos, size_t *next)
{
    const char *nl = memchr(buf + pos, '\n', len - pos);
    size_t n;

    if (nl == NULL) {
        *next = len;
        return len - pos;
    }
    *next = (size_t)(nl - buf) + 1;
    n = (size_t)(nl - (buf + pos));
    if (n > 0 && buf[pos + n - 1] == '\r')
        n--;
    return n;
}

int mime_field_next(struct mime_field_iter *it, struct mime_field *f)
{
    while (it->pos < it->len) {
        size_t start = it->pos, next, n, i;
        const char *line = it->buf + start;

        n = line_at(it->buf, it->len, start, &next);
        if (n == 0) {                   /* the empty line ends the section */
            it->pos = it->len;
            return 0;
        }
        it->pos = next;
        for (i = 0; i < n; i++) {
            unsigned char c = (unsigned char)line[i];
            if (c == ':' || c < 33 || c > 126)
                break;
        }
        f->name = line;
        f->name_len = i;
        while (i < n && is_wsp(line[i]))
            i++;
        if (f->name_len == 0 || i >= n || line[i] != ':')
            continue;                   /* not a field (nor a continuation of one) */
        while (it->pos < it->len && is_wsp(it->buf[it->pos])) {
            (void)line_at(it->buf, it->len, it->pos, &next);
            it->pos = next;
        }
        f->raw = line;
        f->raw_len = it->pos - start;
        return 1;
    }
    return 0;
}

bool mime_field_is(const struct mime_field *f, const char *name)
{
    return mime_eq_nocase(f->name, f->name_len, name) != 0;
}

bool mime_field_value(const struct mime_field *f, struct str *out, size_t max)
{
    const char *v = memchr(f->raw, ':', f->raw_len);
    size_t i, n, b, e;
    bool cut = false;

    if (max == 0)
        max = MIME_FIELD_MAX;
    str_clear(out);
    if (v == NULL)
        return false;
    v++;
    n = f->raw_len - (size_t)(v - f->raw);
    for (i = 0; i < n; i++) {
        char c = v[i];
        if (c == '\r' && i + 1 < n && v[i + 1] == '\n')
            continue;
        if (c == '\n')
            continue;
        if (out->len >= max) {
            cut = true;
            break;
        }
        str_appendc(out, c);
    }
    for (b = 0; b < out->len && is_wsp(out->s[b]); b++)
        ;
    for (e = out->len; e > b && (is_wsp(out->s[e - 1]) || out->s[e - 1] == '\r'); e--)
        ;
    if (b > 0)
        memmove(out->s, out->s + b, e - b);
    str_truncate(out, e - b);
    return cut;
}

int mime_header_get(const struct mime_msg *m, const struct mime_part *p,
                    const char *name, struct str *out)
{
    struct mime_field_iter it;
    struct mime_field f;
    size_t n = 0;

    str_clear(out);
    mime_field_iter_init(&it, m->buf + p->off, p->body_off - p->off);
    while (mime_field_next(&it, &f) == 1 && n++ < MIME_HEADER_FIELDS_MAX) {
        if (mime_field_is(&f, name)) {
            (void)mime_field_value(&f, out, 0);
            return 1;
        }
    }
    return 0;
}

/* ---- RFC 2047 ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* An encoded word at s[0..n): "=?charset?E?text?=".  On success returns its length,
 * the charset (its *language suffix dropped) in cs[0..*cslen), and appends the
 * decoded bytes to raw. */
static size_t encoded_word(const char *s, size_t n, const char **cs, size_t *cslen,
                           struct str *raw)
{
    size_t i = 2, c0, c1, t0, t1;
    char enc;

    if (n < 8 || s[0] != '=' || s[1] != '?')
        return 0;
    c0 = i;
    while (i < n && s[i] != '?' && !is_wsp(s[i]) && i - c0 < 80)
        i++;
    if (i >= n || s[i] != '?' || i == c0)
        return 0;
    c1 = i;
    if (i + 3 > n || s[i + 2] != '?')
        return 0;
    enc = s[i + 1];
    if (enc != 'B' && enc != 'b' && enc != 'Q' && enc != 'q')
        return 0;
    t0 = i + 3;
    /* RFC 2047 allows 75 bytes a word; more is tolerated, but within a bound, so that
     * a value full of "=?x?q?" starts stays linear */
    if (n - t0 > ENCODED_WORD_MAX)
        n = t0 + ENCODED_WORD_MAX;
    for (t1 = t0; t1 + 1 < n; t1++) {
        if (s[t1] == '?' && s[t1 + 1] == '=')
            break;
        if (is_wsp(s[t1]) || s[t1] == '\r' || s[t1] == '\n')
            return 0;
    }
    if (t1 + 1 >= n)
        return 0;
    *cs = s + c0;
    *cslen = c1 - c0;
    {
        const char *star = memchr(s + c0, '*', c1 - c0);
        if (star != NULL)
            *cslen = (size_t)(star - (s + c0));
    }
    if (enc == 'B' || enc == 'b') {
        for (i = t0; i < t1; i++) {
            char c = s[i];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                  (c >= '0' && c <= '9') || c == '+' || c == '/' || c == '='))
                return 0;               /* not base64: not a word */
        }
        (void)mime_decode(MIME_ENC_BASE64, s + t0, t1 - t0, raw, MIME_FIELD_MAX);
    } else {
        for (i = t0; i < t1; i++) {
            int h, l;
            if (s[i] == '_') {
                str_appendc(raw, ' ');
            } else if (s[i] == '=' && i + 2 < t1 + 1 && (h = hexval(s[i + 1])) >= 0 &&
                       (l = hexval(s[i + 2])) >= 0) {
                str_appendc(raw, (char)(h * 16 + l));
                i += 2;
            } else {
                str_appendc(raw, s[i]);
            }
        }
    }
    return t1 + 2;
}

static void flush_words(struct str *raw, struct str *cs, struct str *out)
{
    if (raw->len > 0 || cs->len > 0)
        (void)mime_charset_to_utf8(cs->s, raw->s, raw->len, out, MIME_FIELD_MAX * 4);
    str_clear(raw);
    str_clear(cs);
}

void mime_header_decode(const char *value, size_t len, struct str *out)
{
    struct str raw = STR_INIT, cs = STR_INIT, word = STR_INIT;
    size_t i = 0;
    bool after_word = false;

    while (i < len) {
        const char *wcs;
        size_t wcslen, wl;

        if (value[i] == '=' && i + 1 < len && value[i + 1] == '?') {
            str_clear(&word);
            wl = encoded_word(value + i, len - i, &wcs, &wcslen, &word);
            if (wl > 0) {
                /* white space between two words disappears (RFC 2047 6.2) */
                if (!after_word || cs.len != wcslen ||
                    strncasecmp(cs.s, wcs, wcslen) != 0) {
                    flush_words(&raw, &cs, out);
                    str_set(&cs, wcs, wcslen);
                }
                str_append(&raw, word.s, word.len);
                i += wl;
                after_word = true;
                continue;
            }
        }
        if (after_word && (is_wsp(value[i]) || value[i] == '\r' || value[i] == '\n')) {
            size_t j = i;
            while (j < len && (is_wsp(value[j]) || value[j] == '\r' || value[j] == '\n'))
                j++;
            if (j + 1 < len && value[j] == '=' && value[j + 1] == '?' &&
                encoded_word(value + j, len - j, &wcs, &wcslen, &word) > 0) {
                str_clear(&word);
                i = j;                  /* the next word follows: drop the gap */
                continue;
            }
        }
        if (after_word) {
            flush_words(&raw, &cs, out);
            after_word = false;
        }
        /* plain text up to the next possible word */
        {
            size_t j = i + 1;
            while (j < len && !(value[j] == '=' && j + 1 < len && value[j + 1] == '?') &&
                   !is_wsp(value[j]))
                j++;
            if (j < len && is_wsp(value[j]))
                j++;
            (void)mime_charset_to_utf8("unknown-8bit", value + i, j - i, out,
                                       MIME_FIELD_MAX * 4);
            i = j;
        }
    }
    flush_words(&raw, &cs, out);
    str_free(&raw);
    str_free(&cs);
    str_free(&word);
}
