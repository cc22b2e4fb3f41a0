/* Milters' envelope changes (SMFIR_CHGFROM, SMFIR_ADDRCPT, SMFIR_ADDRCPT_PAR,
 * SMFIR_DELRCPT) applied to a queue file before its content is written
 * (milter_msg.h).  The addresses come from a filter: each is parsed as an SMTP path
 * and an added recipient goes through the resolver as RCPT TO does; the count was
 * bounded by milter.c (MILTER_ENV_MAX per filter). */
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "log.h"
#include "milter_msg.h"
#include "queue.h"
#include "resolve_clnt.h"
#include "router.h"

/* The filter's address ("<a@b>" or bare) in internal form: 0, or -1 with why. */
static int parse(const char *text, bool null_ok, struct str *out, const char **why)
{
    const char *rest = NULL;

    if (addr_parse_path(text, ADDR_ALLOW_BARE | ADDR_SMTPUTF8 | (null_ok ? ADDR_ALLOW_NULL : 0),
                        out, &rest, why) < 0)
        return -1;
    if (*rest != '\0') {
        *why = "text after the address";
        return -1;
    }
    if (out->len > 0 && strchr(out->s, '@') == NULL) {
        *why = "no domain";
        return -1;
    }
    if (out->len > 0)
        addr_fold_domain(out->s);
    return 0;
}

/* An ORCPT as written in a queue file ("rfc822;addr" or the bare address). */
static bool orcpt_is(const char *orcpt, const char *addr)
{
    if (orcpt == NULL)
        return false;
    if (strncasecmp(orcpt, "rfc822;", 7) == 0)
        orcpt += 7;
    return strcasecmp(orcpt, addr) == 0;
}

static bool has_rcpt(const struct queue_writer *qw, const char *addr)
{
    for (size_t i = 0; i < qw_rcpt_count(qw); i++)
        if (strcasecmp(qw_rcpt_addr(qw, i), addr) == 0)
            return true;
    return false;
}

/* addr (orcpt: what the filter named) into the queue file unless it is there. */
static int keep_rcpt(struct queue_writer *qw, const char *addr, const char *orcpt,
                     struct str *why)
{
    if (has_rcpt(qw, addr))
        return 0;
    if (qw_rcpt_count(qw) >= QUEUE_RCPT_MAX) {
        str_sets(why, "too many recipients after a filter's changes");
        return -1;
    }
    if (qw_recipient(qw, addr, orcpt, NULL) < 0) {
        str_sets(why, "queue file write error");
        return -1;
    }
    return 0;
}

static int add_rcpt(struct queue_writer *qw, struct resolve_clnt *rc, const char *id,
                    const char *addr, struct str *why)
{
    struct router_verdict v;
    int ret = 0;

    router_verdict_init(&v);
    resolve_verify(rc, addr, &v);
    if (v.status == ROUTER_TEMPFAIL) {
        str_printf(why, "cannot check recipient <%s> added by a filter: %s", addr,
                   v.text.s ? v.text.s : "resolver failure");
        ret = -1;
    } else if (v.status != ROUTER_OK) {
        /* Kept as given, as Postfix keeps what a filter adds: delivery then refuses
         * it and the sender hears of it in a bounce; nothing vanishes unsaid. */
        log_warn("%s: milter: recipient <%s> refused: %d %s %s; kept for a bounce", id, addr,
                 v.code, v.dsn, v.text.s ? v.text.s : "refused");
        ret = keep_rcpt(qw, addr, addr, why);
    } else {
        for (size_t k = 0; k < v.nexpanded && ret == 0; k++)
            ret = keep_rcpt(qw, v.expanded[k], addr, why);
        if (ret == 0)
            log_info("%s: milter: recipient added: <%s>", id, addr);
    }
    router_verdict_free(&v);
    return ret;
}

int milter_env_apply(struct queue_writer *qw, struct resolve_clnt *rc, const char *id,
                     const struct milter_result *r, struct str *why)
{
    struct str a = STR_INIT;
    int ret = 0;

    for (size_t k = 0; k < r->nmods && ret == 0; k++) {
        const struct milter_mod *md = &r->mods[k];
        const char *bad = NULL;

        if (md->type != MILTER_MOD_CHGFROM && md->type != MILTER_MOD_ADDRCPT
            && md->type != MILTER_MOD_DELRCPT)
            continue;
        if (parse(md->value.s ? md->value.s : "", md->type == MILTER_MOD_CHGFROM, &a,
                  &bad) < 0) {
            log_warn("%s: milter: bad address in an envelope change: %s: ignored", id, bad);
            continue;
        }
        switch (md->type) {
        case MILTER_MOD_CHGFROM:
            if (qw_edit_sender(qw, a.s) < 0) {
                str_sets(why, "queue file write error");
                ret = -1;
            } else {
                log_info("%s: milter: sender changed to <%s>", id, a.s);
            }
            break;
        case MILTER_MOD_DELRCPT: {
            size_t removed = 0;

            for (size_t i = qw_rcpt_count(qw); i-- > 0;) {
                if (strcasecmp(qw_rcpt_addr(qw, i), a.s) != 0
                    && !orcpt_is(qw_rcpt_orcpt(qw, i), a.s))
                    continue;
                if (qw_edit_del_rcpt(qw, i) < 0) {
                    str_sets(why, "queue file write error");
                    ret = -1;
                    break;
                }
                removed++;
            }
            if (ret == 0)
                log_info("%s: milter: recipient removed: <%s>%s", id, a.s,
                         removed ? "" : " (not a recipient)");
            break;
        }
        default:
            ret = add_rcpt(qw, rc, id, a.s, why);
            break;
        }
    }
    str_free(&a);
    if (ret == 0 && qw_rcpt_count(qw) == 0)
        return 1;
    return ret;
}
