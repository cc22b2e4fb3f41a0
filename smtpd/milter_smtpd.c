/* smtpd's milters (smtpd_milters): the session's filters are connected at its first
 * MAIL command and told about the connection and HELO then, then each stage of each
 * message as it happens; a reject or tempfail is answered at that stage, before any
 * 250 for the message.  At the end of the data the message, held in memory, goes to
 * the filters (header fields, end of header, body in chunks, end of message), their
 * changes are applied to it, and only then is it written to the queue file, so the
 * 250 covers the final message.  A filter that fails (down, slow, garbage) costs
 * the message milter_default_action: tempfail, or accept as if it were not there. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "headers.h"
#include "log.h"
#include "milter.h"
#include "smtpd.h"
#include "str.h"
#include "xmalloc.h"

struct smtpd_milter_conf {
    char **specs;
    struct milter_timeouts t;
    enum milter_verdict def;        /* MILTER_TEMPFAIL or MILTER_ACCEPT */
    const char *daemon_name;
    const char *mail_name;
};

struct smtpd_milters {
    struct milter **m;
    size_t n;
    bool greeted;                   /* CONNECT and HELO sent */
};

void smtpd_milter_setup(struct smtpd_conf *cf, const struct conf *c)
{
    char **specs = conf_list(c, CONF_smtpd_milters);
    struct smtpd_milter_conf *mc;
    struct str err = STR_INIT;

    if (specs[0] == NULL) {
        strv_free(specs);
        cf->milter = NULL;
        return;
    }
    mc = xcalloc(1, sizeof(*mc));
    mc->specs = specs;
    mc->t.connect_ms = (int)conf_time_ms(c, CONF_milter_connect_timeout);
    mc->t.command_ms = (int)conf_time_ms(c, CONF_milter_command_timeout);
    mc->t.content_ms = (int)conf_time_ms(c, CONF_milter_content_timeout);
    mc->def = milter_default_verdict(conf_str(c, CONF_milter_default_action));
    mc->daemon_name = conf_str(c, CONF_myhostname);
    mc->mail_name = conf_str(c, CONF_mail_name);
    for (size_t i = 0; specs[i] != NULL; i++) {
        struct milter *m;

        if (milter_new(specs[i], &mc->t, &m, &err) < 0)
            log_fatal("smtpd_milters: %s", err.s);
        milter_free(m);
    }
    cf->milter = mc;
    str_free(&err);
}

bool smtpd_milter_active(const struct smtpd_session *s)
{
    return s->cf->milter != NULL;
}

void smtpd_milter_end(struct smtpd_session *s)
{
    if (s->milters == NULL)
        return;
    for (size_t i = 0; i < s->milters->n; i++)
        milter_free(s->milters->m[i]);
    free(s->milters->m);
    free(s->milters);
    s->milters = NULL;
}

/* The reply of a verdict that refuses: 0 when the message may go on, else -1 after
 * the reply (logged as a reject of cmd).  A failed filter is its default. */
static int refuse(struct smtpd_session *s, const char *cmd, const char *rcpt,
                  struct milter_result *r)
{
    enum milter_verdict v = r->verdict;

    if (v == MILTER_FAILED) {
        if (s->cf->milter->def == MILTER_ACCEPT)
            return 0;
        smtpd_reject(s, cmd, rcpt, 451, "4.7.1", "Service unavailable - try again later");
        return -1;
    }
    if (v != MILTER_REJECT && v != MILTER_TEMPFAIL)
        return 0;
    if (r->reply.len > 0) {
        /* "CODE X.Y.Z text" from the filter (checked by milter.c); its code class
         * decides. */
        const char *p = r->reply.s + 3, *dsn = v == MILTER_REJECT ? "5.7.1" : "4.7.1";
        char d[16];
        size_t n;

        while (*p == ' ' || *p == '-')
            p++;
        n = strspn(p, "0123456789.");
        if (n >= 5 && n < sizeof(d) && p[0] == r->reply.s[0] && p[1] == '.') {
            memcpy(d, p, n);
            d[n] = '\0';
            dsn = d;
            p += n;
            while (*p == ' ')
                p++;
        }
        smtpd_reject(s, cmd, rcpt, atoi(r->reply.s) >= 400 && atoi(r->reply.s) < 600
                     ? atoi(r->reply.s) : (v == MILTER_REJECT ? 550 : 451),
                     dsn, "%s", *p ? p : "Message refused by a filter");
        return -1;
    }
    if (v == MILTER_REJECT)
        smtpd_reject(s, cmd, rcpt, 550, "5.7.1", "Command rejected");
    else
        smtpd_reject(s, cmd, rcpt, 451, "4.7.1", "Service unavailable - try again later");
    return -1;
}

