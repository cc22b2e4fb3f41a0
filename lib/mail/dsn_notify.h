/* The DSN NOTIFY parameter (RFC 3461 4.1), as smtpd's RCPT and sendmail's -N take
 * it. */
#ifndef POSTERN_DSN_NOTIFY_H
#define POSTERN_DSN_NOTIFY_H

#include "str.h"

/* NEVER, or SUCCESS, FAILURE, DELAY each at most once, with commas (any case).  The
 * canonical upper-case form goes to out.  0, or -1 when v is not such a value. */
int dsn_notify_parse(const char *v, struct str *out);

#endif
