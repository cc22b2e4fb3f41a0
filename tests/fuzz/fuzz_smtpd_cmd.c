/* libFuzzer harness for smtpd's command parser: the command dispatch and MAIL of
 * smtpd/cmd.c, the ESMTP parameters of smtpd/params.c (SIZE, BODY, SMTPUTF8, RET,
 * ENVID; NOTIFY, ORCPT; anything else, AUTH= included, is refused) and AUTH's
 * base64 and PLAIN decoding (smtpd/auth_decode.c).  The rest of smtpd is replaced by
 * stubs below: replies are checked and counted, RCPT and AUTH parse their arguments
 * as rcpt.c and auth.c do and go no further (no resolve or auth service).
 * Build and run: make fuzz (build/fuzz/fuzz_smtpd_cmd), make fuzz-smoke-fuzz_smtpd_cmd.
 *
 * The first input byte picks the settings (SMTPUTF8, a size limit, AUTH offered, TLS
 * required); the rest is command lines ending in '\n'.  Checked: every command gets
 * exactly one final reply with a valid code and a one-line text; a MAIL answered 250
 * leaves a transaction whose sender writes back (addr_quote) as a path that parses to
 * the same address, and whose SIZE, BODY, RET, ENVID and SMTPUTF8 are what the line
 * said (an independent reading of its parameters); a refused MAIL leaves none; RCPT's
 * NOTIFY and ORCPT come out well-formed; accepted base64 is canonical (it encodes
 * back to the same text) and PLAIN credentials split as the grammar says. */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "str.h"
#include "stream.h"
#include "fuzz_b64.h"
#include "xtext.h"
#include "../../smtpd/auth_decode.h"
#include "../../smtpd/smtpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LINE_MAX_FUZZ 2048

static struct {
    int finals;                 /* final replies to the current command */
    int last_code;
    int auth_wait;              /* 0, or the responses AUTH still waits for */
    bool auth_plain;
} st;

static void check_reply(int code, const char *fmt, va_list ap)
{
    char buf[2048];

    if (code < 200 || code > 599)
        abort();
    vsnprintf(buf, sizeof(buf), fmt, ap);
    if (strpbrk(buf, "\r\n") != NULL)
        abort();
}

void smtpd_reply(struct smtpd_session *s, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    check_reply(code, fmt, ap);
    va_end(ap);
    st.finals++;
    st.last_code = code;
}

void smtpd_reply_cont(struct smtpd_session *s, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    check_reply(code, fmt, ap);
    va_end(ap);
    if (code != 250 || st.finals != 0)
        abort();
}

void smtpd_reject(struct smtpd_session *s, const char *cmd, const char *rcpt, int code,
                  const char *dsn, const char *fmt, ...)
{
    va_list ap;

    if (code < 400 || dsn == NULL || dsn[0] != '0' + code / 100 || dsn[1] != '.')
        abort();
    va_start(ap, fmt);
    check_reply(code, fmt, ap);
    va_end(ap);
    st.finals++;
    st.last_code = code;
}

int smtpd_flush(struct smtpd_session *s)
{
    return 0;
}

bool smtpd_tls_offer(const struct smtpd_session *s)
{
    return false;
}

void smtpd_cmd_starttls(struct smtpd_session *s, char *arg)
{
    smtpd_reply(s, 454, "4.7.0 TLS not available");
}

bool smtpd_auth_offer(const struct smtpd_session *s)
{
    return s->cf->sasl_enable && !s->authenticated;
}

int smtpd_sender_login_check(struct smtpd_session *s, const char *sender)
{
    return 0;
}

void smtpd_cmd_data(struct smtpd_session *s, char *arg)
{
    smtpd_reply(s, 554, "5.5.1 Error: no valid recipients");
}

void smtpd_cmd_bdat(struct smtpd_session *s, char *arg)
{
    smtpd_reply(s, 554, "5.5.1 Error: no valid recipients");
}

void smtpd_data_free(struct smtpd_data *d)
{
    (void)d;
}

void smtpd_addrset_free(struct smtpd_addrset *set)
{
    free(set->slot);
    memset(set, 0, sizeof(*set));
}

/* policy.c and milter_smtpd.c stand outside the harness: no tables, no filters */
void smtpd_policy_txn_free(struct smtpd_policy_txn *p)
{
    str_free(&p->why);
    memset(p, 0, sizeof(*p));
}

