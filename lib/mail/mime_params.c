/* Structured Content-* values (RFC 2045 5.1, RFC 2183, RFC 2231): "type/subtype" or a
 * disposition, then ";"-separated parameters with token or quoted-string values,
 * comments skipped; RFC 2231 continuations (name*0, name*1...) joined, extended values
 * (name*=charset'lang'%XX) decoded to UTF-8.  The value is untrusted and already
 * bounded (MIME_FIELD_MAX); parsing is lenient, as mail needs: a parameter without
 * "=" or with junk is skipped, the rest is still read. */
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "mime_int.h"
#include "xmalloc.h"

#define SECTIONS_MAX 100        /* continuation sections joined per parameter */

struct cur {
    const char *s;
    size_t n, i;
};

static bool is_tspecial(char c)
{
    return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static bool is_token(char c)
{
    unsigned char u = (unsigned char)c;
    return u > 32 && u != 127 && !is_tspecial(c);
}

/* White space and (nested) comments. */
static void skip_cfws(struct cur *c)
{
    while (c->i < c->n) {
        char ch = c->s[c->i];
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            c->i++;
        } else if (ch == '(') {
            unsigned depth = 0;
            while (c->i < c->n) {
                ch = c->s[c->i++];
                if (ch == '\\' && c->i < c->n)
                    c->i++;
                else if (ch == '(')
                    depth++;
                else if (ch == ')' && --depth == 0)
                    break;
            }
        } else {
            return;
        }
    }
}

static size_t token(struct cur *c)
{
    size_t b = c->i;

    while (c->i < c->n && is_token(c->s[c->i]))
        c->i++;
    return c->i - b;
}

/* A parameter value: quoted string (unquoted into out) or token-ish text up to ";". */
static void value(struct cur *c, struct str *out)
{
    str_clear(out);
    if (c->i < c->n && c->s[c->i] == '"') {
        c->i++;
        while (c->i < c->n && c->s[c->i] != '"') {
            if (c->s[c->i] == '\\' && c->i + 1 < c->n)
                c->i++;
            str_appendc(out, c->s[c->i++]);
        }
        if (c->i < c->n)
            c->i++;
        return;
    }
    /* lenient: anything up to ";" or white space (8-bit and tspecials included) */
    while (c->i < c->n && c->s[c->i] != ';' && c->s[c->i] != ' ' && c->s[c->i] != '\t' &&
           c->s[c->i] != '\r' && c->s[c->i] != '\n')
        str_appendc(out, c->s[c->i++]);
}

struct rawp {
    char *name;                 /* lower case, without the "*N" / "*" */
    int section;                /* -1: none */
    bool ext;                   /* ends in "*" */
    char *val;
};

static int pct_decode(const char *s, size_t n, struct str *out)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n) {
            char hx[3] = { s[i + 1], s[i + 2], 0 };
            char *e;
            long v = strtol(hx, &e, 16);
            if (*e == '\0' && hx[0] != '-' && hx[0] != '+' && hx[0] != ' ') {
                str_appendc(out, (char)v);
                i += 2;
                continue;
            }
        }
        str_appendc(out, s[i]);
    }
    return 0;
}

/* Joins the raw parameters into the final list. */
static void assemble(struct mime_arena *a, struct rawp *rp, size_t nr,
                     struct mime_param **params, size_t *nparams)
{
    struct mime_param *out = mime_arena_alloc(a, (nr ? nr : 1) * sizeof(*out));
    size_t no = 0;
    struct str raw = STR_INIT, bytes = STR_INIT, utf = STR_INIT;