/* Runs one stage over every filter in turn until one refuses. */
typedef void (*stage_fn)(struct milter *m, void *arg, struct milter_result *r);

static int stage(struct smtpd_session *s, const char *cmd, const char *rcpt, stage_fn fn,
                 void *arg)
{
    for (size_t i = 0; i < s->milters->n; i++) {
        struct milter *m = s->milters->m[i];
        struct milter_result r;
        int rc;

        if (milter_done(m) && !milter_failed(m))
            continue;
        milter_result_init(&r);
        if (milter_failed(m))
            r.verdict = MILTER_FAILED;
        else
            fn(m, arg, &r);
        rc = refuse(s, cmd, rcpt, &r);
        milter_result_free(&r);
        if (rc < 0)
            return -1;
    }
    return 0;
}

struct greet_arg {
    struct smtpd_session *s;
};

static void do_connect(struct milter *m, void *arg, struct milter_result *r)
{
    struct smtpd_session *s = ((struct greet_arg *)arg)->s;
    const struct smtpd_milter_conf *mc = s->cf->milter;
    char port[16], name[80], underscore[160];

    snprintf(port, sizeof(port), "%u", s->port);
    snprintf(name, sizeof(name), "[%s]", s->addr);
    snprintf(underscore, sizeof(underscore), "unknown [%s]", s->addr);
    const char *macros[] = {
        "j", s->cf->myhostname, "{daemon_name}", mc->daemon_name, "v", mc->mail_name,
        "_", underscore, "{client_addr}", s->addr, "{client_name}", "unknown",
        "{client_ptr}", "unknown", "{client_port}", port, NULL,
    };
    milter_macros(m, 'C', macros);
    milter_connect(m, name, s->addr, s->port, r);
}

static void do_helo(struct milter *m, void *arg, struct milter_result *r)
{
    struct smtpd_session *s = ((struct greet_arg *)arg)->s;
    const char *macros[] = { "{tls_version}", s->tls ? "TLS" : "", NULL };

    milter_macros(m, 'H', macros);
    milter_helo(m, s->helo.len ? s->helo.s : "", r);
}

struct args_arg {
    struct smtpd_session *s;
    const char *const *args;
    const char *addr;
};

static void do_mail(struct milter *m, void *arg, struct milter_result *r)
{
    struct args_arg *a = arg;
    struct smtpd_session *s = a->s;
    const char *macros[] = {
        "{auth_type}", s->authenticated ? s->sasl_method : "",
        "{auth_authen}", s->authenticated ? s->sasl_user.s : "",
        "{mail_addr}", a->addr, NULL,
    };

    milter_macros(m, 'M', macros);
    milter_mail(m, a->args, r);
}

static void do_rcpt(struct milter *m, void *arg, struct milter_result *r)
{
    struct args_arg *a = arg;
    const char *macros[] = { "i", a->s->txn.id, "{rcpt_addr}", a->addr, NULL };

    milter_macros(m, 'R', macros);
    milter_rcpt(m, a->args, r);
}

int smtpd_milter_mail(struct smtpd_session *s)
{
    struct greet_arg g = { s };
    struct str path = STR_INIT;
    int rc;

    if (s->cf->milter == NULL)
        return 0;
    if (s->milters == NULL) {
        const struct smtpd_milter_conf *mc = s->cf->milter;
        struct str err = STR_INIT;

        s->milters = xcalloc(1, sizeof(*s->milters));
        for (size_t i = 0; mc->specs[i] != NULL; i++) {
            struct milter *m;

            if (milter_new(mc->specs[i], &mc->t, &m, &err) < 0)
                log_fatal("smtpd_milters: %s", err.s);
            s->milters->m = xreallocarray(s->milters->m, s->milters->n + 1, sizeof(m));
            s->milters->m[s->milters->n++] = m;
        }
        str_free(&err);
    }
    if (!s->milters->greeted) {
        s->milters->greeted = true;
        if (stage(s, "CONNECT", NULL, do_connect, &g) < 0
            || stage(s, "HELO", NULL, do_helo, &g) < 0)
            return -1;
    }
    str_printf(&path, "<%s>", s->txn.sender.s);
    {
        const char *args[] = { path.s, NULL };
        struct args_arg a = { s, args, s->txn.sender.s };

        rc = stage(s, "MAIL", NULL, do_mail, &a);
    }
    str_free(&path);
    return rc;
}

int smtpd_milter_rcpt(struct smtpd_session *s, const char *addr)
{
    struct str path = STR_INIT;
    int rc;

    if (s->milters == NULL)
        return 0;
    str_printf(&path, "<%s>", addr);
    {
        const char *args[] = { path.s, NULL };
        struct args_arg a = { s, args, addr };

        rc = stage(s, "RCPT", addr, do_rcpt, &a);
    }
    str_free(&path);
    return rc;
}

