/* pickup's non_smtpd_milters: mail from sendmail(1) through the mail filters before
 * it is queued.  The filters see what Postfix's cleanup shows them for mail that did
 * not come through smtpd: a connection from localhost [127.0.0.1], HELO localhost,
 * MAIL, one RCPT per recipient, DATA, then the message (milter_msg.h, the same code
 * smtpd uses).  Each file gets its own connections to the filters, closed with QUIT
 * after it.
 *
 * sendmail(1) has already gone when pickup reads the file, so nobody can hear a
 * refusal: a REJECT (at any stage) queues the message with a "reject" attribute and
 * qmgr bounces it to the sender with the filter's reason, as Postfix's cleanup
 * bounces mail from pickup; a TEMPFAIL, or a filter that is down under
 * milter_default_action = tempfail, leaves the file in maildrop/ for a later scan;
 * DISCARD removes it.  A refused recipient cannot be refused alone here (Postfix
 * calls it a configuration error): the message waits in maildrop/, logged. */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "milter.h"
#include "milter_msg.h"
#include "pickup.h"
#include "queue.h"
#include "xmalloc.h"

struct pickup_milters {
    char **specs;
    struct milter_timeouts t;
    enum milter_verdict def;
    const char *myhostname;
    const char *mail_name;
};

struct pickup_milters *pickup_milter_setup(const struct conf *c)
{
    char **specs = conf_list(c, CONF_non_smtpd_milters);
    struct pickup_milters *pm;
    struct str err = STR_INIT;

    if (specs[0] == NULL) {
        strv_free(specs);
        return NULL;
    }
    pm = xcalloc(1, sizeof(*pm));
    pm->specs = specs;
    pm->t.connect_ms = (int)conf_time_ms(c, CONF_milter_connect_timeout);
    pm->t.command_ms = (int)conf_time_ms(c, CONF_milter_command_timeout);
    pm->t.content_ms = (int)conf_time_ms(c, CONF_milter_content_timeout);
    pm->def = milter_default_verdict(conf_str(c, CONF_milter_default_action));
    pm->myhostname = conf_str(c, CONF_myhostname);
    pm->mail_name = conf_str(c, CONF_mail_name);
    for (size_t i = 0; specs[i] != NULL; i++) {
        struct milter *m;

        if (milter_new(specs[i], &pm->t, &m, &err) < 0)
            log_fatal("non_smtpd_milters: %s", err.s);
        milter_free(m);
    }
    str_free(&err);
    return pm;
}

void pickup_milter_free(struct pickup_milters *pm)
{
    if (pm == NULL)
        return;
    strv_free(pm->specs);
    free(pm);
}

/* A verdict before the content: TAKE to go on (a failed filter under the default
 * accept included), else what it means for the file. */
static enum pickup_milter_verdict verdict(const struct pickup_milters *pm, struct milter *m,
                                          const char *id, const char *stage,
                                          const struct milter_result *r, struct str *why)
{
    switch (r->verdict) {
    case MILTER_CONTINUE:
    case MILTER_ACCEPT:
        return PICKUP_MILTER_TAKE;
    case MILTER_FAILED:
        if (pm->def == MILTER_ACCEPT)
            return PICKUP_MILTER_TAKE;
        str_printf(why, "milter %s unavailable", milter_name(m));
        return PICKUP_MILTER_TEMPFAIL;
    case MILTER_DISCARD:
        log_info("%s: milter-discard: %s from localhost[127.0.0.1]: %s", id, stage,
                 milter_name(m));
        return PICKUP_MILTER_DISCARD;
    case MILTER_TEMPFAIL:
        str_printf(why, "milter %s: %s", milter_name(m),
                   r->reply.len ? r->reply.s : "4.7.1 try again later");
        return PICKUP_MILTER_TEMPFAIL;
    case MILTER_REJECT:
        break;
    }
    if (strcmp(stage, "RCPT") == 0) {
        log_warn("%s: milter %s: configuration error: a recipient of mail from sendmail "
                 "cannot be refused alone; the message waits in maildrop/", id,
                 milter_name(m));
        str_sets(why, "recipient refused by a filter");
        return PICKUP_MILTER_TEMPFAIL;
    }
    /* "550 5.7.1 text" from the filter, or its plain reject */
    if (r->reply.len > 4 && strncmp(r->reply.s + 4, "5.", 2) == 0)
        str_sets(why, r->reply.s + 4);
    else if (r->reply.len > 4)
        str_printf(why, "5.7.1 %s", r->reply.s + 4);
    else
        str_sets(why, "5.7.1 message content rejected");
    log_info("%s: milter-reject: %s from localhost[127.0.0.1]: %s: %s", id, stage,
             milter_name(m), why->s);
    return PICKUP_MILTER_REJECT;
}

