/* Mail addresses: RFC 5321 paths ("<local@domain>" with ESMTP parameters after them)
 * and their parts.
 *
 * The internal form of an address is "local@domain" with the local part unquoted
 * (a quoted-string's quotes and backslashes removed) and the domain as given; the
 * null sender is "".  addr_quote() makes the external (RFC 5321) form again.
 * Source routes ("<@a,@b:user@c>") are accepted and dropped, as RFC 5321 4.1.1.3
 * allows.  '%' and '!' have no routing meaning anywhere in Postern: they are
 * ordinary local-part characters. */
#ifndef POSTERN_ADDR_H
#define POSTERN_ADDR_H

#include <stdbool.h>
#include <stddef.h>

struct str;

#define ADDR_LOCAL_MAX 64       /* RFC 5321 4.5.3.1.1 */
#define ADDR_DOMAIN_MAX 255     /* RFC 5321 4.5.3.1.2 */
#define ADDR_PATH_MAX 256       /* RFC 5321 4.5.3.1.3, brackets included */

enum addr_flags {
    ADDR_ALLOW_NULL = 1,        /* "<>" is valid (MAIL FROM) */
    ADDR_SMTPUTF8 = 2,          /* UTF-8 allowed in local part and domain (RFC 6531) */
    ADDR_ALLOW_BARE = 4,        /* accept a path without <> (liberal, for sendmail -f);
                                 * with the brackets it must still fit ADDR_PATH_MAX */
};

/* Parses the path at the start of arg (after "MAIL FROM:" / "RCPT TO:").  On success
 * returns 0, sets addr to the internal form and *rest to the text after the path
 * (ESMTP parameters, leading spaces skipped).  On error returns -1 and *why to a
 * short static reason fit for an SMTP reply. */
int addr_parse_path(const char *arg, int flags, struct str *addr, const char **rest,
                    const char **why);

/* Domain syntax: dot-atom of letter-digit-hyphen labels (or UTF-8 with SMTPUTF8), or
 * an address literal "[1.2.3.4]" / "[IPv6:...]". */
bool addr_domain_valid(const char *domain, bool utf8);
/* true when the len bytes at s (followed by a NUL or more text) are well-formed
 * UTF-8 (RFC 3629: no overlong forms, no surrogates); ASCII is. */
bool addr_utf8_valid(const char *s, size_t len);
/* A local part safe to use as one path component: no '/', NUL, control characters,
 * not "." or "..", not starting with '.', at most ADDR_LOCAL_MAX bytes. */
bool addr_local_safe(const char *local);
/* Appends the external form of an internal address (quoting the local part when
 * needed) to out. */
void addr_quote(const char *addr, struct str *out);
/* Lower-cases the domain part (ASCII) in place. */
void addr_fold_domain(char *addr);
/* Removes a "+extension" (recipient_delimiter characters) from the local part:
 * "user+tag@d" -> base "user@d", ext "tag".  Returns 1 when one was found. */
int addr_strip_extension(const char *addr, const char *delimiters, struct str *base,
                         struct str *ext);

#endif
