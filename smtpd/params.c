/* ESMTP parameters of MAIL (SIZE, BODY, SMTPUTF8, RET, ENVID) and RCPT (NOTIFY,
 * ORCPT): "KEY[=VALUE]" words after the path.  Untrusted text from the client: keys
 * and values are checked against the grammars of RFC 5321 4.1.2, RFC 1870, RFC 6152,
 * RFC 6531 and RFC 3461 before anything is kept. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dsn_notify.h"
#include "smtpd.h"
#include "xtext.h"

#define ENVID_MAX 100               /* RFC 3461 4.4 */
#define ORCPT_MAX 500               /* RFC 3461 4.2 */
#define PARAM_VALUE_MAX 1000

struct param {
    char key[32];
    char value[PARAM_VALUE_MAX + 1];
    bool has_value;
};

/* Takes the next "KEY[=VALUE]" from *pp.  1 with p filled, 0 at the end, -1 on
 * bad syntax. */
static int param_next(const char **pp, struct param *p)
{
    const char *s = *pp, *eq;
    size_t klen, vlen, n = 0;

    while (*s == ' ')
        s++;
    if (*s == '\0')
        return 0;
    while (s[n] != '\0' && s[n] != ' ')
        n++;
    eq = memchr(s, '=', n);
    klen = eq ? (size_t)(eq - s) : n;
    if (klen == 0 || klen >= sizeof(p->key))
        return -1;
    for (size_t i = 0; i < klen; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || (c == '-' && i > 0)))
            return -1;
    }
    memcpy(p->key, s, klen);
    p->key[klen] = '\0';
    p->has_value = eq != NULL;
    p->value[0] = '\0';
    if (eq != NULL) {
        vlen = n - klen - 1;
        if (vlen == 0 || vlen > PARAM_VALUE_MAX)
            return -1;
        for (size_t i = 0; i < vlen; i++) {
            unsigned char c = (unsigned char)eq[1 + i];
            if (c < 33 || c > 126 || c == '=')
                return -1;
        }
        memcpy(p->value, eq + 1, vlen);
        p->value[vlen] = '\0';
    }
    *pp = s + n;
    return 1;
}

static int parse_size(const char *v, long long *out)
{
    long long n = 0;

    if (*v == '\0' || strlen(v) > 18)
        return -1;
    for (; *v != '\0'; v++) {
        if (*v < '0' || *v > '9')
            return -1;
        n = n * 10 + (*v - '0');
    }
    *out = n;
    return 0;
}

static void bad_param(struct smtpd_session *s, const char *key)
{
    smtpd_reply(s, 501, "5.5.4 Bad %s parameter syntax", key);
}

int smtpd_mail_params(struct smtpd_session *s, const char *rest)
{
    struct smtpd_txn *t = &s->txn;
    struct param p;
    unsigned seen = 0;
    int r;

    while ((r = param_next(&rest, &p)) > 0) {
        unsigned bit;

        if (strcasecmp(p.key, "SIZE") == 0)
            bit = 1;
        else if (strcasecmp(p.key, "BODY") == 0)
            bit = 2;
        else if (strcasecmp(p.key, "SMTPUTF8") == 0 && s->cf->smtputf8)
            bit = 4;
        else if (strcasecmp(p.key, "RET") == 0)
            bit = 8;
        else if (strcasecmp(p.key, "ENVID") == 0)
            bit = 16;
        else {
            smtpd_reply(s, 555, "5.5.4 Unsupported option: %s", p.key);
            return -1;
        }
        if (seen & bit) {
            smtpd_reply(s, 501, "5.5.4 Duplicate %s parameter", p.key);
            return -1;
        }
        seen |= bit;
        if ((bit == 4) == p.has_value) {
            bad_param(s, p.key);
            return -1;
        }
        switch (bit) {
        case 1:
            if (parse_size(p.value, &t->declared_size) < 0) {
                bad_param(s, "SIZE");
                return -1;
            }
            if (s->cf->message_size_limit > 0 && t->declared_size > s->cf->message_size_limit) {
                smtpd_reject(s, "MAIL", NULL, 552, "5.3.4",
                             "Message size exceeds fixed limit");
                return -1;
            }
            break;
        case 2:
            if (strcasecmp(p.value, "7BIT") == 0)
                t->body = "7BIT";
            else if (strcasecmp(p.value, "8BITMIME") == 0)
                t->body = "8BITMIME";
            else {
                smtpd_reply(s, 501, "5.5.4 Unsupported BODY type");
                return -1;
            }
            break;
        case 4:
            t->smtputf8 = true;
            break;
        case 8:
            if (strcasecmp(p.value, "FULL") == 0)
                t->ret = "FULL";
            else if (strcasecmp(p.value, "HDRS") == 0)
                t->ret = "HDRS";
            else {
                bad_param(s, "RET");
                return -1;
            }
            break;
        case 16:
            if (!xtext_valid(p.value, ENVID_MAX)) {
                bad_param(s, "ENVID");
                return -1;
            }
            str_sets(&t->envid, p.value);
            break;
        }
    }
    if (r < 0) {
        smtpd_reply(s, 501, "5.5.4 Bad parameter syntax");
        return -1;
    }
    return 0;
}

int smtpd_rcpt_params(struct smtpd_session *s, const char *rest, struct str *notify,
                      struct str *orcpt)
{
    struct param p;
    bool have_notify = false, have_orcpt = false;
    int r;

    str_clear(notify);
    str_clear(orcpt);
    while ((r = param_next(&rest, &p)) > 0) {
        if (strcasecmp(p.key, "NOTIFY") == 0) {
            if (have_notify) {
                smtpd_reply(s, 501, "5.5.4 Duplicate NOTIFY parameter");
                return -1;
            }
            have_notify = true;
            if (!p.has_value || dsn_notify_parse(p.value, notify) < 0) {
                bad_param(s, "NOTIFY");
                return -1;
            }
        } else if (strcasecmp(p.key, "ORCPT") == 0) {
            const char *semi = p.has_value ? strchr(p.value, ';') : NULL;

            if (have_orcpt) {
                smtpd_reply(s, 501, "5.5.4 Duplicate ORCPT parameter");
                return -1;
            }
            have_orcpt = true;
            if (semi == NULL || semi == p.value
                || !xtext_valid(semi + 1, ORCPT_MAX)) {
                bad_param(s, "ORCPT");
                return -1;
            }
            /* the queue keeps a plain address; other address types are not kept */
            if ((size_t)(semi - p.value) == 6 && strncasecmp(p.value, "rfc822", 6) == 0
                && xtext_decode(semi + 1, strlen(semi + 1), orcpt) < 0) {
                bad_param(s, "ORCPT");
                return -1;
            }
        } else {
            smtpd_reply(s, 555, "5.5.4 Unsupported option: %s", p.key);
            return -1;
        }
    }
    if (r < 0) {
        smtpd_reply(s, 501, "5.5.4 Bad parameter syntax");
        return -1;
    }
    return 0;
}