    for (size_t i = 0; i < nr; i++) {
        bool dup = false, ext = false;
        size_t j;
        const char *plain = NULL, *single_ext = NULL;

        for (j = 0; j < no && !dup; j++)
            dup = strcmp(out[j].name, rp[i].name) == 0;
        if (dup)
            continue;
        str_clear(&raw);
        str_clear(&bytes);
        str_clear(&utf);
        for (j = i; j < nr; j++) {
            if (strcmp(rp[j].name, rp[i].name) != 0 || rp[j].section >= 0)
                continue;
            if (rp[j].ext && single_ext == NULL)
                single_ext = rp[j].val;
            else if (!rp[j].ext && plain == NULL)
                plain = rp[j].val;
        }
        if (single_ext != NULL) {
            ext = true;
            str_sets(&raw, single_ext);
        } else {
            /* sections 0, 1, ... in order, up to the first missing one */
            for (int sec = 0; sec < SECTIONS_MAX; sec++) {
                size_t k;
                for (k = i; k < nr; k++)
                    if (rp[k].section == sec && strcmp(rp[k].name, rp[i].name) == 0)
                        break;
                if (k == nr)
                    break;
                if (sec == 0)
                    ext = rp[k].ext;
                str_appends(&raw, rp[k].val);
            }
            if (raw.len == 0 && plain != NULL)
                str_sets(&raw, plain);
        }
        out[no].name = rp[i].name;
        out[no].raw = mime_arena_strndup(a, raw.s ? raw.s : "", raw.len);
        out[no].extended = ext;
        if (ext) {
            /* charset'language'value */
            const char *q1 = memchr(raw.s, '\'', raw.len), *q2 = NULL;
            char cs[65] = "";
            if (q1 != NULL)
                q2 = memchr(q1 + 1, '\'', raw.len - (size_t)(q1 + 1 - raw.s));
            if (q2 != NULL) {
                size_t cl = (size_t)(q1 - raw.s);
                if (cl < sizeof(cs)) {
                    memcpy(cs, raw.s, cl);
                    cs[cl] = '\0';
                }
                pct_decode(q2 + 1, raw.len - (size_t)(q2 + 1 - raw.s), &bytes);
            } else {
                pct_decode(raw.s, raw.len, &bytes);
            }
            (void)mime_charset_to_utf8(cs[0] ? cs : "us-ascii", bytes.s, bytes.len, &utf,
                                       MIME_FIELD_MAX * 4);
        } else {
            mime_header_decode(raw.s ? raw.s : "", raw.len, &utf);
        }
        out[no].value = mime_arena_strndup(a, utf.s ? utf.s : "", utf.len);
        no++;
    }
    str_free(&raw);
    str_free(&bytes);
    str_free(&utf);
    *params = no > 0 ? out : NULL;
    *nparams = no;
}

/* The ";" parameters from c's position to the end. */
static void params(struct mime_arena *a, struct cur *c, struct mime_param **pp,
                   size_t *np, unsigned *msg_flags)
{
    struct rawp rp[MIME_PARAMS_MAX];
    size_t nr = 0;
    struct str v = STR_INIT;

    while (c->i < c->n) {
        size_t nb, nl, star;
        int section = -1;
        bool ext = false;

        /* to the next ";" */
        while (c->i < c->n && c->s[c->i] != ';')
            c->i++;
        if (c->i >= c->n)
            break;
        c->i++;
        skip_cfws(c);
        nb = c->i;
        nl = token(c);
        skip_cfws(c);
        if (nl == 0 || c->i >= c->n || c->s[c->i] != '=')
            continue;
        c->i++;
        skip_cfws(c);
        value(c, &v);
        if (nr == MIME_PARAMS_MAX)
            break;
        /* name*N*, name*N, name* */
        star = nl;
        for (size_t k = 0; k < nl; k++)
            if (c->s[nb + k] == '*') {
                star = k;
                break;
            }
        if (star < nl) {
            const char *t = c->s + nb + star + 1;
            size_t tl = nl - star - 1;
            if (tl == 0) {
                ext = true;             /* name*= */
            } else if (t[tl - 1] == '*') {
                ext = true;             /* name*N*= */
                tl--;
            }
            if (tl > 0) {
                int num = 0;
                size_t k;
                for (k = 0; k < tl && k < 4 && t[k] >= '0' && t[k] <= '9'; k++)
                    num = num * 10 + (t[k] - '0');
                if (k != tl || (tl > 1 && t[0] == '0'))
                    continue;           /* not a section number */
                section = num;
            }
        }
        rp[nr].name = mime_arena_lower(a, c->s + nb, star);
        rp[nr].section = section;
        rp[nr].ext = ext;
        rp[nr].val = mime_arena_strndup(a, v.s ? v.s : "", v.len);
        nr++;
    }
    (void)msg_flags;
    str_free(&v);
    assemble(a, rp, nr, pp, np);
}

int mime_parse_content_type(struct mime_arena *a, const char *v, size_t len,
                            const char **type, const char **subtype,
                            struct mime_param **pp, size_t *np, unsigned *msg_flags)
{
    struct cur c = { v, len, 0 };
    size_t tb, tl, sb, sl;

    skip_cfws(&c);
    tb = c.i;
    tl = token(&c);
    skip_cfws(&c);
    if (tl == 0 || c.i >= c.n || c.s[c.i] != '/')
        return -1;
    c.i++;
    skip_cfws(&c);
    sb = c.i;
    sl = token(&c);
    if (sl == 0)
        return -1;
    *type = mime_arena_lower(a, v + tb, tl);
    *subtype = mime_arena_lower(a, v + sb, sl);
    params(a, &c, pp, np, msg_flags);
    return 0;
}

int mime_parse_disposition(struct mime_arena *a, const char *v, size_t len,
                           const char **value_out, struct mime_param **pp, size_t *np,
                           unsigned *msg_flags)
{
    struct cur c = { v, len, 0 };
    size_t tb, tl;

    skip_cfws(&c);
    tb = c.i;
    tl = token(&c);
    if (tl == 0)
        return -1;
    *value_out = mime_arena_lower(a, v + tb, tl);
    params(a, &c, pp, np, msg_flags);
    return 0;
}
