/* The decoding half of smtpd's AUTH (RFC 4954): strict base64 and the shape of the
 * credentials a client sends, kept apart from auth.c's session code so that tests
 * can drive them directly.  Everything here is the client's text, untrusted. */
#include <string.h>

#include "auth_decode.h"

/* Strict base64 (RFC 4648 4, with padding, no white space).  0 with the bytes in
 * out, or -1. */
int smtpd_b64_decode(const char *in, size_t len, struct str *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    str_clear(out);
    if (len % 4 != 0)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        unsigned v = 0;
        int pad = 0;
        for (size_t j = 0; j < 4; j++) {
            char c = in[i + j];
            const char *p;
            if (c == '=') {
                /* only in the last group, only at its end */
                if (i + 4 != len || j < 2)
                    return -1;
                pad++;
                v <<= 6;
                continue;
            }
            if (pad > 0 || c == '\0' || (p = strchr(alphabet, c)) == NULL)
                return -1;
            v = (v << 6) | (unsigned)(p - alphabet);
        }
        /* the bits beneath the padding must be zero */
        if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0))
            return -1;
        str_appendc(out, (char)(v >> 16));
        if (pad < 2)
            str_appendc(out, (char)((v >> 8) & 0xff));
        if (pad < 1)
            str_appendc(out, (char)(v & 0xff));
    }
    return 0;
}

/* A user name or password from the client: no NUL or control characters. */
bool smtpd_cred_ok(const char *p, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
            return false;
    return true;
}

/* Splits a PLAIN message "authzid NUL authcid NUL passwd": 0, or -1. */
int smtpd_plain_split(const struct str *msg, struct str *user, struct str *pass)
{
    const char *p = msg->s, *end = msg->s + msg->len;
    const char *n1 = memchr(p, '\0', msg->len), *n2;
    size_t zlen, ulen;

    if (n1 == NULL)
        return -1;
    n2 = memchr(n1 + 1, '\0', (size_t)(end - n1 - 1));
    if (n2 == NULL)
        return -1;
    zlen = (size_t)(n1 - p);
    ulen = (size_t)(n2 - n1 - 1);
    /* an authorization identity, when given, must be the user itself */
    if (zlen > 0 && (zlen != ulen || memcmp(p, n1 + 1, ulen) != 0))
        return -1;
    str_set(user, n1 + 1, ulen);
    str_set(pass, n2 + 1, (size_t)(end - n2 - 1));
    return 0;
}

int smtpd_auth_args(char *arg, char **ir, const char **why)
{
    char *sp;

    *ir = NULL;
    if (*arg == '\0') {
        *why = "5.5.4 Syntax: AUTH mechanism";
        return -1;
    }
    sp = strchr(arg, ' ');
    if (sp != NULL) {
        *sp = '\0';
        *ir = sp + 1;
        while (**ir == ' ')
            (*ir)++;
        if (**ir == '\0' || strchr(*ir, ' ') != NULL) {
            *why = "5.5.4 Syntax: AUTH mechanism [initial-response]";
            return -1;
        }
    }
    return 0;
}
