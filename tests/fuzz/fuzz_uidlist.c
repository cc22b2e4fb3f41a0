/* libFuzzer harness for the UID list parser (lib/mail/store_uidlist.c): the file
 * postern-uidlist sits in the user's Maildir, where anything running as the user may
 * write it, and a list that does not parse is rebuilt, so the parser must refuse
 * what is out of place and never read past the text.
 * Checked for a list that parses: UIDs ascending, each below the next UID and not 0;
 * MODSEQs from 1 to the highest; base names plain (store_base_ok) and as long as
 * they say; expunge records ordered by MODSEQ, above the floor, within the UIDs
 * given; written out again (uidlist_format) it parses back to the same list, and
 * that text is what it formats to again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store_int.h"
#include "str.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_INPUT_MAX (1 << 20)

static void check(const struct uidlist *ul)
{
    for (size_t i = 0; i < ul->n; i++) {
        const struct uidlist_rec *r = &ul->v[i];

        if (r->uid == 0 || r->uid >= ul->nextuid || (i > 0 && r->uid <= ul->v[i - 1].uid))
            abort();
        if (r->modseq == 0 || r->modseq > ul->highestmodseq)
            abort();
        if (strlen(r->base) != r->blen || !store_base_ok(r->base, r->blen))
            abort();
        if ((r->flags & ~STORE_F_MASK) != 0 || r->file != NULL)
            abort();
    }
    for (size_t i = 0; i < ul->nexp; i++) {
        const struct uidlist_exp *x = &ul->exp[i];

        if (x->lo == 0 || x->hi < x->lo || x->hi >= ul->nextuid || x->modseq <= ul->exp_floor
            || x->modseq > ul->highestmodseq || (i > 0 && x->modseq < ul->exp[i - 1].modseq))
            abort();
    }
    if (ul->nexp > STORE_EXPUNGED_KEEP || ul->exp_floor > ul->highestmodseq)
        abort();
}

static bool same(const struct uidlist *a, const struct uidlist *b)
{
    if (a->uidvalidity != b->uidvalidity || a->nextuid != b->nextuid
        || a->highestmodseq != b->highestmodseq || a->exp_floor != b->exp_floor
        || a->n != b->n || a->nexp != b->nexp)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const struct uidlist_rec *x = &a->v[i], *y = &b->v[i];
        if (x->uid != y->uid || x->flags != y->flags || x->keywords != y->keywords
            || x->modseq != y->modseq || x->blen != y->blen || strcmp(x->base, y->base) != 0)
            return false;
    }
    for (size_t i = 0; i < a->nexp; i++)
        if (a->exp[i].lo != b->exp[i].lo || a->exp[i].hi != b->exp[i].hi
            || a->exp[i].modseq != b->exp[i].modseq)
            return false;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct uidlist ul, again;
    struct str err = STR_INIT, text = STR_INIT, text2 = STR_INIT;
    char *copy;

    if (size > FUZZ_INPUT_MAX)
        return 0;
    /* exactly size bytes, no NUL after them: a read past the text is caught */
    copy = malloc(size ? size : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, size);
    if (uidlist_parse(copy, size, &ul, &err) == 0) {
        check(&ul);
        uidlist_format(&ul, &text);
        if (uidlist_parse(text.s, text.len, &again, &err) != 0 || !same(&ul, &again))
            abort();
        uidlist_format(&again, &text2);
        if (text.len != text2.len || memcmp(text.s, text2.s, text.len) != 0)
            abort();
        uidlist_free(&again);
        uidlist_free(&ul);
    }
    free(copy);
    str_free(&err);
    str_free(&text);
    str_free(&text2);
    return 0;
}
