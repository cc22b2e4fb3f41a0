/* smtpd AUTH's decoding of what the client sends (auth_decode.c): base64 and the
 * credentials of the PLAIN and LOGIN mechanisms. */
#ifndef POSTERN_SMTPD_AUTH_DECODE_H
#define POSTERN_SMTPD_AUTH_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "str.h"

/* Strict base64 (RFC 4648 4: padding only at the end, no white space, zero bits
 * beneath the padding).  0 with the bytes in out (replaced), or -1. */
int smtpd_b64_decode(const char *in, size_t len, struct str *out);
/* A user name or password: 1..max bytes, no control characters (NUL included). */
bool smtpd_cred_ok(const char *p, size_t len, size_t max);
/* Splits a PLAIN message "authzid NUL authcid NUL passwd"; an authzid, when given,
 * must equal the authcid.  0, or -1. */
int smtpd_plain_split(const struct str *msg, struct str *user, struct str *pass);

/* Splits the argument of AUTH in place into the mechanism (arg, NUL-terminated) and
 * the initial response (*ir, or NULL when none was given).  0, or -1 with the reply
 * text for a 501 in *why. */
int smtpd_auth_args(char *arg, char **ir, const char **why);

#endif
