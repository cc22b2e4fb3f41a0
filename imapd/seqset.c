/* Sequence sets (RFC 3501 sequence-set): "1:4,7,*", numbers 1..4294967295 with "*"
 * for the largest in use, at most IMAP_SEQ_RANGES_MAX ranges.  0, numbers past
 * 2^32-1 and empty parts are refused. */
#include <stdlib.h>

#include "imapd.h"
#include "xmalloc.h"

static bool seq_number(struct imap_parser *ip, uint32_t *v, const char **why)
{
    uint64_t n;

    if (imap_p_char(ip, '*')) {
        *v = IMAP_SEQ_STAR;
        return true;
    }
    if (!imap_p_number(ip, UINT32_MAX - 1ULL, &n)) {
        *why = "invalid number in sequence set";
        return false;
    }
    if (n == 0) {
        *why = "0 in sequence set";
        return false;
    }
    *v = (uint32_t)n;
    return true;
}

bool imap_p_seqset(struct imap_parser *ip, struct imap_seqset *set, const char **why)
{
    const char *start = ip->p;
    size_t cap = 0;

    set->r = NULL;
    set->n = 0;
    do {
        uint32_t lo, hi;

        if (!seq_number(ip, &lo, why))
            goto bad;
        hi = lo;
        if (imap_p_char(ip, ':') && !seq_number(ip, &hi, why))
            goto bad;
        if (set->n == IMAP_SEQ_RANGES_MAX) {
            *why = "too many ranges in sequence set";
            goto bad;
        }
        if (set->n == cap) {
            cap = cap ? cap * 2 : 8;
            set->r = xreallocarray(set->r, cap, sizeof(*set->r));
        }
        set->r[set->n].lo = lo;
        set->r[set->n].hi = hi;
        set->n++;
    } while (imap_p_char(ip, ','));
    return true;
bad:
    imap_seq_free(set);
    ip->p = start;
    return false;
}

void imap_seq_resolve(struct imap_seqset *set, uint32_t max)
{
    for (size_t i = 0; i < set->n; i++) {
        uint32_t lo = set->r[i].lo == IMAP_SEQ_STAR ? max : set->r[i].lo;
        uint32_t hi = set->r[i].hi == IMAP_SEQ_STAR ? max : set->r[i].hi;
        set->r[i].lo = lo < hi ? lo : hi;
        set->r[i].hi = lo < hi ? hi : lo;
    }
}

bool imap_seq_has(const struct imap_seqset *set, uint32_t v)
{
    for (size_t i = 0; i < set->n; i++)
        if (v >= set->r[i].lo && v <= set->r[i].hi)
            return true;
    return false;
}

static int cmp_range(const void *a, const void *b)
{
    const struct imap_range *x = a, *y = b;

    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

void imap_seq_normalize(struct imap_seqset *set)
{
    size_t k = 0;

    if (set->n < 2)
        return;
    qsort(set->r, set->n, sizeof(*set->r), cmp_range);
    for (size_t i = 1; i < set->n; i++) {
        if ((uint64_t)set->r[i].lo <= (uint64_t)set->r[k].hi + 1) {
            if (set->r[i].hi > set->r[k].hi)
                set->r[k].hi = set->r[i].hi;
        } else {
            set->r[++k] = set->r[i];
        }
    }
    set->n = k + 1;
}

bool imap_seq_has_sorted(const struct imap_seqset *set, uint32_t v)
{
    size_t lo = 0, hi = set->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (set->r[mid].hi < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < set->n && set->r[lo].lo <= v;
}

uint64_t imap_seq_count(const struct imap_seqset *set)
{
    uint64_t n = 0;

    for (size_t i = 0; i < set->n; i++)
        n += (uint64_t)set->r[i].hi - set->r[i].lo + 1;
    return n;
}

void imap_seq_free(struct imap_seqset *set)
{
    free(set->r);
    set->r = NULL;
    set->n = 0;
}
