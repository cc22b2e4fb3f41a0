/* Modified UTF-7 (RFC 3501 section 5.1.3), the encoding of IMAP mailbox names on the
 * wire and, as Dovecot keeps them, of Maildir++ folder names on disk.  Both directions
 * are strict: a name that does not round-trip is refused, so one folder has exactly
 * one spelling. */
#ifndef POSTERN_MUTF7_H
#define POSTERN_MUTF7_H

#include <stdbool.h>
#include <stddef.h>

struct str;

/* Appends the UTF-8 form of the modified UTF-7 text in[0..len) to out.  0, or -1
 * (out unchanged) when in is not valid modified UTF-7: 8-bit bytes, control
 * characters, an unterminated or empty-but-for-"-" shift other than "&-", base64 that
 * encodes printable ASCII or a lone surrogate, non-zero padding bits. */
int mutf7_to_utf8(const char *in, size_t len, struct str *out);
/* Appends the modified UTF-7 form of the UTF-8 text in[0..len) to out.  0, or -1
 * (out unchanged) when in is not valid UTF-8 (overlong forms, surrogates, beyond
 * U+10FFFF) or holds control characters. */
int utf8_to_mutf7(const char *in, size_t len, struct str *out);
/* True when s is valid modified UTF-7 (mutf7_to_utf8 would accept it). */
bool mutf7_valid(const char *s, size_t len);

#endif
