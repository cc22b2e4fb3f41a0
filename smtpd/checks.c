/* smtpd content checks (checks.h).  Each header field of the message
 * (header_checks), each MIME field of its parts (mime_header_checks: Content-* and
 * MIME-Version, the top-level ones included, as Postfix splits them), each other
 * field of an attached message's header (nested_header_checks; both default to
 * header_checks' tables, as in Postfix) and each body
 * line of each part, decoded from quoted-printable or base64 for text parts
 * (body_checks), is looked up; the first table value found acts.  IGNORE, REPLACE and
 * PREPEND edit whole fields or lines as they are in the message; a body line that was
 * decoded or cut in pieces cannot be edited.  The content is untrusted: keys are
 * bounded copies, log text is cut and control bytes replaced. */
#include "checks.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "log.h"
#include "map.h"
#include "mime.h"
#include "addr.h"
#include "queue.h"
#include "resolve_clnt.h"
#include "smtpd.h"
#include "xmalloc.h"

#define CHECKS_LOG_MAX 200          /* bytes of a header or body line in the log */
#define CHECKS_TEXT_MAX 300         /* bytes of an action's text used */
#define CHECKS_MEMORY_MAX (64u * 1024 * 1024)   /* content kept without a size limit */

static struct maplist *hdr_maps, *mime_maps, *nested_maps, *body_maps;

struct maplist *smtpd_maps_open(const struct conf *c, enum conf_key k)
{
    struct str err = STR_INIT;
    const char *spec = conf_str(c, k);
    struct maplist *ml;

    if (spec == NULL || spec[0] == '\0')
        return NULL;
    ml = maplist_open(spec, &err);
    if (ml == NULL)
        log_fatal("%s: %s", conf_key_name(k), err.s ? err.s : "cannot open");
    maplist_pin(ml);
    str_free(&err);
    return ml;
}

/* k's tables; header_checks' own when k names the same ones (the defaults). */
static struct maplist *maps_or_header(const struct conf *c, enum conf_key k)
{
    if (hdr_maps != NULL && strcmp(conf_str(c, k), conf_str(c, CONF_header_checks)) == 0)
        return hdr_maps;
    return smtpd_maps_open(c, k);
}

void smtpd_checks_setup(const struct conf *c)
{
    hdr_maps = smtpd_maps_open(c, CONF_header_checks);
    mime_maps = maps_or_header(c, CONF_mime_header_checks);
    nested_maps = maps_or_header(c, CONF_nested_header_checks);
    body_maps = smtpd_maps_open(c, CONF_body_checks);
}

bool smtpd_checks_enabled(void)
{
    return hdr_maps != NULL || mime_maps != NULL || nested_maps != NULL || body_maps != NULL;
}

size_t smtpd_checks_max(long long limit)
{
    if (limit <= 0 || (unsigned long long)limit > CHECKS_MEMORY_MAX)
        return CHECKS_MEMORY_MAX;
    return (size_t)limit;
}

/* An edit of the bytes [off, off+len) of a header field or a body line, its line end
 * included: removed (IGNORE), replaced (REPLACE), or kept with a line before it
 * (PREPEND). */
struct edit {
    size_t off, len;
    char *text;                 /* line(s) to put there, '\n' ended; NULL: none */
    bool keep;                  /* PREPEND: the field stays after text */
};

struct run {
    struct smtpd_session *s;
    const struct mime_msg *m;
    struct edit *edits;
    size_t nedits;
    int code;
    const char *dsn;
    char *text;
    size_t text_size;
    bool stop;
};

static void safe_copy(struct str *out, const char *p, size_t n, size_t max)
{
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)p[i];
        str_appendc(out, c < 0x20 || c == 0x7f ? ' ' : (char)c);
    }
}

static bool word_is(const char *v, const char *word, const char **rest)
{
    size_t n = strlen(word);

    if (strncasecmp(v, word, n) != 0 || !(v[n] == '\0' || v[n] == ' ' || v[n] == '\t'))
        return false;
    v += n;
    while (*v == ' ' || *v == '\t')
        v++;
    *rest = v;
    return true;
}

/* Logs "ID: ACTION: WHAT LINE from [IP]; from=<> to=<> proto=P helo=<h>: TEXT". */
static void log_action(struct run *r, const char *action, const char *what,
                       const char *line, size_t len, const char *text)
{
    struct smtpd_session *s = r->s;
    struct smtpd_txn *t = &s->txn;
    struct str l = STR_INIT;

    safe_copy(&l, line, len, CHECKS_LOG_MAX);
    log_info("%s: %s: %s %s from [%s]; from=<%s> to=<%s> proto=%s helo=<%s>%s%.*s",
             t->id, action, what, l.s ? l.s : "", s->addr, t->sender.s ? t->sender.s : "",
             t->first_rcpt.s ? t->first_rcpt.s : "", smtpd_protocol(s),
             s->helo.len ? s->helo.s : "", text[0] ? ": " : "", CHECKS_TEXT_MAX, text);
    str_free(&l);
}

