/* The selected state (RFC 3501 6.3.1-2, 6.4; RFC 3691 UNSELECT; RFC 6851 MOVE;
 * RFC 4315 UIDPLUS): SELECT and EXAMINE, the client's view of the folder (its UIDs
 * by sequence number) and the untagged EXPUNGE, EXISTS and FETCH FLAGS that keep it
 * in step with what other connections and deliveries did, CLOSE, UNSELECT, CHECK,
 * EXPUNGE, UID EXPUNGE, STORE (with RFC 7162's UNCHANGEDSINCE), COPY, MOVE and the
 * UID prefix; VANISHED replaces EXPUNGE once QRESYNC is on.  The folder itself is
 * the store's (store.h); commands are untrusted. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imapd.h"
#include "log.h"
#include "session.h"
#include "store.h"
#include "store_folder.h"
#include "store_watch.h"
#include "stream.h"
#include "xmalloc.h"

static const char *const sysflags[] = {
    "\\Draft", "\\Flagged", NULL, "\\Answered", "\\Seen", "\\Deleted",
};

void imap_put_flags(struct imap_session *s, const struct store_msg *m)
{
    bool first = true;

    stream_puts(s->c.st, "FLAGS (");
    for (unsigned i = 0; i < 6; i++) {
        if (sysflags[i] == NULL || !(m->flags & (1u << i)))
            continue;
        stream_printf(s->c.st, "%s%s", first ? "" : " ", sysflags[i]);
        first = false;
    }
    for (unsigned i = 0; i < STORE_KEYWORDS_MAX; i++) {
        const char *kw;
        if (!(m->keywords & (1u << i)) || (kw = store_keyword(s->box, i)) == NULL)
            continue;
        stream_printf(s->c.st, "%s%s", first ? "" : " ", kw);
        first = false;
    }
    if (store_recent(s->box, m->uid) && !IMAP_REV2(s))       /* RFC 9051 has no \Recent */
        stream_printf(s->c.st, "%s\\Recent", first ? "" : " ");
    stream_puts(s->c.st, ")");
}

static void put_flag_names(struct imap_session *s)
{
    stream_puts(s->c.st, "\\Answered \\Flagged \\Deleted \\Seen \\Draft");
    for (unsigned i = 0; i < STORE_KEYWORDS_MAX; i++) {
        const char *kw = store_keyword(s->box, i);
        if (kw != NULL)
            stream_printf(s->c.st, " %s", kw);
    }
}

static void view_load(struct imap_session *s)
{
    size_t n = store_count(s->box);

    if (n > s->view_cap) {
        s->view_cap = n + 64;
        s->view = xreallocarray(s->view, s->view_cap, sizeof(*s->view));
    }
    if (n > 0)
        memcpy(s->view, store_uids(s->box), n * sizeof(*s->view));
    s->nview = n;
}

size_t imap_view_seq(const struct imap_session *s, uint32_t uid)
{
    size_t lo = 0, hi = s->nview;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->view[mid] < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->nview && s->view[lo] == uid ? lo + 1 : 0;
}

/* Says "* N EXPUNGE" for each of uids (ascending) in the view, or once QRESYNC is
 * enabled "* VANISHED set" of them all (RFC 7162 3.2.10), and drops them. */
static void report_expunged(struct imap_session *s, const uint32_t *uids, size_t n)
{
    uint32_t *gone = xreallocarray(NULL, n ? n : 1, sizeof(*gone));
    size_t ngone = 0;

    for (size_t k = 0; k < n; k++) {
        size_t seq = imap_view_seq(s, uids[k]);
        if (seq == 0)
            continue;
        if (s->enabled & IMAP_EN_QRESYNC)
            gone[ngone++] = uids[k];
        else
            stream_printf(s->c.st, "* %zu EXPUNGE\r\n", seq);
        memmove(s->view + seq - 1, s->view + seq, (s->nview - seq) * sizeof(*s->view));
        s->nview--;
    }
    imap_put_vanished(s, false, gone, ngone);
    free(gone);
}

