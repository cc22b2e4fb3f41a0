/* LIST and LSUB (RFC 3501 6.3.8-9) with the extensions of LIST: LIST-EXTENDED
 * (RFC 5258: selection options SUBSCRIBED, REMOTE, RECURSIVEMATCH and SPECIAL-USE,
 * return options SUBSCRIBED, CHILDREN and SPECIAL-USE, several patterns, \NonExistent,
 * \Subscribed and CHILDINFO), LIST-STATUS (RFC 5819: RETURN (STATUS (...))), the
 * CHILDREN (RFC 3348) and SPECIAL-USE (RFC 6154) attributes, and the rules of
 * IMAP4rev2 (RFC 9051 6.3.9).  The folders are the store's (store_folder.h); the
 * reference and the patterns come from the client and are matched, never used as
 * paths. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imapd.h"
#include "log.h"
#include "mutf7.h"
#include "session.h"
#include "store_folder.h"
#include "stream.h"

#define IMAP_LIST_MAX 100000        /* folders in one LIST answer */
#define LIST_PATTERNS_MAX 64        /* patterns in one LIST-EXTENDED command */

#define SEL_SUBSCRIBED 0x1
#define SEL_REMOTE     0x2
#define SEL_RECURSIVE  0x4
#define SEL_SPECIAL    0x8
#define RET_SUBSCRIBED 0x1
#define RET_CHILDREN   0x2
#define RET_SPECIAL    0x4
#define RET_STATUS     0x8

struct list_req {
    bool lsub;                      /* LSUB */
    bool extended;                  /* LIST-EXTENDED syntax, or IMAP4rev2 */
    unsigned sel, ret;              /* SEL_*, RET_* */
    unsigned status;                /* STATUS items for RET_STATUS */
    bool rev2;                      /* IMAP4rev2 is enabled (no STATUS RECENT) */
    struct str ref;
    struct str pat[LIST_PATTERNS_MAX];
    size_t npat;
};

struct opt {
    const char *name;
    unsigned bit;
};

static const struct opt sel_opts[] = {
    { "SUBSCRIBED", SEL_SUBSCRIBED }, { "REMOTE", SEL_REMOTE },
    { "RECURSIVEMATCH", SEL_RECURSIVE }, { "SPECIAL-USE", SEL_SPECIAL },
};

static const struct opt ret_opts[] = {
    { "SUBSCRIBED", RET_SUBSCRIBED }, { "CHILDREN", RET_CHILDREN },
    { "SPECIAL-USE", RET_SPECIAL }, { "STATUS", RET_STATUS },
};

/* "(" [option *(SP option)] ")": options from t; STATUS takes its item list. */
static bool parse_opts(struct imap_parser *ip, const struct opt *t, size_t nt,
                       struct list_req *r, unsigned *bits, const char **why)
{
    struct str o = STR_INIT;
    int n = 0;
    bool ok = imap_p_char(ip, '(');

    *why = "Invalid LIST options";
    while (ok && !imap_p_char(ip, ')')) {
        size_t i;

        if ((n++ > 0 && !imap_p_sp(ip)) || !imap_p_atom(ip, &o, 32)) {
            ok = false;
            break;
        }
        for (i = 0; i < nt && strcasecmp(o.s, t[i].name) != 0; i++)
            ;
        if (i == nt) {
            *why = "Unknown LIST option";
            ok = false;
            break;
        }
        *bits |= t[i].bit;
        if (t[i].bit == RET_STATUS && t == ret_opts
            && (!imap_p_sp(ip) || !imap_p_status_items(ip, r->rev2, &r->status, why)))
            ok = false;
    }
    str_free(&o);
    return ok;
}