static void edit_add(struct run *r, const char *raw, size_t len, const char *text,
                     bool keep)
{
    size_t off = (size_t)(raw - r->m->buf);

    if (off > r->m->len || len > r->m->len - off)
        log_panic("content check edit outside the message");
    r->edits = xreallocarray(r->edits, r->nedits + 1, sizeof(*r->edits));
    struct edit *e = &r->edits[r->nedits++];
    e->off = off;
    e->len = len;
    e->keep = keep;
    e->text = NULL;
    if (text != NULL) {
        struct str t = STR_INIT;
        safe_copy(&t, text, strlen(text), 998);
        str_appendc(&t, '\n');
        e->text = str_detach(&t);
    }
}

/* REDIRECT's argument: one address with a domain. */
static bool redirect_ok(const char *text)
{
    struct str a = STR_INIT;
    const char *rest = NULL, *why = NULL;
    bool ok = addr_parse_path(text, ADDR_ALLOW_BARE, &a, &rest, &why) == 0 && *rest == '\0'
              && a.len > 0 && strchr(a.s, '@') != NULL;

    str_free(&a);
    return ok;
}

/* FILTER's argument: transport:nexthop, as content_filter (qmgr reads it). */
static bool filter_ok(const char *text)
{
    const char *colon = strchr(text, ':');
    size_t n = colon ? (size_t)(colon - text) : 0;

    if (n == 0 || n >= 32 || strspn(text, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n
        || strlen(text) > 300)
        return false;
    for (const char *p = colon + 1; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

/* IGNORE, REPLACE and PREPEND need the field or line as it is in the message: false,
 * after a warning, when it is not (a body line decoded or in pieces). */
static bool editable(struct run *r, const char *action, const char *what, const char *raw)
{
    if (raw == NULL)
        log_warn("%s: %s %s not applied: the line is decoded or in pieces", r->s->txn.id,
                 what, action);
    return raw != NULL;
}

/* Looks line up in ml and acts.  raw/rawlen: the header field or body line in the
 * buffer, line end included; NULL for a body line that is not there as it is. */
static int check(struct run *r, struct maplist *ml, const char *what, const char *line,
                 size_t len, const char *raw, size_t rawlen)
{
    struct str key = STR_INIT, v = STR_INIT, err = STR_INIT;
    const char *text;
    int found;

    /* a NUL would cut the key: it is matched as a space */
    for (size_t i = 0; i < len; i++)
        str_appendc(&key, line[i] == '\0' ? ' ' : line[i]);
    found = maplist_lookup(ml, key.s ? key.s : "", &v, &err);
    if (found < 0)
        log_warn("%s: %s check: %s; taken as no match", r->s->txn.id, what,
                 err.s ? err.s : "lookup failed");
    if (found != 1)
        goto out;
    const char *val = v.s ? v.s : "";
    while (*val == ' ' || *val == '\t')
        val++;
    if (word_is(val, "REJECT", &text)) {
        snprintf(r->text, r->text_size, "%.*s", CHECKS_TEXT_MAX,
                 *text ? text : "Message content rejected");
        r->code = 550;
        r->dsn = "5.7.1";
        char t[CHECKS_TEXT_MAX + 16];
        snprintf(t, sizeof(t), "5.7.1 %s", r->text);
        log_action(r, "reject", what, line, len, t);
        r->stop = true;
    } else if (word_is(val, "DISCARD", &text)) {
        log_action(r, "discard", what, line, len, text);
        r->s->txn.policy.discard = true;
        r->stop = true;
    } else if (word_is(val, "HOLD", &text)) {
        log_action(r, "hold", what, line, len, text);
        r->s->txn.policy.hold = true;
    } else if (word_is(val, "WARN", &text)) {
        log_action(r, "warning", what, line, len, text);
    } else if (word_is(val, "REDIRECT", &text) && redirect_ok(text)) {
        /* the last REDIRECT wins, as in Postfix */
        log_action(r, "redirect", what, line, len, text);
        str_sets(&r->s->txn.policy.redirect, text);
    } else if (word_is(val, "FILTER", &text) && filter_ok(text)) {
        log_action(r, "filter", what, line, len, text);
        str_sets(&r->s->txn.policy.filter, text);
    } else if (word_is(val, "OK", &text) || word_is(val, "DUNNO", &text)) {
        /* nothing */
    } else if (word_is(val, "IGNORE", &text)) {
        if (editable(r, "IGNORE", what, raw))
            edit_add(r, raw, rawlen, NULL, false);
    } else if (word_is(val, "REPLACE", &text) && *text) {
        if (editable(r, "REPLACE", what, raw)) {
            log_action(r, "replace", what, line, len, text);
            edit_add(r, raw, rawlen, text, false);
        }
    } else if (word_is(val, "PREPEND", &text) && *text) {
        if (editable(r, "PREPEND", what, raw)) {
            log_action(r, "prepend", what, line, len, text);
            edit_add(r, raw, 0, text, true);
        }
    } else {
        log_warn("%s: %s check: unsupported action \"%.*s\"; ignored", r->s->txn.id, what,
                 60, val);
    }
out:
    str_free(&key);
    str_free(&v);
    str_free(&err);
    return r->stop ? 1 : 0;
}

static int on_header(void *arg, const struct mime_part *p, enum mime_header_kind kind,
                     const struct mime_field *f, const char *value, size_t value_len)
{
    struct run *r = arg;
    struct maplist *ml = kind == MIME_HDR_MIME ? mime_maps
                         : kind == MIME_HDR_PRIMARY ? hdr_maps : nested_maps;
    struct str line = STR_INIT;
    int rc;

    (void)p;
    if (ml == NULL)
        return 0;
    str_append(&line, f->name, f->name_len);
    str_appends(&line, ": ");
    str_append(&line, value, value_len);
    rc = check(r, ml, "header", line.s, line.len, f->raw, f->raw_len);
    str_free(&line);
    return rc;
}

static int on_body(void *arg, const struct mime_part *p, const char *line, size_t len,
                   const char *raw, size_t raw_len)
{
    struct run *r = arg;

    (void)p;
    if (body_maps == NULL)
        return 0;
    return check(r, body_maps, "body", line, len, raw, raw_len);
}

static int edit_cmp(const void *a, const void *b)
{
    const struct edit *x = a, *y = b;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    return (int)y->keep - (int)x->keep;     /* a PREPEND before an edit of its line */
}

int smtpd_checks_run(struct smtpd_session *s, const char *buf, size_t len, int *code,
                     const char **dsn, char *text, size_t text_size, struct str *out)
{
    struct mime_msg m;
    struct run r = { s, &m, NULL, 0, 0, NULL, text, text_size, false };
    struct mime_walk_ops ops = { on_header, on_body };
    int rc = 0;

    text[0] = '\0';
    mime_parse(&m, buf, len);
    (void)mime_walk(&m, &ops, 0, &r);
    if (r.code != 0) {
        *code = r.code;
        *dsn = r.dsn;
        rc = 1;
    } else {
        size_t pos = 0;
        if (r.nedits > 1)
            qsort(r.edits, r.nedits, sizeof(*r.edits), edit_cmp);
        for (size_t i = 0; i < r.nedits; i++) {
            const struct edit *e = &r.edits[i];
            if (e->off < pos)
                continue;       /* two edits of one line: the first wins */
            str_append(out, buf + pos, e->off - pos);
            if (e->text)
                str_appends(out, e->text);
            pos = e->off + (e->keep ? 0 : e->len);
        }
        str_append(out, buf + pos, len - pos);
    }
    for (size_t i = 0; i < r.nedits; i++)
        free(r.edits[i].text);
    free(r.edits);
    mime_free(&m);
    return rc;
}

int smtpd_checks_envelope(struct smtpd_session *s, const char *cmd)
{
    struct smtpd_txn *t = &s->txn;
    struct smtpd_policy_txn *p = &t->policy;
    int rc = 0;

    if (p->filter.len > 0 && qw_edit_attr(t->qw, "content_filter", p->filter.s) < 0) {
        log_warn("%s: queue file write error", t->id);
        smtpd_reply(s, 451, "4.3.0 Error: queue file write error");
        return -1;
    }
    if (p->redirect.len > 0) {
        /* every recipient replaced by the address, expanded as RCPT TO would be; one
         * the resolver refuses is kept as given, for qmgr to bounce */
        struct router_verdict v;
        struct str a = STR_INIT;
        const char *rest, *why;

        (void)addr_parse_path(p->redirect.s, ADDR_ALLOW_BARE, &a, &rest, &why);
        addr_fold_domain(a.s);
        router_verdict_init(&v);
        resolve_verify(s->cf->resolve, a.s, &v);
        if (v.status == ROUTER_TEMPFAIL) {
            smtpd_reject(s, cmd, NULL, 451, "4.3.0", "%s", v.text.s ? v.text.s
                                                                  : "try again later");
            rc = -1;
        }
        while (rc == 0 && qw_rcpt_count(t->qw) > 0)
            if (qw_edit_del_rcpt(t->qw, qw_rcpt_count(t->qw) - 1) < 0)
                rc = -1;
        if (rc == 0 && v.status == ROUTER_OK) {
            for (size_t i = 0; i < v.nexpanded && rc == 0; i++)
                rc = qw_recipient(t->qw, v.expanded[i], a.s, NULL);
        } else if (rc == 0) {
            rc = qw_recipient(t->qw, a.s, a.s, NULL);
        }
        if (rc < 0 && v.status != ROUTER_TEMPFAIL) {
            log_warn("%s: queue file write error", t->id);
            smtpd_reply(s, 451, "4.3.0 Error: queue file write error");
        }
        if (rc == 0)
            t->nrcpt = qw_rcpt_count(t->qw);
        router_verdict_free(&v);
        str_free(&a);
    }
    return rc;
}