/* " MODSEQ (n)" once CONDSTORE is on (RFC 7162 3.1: every FETCH of a flag change). */
static void put_modseq(struct imap_session *s, const struct store_msg *m)
{
    if (s->enabled & IMAP_EN_CONDSTORE)
        stream_printf(s->c.st, " MODSEQ (%llu)", (unsigned long long)m->modseq);
}

void imap_report_changes(struct imap_session *s, bool expunges)
{
    struct store_changes ch;
    struct str err = STR_INIT;
    size_t recent = 0, n;

    if (s->box == NULL)
        return;
    if (s->watch != NULL)
        (void)store_watch_drain(s->watch);
    memset(&ch, 0, sizeof(ch));
    if (store_sync(s->box, &ch, &err) < 0) {
        log_warn("user=<%s>: sync of %s: %s", s->c.user, s->box_name.s, err.s);
        str_free(&err);
        return;
    }
    str_free(&err);
    if (ch.uidvalidity_changed) {
        stream_puts(s->c.st, "* BYE [UNAVAILABLE] Folder was rebuilt, select it again\r\n");
        s->c.closing = true;
        store_changes_free(&ch);
        return;
    }
    if (!expunges) {
        /* RFC 3501 7.4.1: no EXPUNGE during FETCH, STORE or SEARCH.  They wait, and
         * the view keeps the gone UIDs (and so its size) until then. */
        if (ch.n_expunged > 0) {
            s->exp_pending = xreallocarray(s->exp_pending,
                                           s->n_exp_pending + ch.n_expunged,
                                           sizeof(*s->exp_pending));
            memcpy(s->exp_pending + s->n_exp_pending, ch.expunged,
                   ch.n_expunged * sizeof(*ch.expunged));
            s->n_exp_pending += ch.n_expunged;
        }
    } else {
        report_expunged(s, s->exp_pending, s->n_exp_pending);
        s->n_exp_pending = 0;
        report_expunged(s, ch.expunged, ch.n_expunged);
    }
    if (ch.keywords_changed) {
        stream_puts(s->c.st, "* FLAGS (");
        put_flag_names(s);
        stream_puts(s->c.st, ")\r\n");
    }
    n = store_count(s->box);
    /* New UIDs are above all others: a different last UID means new messages. */
    if (s->n_exp_pending == 0
        && (ch.n_added > 0 || n != s->nview
            || (n > 0 && store_msg(s->box, n - 1)->uid != s->view[s->nview - 1]))) {
        for (size_t i = 0; i < n; i++)
            if (store_recent(s->box, store_msg(s->box, i)->uid))
                recent++;
        view_load(s);
        stream_printf(s->c.st, "* %zu EXISTS\r\n", n);
        if (!IMAP_REV2(s))
            stream_printf(s->c.st, "* %zu RECENT\r\n", recent);
    }
    for (size_t k = 0; k < ch.n_changed; k++) {
        long i = store_find(s->box, ch.changed[k]);
        size_t seq = imap_view_seq(s, ch.changed[k]);
        if (i < 0 || seq == 0)
            continue;
        stream_printf(s->c.st, "* %zu FETCH (", seq);
        imap_put_flags(s, store_msg(s->box, (size_t)i));
        stream_printf(s->c.st, " UID %u", ch.changed[k]);
        put_modseq(s, store_msg(s->box, (size_t)i));
        stream_puts(s->c.st, ")\r\n");
    }
    store_changes_free(&ch);
}

void imap_unselect(struct imap_session *s)
{
    if (s->box == NULL)
        return;
    store_close(s->box);
    s->box = NULL;
    if (s->watch != NULL)
        store_watch_close(s->watch);
    s->watch = NULL;
    s->nview = 0;
    s->n_exp_pending = 0;
    imap_saved_clear(s);
    str_clear(&s->box_name);
}

