/* The IMAP grammar (RFC 3501 section 9) over a command read by io.c: a cursor and one
 * function per production the commands need.  A literal sits inline after its
 * "{n}" or "{n+}" and one CRLF (io.c put it there and checked n); it is checked again
 * here against what is left.  Nothing here trusts the bytes it reads. */
#include <string.h>

#include "imapd.h"

void imap_parser_init(struct imap_parser *ip, const struct str *cmd)
{
    ip->p = cmd->s != NULL ? cmd->s : "";
    ip->end = ip->p + cmd->len;
}

bool imap_p_sp(struct imap_parser *ip)
{
    return imap_p_char(ip, ' ');
}

bool imap_p_eol(const struct imap_parser *ip)
{
    return ip->p == ip->end;
}

bool imap_p_peek(const struct imap_parser *ip, char c)
{
    return ip->p < ip->end && *ip->p == c;
}

bool imap_p_char(struct imap_parser *ip, char c)
{
    if (!imap_p_peek(ip, c))
        return false;
    ip->p++;
    return true;
}

/* ATOM-CHAR: any CHAR except atom-specials ( ) { SP CTL % * " \ ]. */
static bool atom_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

static bool take(struct imap_parser *ip, struct str *out, size_t max, bool (*ok)(unsigned char))
{
    const char *start = ip->p;

    while (ip->p < ip->end && ok((unsigned char)*ip->p))
        ip->p++;
    if (ip->p == start || (size_t)(ip->p - start) > max) {
        ip->p = start;
        return false;
    }
    str_set(out, start, (size_t)(ip->p - start));
    return true;
}

bool imap_p_atom(struct imap_parser *ip, struct str *out, size_t max)
{
    return take(ip, out, max, atom_char);
}

static bool tag_char(unsigned char c)
{
    return (atom_char(c) || c == ']') && c != '+';
}

bool imap_p_tag(struct imap_parser *ip, struct str *out)
{
    return take(ip, out, IMAP_TAG_MAX, tag_char);
}

static bool quoted(struct imap_parser *ip, struct str *out)
{
    const char *p = ip->p + 1;

    str_clear(out);
    while (p < ip->end && *p != '"') {
        if (*p == '\\') {
            p++;
            if (p == ip->end || (*p != '"' && *p != '\\'))
                return false;
        } else if (*p == '\r' || *p == '\n' || *p == '\0') {
            return false;
        }
        str_appendc(out, *p++);
    }
    if (p == ip->end)
        return false;
    ip->p = p + 1;
    return true;
}

static bool literal_any(struct imap_parser *ip, struct str *out, bool nul_ok)
{
    const char *p = ip->p + 1;
    size_t n = 0;
    int digits = 0;

    while (p < ip->end && *p >= '0' && *p <= '9') {
        if (++digits > 18)
            return false;
        n = n * 10 + (size_t)(*p++ - '0');
    }
    if (digits == 0)
        return false;
    if (p < ip->end && *p == '+')
        p++;
    if (ip->end - p < 3 || p[0] != '}' || p[1] != '\r' || p[2] != '\n')
        return false;
    p += 3;
    if ((size_t)(ip->end - p) < n || (!nul_ok && memchr(p, '\0', n) != NULL))
        return false;
    str_set(out, p, n);
    ip->p = p + n;
    return true;
}

static bool literal(struct imap_parser *ip, struct str *out)
{
    return literal_any(ip, out, false);
}

bool imap_p_string8(struct imap_parser *ip, struct str *out)
{
    if (imap_p_char(ip, '~'))
        return imap_p_peek(ip, '{') && literal_any(ip, out, true);
    return imap_p_string(ip, out);
}

bool imap_p_string(struct imap_parser *ip, struct str *out)
{
    if (imap_p_peek(ip, '"'))
        return quoted(ip, out);
    if (imap_p_peek(ip, '{'))
        return literal(ip, out);
    return false;
}

static bool astring_char(unsigned char c)
{
    return atom_char(c) || c == ']';
}

bool imap_p_astring(struct imap_parser *ip, struct str *out)
{
    if (imap_p_peek(ip, '"') || imap_p_peek(ip, '{'))
        return imap_p_string(ip, out);
    return take(ip, out, IMAP_LINE_MAX, astring_char);
}

static bool list_char(unsigned char c)
{
    return astring_char(c) || c == '%' || c == '*';
}

bool imap_p_list_mailbox(struct imap_parser *ip, struct str *out)
{
    if (imap_p_peek(ip, '"') || imap_p_peek(ip, '{'))
        return imap_p_string(ip, out);
    return take(ip, out, IMAP_LINE_MAX, list_char);
}

bool imap_p_number(struct imap_parser *ip, uint64_t max, uint64_t *out)
{
    const char *p = ip->p;
    uint64_t v = 0;

    if (p == ip->end || *p < '0' || *p > '9')
        return false;
    for (; p < ip->end && *p >= '0' && *p <= '9'; p++) {
        uint64_t d = (uint64_t)(*p - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    ip->p = p;
    *out = v;
    return true;
}