static bool parse_list(struct imap_session *s, struct imap_parser *ip, struct list_req *r,
                       const char **why)
{
    *why = r->lsub ? "LSUB needs a reference and a pattern"
                   : "LIST needs a reference and a pattern";
    r->rev2 = IMAP_REV2(s);
    if (!imap_p_sp(ip))
        return false;
    if (!r->lsub && imap_p_peek(ip, '(')) {
        r->extended = true;
        if (!parse_opts(ip, sel_opts, sizeof(sel_opts) / sizeof(sel_opts[0]), r, &r->sel,
                        why) || !imap_p_sp(ip))
            return false;
        /* RFC 5258 3: RECURSIVEMATCH qualifies another option */
        if ((r->sel & SEL_RECURSIVE) && !(r->sel & (SEL_SUBSCRIBED | SEL_SPECIAL))) {
            *why = "RECURSIVEMATCH needs another selection option";
            return false;
        }
    }
    if (!imap_p_astring(ip, &r->ref) || !imap_p_sp(ip))
        return false;
    if (!r->lsub && imap_p_char(ip, '(')) {
        r->extended = true;
        do {
            if (r->npat == LIST_PATTERNS_MAX) {
                *why = "Too many patterns";
                return false;
            }
            if (!imap_p_list_mailbox(ip, &r->pat[r->npat]))
                return false;
            r->npat++;
        } while (imap_p_sp(ip));
        if (!imap_p_char(ip, ')'))
            return false;
    } else {
        if (!imap_p_list_mailbox(ip, &r->pat[0]))
            return false;
        r->npat = 1;
    }
    if (!r->lsub && ip->end - ip->p > 8 && strncasecmp(ip->p, " RETURN ", 8) == 0) {
        ip->p += 8;
        r->extended = true;
        if (!parse_opts(ip, ret_opts, sizeof(ret_opts) / sizeof(ret_opts[0]), r, &r->ret,
                        why))
            return false;
    }
    if (IMAP_REV2(s) && !r->lsub)
        r->extended = true;
    if (!imap_p_eol(ip)) {
        *why = "Unexpected LIST arguments";
        return false;
    }
    return true;
}

/* The name as the client reads and matches it: the store's form, or UTF-8. */
static bool display_name(struct imap_session *s, const char *name, struct str *out)
{
    str_clear(out);
    if (!IMAP_UTF8_NAMES(s)) {
        str_sets(out, name);
        return true;
    }
    return mutf7_to_utf8(name, strlen(name), out) == 0;
}

static bool matches(const struct list_req *r, const char *name)
{
    struct str full = STR_INIT;
    bool hit = false;

    for (size_t i = 0; i < r->npat && !hit; i++) {
        str_set(&full, r->ref.s, r->ref.len);
        str_append(&full, r->pat[i].s, r->pat[i].len);
        hit = store_wildmatch(full.s, name);
    }
    str_free(&full);
    return hit;
}

/* True when a name in l below name (a descendant) has one of attrs.  l is sorted by
 * name but for INBOX first (store_folder_list), so the descendants are one run found
 * by a binary search. */
static bool has_descendant(const struct store_list *l, const char *name, unsigned attrs)
{
    size_t len = strlen(name), lo = 0, hi = l->n;

    if (l->n > 0 && strcmp(l->v[0].name, "INBOX") == 0)
        lo = 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strncmp(l->v[mid].name, name, len);

        if (c < 0 || (c == 0 && l->v[mid].name[len] < STORE_SEP))
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < l->n && strncmp(l->v[lo].name, name, len) == 0
           && l->v[lo].name[len] == STORE_SEP; lo++)
        if (l->v[lo].attrs & attrs)
            return true;
    return false;
}

static void put_attrs(struct imap_session *s, const struct list_req *r, unsigned a)
{
    const char *sep = "";

    stream_puts(s->c.st, "(");
    if (a & STORE_LIST_NONEXISTENT) {
        stream_puts(s->c.st, r->extended ? "\\NonExistent" : "\\Noselect");
        sep = " ";
    } else if (a & STORE_LIST_NOSELECT) {
        stream_puts(s->c.st, r->extended ? "\\NonExistent" : "\\Noselect");
        sep = " ";
    }
    if (!r->lsub && (a & (STORE_LIST_HASCHILDREN | STORE_LIST_HASNOCHILDREN))) {
        stream_printf(s->c.st, "%s%s", sep,
                      a & STORE_LIST_HASCHILDREN ? "\\HasChildren" : "\\HasNoChildren");
        sep = " ";
    }
    if ((a & STORE_LIST_SUBSCRIBED) && ((r->sel & SEL_SUBSCRIBED) || (r->ret & RET_SUBSCRIBED))) {
        stream_printf(s->c.st, "%s\\Subscribed", sep);
        sep = " ";
    }
    if (!r->lsub && (a & STORE_LIST_SPECIAL_MASK)) {
        const char *u = store_special_use_name(a & STORE_LIST_SPECIAL_MASK);

        if (u != NULL)
            stream_printf(s->c.st, "%s%s", sep, u);
    }
    stream_puts(s->c.st, ")");
}

