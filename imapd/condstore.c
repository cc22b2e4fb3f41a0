/* CONDSTORE and QRESYNC (RFC 7162) as the commands share them: ENABLE and the
 * enabling commands, the mod-sequence grammar, the STORE, FETCH and SEARCH modifiers,
 * and the VANISHED responses.  Mod-sequences themselves are the store's (store.h:
 * each message's MODSEQ and the expunges remembered in the UID list).  Everything
 * parsed here is the client's: numbers are bounded to 63 bits, sets by
 * IMAP_SEQ_RANGES_MAX, and an output set is written as ranges. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imapd.h"
#include "session.h"
#include "store.h"
#include "stream.h"
#include "xmalloc.h"

bool imap_ext_enable(struct imap_session *s, const char *name)
{
    unsigned was = s->enabled;

    if (strcasecmp(name, "CONDSTORE") == 0) {
        imap_condstore_on(s);
    } else if (strcasecmp(name, "QRESYNC") == 0) {
        imap_condstore_on(s);
        s->enabled |= IMAP_EN_QRESYNC;
    } else {
        return false;
    }
    return s->enabled != was;
}

void imap_condstore_on(struct imap_session *s)
{
    if (s->enabled & IMAP_EN_CONDSTORE)
        return;
    s->enabled |= IMAP_EN_CONDSTORE;
    if (s->box != NULL)
        stream_printf(s->c.st, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
                      (unsigned long long)store_highestmodseq(s->box));
}

bool imap_p_modseq(struct imap_parser *ip, bool zero_ok, uint64_t *out)
{
    const char *start = ip->p;

    if (!imap_p_number(ip, IMAP_MODSEQ_MAX, out))
        return false;
    if (*out == 0 && !zero_ok) {
        ip->p = start;
        return false;
    }
    return true;
}

bool imap_p_store_mods(struct imap_session *s, struct imap_parser *ip, bool *set,
                       uint64_t *unchangedsince)
{
    struct str name = STR_INIT;
    bool ok;

    *set = false;
    *unchangedsince = 0;
    if (!imap_p_char(ip, '('))
        return true;
    ok = imap_p_atom(ip, &name, 32) && strcasecmp(name.s, "UNCHANGEDSINCE") == 0
         && imap_p_sp(ip) && imap_p_modseq(ip, true, unchangedsince) && imap_p_char(ip, ')')
         && imap_p_sp(ip);
    str_free(&name);
    if (!ok) {
        imap_bad(&s->c, "STORE modifier must be (UNCHANGEDSINCE mod-sequence)");
        return false;
    }
    *set = true;
    imap_condstore_on(s);
    return true;
}

bool imap_p_fetch_mods(struct imap_session *s, struct imap_parser *ip, bool uid,
                       uint64_t *changedsince, bool *vanished)
{
    struct str name = STR_INIT;
    const char *why = NULL;

    *changedsince = 0;
    *vanished = false;
    if (!imap_p_sp(ip))
        return true;
    if (!imap_p_char(ip, '('))
        why = "Invalid FETCH modifiers";
    while (why == NULL) {
        if (!imap_p_atom(ip, &name, 32)) {
            why = "Invalid FETCH modifiers";
        } else if (strcasecmp(name.s, "CHANGEDSINCE") == 0 && *changedsince == 0) {
            if (!imap_p_sp(ip) || !imap_p_modseq(ip, false, changedsince))
                why = "CHANGEDSINCE needs a mod-sequence from 1 to 2^63-1";
        } else if (strcasecmp(name.s, "VANISHED") == 0 && !*vanished) {
            *vanished = true;
        } else {
            why = "Unknown or repeated FETCH modifier";
        }
        if (why == NULL && imap_p_char(ip, ')'))
            break;
        if (why == NULL && !imap_p_sp(ip))
            why = "Invalid FETCH modifiers";
    }
    if (why == NULL && *vanished && (!uid || !(s->enabled & IMAP_EN_QRESYNC)))
        why = "VANISHED needs UID FETCH and ENABLE QRESYNC";
    if (why == NULL && *vanished && *changedsince == 0)
        why = "VANISHED needs CHANGEDSINCE";
    str_free(&name);
    if (why != NULL) {
        imap_bad(&s->c, "%s", why);
        return false;
    }
    if (*changedsince != 0)
        imap_condstore_on(s);
    return true;
}

bool imap_p_search_modseq(struct imap_parser *ip, uint64_t *out)
{
    struct str entry = STR_INIT, type = STR_INIT;
    bool ok = imap_p_sp(ip);

    if (ok && imap_p_peek(ip, '"')) {
        /* entry-name entry-type-req: per-flag mod-sequences are not kept, so the
         * message's own stands for each (RFC 7162 3.1.5 allows it). */
        ok = imap_p_string(ip, &entry) && entry.len <= 256
             && strncasecmp(entry.s, "/flags/", 7) == 0 && imap_p_sp(ip)
             && imap_p_atom(ip, &type, 8)
             && (strcasecmp(type.s, "priv") == 0 || strcasecmp(type.s, "shared") == 0
                 || strcasecmp(type.s, "all") == 0)
             && imap_p_sp(ip);
    }
    ok = ok && imap_p_modseq(ip, true, out);
    str_free(&entry);
    str_free(&type);
    return ok;
}

