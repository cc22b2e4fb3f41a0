/* The end of a frame in partial input (see attr_frame.h).  The rules for lengths are
 * attr.c's: digits only, no leading zero, at most 10 digits. */
#include "attr_frame.h"

#include <errno.h>

#include "attr.h"

#define LEN_DIGITS 10

int attr_frame_end(const void *buf, size_t len, size_t max_frame, size_t *frame_len)
{
    const unsigned char *p = buf;
    size_t off = 0;

    if (max_frame == 0)
        max_frame = ATTR_FRAME_MAX;
    for (;;) {
        unsigned long long v = 0;
        int ndigits = 0;

        /* "LEN:" */
        for (;;) {
            unsigned char c;

            if (off >= max_frame) {
                errno = EMSGSIZE;
                return -1;
            }
            if (off == len)
                return 0;
            c = p[off++];
            if (c == ':')
                break;
            if (c < '0' || c > '9' || ndigits == LEN_DIGITS || (ndigits == 1 && v == 0)) {
                errno = EPROTO;
                return -1;
            }
            v = v * 10 + (unsigned)(c - '0');
            ndigits++;
        }
        if (ndigits == 0) {
            errno = EPROTO;
            return -1;
        }
        /* the value and its comma */
        if (v > max_frame || max_frame - off < v + 1) {
            errno = EMSGSIZE;
            return -1;
        }
        if (len - off < v + 1)
            return 0;
        off += (size_t)v;
        if (p[off++] != ',') {
            errno = EPROTO;
            return -1;
        }
        if (v == 0) {
            *frame_len = off;
            return 1;
        }
    }
}