static void put_entry(struct imap_session *s, const struct list_req *r,
                      const struct store_list_entry *e, bool childinfo)
{
    struct str err = STR_INIT;

    stream_printf(s->c.st, "* %s ", r->lsub ? "LSUB" : "LIST");
    put_attrs(s, r, e->attrs);
    stream_puts(s->c.st, " \".\" ");
    imap_put_mailbox(s, e->name);
    if (childinfo)
        stream_puts(s->c.st, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
    stream_puts(s->c.st, "\r\n");
    /* RFC 5819: STATUS for the selectable ones; one that cannot be read is left out */
    if ((r->ret & RET_STATUS) && !(e->attrs & (STORE_LIST_NOSELECT | STORE_LIST_NONEXISTENT))
        && imap_status_put(s, e->name, r->status, &err) < 0)
        log_info("user=<%s>: LIST-STATUS of %s: %s", s->c.user, e->name,
                 err.s != NULL ? err.s : "failed");
    str_free(&err);
}

static void list_reply(struct imap_session *s, struct list_req *r)
{
    struct store_list all = { NULL, 0, 0 }, subs = { NULL, 0, 0 };
    struct str err = STR_INIT, disp = STR_INIT;
    const char *what = r->lsub ? "LSUB" : "LIST";
    bool by_subs = r->lsub || (r->sel & SEL_SUBSCRIBED);

    if (store_folder_list(IMAP_MAILDIR, "*", false, IMAP_LIST_MAX, &all, &err) < 0
        || (by_subs
            && store_folder_list(IMAP_MAILDIR, "*", true, IMAP_LIST_MAX, &subs, &err) < 0)) {
        log_warn("user=<%s>: %s: %s", s->c.user, what, err.s);
        imap_no(&s->c, "[SERVERBUG] %s failed", what);
        goto out;
    }
    if (by_subs) {
        /* the subscribed names, then (RECURSIVEMATCH) the names above them */
        for (size_t i = 0; i < subs.n; i++) {
            bool ci = (r->sel & SEL_RECURSIVE)
                      && has_descendant(&subs, subs.v[i].name, STORE_LIST_SUBSCRIBED);
            if (display_name(s, subs.v[i].name, &disp) && matches(r, disp.s))
                put_entry(s, r, &subs.v[i], ci);
        }
        for (size_t i = 0; (r->sel & SEL_RECURSIVE) && i < all.n; i++) {
            if ((all.v[i].attrs & STORE_LIST_SUBSCRIBED)
                || !has_descendant(&subs, all.v[i].name, STORE_LIST_SUBSCRIBED)
                || !display_name(s, all.v[i].name, &disp) || !matches(r, disp.s))
                continue;
            put_entry(s, r, &all.v[i], true);
        }
    } else {
        for (size_t i = 0; i < all.n; i++) {
            const struct store_list_entry *e = &all.v[i];

            /* RFC 6154 defines no CHILDINFO: RECURSIVEMATCH adds nothing here */
            if ((r->sel & SEL_SPECIAL) && !(e->attrs & STORE_LIST_SPECIAL_MASK))
                continue;
            if (display_name(s, e->name, &disp) && matches(r, disp.s))
                put_entry(s, r, e, false);
        }
    }
    imap_ok(&s->c, "%s completed", what);
out:
    store_list_free(&all);
    store_list_free(&subs);
    str_free(&err);
    str_free(&disp);
}

static void list_common(struct imap_session *s, struct imap_parser *ip, bool lsub)
{
    struct list_req r;
    const char *why;

    memset(&r, 0, sizeof(r));
    r.lsub = lsub;
    if (!parse_list(s, ip, &r, &why)) {
        imap_bad(&s->c, "%s", why);
    } else if (r.npat == 1 && r.pat[0].len == 0 && r.sel == 0 && r.ret == 0) {
        /* RFC 3501 6.3.8: the hierarchy delimiter and root */
        if (!lsub)
            stream_puts(s->c.st, "* LIST (\\Noselect) \".\" \"\"\r\n");
        imap_ok(&s->c, "%s completed", lsub ? "LSUB" : "LIST");
    } else {
        list_reply(s, &r);
    }
    str_free(&r.ref);
    for (size_t i = 0; i < LIST_PATTERNS_MAX; i++)
        str_free(&r.pat[i]);
}

void imap_list_one(struct imap_session *s, const char *name)
{
    struct store_list l = { NULL, 0, 0 };
    struct str err = STR_INIT;
    struct list_req r;

    memset(&r, 0, sizeof(r));
    r.extended = true;
    /* names hold no wildcard (store_name_check): the pattern is the name itself */
    if (store_folder_list(IMAP_MAILDIR, name, false, 1, &l, &err) < 0 || l.n == 0) {
        stream_puts(s->c.st, "* LIST () \".\" ");
        imap_put_mailbox(s, name);
        stream_puts(s->c.st, "\r\n");
    } else {
        put_entry(s, &r, &l.v[0], false);
    }
    store_list_free(&l);
    str_free(&err);
}

void imap_cmd_list(struct imap_session *s, struct imap_parser *ip)
{
    list_common(s, ip, false);
}

void imap_cmd_lsub(struct imap_session *s, struct imap_parser *ip)
{
    list_common(s, ip, true);
}
