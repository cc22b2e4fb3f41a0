/* SELECT and EXAMINE parameters of RFC 7162: (CONDSTORE) and (QRESYNC (uidvalidity
 * modseq [known-uids] [(known-sequence-set known-uid-set)])), and the quick resync
 * that answers the latter: VANISHED (EARLIER) for what went, FETCH (UID FLAGS
 * MODSEQ) for what changed since the client's mod-sequence.  The parameters are the
 * client's: "*" is refused where the grammar has none, sets are bounded by
 * IMAP_SEQ_RANGES_MAX, and the walk over seq-match-data by the folder's size. */
#include <string.h>
#include <strings.h>

#include "imapd.h"
#include "session.h"
#include "store.h"
#include "stream.h"

static bool has_star(const struct imap_seqset *set)
{
    for (size_t i = 0; i < set->n; i++)
        if (set->r[i].lo == IMAP_SEQ_STAR || set->r[i].hi == IMAP_SEQ_STAR)
            return true;
    return false;
}

/* A set of the QRESYNC parameter: no "*", resolved (ranges ordered lo..hi). */
static bool p_set(struct imap_parser *ip, struct imap_seqset *set)
{
    const char *why;

    if (!imap_p_seqset(ip, set, &why))
        return false;
    if (has_star(set)) {
        imap_seq_free(set);
        return false;
    }
    imap_seq_resolve(set, 0);
    return true;
}

/* "(" uidvalidity SP modseq [SP known-uids] [SP seq-match-data] ")" */
static const char *p_qresync(struct imap_parser *ip, struct imap_select_params *p)
{
    uint64_t uv;

    if (!imap_p_char(ip, '(') || !imap_p_number(ip, UINT32_MAX, &uv) || uv == 0)
        return "QRESYNC needs (uidvalidity mod-sequence ...)";
    p->uidvalidity = (uint32_t)uv;
    if (!imap_p_sp(ip) || !imap_p_modseq(ip, false, &p->modseq))
        return "QRESYNC needs a mod-sequence from 1 to 2^63-1";
    if (imap_p_sp(ip) && !imap_p_peek(ip, '(')) {
        if (!p_set(ip, &p->known))
            return "Invalid known UIDs";
        if (!imap_p_sp(ip))
            goto end;
    }
    if (imap_p_char(ip, '(')) {
        if (!p_set(ip, &p->seqs) || !imap_p_sp(ip) || !p_set(ip, &p->uids)
            || !imap_p_char(ip, ')'))
            return "Invalid sequence match data";
        if (imap_seq_count(&p->seqs) != imap_seq_count(&p->uids))
            return "Sequence match data of unequal sizes";
    }
end:
    if (!imap_p_char(ip, ')'))
        return "Invalid QRESYNC parameter";
    return NULL;
}

bool imap_p_select_params(struct imap_session *s, struct imap_parser *ip,
                          struct imap_select_params *p)
{
    struct str name = STR_INIT;
    const char *why = NULL;

    memset(p, 0, sizeof(*p));
    if (!imap_p_sp(ip))
        return true;
    if (!imap_p_char(ip, '('))
        why = "Invalid SELECT parameters";
    while (why == NULL) {
        if (!imap_p_atom(ip, &name, 32)) {
            why = "Invalid SELECT parameters";
        } else if (strcasecmp(name.s, "CONDSTORE") == 0 && !p->condstore) {
            p->condstore = true;
        } else if (strcasecmp(name.s, "QRESYNC") == 0 && !p->qresync) {
            if (!(s->enabled & IMAP_EN_QRESYNC))
                why = "QRESYNC needs ENABLE QRESYNC first";
            else if (!imap_p_sp(ip))
                why = "QRESYNC needs its parameters";
            else
                why = p_qresync(ip, p);
            p->qresync = true;
        } else {
            why = "Unknown or repeated SELECT parameter";
        }
        if (why == NULL && imap_p_char(ip, ')'))
            break;
        if (why == NULL && !imap_p_sp(ip))
            why = "Invalid SELECT parameters";
    }
    str_free(&name);
    if (why != NULL) {
        imap_select_params_free(p);
        imap_bad(&s->c, "%s", why);
        return false;
    }
    return true;
}

void imap_select_params_free(struct imap_select_params *p)
{
    imap_seq_free(&p->known);
    imap_seq_free(&p->seqs);
    imap_seq_free(&p->uids);
}

/* The next value of a set walked in the client's order: false at its end. */
struct walk {
    const struct imap_seqset *set;
    size_t i;
    uint64_t v;
};

static bool walk_next(struct walk *w)
{
    if (w->i >= w->set->n)
        return false;
    if (w->v == 0) {
        w->v = w->set->r[w->i].lo;
    } else if (w->v < w->set->r[w->i].hi) {
        w->v++;
    } else {
        if (++w->i >= w->set->n)
            return false;
        w->v = w->set->r[w->i].lo;
    }
    return true;
}

/* RFC 7162 3.2.5.2: while the client's message numbers still name the same UIDs
 * as now, no message up to that UID was expunged since; the highest such UID, up
 * to the first pair that differs.  The walk is bounded by the folder's size: a
 * pair past it cannot match. */
static uint32_t match_floor(const struct imap_session *s, const struct imap_select_params *p)
{
    struct walk a = { &p->seqs, 0, 0 }, b = { &p->uids, 0, 0 };
    uint32_t floor = 0;

    for (size_t steps = 0; steps <= s->nview && walk_next(&a) && walk_next(&b); steps++) {
        if (a.v > s->nview || s->view[a.v - 1] != b.v)
            break;
        if (b.v > floor)
            floor = (uint32_t)b.v;
    }
    return floor;
}

void imap_qresync_report(struct imap_session *s, struct imap_select_params *p)
{
    const struct imap_seqset *k = p->known.n > 0 ? &p->known : NULL;

    if (p->uidvalidity != store_uidvalidity(s->box))
        return;                     /* every UID the client has is void: a full sync */
    imap_seq_normalize(&p->known);
    imap_put_vanished_since(s, k, p->modseq, match_floor(s, p));
    for (size_t i = 0; i < s->nview; i++) {
        long m = store_find(s->box, s->view[i]);
        const struct store_msg *sm;

        if (m < 0 || (sm = store_msg(s->box, (size_t)m))->modseq <= p->modseq)
            continue;
        if (k != NULL && !imap_seq_has_sorted(k, sm->uid))
            continue;
        stream_printf(s->c.st, "* %zu FETCH (UID %u ", i + 1, sm->uid);
        imap_put_flags(s, sm);
        stream_printf(s->c.st, " MODSEQ (%llu))\r\n", (unsigned long long)sm->modseq);
    }
}