static void cmd_select_common(struct imap_session *s, struct imap_parser *ip, bool readonly)
{
    struct str name = STR_INIT, path = STR_INIT, err = STR_INIT;
    struct imap_select_params sp;
    size_t n, recent = 0, unseen = 0;

    memset(&sp, 0, sizeof(sp));
    if (!imap_p_sp(ip) || !imap_p_mailbox(s, ip, &name))
        goto out;
    if (!imap_p_select_params(s, ip, &sp))
        goto out;
    if (!imap_p_eol(ip)) {
        imap_bad(&s->c, "Unexpected arguments");
        goto out;
    }
    /* RFC 3501: a failed SELECT leaves no folder selected; RFC 5182: "$" is empty */
    imap_saved_clear(s);
    if (s->box != NULL) {
        imap_unselect(s);
        stream_puts(s->c.st, "* OK [CLOSED] Previous mailbox closed\r\n");
    }
    if (sp.condstore)
        imap_condstore_on(s);
    if (!imap_folder_path(s, name.s, &path))
        goto out;
    if (store_open(path.s, readonly ? STORE_RDONLY : 0, IMAP_FOLDER_MSGS_MAX, &s->box,
                   &err) < 0) {
        s->box = NULL;
        if (errno == ENOENT) {
            imap_no(&s->c, "[NONEXISTENT] No such mailbox");
        } else {
            log_warn("user=<%s>: open %s: %s", s->c.user, name.s, err.s);
            imap_no(&s->c, "[SERVERBUG] Cannot open the mailbox");
        }
        goto out;
    }
    str_set(&s->box_name, name.s, name.len);
    s->readonly = readonly;
    s->watch = store_watch_open(path.s);
    view_load(s);
    n = store_count(s->box);
    recent = store_recent_count(s->box);
    for (size_t i = 0; i < n; i++) {
        if (!(store_msg(s->box, i)->flags & STORE_F_SEEN)) {
            unseen = i + 1;
            break;
        }
    }
    stream_puts(s->c.st, "* FLAGS (");
    put_flag_names(s);
    stream_puts(s->c.st, ")\r\n");
    if (readonly) {
        stream_puts(s->c.st, "* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n");
    } else {
        stream_puts(s->c.st, "* OK [PERMANENTFLAGS (");
        put_flag_names(s);
        stream_puts(s->c.st, " \\*)] Flags permitted\r\n");
    }
    if (IMAP_REV2(s)) {
        /* RFC 9051 6.3.2: a LIST response, no RECENT and no UNSEEN code */
        stream_printf(s->c.st, "* %zu EXISTS\r\n", n);
        imap_list_one(s, name.s);
    } else {
        stream_printf(s->c.st, "* %zu EXISTS\r\n* %zu RECENT\r\n", n, recent);
        if (unseen > 0)
            stream_printf(s->c.st, "* OK [UNSEEN %zu] First unseen\r\n", unseen);
    }
    stream_printf(s->c.st, "* OK [UIDVALIDITY %u] UIDs valid\r\n* OK [UIDNEXT %u] Predicted "
                  "next UID\r\n", store_uidvalidity(s->box), store_uidnext(s->box));
    /* Every folder keeps mod-sequences: HIGHESTMODSEQ always, NOMODSEQ never. */
    stream_printf(s->c.st, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
                  (unsigned long long)store_highestmodseq(s->box));
    if (sp.qresync)
        imap_qresync_report(s, &sp);
    imap_ok(&s->c, "[%s] %s completed", readonly ? "READ-ONLY" : "READ-WRITE",
            readonly ? "EXAMINE" : "SELECT");
out:
    imap_select_params_free(&sp);
    str_free(&name);
    str_free(&path);
    str_free(&err);
}

static void cmd_select(struct imap_session *s, struct imap_parser *ip)
{
    cmd_select_common(s, ip, false);
}

static void cmd_examine(struct imap_session *s, struct imap_parser *ip)
{
    cmd_select_common(s, ip, true);
}

/* Expunges uids (NULL: every \Deleted message) and, when report, says so. */
static bool expunge(struct imap_session *s, const uint32_t *uids, size_t n, bool report)
{
    struct str err = STR_INIT;
    uint32_t *done = NULL;
    size_t ndone = 0;
    bool ok = true;

    if (store_expunge(s->box, uids, n, &done, &ndone, &err) < 0) {
        log_warn("user=<%s>: expunge in %s: %s", s->c.user, s->box_name.s, err.s);
        ok = false;
    } else if (report) {
        report_expunged(s, done, ndone);
    }
    free(done);
    str_free(&err);
    return ok;
}

