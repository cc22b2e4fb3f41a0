/* The base64 alphabet: see base64.h. */
#include "base64.h"

int base64_value(unsigned char c, char c63)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == (unsigned char)c63)
        return 63;
    return -1;
}
