/* xtext encoding checks and decoding (see xtext.h).  Trusts nothing in its input. */
#include "xtext.h"

#include "str.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool xtext_valid(const char *s, size_t max)
{
    size_t n = 0;

    for (; *s != '\0'; s++, n++) {
        unsigned char c = (unsigned char)*s;
        if (n >= max)
            return false;
        if (c == '+') {
            if (hexval(s[1]) < 0 || hexval(s[2]) < 0)
                return false;
            s += 2;
        } else if (c < 33 || c > 126 || c == '=') {
            return false;
        }
    }
    return n > 0;
}

int xtext_decode(const char *s, size_t len, struct str *out)
{
    str_clear(out);
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];

        if (c == '+') {
            int h = i + 2 < len ? hexval(s[i + 1]) : -1;
            int l = h < 0 ? -1 : hexval(s[i + 2]);

            if (l < 0)
                return -1;
            c = h * 16 + l;
            i += 2;
        }
        if (c < 33 || c == 127)
            return -1;
        str_appendc(out, (char)c);
    }
    return 0;
}