static void cmd_close(struct imap_session *s, struct imap_parser *ip)
{
    (void)ip;
    if (!s->readonly)
        (void)expunge(s, NULL, 0, false);
    imap_unselect(s);
    imap_ok(&s->c, "CLOSE completed");
}

static void cmd_unselect(struct imap_session *s, struct imap_parser *ip)
{
    (void)ip;
    imap_unselect(s);
    imap_ok(&s->c, "UNSELECT completed");
}

static void cmd_check(struct imap_session *s, struct imap_parser *ip)
{
    (void)ip;
    if (IMAP_REV2(s)) {
        imap_bad(&s->c, "CHECK is not an IMAP4rev2 command: use NOOP");   /* RFC 9051 E */
        return;
    }
    imap_report_changes(s, true);
    imap_ok(&s->c, "CHECK completed");
}

static void expunge_common(struct imap_session *s, struct imap_parser *ip, bool uid)
{
    uint32_t *uids = NULL;
    size_t n = 0;

    if (s->readonly) {
        imap_no(&s->c, "[READ-ONLY] Mailbox is read-only");
        return;
    }
    if (uid && (!imap_p_sp(ip) || !imap_set_uids(s, ip, true, &uids, &n)))
        return;
    if (!imap_p_eol(ip)) {
        imap_bad(&s->c, "Unexpected arguments");
    } else {
        imap_report_changes(s, true);
        if (!expunge(s, uid ? uids : NULL, n, true))
            imap_no(&s->c, "[SERVERBUG] Expunge failed");
        else
            imap_ok(&s->c, "EXPUNGE completed");
    }
    free(uids);
}

static void cmd_expunge(struct imap_session *s, struct imap_parser *ip)
{
    expunge_common(s, ip, false);
}

bool imap_p_flags(struct store_box *box, struct imap_parser *ip, bool bare, bool create,
                  unsigned *flags, uint32_t *keywords, const char **why)
{
    struct str f = STR_INIT;
    bool paren = imap_p_char(ip, '('), ok = true;
    int n = 0;

    *flags = 0;
    *keywords = 0;
    *why = "Invalid flag list";
    if (!paren && !bare) {
        str_free(&f);
        return false;
    }
    while (ok) {
        if (paren && imap_p_char(ip, ')'))
            break;
        if (n > 0 && !imap_p_sp(ip)) {
            if (!paren)
                break;
            ok = false;
            break;
        }
        if (imap_p_char(ip, '\\')) {
            unsigned i;
            ok = imap_p_atom(ip, &f, 32);
            if (!ok)
                break;
            for (i = 0; i < 6; i++)
                if (sysflags[i] != NULL && strcasecmp(f.s, sysflags[i] + 1) == 0)
                    break;
            if (i == 6) {
                *why = strcasecmp(f.s, "Recent") == 0 ? "\\Recent cannot be set"
                                                       : "Unknown system flag";
                ok = false;
                break;
            }
            *flags |= 1u << i;
        } else if (imap_p_atom(ip, &f, STORE_KEYWORD_LEN)) {
            int k = box != NULL ? store_keyword_index(box, f.s, create) : -1;
            if (k < 0 && create) {
                *why = "Too many keywords in this mailbox";
                ok = false;
                break;
            }
            if (k >= 0)
                *keywords |= 1u << k;
        } else {
            ok = paren || n == 0 ? false : true;
            break;
        }
        n++;
        if (!paren && imap_p_eol(ip))
            break;
    }
    str_free(&f);
    return ok && (paren || n > 0);
}

/* The answer to a STORE: FETCH FLAGS of each message (unless .SILENT), with UID and
 * MODSEQ once CONDSTORE is on; .SILENT with UNCHANGEDSINCE still tells each changed
 * message's new MODSEQ (RFC 7162 3.1.3).  old: the MODSEQs before, by index in uids. */
