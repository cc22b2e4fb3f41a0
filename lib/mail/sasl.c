/* SASL support for the PLAIN and LOGIN mechanisms of pop3d and imapd (RFC 4616,
 * RFC 5034, RFC 3501): a strict base64 decoder and the PLAIN message parser.  Input
 * is the client's, bounded by the line length the caller read. */
#include "sasl.h"
#include "base64.h"

#include <stdbool.h>
#include <string.h>

int sasl_base64_decode(const char *in, size_t len, struct str *out)
{
    str_clear(out);
    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        bool last = i + 4 == len;

        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)in[i + k];
            if (c == '=' && last && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad > 0)
                return -1;      /* data after padding */
            v[k] = base64_value(c, '/');
            if (v[k] < 0)
                return -1;
        }
        unsigned long w = ((unsigned long)v[0] << 18) | ((unsigned long)v[1] << 12)
                          | ((unsigned long)v[2] << 6) | (unsigned long)v[3];
        str_appendc(out, (char)(w >> 16));
        if (pad < 2)
            str_appendc(out, (char)((w >> 8) & 0xff));
        if (pad < 1)
            str_appendc(out, (char)(w & 0xff));
    }
    return 0;
}

int sasl_plain(const struct str *d, struct str *user, struct str *pass)
{
    const char *authz = d->s, *authc, *pw, *end = d->s + d->len;
    const char *nul1, *nul2;

    if (d->len == 0 || d->s == NULL)
        return -1;
    nul1 = memchr(authz, '\0', d->len);
    if (nul1 == NULL)
        return -1;
    authc = nul1 + 1;
    nul2 = memchr(authc, '\0', (size_t)(end - authc));
    if (nul2 == NULL)
        return -1;
    pw = nul2 + 1;
    if (memchr(pw, '\0', (size_t)(end - pw)) != NULL)
        return -1;
    if (authc == nul2 || pw == end)
        return -1;
    /* No proxy logins: an authorization identity must be the user itself. */
    if (nul1 != authz && ((size_t)(nul1 - authz) != (size_t)(nul2 - authc)
                          || memcmp(authz, authc, (size_t)(nul1 - authz)) != 0))
        return -1;
    if ((size_t)(nul2 - authc) > SASL_NAME_MAX)
        return -1;
    str_set(user, authc, (size_t)(nul2 - authc));
    str_set(pass, pw, (size_t)(end - pw));
    return 0;
}
