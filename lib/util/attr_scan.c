/* The typed reader of attribute frames (see attr_scan.h).  It only looks at a frame
 * attr_read() already bounded and checked for shape; every value is checked again
 * here against its type, so a peer's mistake or malice ends as an error message. */
#include "attr_scan.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "xmalloc.h"

#define SCAN_SMALL 16               /* specs counted without an allocation */

static size_t spec_find(const struct attr_spec *spec, size_t nspec, const char *name)
{
    size_t k;

    for (k = 0; k < nspec; k++)
        if (strcmp(spec[k].name, name) == 0)
            break;
    return k;
}

static bool is_single(enum attr_type t)
{
    return t == ATTR_TYPE_STR || t == ATTR_TYPE_DATA || t == ATTR_TYPE_INT;
}

/* Checks one value against its spec: 0, or -1 with err.  *num gets an integer. */
static int value_check(const struct attr_spec *sp, const struct attr *a, long long *num,
                       struct str *err)
{
    switch (sp->type) {
    case ATTR_TYPE_INT:
    case ATTR_TYPE_INT_LIST:
        if (attr_parse_int(a->value, a->len, num) < 0 || *num < sp->min || *num > sp->max) {
            str_printf(err, "attribute \"%s\": not a number in %lld..%lld", sp->name,
                       sp->min, sp->max);
            return -1;
        }
        return 0;
    case ATTR_TYPE_STR:
    case ATTR_TYPE_STR_LIST:
        if (memchr(a->value, '\0', a->len) != NULL) {
            str_printf(err, "attribute \"%s\": a NUL byte in a text", sp->name);
            return -1;
        }
        /* fall through */
    case ATTR_TYPE_DATA:
        if ((sp->flags & ATTR_NONEMPTY) && a->len == 0) {
            str_printf(err, "attribute \"%s\": empty", sp->name);
            return -1;
        }
        if (sp->max > 0 && a->len > (unsigned long long)sp->max) {
            str_printf(err, "attribute \"%s\": longer than %lld bytes", sp->name, sp->max);
            return -1;
        }
        return 0;
    default:
        return 0;
    }
}

static void value_store(const struct attr_spec *sp, const struct attr *a, long long num)
{
    switch (sp->type) {
    case ATTR_TYPE_STR:
        *sp->to.str = a->value;
        break;
    case ATTR_TYPE_DATA:
        sp->to.data->s = a->value;
        sp->to.data->len = a->len;
        break;
    case ATTR_TYPE_INT:
        *sp->to.num = num;
        break;
    case ATTR_TYPE_STR_LIST:
        sp->to.strs->v[sp->to.strs->n++] = a->value;
        break;
    case ATTR_TYPE_INT_LIST:
        sp->to.ints->v[sp->to.ints->n++] = num;
        break;
    default:
        break;
    }
}

void attr_scan_free(const struct attr_spec *spec)
{
    for (; spec->type != ATTR_TYPE_END; spec++) {
        if (spec->type == ATTR_TYPE_STR_LIST) {
            free(spec->to.strs->v);
            spec->to.strs->v = NULL;
            spec->to.strs->n = 0;
        } else if (spec->type == ATTR_TYPE_INT_LIST) {
            free(spec->to.ints->v);
            spec->to.ints->v = NULL;
            spec->to.ints->n = 0;
        }
    }
}

/* Makes room for count values in a list destination. */
static void list_alloc(const struct attr_spec *sp, size_t count)
{
    if (sp->type == ATTR_TYPE_STR_LIST)
        sp->to.strs->v = count > 0 ? xcalloc(count, sizeof(*sp->to.strs->v)) : NULL;
    else if (sp->type == ATTR_TYPE_INT_LIST)
        sp->to.ints->v = count > 0 ? xcalloc(count, sizeof(*sp->to.ints->v)) : NULL;
}

int attr_scan(const struct attr_list *al, unsigned flags, const struct attr_spec *spec,
              struct str *err)
{
    size_t small[SCAN_SMALL], *count = small, nspec = 0;
    int rc = -1;

    while (spec[nspec].type != ATTR_TYPE_END)
        nspec++;
    if (nspec > SCAN_SMALL)
        count = xcalloc(nspec, sizeof(*count));
    else
        memset(small, 0, sizeof(small));
    for (size_t k = 0; k < nspec; k++) {
        if (spec[k].type == ATTR_TYPE_STR_LIST) {
            spec[k].to.strs->v = NULL;
            spec[k].to.strs->n = 0;
        } else if (spec[k].type == ATTR_TYPE_INT_LIST) {
            spec[k].to.ints->v = NULL;
            spec[k].to.ints->n = 0;
        }
    }
    str_clear(err);
    /* Every attribute: known, not repeated when single, a valid value. */
    for (size_t i = 0; i < al->n; i++) {
        const struct attr *a = &al->v[i];
        size_t k = spec_find(spec, nspec, a->name);
        long long num = 0;

        if (k == nspec) {
            if (flags & ATTR_SCAN_STRICT) {
                str_printf(err, "unexpected attribute \"%s\"", a->name);
                goto out;
            }
            continue;
        }
        count[k]++;
        if (is_single(spec[k].type) && count[k] > 1) {
            str_printf(err, "attribute \"%s\" given more than once", a->name);
            goto out;
        }
        if (value_check(&spec[k], a, &num, err) < 0)
            goto out;
        if (is_single(spec[k].type))
            value_store(&spec[k], a, num);
    }
    for (size_t k = 0; k < nspec; k++) {
        if (count[k] == 0 && !(spec[k].flags & ATTR_OPTIONAL)) {
            str_printf(err, "missing attribute \"%s\"", spec[k].name);
            goto out;
        }
    }
    /* The lists, now that their sizes are known: values in frame order. */
    for (size_t k = 0; k < nspec; k++)
        list_alloc(&spec[k], count[k]);
    for (size_t i = 0; i < al->n; i++) {
        const struct attr *a = &al->v[i];
        size_t k = spec_find(spec, nspec, a->name);
        long long num = 0;

        if (k == nspec || is_single(spec[k].type) || spec[k].type == ATTR_TYPE_IGNORE)
            continue;
        (void)value_check(&spec[k], a, &num, err);
        value_store(&spec[k], a, num);
    }
    rc = 0;
out:
    if (rc < 0)
        attr_scan_free(spec);
    if (count != small)
        free(count);
    return rc;
}