static void store_report(struct imap_session *s, const uint32_t *uids, size_t n,
                         const uint64_t *old, const uint32_t *failed, size_t nfailed,
                         bool uid, bool silent, bool cond)
{
    bool condstore = (s->enabled & IMAP_EN_CONDSTORE) != 0;

    for (size_t k = 0, f = 0; k < n; k++) {
        long i = store_find(s->box, uids[k]);
        size_t seq = imap_view_seq(s, uids[k]);
        const struct store_msg *m;

        while (f < nfailed && failed[f] < uids[k])
            f++;
        if (i < 0 || seq == 0 || (f < nfailed && failed[f] == uids[k]))
            continue;
        m = store_msg(s->box, (size_t)i);
        if (silent && !(cond && m->modseq != old[k]))
            continue;
        stream_printf(s->c.st, "* %zu FETCH (", seq);
        if (!silent)
            imap_put_flags(s, m);
        if (uid || condstore)
            stream_printf(s->c.st, "%sUID %u", silent ? "" : " ", uids[k]);
        put_modseq(s, m);
        stream_puts(s->c.st, ")\r\n");
    }
}

static void cmd_store_common(struct imap_session *s, struct imap_parser *ip, bool uid)
{
    struct str item = STR_INIT, err = STR_INIT, mod = STR_INIT;
    uint32_t *uids = NULL, *failed = NULL;
    uint64_t *old = NULL, unchangedsince;
    size_t n = 0, nfailed = 0;
    unsigned flags;
    uint32_t keywords;
    const char *why;
    char op = '=';
    bool silent, cond;

    if (!imap_p_sp(ip) || !imap_set_uids(s, ip, uid, &uids, &n))
        goto out;
    if (!imap_p_sp(ip)) {
        imap_bad(&s->c, "STORE needs +FLAGS, -FLAGS or FLAGS and a flag list");
        goto out;
    }
    if (!imap_p_store_mods(s, ip, &cond, &unchangedsince))
        goto out;
    if (imap_p_char(ip, '+'))
        op = '+';
    else if (imap_p_char(ip, '-'))
        op = '-';
    if (!imap_p_atom(ip, &item, 16)
        || (strcasecmp(item.s, "FLAGS") != 0 && strcasecmp(item.s, "FLAGS.SILENT") != 0)
        || !imap_p_sp(ip)) {
        imap_bad(&s->c, "STORE needs +FLAGS, -FLAGS or FLAGS and a flag list");
        goto out;
    }
    silent = strcasecmp(item.s, "FLAGS.SILENT") == 0;
    if (s->readonly) {
        imap_no(&s->c, "[READ-ONLY] Mailbox is read-only");
        goto out;
    }
    if (!imap_p_flags(s->box, ip, true, op != '-', &flags, &keywords, &why) || !imap_p_eol(ip)) {
        imap_bad(&s->c, "%s", why);
        goto out;
    }
    old = xreallocarray(NULL, n ? n : 1, sizeof(*old));
    for (size_t k = 0; k < n; k++) {
        long i = store_find(s->box, uids[k]);
        old[k] = i >= 0 ? store_msg(s->box, (size_t)i)->modseq : 0;
    }
    if (cond && unchangedsince == 0) {
        /* Every message has a MODSEQ above 0: each one fails the test. */
        failed = xreallocarray(NULL, n ? n : 1, sizeof(*failed));
        for (size_t k = 0; k < n; k++)
            if (store_find(s->box, uids[k]) >= 0)
                failed[nfailed++] = uids[k];
    } else if (store_set_flags(s->box, uids, n, op, flags, keywords, unchangedsince,
                               &failed, &nfailed, &err) < 0) {
        log_warn("user=<%s>: store in %s: %s", s->c.user, s->box_name.s, err.s);
        imap_no(&s->c, "[SERVERBUG] Cannot change flags");
        goto out;
    }
    store_report(s, uids, n, old, failed, nfailed, uid, silent, cond);
    imap_report_changes(s, false);
    if (nfailed > 0) {
        /* MODIFIED names UIDs for UID STORE, message numbers for STORE. */
        for (size_t k = 0; !uid && k < nfailed; k++)
            failed[k] = (uint32_t)imap_view_seq(s, failed[k]);
        imap_uid_set_str(&mod, failed, nfailed);
        imap_ok(&s->c, "[MODIFIED %s] Conditional STORE failed", mod.s);
    } else {
        imap_ok(&s->c, "STORE completed");
    }
out:
    free(uids);
    free(failed);
    free(old);
    str_free(&item);
    str_free(&err);
    str_free(&mod);
}

