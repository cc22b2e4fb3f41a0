/* A plain base64 encoder of the harnesses' own (RFC 4648 4, with padding), written
 * apart from the decoders under test, to check that what they accept is canonical. */
#ifndef POSTERN_FUZZ_B64_H
#define POSTERN_FUZZ_B64_H

#include "str.h"

static inline void b64_encode(const struct str *in, struct str *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)in->s;

    str_clear(out);
    for (size_t i = 0; i < in->len; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        size_t n = in->len - i;

        if (n > 1)
            v |= (unsigned)p[i + 1] << 8;
        if (n > 2)
            v |= p[i + 2];
        str_appendc(out, a[(v >> 18) & 63]);
        str_appendc(out, a[(v >> 12) & 63]);
        str_appendc(out, n > 1 ? a[(v >> 6) & 63] : '=');
        str_appendc(out, n > 2 ? a[v & 63] : '=');
    }
}

#endif