int smtpd_milter_mail(struct smtpd_session *s)
{
    (void)s;
    return 0;
}

/* ---- base64, to check that what the decoder accepts is canonical ---- */

/* Decodes one AUTH text (an initial response or a response line) and checks. */
static int auth_decode(const char *text, struct str *out)
{
    struct str again = STR_INIT;
    int r = smtpd_b64_decode(text, strlen(text), out);

    if (r == 0) {
        b64_encode(out, &again);
        if (strcmp(again.s, text) != 0)
            abort();
    }
    str_free(&again);
    return r;
}

static void auth_plain_check(const struct str *msg)
{
    struct str user = STR_INIT, pass = STR_INIT;

    if (smtpd_plain_split(msg, &user, &pass) == 0) {
        /* authzid NUL authcid NUL passwd: lengths add up, user holds no NUL */
        size_t zlen = strlen(msg->s);
        if (memchr(user.s, '\0', user.len) != NULL)
            abort();
        if (zlen != 0 && zlen != user.len)
            abort();
        if ((zlen == 0 ? 0 : zlen) + 1 + user.len + 1 + pass.len != msg->len)
            abort();
        if (memcmp(msg->s + msg->len - pass.len, pass.s, pass.len) != 0)
            abort();
        if (smtpd_cred_ok(pass.s, pass.len, 1024) && memchr(pass.s, '\0', pass.len) != NULL)
            abort();
    }
    str_free(&user);
    str_free(&pass);
}

/* AUTH as auth.c parses it; the credentials go nowhere. */
void smtpd_cmd_auth(struct smtpd_session *s, char *arg)
{
    struct str buf = STR_INIT;
    char *ir = NULL;
    const char *why;

    if (smtpd_auth_args(arg, &ir, &why) < 0) {
        smtpd_reply(s, 501, "%s", why);
        return;
    }
    st.auth_plain = strcasecmp(arg, "PLAIN") == 0;
    if (!st.auth_plain && strcasecmp(arg, "LOGIN") != 0) {
        smtpd_reply(s, 504, "5.5.4 Unsupported authentication mechanism");
        return;
    }
    if (ir == NULL) {
        st.auth_wait = st.auth_plain ? 1 : 2;
        return;                     /* "334" and the next line is the response */
    }
    if (strcmp(ir, "=") == 0) {
        str_clear(&buf);
    } else if (auth_decode(ir, &buf) < 0) {
        smtpd_reply(s, 501, "5.5.2 Invalid authentication response");
        str_free(&buf);
        return;
    }
    if (st.auth_plain) {
        auth_plain_check(&buf);
        smtpd_reply(s, 535, "5.7.8 Error: authentication failed");
    } else {
        st.auth_wait = 1;           /* the password */
    }
    str_free(&buf);
}

static void auth_response(struct smtpd_session *s, const char *line)
{
    struct str buf = STR_INIT;

    if (strcmp(line, "*") == 0) {
        st.auth_wait = 0;
        smtpd_reply(s, 501, "5.7.0 Authentication aborted");
    } else if (auth_decode(line, &buf) < 0) {
        st.auth_wait = 0;
        smtpd_reply(s, 501, "5.5.2 Invalid authentication response");
    } else if (--st.auth_wait == 0) {
        if (st.auth_plain)
            auth_plain_check(&buf);
        smtpd_reply(s, 535, "5.7.8 Error: authentication failed");
    }
    str_free(&buf);
}

/* ---- RCPT, parsed as rcpt.c does ---- */

