/* smtpd RCPT: parses the recipient, asks the resolve service whether it exists and
 * what it expands to, decides relay permission (remote class only from mynetworks
 * or authenticated clients), and writes each final recipient once into the queue
 * file, made here at the first accepted recipient.  Client text is untrusted; the
 * resolve service's answers are checked by resolve_clnt. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "conf.h"
#include "log.h"
#include "resolve_clnt.h"
#include "router.h"
#include "smtpd.h"
#include "xmalloc.h"

/* ---- the set of final recipients already written ---- */

static size_t addr_hash(const char *s)
{
    size_t h = 14695981039346656037u & SIZE_MAX;

    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * (size_t)1099511628211u;
    return h;
}

static void addrset_grow(struct smtpd_addrset *set)
{
    size_t cap = set->cap ? set->cap * 2 : 64;
    char **slot = xcalloc(cap, sizeof(*slot));

    for (size_t i = 0; i < set->cap; i++) {
        if (set->slot[i] == NULL)
            continue;
        size_t j = addr_hash(set->slot[i]) & (cap - 1);
        while (slot[j] != NULL)
            j = (j + 1) & (cap - 1);
        slot[j] = set->slot[i];
    }
    free(set->slot);
    set->slot = slot;
    set->cap = cap;
}

bool smtpd_addrset_add(struct smtpd_addrset *set, const char *addr)
{
    size_t j;

    if ((set->n + 1) * 2 > set->cap)
        addrset_grow(set);
    j = addr_hash(addr) & (set->cap - 1);
    while (set->slot[j] != NULL) {
        if (strcmp(set->slot[j], addr) == 0)
            return false;
        j = (j + 1) & (set->cap - 1);
    }
    set->slot[j] = xstrdup(addr);
    set->n++;
    return true;
}

void smtpd_addrset_free(struct smtpd_addrset *set)
{
    for (size_t i = 0; i < set->cap; i++)
        free(set->slot[i]);
    free(set->slot);
    set->slot = NULL;
    set->cap = 0;
    set->n = 0;
}

/* ---- the queue file ---- */

static int txn_attr(struct smtpd_txn *t, const char *name, const char *value)
{
    return qw_attr(t->qw, name, value);
}

/* Creates the queue file and writes the envelope so far.  0, or -1 (logged). */
static int txn_open(struct smtpd_session *s)
{
    struct smtpd_txn *t = &s->txn;
    struct str err = STR_INIT;
    char port[16], size[32];
    const char *filter = conf_str(s->cf->conf, CONF_content_filter);
    int rc = 0;

    t->qw = qw_create(".", t->id, &err);
    if (t->qw == NULL) {
        log_warn("cannot create queue file: %s", err.s ? err.s : "unknown error");
        t->id[0] = '\0';
        str_free(&err);
        return -1;
    }
    if (s->authenticated)
        log_info("%s: client=[%s]:%u, sasl_method=%s, sasl_username=%s", t->id, s->addr,
                 s->port, s->sasl_method, s->sasl_user.s);
    else
        log_info("%s: client=[%s]:%u", t->id, s->addr, s->port);
    snprintf(port, sizeof(port), "%u", s->port);
    if (qw_sender(t->qw, t->sender.s) < 0
        || txn_attr(t, "client_address", s->addr) < 0
        || txn_attr(t, "client_port", port) < 0
        || txn_attr(t, "helo", s->helo.len ? s->helo.s : "") < 0
        || txn_attr(t, "protocol", smtpd_protocol(s)) < 0
        || (t->body && txn_attr(t, "body", t->body) < 0)
        || (t->smtputf8 && txn_attr(t, "smtputf8", "yes") < 0)
        || (t->ret && txn_attr(t, "ret", t->ret) < 0)
        || (t->envid.len > 0 && txn_attr(t, "envid", t->envid.s) < 0)
        || (filter[0] != '\0' && txn_attr(t, "content_filter", filter) < 0))
        rc = -1;
    if (rc == 0 && t->declared_size >= 0) {
        snprintf(size, sizeof(size), "%lld", t->declared_size);
        rc = txn_attr(t, "size", size);
    }
    if (rc < 0) {
        log_warn("%s: queue file write error", t->id);
        t->qw_failed = true;
    }
    str_free(&err);
    return rc;
}

