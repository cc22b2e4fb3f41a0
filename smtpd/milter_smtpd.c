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
#include "milter_msg.h"
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

int smtpd_milter_message(struct smtpd_session *s, struct str *msg, const char *cmd,
                         const char **to)
{
    struct milter_result r;
    struct str why = STR_INIT;
    const char *who = NULL;
    int rc = 0;

    if (s->milters == NULL)
        return 0;
    milter_result_init(&r);
    milter_msg_run(s->milters->m, s->milters->n, s->txn.id, s->cf->milter->def, msg, &r,
                   &who);
    if (r.verdict == MILTER_DISCARD) {
        log_info("%s: milter-discard: END-OF-MESSAGE from [%s]: %s", s->txn.id, s->addr,
                 who ? who : "");
        *to = NULL;
    } else if (refuse(s, cmd, NULL, &r) < 0) {
        rc = -1;
    } else {
        int e = r.nmods > 0 ? milter_env_apply(s->txn.qw, s->cf->resolve, s->txn.id, &r,
                                               &why) : 0;

        if (e == 0)
            s->txn.nrcpt = qw_rcpt_count(s->txn.qw);
        if (e < 0) {
            smtpd_reject(s, cmd, NULL, 451, "4.3.0", "%s", why.s ? why.s : "try again later");
            rc = -1;
        } else if (e == 1) {
            log_info("%s: milter-discard: END-OF-MESSAGE from [%s]: every recipient removed "
                     "by a filter", s->txn.id, s->addr);
            *to = NULL;
        } else if (r.quarantine) {
            log_info("%s: milter-hold: END-OF-MESSAGE from [%s]: %s: %s", s->txn.id, s->addr,
                     who ? who : "", r.reason.s ? r.reason.s : "");
            *to = "hold";
        }
    }
    milter_result_free(&r);
    str_free(&why);
    return rc;
}