void smtpd_cmd_rcpt(struct smtpd_session *s, char *arg)
{
    struct smtpd_txn *t = &s->txn;
    struct str addr = STR_INIT, notify = STR_INIT, orcpt = STR_INIT;
    const char *rest, *why;

    if (!t->active) {
        smtpd_reply(s, 503, "5.5.1 Error: need MAIL command");
        return;
    }
    if (strncasecmp(arg, "TO:", 3) != 0) {
        smtpd_reply(s, 501, "5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    if (addr_parse_path(arg + 3, t->smtputf8 ? ADDR_SMTPUTF8 : 0, &addr, &rest, &why) < 0) {
        smtpd_reply(s, 501, "5.1.3 Bad recipient address syntax (%s)", why);
        goto out;
    }
    if (smtpd_rcpt_params(s, rest, &notify, &orcpt) < 0)
        goto out;
    if (notify.len > 0) {
        /* NEVER alone, or SUCCESS, FAILURE, DELAY each at most once */
        char *copy = strdup(notify.s), *save = NULL;
        unsigned seen = 0;

        if (strcmp(copy, "NEVER") != 0) {
            for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                unsigned bit = strcmp(w, "SUCCESS") == 0   ? 1
                               : strcmp(w, "FAILURE") == 0 ? 2
                               : strcmp(w, "DELAY") == 0   ? 4
                                                           : 0;
                if (bit == 0 || (seen & bit))
                    abort();
                seen |= bit;
            }
        }
        free(copy);
    }
    for (size_t i = 0; i < orcpt.len; i++) {
        unsigned char c = (unsigned char)orcpt.s[i];
        if (c <= ' ' || c == 0x7f)
            abort();
    }
    t->rcpt_accepted++;
    smtpd_reply(s, 250, "2.1.5 Ok");
out:
    str_free(&addr);
    str_free(&notify);
    str_free(&orcpt);
}

/* ---- MAIL: an independent reading of the parameters ---- */

struct expect {
    bool ok;                    /* all keys known, each once, values as they must be */
    long long size;
    const char *body, *ret;
    const char *envid;          /* points into the line copy */
    size_t envid_len;
    bool smtputf8;
};

static void mail_expect(const char *params, const struct smtpd_conf *cf, struct expect *e)
{
    const char *p = params;

    memset(e, 0, sizeof(*e));
    e->ok = true;
    e->size = -1;
    while (*p != '\0') {
        size_t n = strcspn(p, " "), k;
        const char *eq;

        if (n == 0) {
            p++;
            continue;
        }
        eq = memchr(p, '=', n);
        k = eq ? (size_t)(eq - p) : n;
        if (k == 4 && strncasecmp(p, "SIZE", 4) == 0 && eq != NULL && e->size < 0) {
            size_t digits = n - 5;
            e->size = 0;
            if (digits == 0 || digits > 18)
                e->ok = false;
            for (size_t i = 5; i < n; i++) {
                if (p[i] < '0' || p[i] > '9')
                    e->ok = false;
                else
                    e->size = e->size * 10 + (p[i] - '0');
            }
        } else if (k == 4 && strncasecmp(p, "BODY", 4) == 0 && eq != NULL && !e->body) {
            e->body = n == 9 && strncasecmp(p + 5, "7BIT", 4) == 0       ? "7BIT"
                      : n == 13 && strncasecmp(p + 5, "8BITMIME", 8) == 0 ? "8BITMIME"
                                                                         : "";
        } else if (k == 3 && strncasecmp(p, "RET", 3) == 0 && eq != NULL && !e->ret) {
            e->ret = n == 8 && strncasecmp(p + 4, "FULL", 4) == 0   ? "FULL"
                     : n == 8 && strncasecmp(p + 4, "HDRS", 4) == 0 ? "HDRS"
                                                                    : "";
        } else if (k == 5 && strncasecmp(p, "ENVID", 5) == 0 && eq != NULL && !e->envid) {
            e->envid = p + 6;
            e->envid_len = n - 6;
        } else if (n == 8 && strncasecmp(p, "SMTPUTF8", 8) == 0 && cf->smtputf8
                   && !e->smtputf8) {
            e->smtputf8 = true;
        } else {
            e->ok = false;
        }
        p += n;
    }
}

