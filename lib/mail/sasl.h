/* SASL PLAIN and LOGIN for the pre-auth processes (pop3d -l, imapd -l): decoding
 * what a client sent.  Everything here is the client's. */
#ifndef POSTERN_SASL_H
#define POSTERN_SASL_H

#include <stddef.h>

#include "str.h"

#define SASL_NAME_MAX 255           /* a user name */

/* Decodes base64 (strict: padding only at the end, no white space).  0, or -1. */
int sasl_base64_decode(const char *in, size_t len, struct str *out);
/* PLAIN's "authzid\0authcid\0password": 0, or -1 when malformed, when authzid names
 * someone else or authcid is longer than SASL_NAME_MAX. */
int sasl_plain(const struct str *decoded, struct str *user, struct str *pass);

#endif