/* Adds lo..hi to a set being written as ranges, joining it to the last one when
 * they touch. */
struct ranges {
    struct str *out;
    uint32_t lo, hi;
    bool open;
};

static void ranges_flush(struct ranges *r)
{
    if (!r->open)
        return;
    str_printf(r->out, "%s%u", r->out->len ? "," : "", r->lo);
    if (r->hi > r->lo)
        str_printf(r->out, ":%u", r->hi);
    r->open = false;
}

static void ranges_add(struct ranges *r, uint32_t lo, uint32_t hi)
{
    if (r->open && lo <= (uint64_t)r->hi + 1) {
        if (hi > r->hi)
            r->hi = hi;
        return;
    }
    ranges_flush(r);
    r->lo = lo;
    r->hi = hi;
    r->open = true;
}

void imap_uid_set_str(struct str *out, const uint32_t *uids, size_t n)
{
    struct ranges r = { out, 0, 0, false };

    for (size_t i = 0; i < n; i++)
        ranges_add(&r, uids[i], uids[i]);
    ranges_flush(&r);
}

static void put_set(struct imap_session *s, bool earlier, const struct str *set)
{
    if (set->len > 0)
        stream_printf(s->c.st, "* VANISHED %s%s\r\n", earlier ? "(EARLIER) " : "", set->s);
}

void imap_put_vanished(struct imap_session *s, bool earlier, const uint32_t *uids, size_t n)
{
    struct str set = STR_INIT;

    imap_uid_set_str(&set, uids, n);
    put_set(s, earlier, &set);
    str_free(&set);
}

void imap_put_vanished_since(struct imap_session *s, const struct imap_seqset *known,
                             uint64_t since, uint32_t floor)
{
    struct str set = STR_INIT;
    struct ranges r = { &set, 0, 0, false };
    uint32_t last = store_uidnext(s->box) - 1;
    struct imap_range all = { 1, last };
    struct imap_seqset every = { &all, last > 0 ? 1 : 0 };
    const struct imap_seqset *k = known != NULL && known->n > 0 ? known : &every;
    size_t n, m = 0;
    bool complete;
    struct store_range *gone = store_vanished(s->box, since, &n, &complete);

    if (complete) {
        /* Both ascending and disjoint: their intersection, range by range. */
        for (size_t i = 0, j = 0; i < n; i++) {
            while (j < k->n && k->r[j].hi < gone[i].lo)
                j++;
            for (size_t jj = j; jj < k->n && k->r[jj].lo <= gone[i].hi; jj++)
                ranges_add(&r, k->r[jj].lo > gone[i].lo ? k->r[jj].lo : gone[i].lo,
                           k->r[jj].hi < gone[i].hi ? k->r[jj].hi : gone[i].hi);
        }
    } else {
        /* Expunges that old are forgotten: every known UID not present is told
         * (the client drops those it already knew were gone).  k is normalized,
         * the folder ascending: one walk over both. */
        size_t count = store_count(s->box);

        for (size_t i = 0; i < k->n; i++) {
            uint64_t u = k->r[i].lo > floor ? k->r[i].lo : (uint64_t)floor + 1;
            uint64_t hi = k->r[i].hi < last ? k->r[i].hi : last;

            while (u <= hi) {
                while (m < count && store_msg(s->box, m)->uid < u)
                    m++;
                uint64_t next = m < count ? store_msg(s->box, m)->uid : (uint64_t)hi + 1;
                if (next > u)
                    ranges_add(&r, (uint32_t)u, (uint32_t)(next - 1 < hi ? next - 1 : hi));
                u = next + 1;
            }
        }
    }
    ranges_flush(&r);
    put_set(s, true, &set);
    free(gone);
    str_free(&set);
}

void imap_fetch_vanished(struct imap_session *s, const struct imap_parser *at_set,
                         uint64_t since)
{
    struct imap_parser ip = *at_set;
    struct imap_seqset set;
    const char *why;

    if (!imap_p_seqset(&ip, &set, &why))
        return;                     /* parsed once already: cannot happen */
    /* "*" reaches the highest UID ever given, for a last message gone since. */
    imap_seq_resolve(&set, store_uidnext(s->box) - 1);
    imap_seq_normalize(&set);
    if (set.n > 0)
        imap_put_vanished_since(s, &set, since, 0);
    imap_seq_free(&set);
}
