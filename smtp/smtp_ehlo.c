/* The extensions a server lists in its EHLO reply (RFC 5321 4.1.1.1 and the RFCs of
 * each extension): which ones the client uses, the SIZE limit and the AUTH
 * mechanisms.  The server is untrusted: unknown keywords are ignored, numbers are
 * bounded. */
#include <string.h>
#include <strings.h>

#include "smtp.h"

/* The mechanisms of an AUTH keyword ("PLAIN LOGIN CRAM-MD5"). */
static void auth_parse(struct smtp_session *s, const char *p, size_t len)
{
    s->ext |= SMTP_EXT_AUTH_OTHER;
    while (len > 0) {
        size_t sp = strspn(p, " "), w;

        if (sp >= len)
            break;
        p += sp;
        len -= sp;
        w = strcspn(p, " \n");
        if (w > len)
            w = len;
        if (w == 5 && strncasecmp(p, "PLAIN", 5) == 0)
            s->ext |= SMTP_EXT_AUTH_PLAIN;
        else if (w == 5 && strncasecmp(p, "LOGIN", 5) == 0)
            s->ext |= SMTP_EXT_AUTH_LOGIN;
        p += w;
        len -= w;
    }
}

/* The extensions a 250 reply to EHLO lists (lines after the first). */
void smtp_ehlo_parse(struct smtp_session *s, const struct smtp_reply *r)
{
    const char *p = r->lines.s;

    s->ext = 0;
    s->size_max = 0;
    p = strchr(p, '\n');
    while (p != NULL && p[1] != '\0') {
        const char *line = p + 1;
        size_t len = strcspn(line, "\n");
        size_t kw = strcspn(line, " \n");

#define KW(word) (kw == sizeof(word) - 1 && strncasecmp(line, word, kw) == 0)
        if (KW("PIPELINING"))
            s->ext |= SMTP_EXT_PIPELINING;
        else if (KW("8BITMIME"))
            s->ext |= SMTP_EXT_8BITMIME;
        else if (KW("SMTPUTF8"))
            s->ext |= SMTP_EXT_SMTPUTF8;
        else if (KW("DSN"))
            s->ext |= SMTP_EXT_DSN;
        else if (KW("STARTTLS"))
            s->ext |= SMTP_EXT_STARTTLS;
        else if (KW("AUTH") || (kw > 5 && strncasecmp(line, "AUTH=", 5) == 0))
            auth_parse(s, line + 5, len > 5 ? len - 5 : 0);
        else if (KW("SIZE")) {
            s->ext |= SMTP_EXT_SIZE;
            if (kw < len && line[kw] == ' ') {
                unsigned long long v = 0;
                size_t i = kw + 1;

                for (; i < len && line[i] >= '0' && line[i] <= '9' && i < kw + 20; i++)
                    v = v * 10 + (unsigned)(line[i] - '0');
                s->size_max = v;
            }
        }
#undef KW
        p = strchr(line, '\n');
    }
}
