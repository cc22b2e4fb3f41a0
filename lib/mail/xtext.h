/* xtext (RFC 3461 section 4), the encoding of the ENVID and ORCPT parameters:
 * printable ASCII except '+' and '=', with any other byte written "+XX" (two
 * upper-case hex digits).  Input is hostile: both functions check every byte. */
#ifndef POSTERN_XTEXT_H
#define POSTERN_XTEXT_H

#include <stdbool.h>
#include <stddef.h>

struct str;

/* true when s is non-empty xtext of at most max bytes (as encoded). */
bool xtext_valid(const char *s, size_t max);

/* Decodes the first len bytes of s into out (replaced).  0, or -1 when they are
 * not xtext or decode to a control character, a space or DEL.  Decoded bytes above
 * 0x7f are kept. */
int xtext_decode(const char *s, size_t len, struct str *out);

#endif
