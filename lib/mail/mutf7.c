/* Modified UTF-7 <-> UTF-8 (see mutf7.h).  Input is hostile: every length is checked,
 * the decoder accepts only the one canonical spelling (it re-encodes and compares). */
#include "mutf7.h"
#include "base64.h"

#include <stdint.h>
#include <string.h>

#include "str.h"

static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static void put_utf8(struct str *out, uint32_t cp)
{
    char b[4];
    size_t n;

    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    str_append(out, b, n);
}

/* Decodes one UTF-8 sequence at s[*i..len): the code point, or -1 when invalid. */
static int32_t get_utf8(const unsigned char *s, size_t len, size_t *i)
{
    uint32_t cp, min;
    size_t n;
    unsigned char c = s[*i];

    if (c < 0x80) {
        (*i)++;
        return c;
    }
    if ((c & 0xe0) == 0xc0) {
        cp = c & 0x1f; n = 1; min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        cp = c & 0x0f; n = 2; min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        cp = c & 0x07; n = 3; min = 0x10000;
    } else {
        return -1;
    }
    if (len - *i <= n)
        return -1;
    for (size_t k = 1; k <= n; k++) {
        if ((s[*i + k] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[*i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *i += n + 1;
    return (int32_t)cp;
}

static bool is_control(uint32_t cp)
{
    return cp < 0x20 || cp == 0x7f;
}

/* The base64 part of an encoder: UTF-16 units in, 6-bit characters out. */
struct b64_out {
    bool open;
    uint32_t bits;
    int nbits;
};

static void b64_unit(struct str *out, struct b64_out *b, uint16_t unit)
{
    if (!b->open) {
        str_appendc(out, '&');
        b->open = true;
    }
    b->bits = (b->bits << 16) | unit;
    b->nbits += 16;
    while (b->nbits >= 6) {
        b->nbits -= 6;
        str_appendc(out, b64[(b->bits >> b->nbits) & 0x3f]);
    }
    b->bits &= (1u << b->nbits) - 1;
}

static void b64_close(struct str *out, struct b64_out *b)
{
    if (!b->open)
        return;
    if (b->nbits > 0)
        str_appendc(out, b64[(b->bits << (6 - b->nbits)) & 0x3f]);
    str_appendc(out, '-');
    memset(b, 0, sizeof(*b));
}

int utf8_to_mutf7(const char *in, size_t len, struct str *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, orig = out->len;
    struct b64_out b = { false, 0, 0 };

    while (i < len) {
        int32_t cp = get_utf8(s, len, &i);

        if (cp < 0 || is_control((uint32_t)cp)) {
            str_truncate(out, orig);
            return -1;
        }
        if (cp <= 0x7e) {
            b64_close(out, &b);
            if (cp == '&')
                str_append(out, "&-", 2);
            else
                str_appendc(out, (char)cp);
        } else if (cp >= 0x10000) {
            uint32_t v = (uint32_t)cp - 0x10000;
            b64_unit(out, &b, (uint16_t)(0xd800 | (v >> 10)));
            b64_unit(out, &b, (uint16_t)(0xdc00 | (v & 0x3ff)));
        } else {
            b64_unit(out, &b, (uint16_t)cp);
        }
    }
    b64_close(out, &b);
    return 0;
}

/* Decodes without the canonical check. */
static int decode(const unsigned char *s, size_t len, struct str *out)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        uint32_t bits = 0, hi = 0;
        int nbits = 0;
        size_t start;

        if (c < 0x20 || c > 0x7e)
            return -1;
        if (c != '&') {
            str_appendc(out, (char)c);
            i++;
            continue;
        }
        i++;
        if (i < len && s[i] == '-') {
            str_appendc(out, '&');
            i++;
            continue;
        }
        start = i;
        while (i < len && s[i] != '-') {
            int v = base64_value(s[i], ',');

            if (v < 0)
                return -1;
            bits = (bits << 6) | (uint32_t)v;
            nbits += 6;
            if (nbits >= 16) {
                uint32_t unit;

                nbits -= 16;
                unit = (bits >> nbits) & 0xffff;
                bits &= (1u << nbits) - 1;
                if (hi != 0) {
                    if (unit < 0xdc00 || unit > 0xdfff)
                        return -1;
                    put_utf8(out, 0x10000 + ((hi - 0xd800) << 10) + (unit - 0xdc00));
                    hi = 0;
                } else if (unit >= 0xd800 && unit <= 0xdbff) {
                    hi = unit;
                } else if (unit >= 0xdc00 && unit <= 0xdfff) {
                    return -1;
                } else if (unit <= 0x7f) {
                    return -1;              /* ASCII must not be encoded */
                } else {
                    put_utf8(out, unit);
                }
            }
            i++;
        }
        if (i >= len || i == start || hi != 0 || nbits >= 6 || bits != 0)
            return -1;                      /* unterminated, empty, bad padding */
        i++;
    }
    return 0;
}

int mutf7_to_utf8(const char *in, size_t len, struct str *out)
{
    size_t orig = out->len;
    struct str again = STR_INIT;
    int ok;

    if (len == 0)
        return 0;
    if (decode((const unsigned char *)in, len, out) < 0) {
        str_truncate(out, orig);
        return -1;
    }
    ok = utf8_to_mutf7(out->s + orig, out->len - orig, &again) == 0 && again.len == len &&
         memcmp(again.s, in, len) == 0;
    str_free(&again);
    if (!ok) {
        str_truncate(out, orig);
        return -1;
    }
    return 0;
}

bool mutf7_valid(const char *s, size_t len)
{
    struct str tmp = STR_INIT;
    int r = mutf7_to_utf8(s, len, &tmp);

    str_free(&tmp);
    return r == 0;
}