static void do_data(struct milter *m, void *arg, struct milter_result *r)
{
    struct smtpd_session *s = arg;
    const char *macros[] = { "i", s->txn.id, NULL };

    milter_macros(m, 'T', macros);
    milter_data(m, r);
}

int smtpd_milter_data(struct smtpd_session *s, const char *cmd)
{
    if (s->milters == NULL)
        return 0;
    return stage(s, cmd, NULL, do_data, s);
}

/* ---- the message ---- */

/* One header field of the message being changed: its raw text ("Name: value\n",
 * continuation lines included). */
struct field {
    char *name;
    struct str raw;
};

struct fields {
    struct field *f;
    size_t n;
};

static void fields_insert(struct fields *fs, size_t at, const char *name, size_t nlen,
                          const char *raw, size_t rlen)
{
    fs->f = xreallocarray(fs->f, fs->n + 1, sizeof(*fs->f));
    memmove(fs->f + at + 1, fs->f + at, (fs->n - at) * sizeof(*fs->f));
    fs->f[at].name = xstrndup(name, nlen);
    str_init(&fs->f[at].raw);
    str_set(&fs->f[at].raw, raw, rlen);
    fs->n++;
}

static void fields_free(struct fields *fs)
{
    for (size_t i = 0; i < fs->n; i++) {
        free(fs->f[i].name);
        str_free(&fs->f[i].raw);
    }
    free(fs->f);
}

/* "Name: value\n" from a filter's name and value: CR LF and bare CR become LF, and a
 * line break not followed by white space gets a tab (it must stay one field). */
static void field_text(struct str *out, const char *name, const char *value)
{
    str_clear(out);
    str_printf(out, "%s:", name);
    if (*value != ' ' && *value != '\t' && *value != '\0')
        str_appendc(out, ' ');
    for (const char *p = value; *p; p++) {
        if (*p == '\r' && p[1] == '\n')
            continue;
        if (*p == '\r' || *p == '\n') {
            str_appendc(out, '\n');
            if (p[1] != ' ' && p[1] != '\t' && p[1] != '\0')
                str_appendc(out, '\t');
            continue;
        }
        str_appendc(out, *p);
    }
    str_appendc(out, '\n');
}

/* The value of a raw field as a filter expects it: after "Name:" and one space,
 * without its last line end. */
static void field_value(const char *raw, size_t len, size_t name_len, struct str *out)
{
    size_t i = name_len;

    while (i < len && raw[i] != ':')
        i++;
    if (i < len)
        i++;
    if (i < len && raw[i] == ' ')
        i++;
    while (len > i && (raw[len - 1] == '\n' || raw[len - 1] == '\r'))
        len--;
    str_set(out, raw + i, len - i);
}

struct msg_arg {
    struct smtpd_session *s;
    const struct fields *fs;
    const char *body;               /* CRLF line ends */
    size_t body_len;
};

static void do_content(struct milter *m, void *arg, struct milter_result *r)
{
    struct msg_arg *a = arg;
    const char *macros[] = { "i", a->s->txn.id, NULL };
    struct str v = STR_INIT;

    for (size_t i = 0; i < a->fs->n && r->verdict == MILTER_CONTINUE; i++) {
        field_value(a->fs->f[i].raw.s, a->fs->f[i].raw.len, strlen(a->fs->f[i].name), &v);
        milter_header(m, a->fs->f[i].name, v.s ? v.s : "", r);
    }
    str_free(&v);
    if (r->verdict == MILTER_CONTINUE)
        milter_eoh(m, r);
    if (r->verdict == MILTER_CONTINUE)
        milter_body(m, a->body, a->body_len, r);
    if (r->verdict == MILTER_CONTINUE) {
        milter_macros(m, 'E', macros);
        milter_eom(m, r);
    } else if (r->verdict == MILTER_ACCEPT) {
        milter_abort(m);
    }
}