static void cmd_store(struct imap_session *s, struct imap_parser *ip)
{
    cmd_store_common(s, ip, false);
}

/* A UID set as RFC 4315 writes it: "1:3,7". */
static void put_uid_set(struct str *out, const uint32_t *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j + 1 < n && u[j + 1] == u[j] + 1)
            j++;
        str_printf(out, "%s%u", i ? "," : "", u[i]);
        if (j > i)
            str_printf(out, ":%u", u[j]);
        i = j;
    }
}

static void cmd_copy_common(struct imap_session *s, struct imap_parser *ip, bool uid, bool move)
{
    struct str name = STR_INIT, path = STR_INIT, err = STR_INIT, a = STR_INIT, b = STR_INIT;
    uint32_t *uids = NULL, *src = NULL, *dst = NULL;
    size_t n = 0, ndone = 0;
    struct store_box *to = NULL;

    if (!imap_p_sp(ip) || !imap_set_uids(s, ip, uid, &uids, &n))
        goto out;
    if (!imap_p_sp(ip) || !imap_p_mailbox(s, ip, &name))
        goto out;
    if (!imap_p_eol(ip)) {
        imap_bad(&s->c, "Unexpected arguments");
        goto out;
    }
    if (move && s->readonly) {
        imap_no(&s->c, "[READ-ONLY] Mailbox is read-only");
        goto out;
    }
    if (!imap_folder_path(s, name.s, &path))
        goto out;
    if (store_open(path.s, 0, 0, &to, &err) < 0) {
        to = NULL;
        imap_no(&s->c, "[TRYCREATE] No such mailbox");
        goto out;
    }
    if (n > 0 && store_copy(s->box, uids, n, to, move, &src, &dst, &ndone, &err) < 0) {
        log_warn("user=<%s>: %s to %s: %s", s->c.user, move ? "move" : "copy", name.s, err.s);
        imap_no(&s->c, "[SERVERBUG] %s failed", move ? "MOVE" : "COPY");
        goto out;
    }
    put_uid_set(&a, src, ndone);
    put_uid_set(&b, dst, ndone);
    if (move) {
        if (ndone > 0)
            stream_printf(s->c.st, "* OK [COPYUID %u %s %s] Moved\r\n",
                          store_uidvalidity(to), a.s, b.s);
        report_expunged(s, src, ndone);
        imap_ok(&s->c, "MOVE completed");
    } else if (ndone > 0) {
        imap_ok(&s->c, "[COPYUID %u %s %s] COPY completed", store_uidvalidity(to), a.s, b.s);
    } else {
        imap_ok(&s->c, "COPY completed");
    }
out:
    if (to != NULL)
        store_close(to);
    free(uids);
    free(src);
    free(dst);
    str_free(&name);
    str_free(&path);
    str_free(&err);
    str_free(&a);
    str_free(&b);
}

static void cmd_copy(struct imap_session *s, struct imap_parser *ip)
{
    cmd_copy_common(s, ip, false, false);
}

static void cmd_move(struct imap_session *s, struct imap_parser *ip)
{
    cmd_copy_common(s, ip, false, true);
}

static void cmd_fetch(struct imap_session *s, struct imap_parser *ip)
{
    imap_cmd_fetch(s, ip, false);
}

static void cmd_search(struct imap_session *s, struct imap_parser *ip)
{
    imap_cmd_search(s, ip, false);
}

static void cmd_uid(struct imap_session *s, struct imap_parser *ip)
{
    struct str sub = STR_INIT;

    if (!imap_p_sp(ip) || !imap_p_atom(ip, &sub, 16)) {
        imap_bad(&s->c, "UID needs a command");
    } else if (strcasecmp(sub.s, "FETCH") == 0) {
        imap_cmd_fetch(s, ip, true);
    } else if (strcasecmp(sub.s, "SEARCH") == 0) {
        imap_cmd_search(s, ip, true);
    } else if (strcasecmp(sub.s, "STORE") == 0) {
        cmd_store_common(s, ip, true);
    } else if (strcasecmp(sub.s, "COPY") == 0) {
        cmd_copy_common(s, ip, true, false);
    } else if (strcasecmp(sub.s, "MOVE") == 0) {
        cmd_copy_common(s, ip, true, true);
    } else if (strcasecmp(sub.s, "EXPUNGE") == 0) {
        expunge_common(s, ip, true);
    } else {
        imap_bad(&s->c, "Unknown UID command");
    }
    str_free(&sub);
}