/* The stages before the content, over every filter, until one refuses. */
static enum pickup_milter_verdict envelope_stages(struct pickup_milters *pm,
                                                  struct milter **ms, size_t n,
                                                  struct queue_writer *qw, const char *id,
                                                  struct str *why)
{
    const char *sender = qw_envelope_sender(qw);
    struct str path = STR_INIT;
    enum pickup_milter_verdict v = PICKUP_MILTER_TAKE;
    const char *conn[] = {
        "j", pm->myhostname, "{daemon_name}", pm->myhostname, "v", pm->mail_name,
        "_", "localhost [127.0.0.1]", "{client_addr}", "127.0.0.1",
        "{client_name}", "localhost", "{client_ptr}", "localhost", NULL,
    };
    const char *helo[] = { "{tls_version}", "", NULL };
    const char *mail[] = { "i", id, "{mail_addr}", sender, NULL };
    const char *data[] = { "i", id, NULL };

    for (size_t i = 0; i < n && v == PICKUP_MILTER_TAKE; i++) {
        struct milter *m = ms[i];
        struct milter_result r;

#define STAGE(name, call)                                           \
        if (v == PICKUP_MILTER_TAKE && !milter_done(m)) {           \
            milter_result_init(&r);                                 \
            call;                                                   \
            v = verdict(pm, m, id, name, &r, why);                  \
            milter_result_free(&r);                                 \
        }
        STAGE("CONNECT", (milter_macros(m, 'C', conn),
                          milter_connect(m, "localhost", "127.0.0.1", 0, &r)));
        STAGE("HELO", (milter_macros(m, 'H', helo), milter_helo(m, "localhost", &r)));
        str_printf(&path, "<%s>", sender);
        {
            const char *args[] = { path.s, NULL };
            STAGE("MAIL", (milter_macros(m, 'M', mail), milter_mail(m, args, &r)));
        }
        for (size_t k = 0; k < qw_rcpt_count(qw) && v == PICKUP_MILTER_TAKE; k++) {
            const char *addr = qw_rcpt_orcpt(qw, k) ? qw_rcpt_orcpt(qw, k)
                                                     : qw_rcpt_addr(qw, k);
            const char *rcpt[] = { "i", id, "{rcpt_addr}", addr, NULL };

            str_clear(&path);
            str_printf(&path, "<%s>", addr);
            const char *args[] = { path.s, NULL };
            STAGE("RCPT", (milter_macros(m, 'R', rcpt), milter_rcpt(m, args, &r)));
        }
        STAGE("DATA", (milter_macros(m, 'T', data), milter_data(m, &r)));
#undef STAGE
        str_clear(&path);
    }
    str_free(&path);
    return v;
}

enum pickup_milter_verdict pickup_milter_run(struct pickup_milters *pm,
                                             struct queue_writer *qw,
                                             struct resolve_clnt *rc, const char *id,
                                             struct str *msg, const char **to,
                                             struct str *why)
{
    struct milter **ms = xcalloc(1, sizeof(*ms) * 16);
    size_t n = 0;
    struct str err = STR_INIT;
    enum pickup_milter_verdict v;

    for (size_t i = 0; pm->specs[i] != NULL && n < 16; i++)
        if (milter_new(pm->specs[i], &pm->t, &ms[n], &err) == 0)
            n++;
    v = envelope_stages(pm, ms, n, qw, id, why);
    if (v == PICKUP_MILTER_TAKE) {
        struct milter_result r;
        const char *who = NULL;

        milter_result_init(&r);
        milter_msg_run(ms, n, id, pm->def, msg, &r, &who);
        if (r.verdict == MILTER_FAILED) {
            str_printf(why, "milter %s unavailable", who ? who : "");
            v = PICKUP_MILTER_TEMPFAIL;
        } else if (r.verdict != MILTER_CONTINUE) {
            struct milter *m = NULL;

            for (size_t i = 0; i < n; i++)
                if (who != NULL && strcmp(milter_name(ms[i]), who) == 0)
                    m = ms[i];
            v = m ? verdict(pm, m, id, "END-OF-MESSAGE", &r, why) : PICKUP_MILTER_TEMPFAIL;
        } else {
            int e = r.nmods > 0 ? milter_env_apply(qw, rc, id, &r, why) : 0;

            if (e < 0) {
                v = PICKUP_MILTER_TEMPFAIL;
            } else if (e == 1) {
                log_info("%s: milter-discard: END-OF-MESSAGE from localhost[127.0.0.1]: "
                         "every recipient removed by a filter", id);
                v = PICKUP_MILTER_DISCARD;
            } else if (r.quarantine) {
                log_info("%s: milter-hold: END-OF-MESSAGE from localhost[127.0.0.1]: %s: %s",
                         id, who ? who : "", r.reason.s ? r.reason.s : "");
                *to = "hold";
            }
        }
        milter_result_free(&r);
    }
    for (size_t i = 0; i < n; i++) {
        milter_abort(ms[i]);
        milter_free(ms[i]);
    }
    free(ms);
    str_free(&err);
    return v;
}