static void mail_check(struct smtpd_session *s, const char *line)
{
    const struct smtpd_txn *t = &s->txn;
    struct str q = STR_INIT, again = STR_INIT;
    const char *rest, *why;
    struct expect e;
    int flags = ADDR_ALLOW_NULL | (s->cf->smtputf8 ? ADDR_SMTPUTF8 : 0);

    if (st.last_code != 250) {
        if (t->active || t->sender.len != 0)
            abort();
        return;
    }
    if (!t->active || strncasecmp(line, "FROM:", 5) != 0)
        abort();
    if (t->sender.len > 0 && strchr(t->sender.s, '@') == NULL)
        abort();
    if (!t->smtputf8)
        for (size_t i = 0; i < t->sender.len; i++)
            if ((unsigned char)t->sender.s[i] >= 0x80)
                abort();
    /* the sender writes back as a path that reads as the same address */
    str_appendc(&q, '<');
    addr_quote(t->sender.s, &q);
    str_appendc(&q, '>');
    if (q.len > ADDR_PATH_MAX + strlen(s->cf->myorigin) + 1)
        abort();
    if (addr_parse_path(q.s, flags, &again, &rest, &why) < 0 || *rest != '\0')
        abort();
    addr_fold_domain(again.s);
    if (strcmp(again.s, t->sender.s) != 0)
        abort();
    /* the parameters are what the line said */
    if (addr_parse_path(line + 5, flags, &again, &rest, &why) < 0)
        abort();
    mail_expect(rest, s->cf, &e);
    if (!e.ok || t->declared_size != e.size || t->smtputf8 != e.smtputf8)
        abort();
    if (s->cf->message_size_limit > 0 && t->declared_size > s->cf->message_size_limit)
        abort();
    if ((e.body == NULL) != (t->body == NULL) || (e.body && strcmp(e.body, t->body) != 0))
        abort();
    if ((e.ret == NULL) != (t->ret == NULL) || (e.ret && strcmp(e.ret, t->ret) != 0))
        abort();
    if (e.envid == NULL ? t->envid.len != 0
                        : t->envid.len != e.envid_len
                              || memcmp(t->envid.s, e.envid, e.envid_len) != 0
                              || !xtext_valid(t->envid.s, 100))
        abort();
    str_free(&q);
    str_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtpd_conf cf;
    struct smtpd_session s;
    struct str line = STR_INIT;
    size_t pos = 1;

    if (size == 0)
        return 0;
    memset(&cf, 0, sizeof(cf));
    cf.myhostname = "mx.example.org";
    cf.myorigin = "example.org";
    cf.smtputf8 = data[0] & 1;
    cf.message_size_limit = data[0] & 2 ? 1000000 : 0;
    cf.sasl_enable = data[0] & 4;
    cf.tls_level = data[0] & 8 ? SMTPD_TLS_ENCRYPT : SMTPD_TLS_NONE;
    cf.line_length_limit = LINE_MAX_FUZZ;
    /* no early-talker or pipelining look at a socket, no junk or disk space limit:
     * the parsers are what is fuzzed here */
    cf.forbid_unauth_pipelining = false;
    cf.junk_command_limit = LLONG_MAX;
    cf.queue_minfree = 0;
    memset(&s, 0, sizeof(s));
    s.cf = &cf;
    s.st = stream_fdopen(open("/dev/null", O_RDWR | O_CLOEXEC));
    snprintf(s.addr, sizeof(s.addr), "192.0.2.1");
    s.txn.declared_size = -1;
    memset(&st, 0, sizeof(st));

    while (pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : size - pos;
        bool was_mail;

        str_set(&line, data + pos, n);
        pos += n + 1;
        if (line.len > 0 && line.s[line.len - 1] == '\r')
            str_truncate(&line, line.len - 1);
        /* smtpd's reader refuses lines with NUL and overlong ones */
        if (memchr(line.s, '\0', line.len) != NULL || line.len > LINE_MAX_FUZZ)
            continue;
        st.finals = 0;
        if (st.auth_wait > 0) {
            auth_response(&s, line.s);
            if (st.finals > 1)
                abort();
            continue;
        }
        {
            const char *p = line.s + strspn(line.s, " ");
            was_mail = strncasecmp(p, "MAIL", 4) == 0 && (p[4] == ' ' || p[4] == '\0');
        }
        bool was_active = s.txn.active;
        smtpd_command(&s, line.s);
        if (st.auth_wait > 0 ? st.finals != 0 : st.finals != 1)
            abort();
        if (was_mail && !was_active && (cf.tls_level != SMTPD_TLS_ENCRYPT)) {
            const char *p = line.s + strspn(line.s, " ") + 4;
            mail_check(&s, p + strspn(p, " "));
        }
        if (s.done)
            break;
    }
    smtpd_txn_free(&s.txn);
    stream_close(s.st);
    str_free(&s.helo);
    str_free(&s.line);
    str_free(&s.sasl_user);
    str_free(&line);
    return 0;
}