/* ---- RCPT ---- */

static bool relay_allowed(const struct smtpd_session *s, enum router_class class)
{
    if (class != ROUTER_REMOTE)
        return true;
    return s->trusted || s->authenticated;
}

void smtpd_cmd_rcpt(struct smtpd_session *s, char *arg)
{
    const struct smtpd_conf *cf = s->cf;
    struct smtpd_txn *t = &s->txn;
    struct str addr = STR_INIT, notify = STR_INIT, orcpt = STR_INIT;
    struct router_verdict v;
    const char *rest, *why;
    size_t added = 0;

    if (!t->active) {
        smtpd_reply(s, 503, "5.5.1 Error: need MAIL command");
        return;
    }
    if (t->bdat) {
        smtpd_reply(s, 503, "5.5.1 Error: RCPT after BDAT");
        return;
    }
    if (strncasecmp(arg, "TO:", 3) != 0) {
        smtpd_reply(s, 501, "5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    router_verdict_init(&v);
    if (addr_parse_path(arg + 3, t->smtputf8 ? ADDR_SMTPUTF8 : 0, &addr, &rest, &why) < 0) {
        smtpd_reply(s, 501, "5.1.3 Bad recipient address syntax (%s)", why);
        goto out;
    }
    if (strchr(addr.s, '@') == NULL) {
        if (strcasecmp(addr.s, "postmaster") != 0) {
            smtpd_reply(s, 501, "5.1.3 Bad recipient address syntax (no domain)");
            goto out;
        }
        str_printf(&addr, "@%s", cf->myhostname);
    }
    addr_fold_domain(addr.s);
    if (smtpd_rcpt_params(s, rest, &notify, &orcpt) < 0)
        goto out;
    if (smtpd_policy_rcpt(s, addr.s) < 0)
        goto out;
    if (cf->recipient_limit > 0 && t->rcpt_accepted >= (size_t)cf->recipient_limit) {
        smtpd_reply(s, 452, "4.5.3 Error: Too many recipients");
        goto out;
    }
    resolve_verify(cf->resolve, addr.s, &v);
    if (v.status == ROUTER_TEMPFAIL) {
        smtpd_reject(s, "RCPT", addr.s, 451, "4.3.0", "%s", v.text.s);
        goto out;
    }
    if (v.status == ROUTER_REJECT) {
        smtpd_reject(s, "RCPT", addr.s, v.code, v.dsn, "%s", v.text.s);
        goto out;
    }
    if (!relay_allowed(s, v.class)) {
        smtpd_reject(s, "RCPT", addr.s, 554, "5.7.1", "<%s>: Relay access denied", addr.s);
        goto out;
    }
    if (t->nrcpt + v.nexpanded > QUEUE_RCPT_MAX) {
        smtpd_reply(s, 452, "4.5.3 Error: Too many recipients");
        goto out;
    }
    if (t->qw == NULL && !t->qw_failed && txn_open(s) < 0) {
        smtpd_reply(s, 451, "4.3.0 Error: queue file write error");
        goto out;
    }
    if (t->qw_failed) {
        smtpd_reply(s, 451, "4.3.0 Error: queue file write error");
        goto out;
    }
    if (smtpd_milter_rcpt(s, addr.s) < 0)
        goto out;
    for (size_t i = 0; i < v.nexpanded; i++) {
        const char *final = v.expanded[i];

        if (!smtpd_addrset_add(&t->seen, final))
            continue;
        if (qw_recipient(t->qw, final, orcpt.len > 0 ? orcpt.s : addr.s,
                         notify.len > 0 ? notify.s : NULL) < 0) {
            log_warn("%s: queue file write error", t->id);
            t->qw_failed = true;
            smtpd_reply(s, 451, "4.3.0 Error: queue file write error");
            goto out;
        }
        added++;
    }
    t->nrcpt += added;
    if (t->rcpt_accepted == 0)
        str_sets(&t->first_rcpt, addr.s);
    t->rcpt_accepted++;
    smtpd_reply(s, 250, "2.1.5 Ok");
    s->oks[CMD_RCPT]++;
out:
    router_verdict_free(&v);
    str_free(&addr);
    str_free(&notify);
    str_free(&orcpt);
}
