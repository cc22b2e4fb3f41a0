/* Charsets to UTF-8 through iconv(3).  Names come from messages and are untrusted:
 * they are checked (length, characters) before iconv_open sees them, a few common
 * mislabels are mapped to what iconv knows, and a charset iconv does not know is not
 * an error: the bytes pass as UTF-8 when they are valid UTF-8, else as ISO-8859-1.
 * Bytes that do not convert become U+FFFD.  Converters are cached (a few, by name),
 * since iconv_open loads modules. */
#include <errno.h>
#include <iconv.h>
#include <string.h>
#include <strings.h>

#include "mime.h"
#include "mime_int.h"

#define CHARSET_NAME_MAX 64
#define CACHE_SLOTS 4

static const char repl[] = "\xef\xbf\xbd";     /* U+FFFD */

struct cache_slot {
    char name[CHARSET_NAME_MAX + 1];
    iconv_t cd;
    bool bad;                   /* iconv_open failed for this name */
    unsigned long used;
};
static struct cache_slot cache[CACHE_SLOTS];
static unsigned long cache_clock;

/* Length of the valid UTF-8 sequence at s[0..n), 0 when invalid (RFC 3629). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len, i;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

static bool room(struct str *out, size_t start, size_t max, size_t n)
{
    return out->len - start + n <= max;
}

/* UTF-8 as it is; a byte that starts no valid sequence as U+FFFD (replace) or as
 * its ISO-8859-1 letter (text in an unknown charset is most often Latin-1). */
static void utf8_clean(const char *in, size_t len, struct str *out, size_t max,
                       bool replace)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t start = out->len, i = 0;

    while (i < len) {
        size_t k = utf8_seq(s + i, len - i);
        if (k > 0) {
            if (!room(out, start, max, k))
                return;
            str_append(out, s + i, k);
            i += k;
        } else if (replace) {
            if (!room(out, start, max, 3))
                return;
            str_append(out, repl, 3);
            i++;
        } else {
            char two[2] = { (char)(0xc0 | (s[i] >> 6)), (char)(0x80 | (s[i] & 0x3f)) };
            if (!room(out, start, max, 2))
                return;
            str_append(out, two, 2);
            i++;
        }
    }
}

/* Normalised name in buf (lower case, RFC 2231 "*lang" dropped, aliases mapped);
 * false when it cannot be a charset name. */
static bool charset_name(const char *cs, char *buf)
{
    static const struct { const char *from, *to; } alias[] = {
        { "ks_c_5601-1987", "cp949" }, { "ks_c_5601", "cp949" },
        { "gb2312", "gb18030" }, { "gbk", "gb18030" }, { "x-gbk", "gb18030" },
        { "iso-8859-8-i", "iso-8859-8" }, { "iso-8859-6-i", "iso-8859-6" },
        { "x-sjis", "shift_jis" }, { "x-mac-roman", "macintosh" },
        { "ascii", "us-ascii" }, { "ansi_x3.4-1968", "us-ascii" },
        { "utf8", "utf-8" }, { "x-utf8", "utf-8" }, { "unicode-1-1-utf-8", "utf-8" },
        { "latin1", "iso-8859-1" },
    };
    size_t n = 0;

    for (const char *p = cs; *p != '\0' && *p != '*'; p++) {
        char c = *p;
        if (n >= CHARSET_NAME_MAX)
            return false;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-_.:+()", c)))
            return false;
        buf[n++] = c;
    }
    buf[n] = '\0';
    if (n == 0)
        return false;
    for (size_t i = 0; i < sizeof(alias) / sizeof(alias[0]); i++)
        if (strcmp(buf, alias[i].from) == 0) {
            strcpy(buf, alias[i].to);
            break;
        }
    return true;
}

/* Labels that say "no idea": not worth an iconv_open */
static bool is_unknown(const char *name)
{
    return !strcmp(name, "unknown-8bit") || !strcmp(name, "x-unknown") ||
           !strcmp(name, "unknown") || !strcmp(name, "x-user-defined") ||
           !strcmp(name, "default");
}

static struct cache_slot *converter(const char *name)
{
    struct cache_slot *s, *lru = &cache[0];

    for (s = cache; s < cache + CACHE_SLOTS; s++) {
        if (s->name[0] != '\0' && strcmp(s->name, name) == 0) {
            s->used = ++cache_clock;
            return s;
        }
        if (s->used < lru->used)
            lru = s;
    }
    s = lru;
    if (s->name[0] != '\0' && !s->bad)
        iconv_close(s->cd);
    strcpy(s->name, name);
    s->cd = iconv_open("UTF-8", name);
    s->bad = s->cd == (iconv_t)-1;
    s->used = ++cache_clock;
    return s;
}

bool mime_charset_known(const char *charset)
{
    char name[CHARSET_NAME_MAX + 1];

    if (charset == NULL || charset[0] == '\0')
        return true;
    if (!charset_name(charset, name))
        return false;
    if (!strcmp(name, "us-ascii") || !strcmp(name, "utf-8"))
        return true;
    return !is_unknown(name) && !converter(name)->bad;
}

int mime_charset_to_utf8(const char *charset, const char *in, size_t len,
                         struct str *out, size_t max)
{
    char name[CHARSET_NAME_MAX + 1];
    struct cache_slot *s;
    size_t start = out->len;
    char *ip = (char *)in;
    size_t il = len;

    if (max == 0)
        max = MIME_DECODE_MAX;
    if (charset == NULL || charset[0] == '\0')
        charset = "us-ascii";
    if (!charset_name(charset, name)) {
        utf8_clean(in, len, out, max, false);
        return -1;
    }
    if (!strcmp(name, "utf-8")) {
        utf8_clean(in, len, out, max, true);
        return 0;
    }
    if (!strcmp(name, "us-ascii")) {
        /* 8-bit bytes in "us-ascii" text are common: UTF-8 or Latin-1 really */
        utf8_clean(in, len, out, max, false);
        return 0;
    }
    s = is_unknown(name) ? NULL : converter(name);
    if (s == NULL || s->bad) {
        utf8_clean(in, len, out, max, false);
        return -1;
    }
    iconv(s->cd, NULL, NULL, NULL, NULL);
    while (il > 0) {
        char buf[4096], *op = buf;
        size_t ol = sizeof(buf);
        size_t r = iconv(s->cd, &ip, &il, &op, &ol);
        int e = errno;

        if (!room(out, start, max, (size_t)(op - buf))) {
            size_t n = max - (out->len - start);
            while (n > 0 && ((unsigned char)buf[n] & 0xc0) == 0x80)
                n--;                    /* never half a character */
            str_append(out, buf, n);
            return 0;
        }
        str_append(out, buf, (size_t)(op - buf));
        if (r != (size_t)-1)
            break;
        if (e == E2BIG)
            continue;
        /* EILSEQ (a byte that does not convert) or EINVAL (cut sequence at the end) */
        if (!room(out, start, max, 3))
            return 0;
        str_append(out, repl, 3);
        ip++;
        il--;
        iconv(s->cd, NULL, NULL, NULL, NULL);
    }
    {
        char buf[64], *op = buf;
        size_t ol = sizeof(buf);
        iconv(s->cd, NULL, NULL, &op, &ol);    /* shift back to the initial state */
        if (room(out, start, max, (size_t)(op - buf)))
            str_append(out, buf, (size_t)(op - buf));
    }
    return 0;
}