bool imap_set_uids(struct imap_session *s, struct imap_parser *ip, bool uid, uint32_t **uids,
                   size_t *n)
{
    struct imap_seqset set;
    const char *why;
    size_t cap = 0;

    *uids = NULL;
    *n = 0;
    if (imap_p_char(ip, '$')) {
        /* SEARCHRES: the saved UIDs still in the view, in either form */
        for (size_t i = 0; i < s->nsaved; i++) {
            if (imap_view_seq(s, s->saved[i]) == 0)
                continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                *uids = xreallocarray(*uids, cap, sizeof(**uids));
            }
            (*uids)[(*n)++] = s->saved[i];
        }
        return true;
    }
    if (!imap_p_seqset(ip, &set, &why)) {
        imap_bad(&s->c, "%s", why);
        return false;
    }
    if (uid) {
        uint32_t last = s->nview > 0 ? s->view[s->nview - 1] : 0;
        imap_seq_resolve(&set, last);
        for (size_t i = 0; i < s->nview; i++) {
            if (!imap_seq_has(&set, s->view[i]))
                continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                *uids = xreallocarray(*uids, cap, sizeof(**uids));
            }
            (*uids)[(*n)++] = s->view[i];
        }
    } else {
        imap_seq_resolve(&set, (uint32_t)s->nview);
        for (size_t k = 0; k < set.n; k++) {
            if (set.r[k].hi > s->nview || set.r[k].lo == 0) {
                imap_seq_free(&set);
                free(*uids);
                *uids = NULL;
                imap_bad(&s->c, "Invalid message sequence number");
                return false;
            }
        }
        for (size_t i = 0; i < s->nview; i++) {
            if (!imap_seq_has(&set, (uint32_t)(i + 1)))
                continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                *uids = xreallocarray(*uids, cap, sizeof(**uids));
            }
            (*uids)[(*n)++] = s->view[i];
        }
    }
    imap_seq_free(&set);
    return true;
}

static const struct imap_command select_commands[] = {
    { "SELECT", cmd_select, 0 },
    { "EXAMINE", cmd_examine, 0 },
    { "CLOSE", cmd_close, IMAP_CMD_NOARGS | IMAP_CMD_SELECTED },
    { "UNSELECT", cmd_unselect, IMAP_CMD_NOARGS | IMAP_CMD_SELECTED },
    { "CHECK", cmd_check, IMAP_CMD_NOARGS | IMAP_CMD_SELECTED },
    { "EXPUNGE", cmd_expunge, IMAP_CMD_NOARGS | IMAP_CMD_SELECTED },
    { "STORE", cmd_store, IMAP_CMD_SELECTED },
    { "COPY", cmd_copy, IMAP_CMD_SELECTED },
    { "MOVE", cmd_move, IMAP_CMD_SELECTED },
    { "FETCH", cmd_fetch, IMAP_CMD_SELECTED },
    { "SEARCH", cmd_search, IMAP_CMD_SELECTED },
    { "UID", cmd_uid, IMAP_CMD_SELECTED },
    { "IDLE", imap_cmd_idle, IMAP_CMD_NOARGS },
};

const struct imap_command *imap_mailbox_command(const char *name)
{
    for (size_t i = 0; i < sizeof(select_commands) / sizeof(select_commands[0]); i++)
        if (strcasecmp(select_commands[i].name, name) == 0)
            return &select_commands[i];
    for (size_t i = 0; i < imap_mailbox_ncommands; i++)
        if (strcasecmp(imap_mailbox_commands[i].name, name) == 0)
            return &imap_mailbox_commands[i];
    return NULL;
}