/* Applies one filter's changes to the fields and the body (LF line ends). */
static void apply(const struct milter_result *r, struct fields *fs, struct str *body,
                  bool *body_replaced)
{
    struct str text = STR_INIT;

    for (size_t k = 0; k < r->nmods; k++) {
        const struct milter_mod *md = &r->mods[k];

        switch (md->type) {
        case MILTER_MOD_ADDHDR:
        case MILTER_MOD_INSHDR: {
            size_t at = md->type == MILTER_MOD_ADDHDR || md->index > fs->n ? fs->n
                                                                            : md->index;
            field_text(&text, md->name, md->value.s);
            fields_insert(fs, at, md->name, strlen(md->name), text.s, text.len);
            break;
        }
        case MILTER_MOD_CHGHDR: {
            unsigned long seen = 0;
            size_t i;

            for (i = 0; i < fs->n; i++)
                if (strcasecmp(fs->f[i].name, md->name) == 0 && ++seen == md->index)
                    break;
            if (i == fs->n) {
                /* No such field: a non-empty value adds it (as Sendmail does). */
                if (md->value.len > 0) {
                    field_text(&text, md->name, md->value.s);
                    fields_insert(fs, fs->n, md->name, strlen(md->name), text.s, text.len);
                }
            } else if (md->value.len == 0) {
                free(fs->f[i].name);
                str_free(&fs->f[i].raw);
                memmove(fs->f + i, fs->f + i + 1, (fs->n - i - 1) * sizeof(*fs->f));
                fs->n--;
            } else {
                field_text(&text, md->name, md->value.s);
                str_set(&fs->f[i].raw, text.s, text.len);
            }
            break;
        }
        case MILTER_MOD_BODY:
            if (!*body_replaced) {
                str_clear(body);
                *body_replaced = true;
            }
            for (size_t i = 0; i < md->value.len; i++)
                if (md->value.s[i] != '\r' || (i + 1 < md->value.len && md->value.s[i + 1] != '\n'))
                    str_appendc(body, md->value.s[i] == '\r' ? '\n' : md->value.s[i]);
            break;
        }
    }
    str_free(&text);
}

int smtpd_milter_message(struct smtpd_session *s, struct str *msg, const char *cmd,
                         const char **to)
{
    struct fields fs = { NULL, 0 };
    struct header_reader hr;
    struct header_field f;
    struct str body = STR_INIT, crlf = STR_INIT;
    size_t hlen = header_section_len(msg->s ? msg->s : "", msg->len);
    size_t nfields = 0, raw_len = 0;
    bool body_replaced = false;
    int rc = 0;

    *to = "incoming";
    if (s->milters == NULL)
        return 0;
    header_reader_init(&hr, msg->s ? msg->s : "", msg->len);
    while (header_next(&hr, &f) == 1) {
        fields_insert(&fs, nfields, f.name, f.name_len, f.raw, f.raw_len);
        raw_len += f.raw_len;
        nfields++;
    }
    header_reader_free(&hr);
    /* The body after the empty line that ends the header, with CRLF for the filters. */
    {
        size_t start = hlen;

        str_set(&body, msg->s ? msg->s + start : "", msg->len - start);
        str_reserve(&crlf, body.len + body.len / 32);
        for (size_t i = 0; i < body.len; i++) {
            if (body.s[i] == '\n')
                str_appendc(&crlf, '\r');
            str_appendc(&crlf, body.s[i]);
        }
    }
    for (size_t i = 0; i < s->milters->n && rc == 0; i++) {
        struct milter *m = s->milters->m[i];
        struct milter_result r;
        struct msg_arg a = { s, &fs, crlf.s ? crlf.s : "", crlf.len };

        if (milter_done(m) && !milter_failed(m))
            continue;
        milter_result_init(&r);
        if (milter_failed(m))
            r.verdict = MILTER_FAILED;
        else
            do_content(m, &a, &r);
        if (r.verdict == MILTER_DISCARD) {
            log_info("%s: milter-discard: END-OF-MESSAGE from [%s]: %s", s->txn.id, s->addr,
                     milter_name(m));
            *to = NULL;
            milter_result_free(&r);
            break;
        }
        if (refuse(s, cmd, NULL, &r) < 0) {
            rc = -1;
        } else if (r.verdict != MILTER_FAILED) {
            apply(&r, &fs, &body, &body_replaced);
            if (r.quarantine) {
                log_info("%s: milter-hold: END-OF-MESSAGE from [%s]: %s: %s", s->txn.id,
                         s->addr, milter_name(m), r.reason.s ? r.reason.s : "");
                *to = "hold";
            }
        }
        milter_result_free(&r);
    }
    if (rc == 0 && *to != NULL) {
        /* The message as the filters left it: the fields, the empty line that ended
         * the header (when there was one), the body. */
        struct str out = STR_INIT;

        for (size_t i = 0; i < fs.n; i++)
            str_append(&out, fs.f[i].raw.s, fs.f[i].raw.len);
        if (hlen > raw_len)
            str_append(&out, msg->s + raw_len, hlen - raw_len);
        else if (body_replaced && fs.n > 0)
            str_appendc(&out, '\n');
        if (body.len > 0)
            str_append(&out, body.s, body.len);
        str_free(msg);
        *msg = out;
    }
    fields_free(&fs);
    str_free(&body);
    str_free(&crlf);
    return rc;
}
