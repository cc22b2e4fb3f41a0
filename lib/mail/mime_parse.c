/* The tree of MIME parts of a message held in memory (RFC 2045, RFC 2046): one pass
 * over the lines, a stack of the open multiparts' boundaries, each part's header and
 * body offsets, line count and "\r\n" size, and its Content-* fields.  The message is
 * untrusted: see the limits in mime.h.  Boundary lines are matched exactly ("--b",
 * "--b--", then only white space), innermost multipart first, so that a boundary that
 * is a prefix of another one is not taken for it. */
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "mime_int.h"
#include "xmalloc.h"

/* A part and what the parser needs to close it. */
struct ppart {
    struct mime_part pub;           /* first: the public part */
    struct ppart *last_child;
    size_t off_lf;                  /* bare "\n" before off */
    size_t body_line, body_lf;      /* "\n" and bare "\n" before body_off */
    unsigned char in_header;
    unsigned char closed;           /* multipart: its closing boundary was seen */
    const char *boundary;
    size_t blen;
};

struct parser {
    struct mime_msg *m;
    const char *buf;
    size_t len;
    struct ppart *cur;
    struct ppart *stack[MIME_DEPTH_MAX + 1];  /* open multiparts, outermost first */
    size_t nstack;
    bool boundaries_off;
    /* at the start of the current line */
    size_t line_idx, lonelf, nls;   /* lines, bare "\n" and "\n" before it */
    /* the previous line */
    size_t prev_eol;
    bool prev_lone;
};

/* ---- the arena ---- */

struct arena_blk {
    struct arena_blk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

struct mime_arena {
    struct arena_blk *blk;
};

struct mime_arena *mime_arena_new(void)
{
    return xcalloc(1, sizeof(struct mime_arena));
}

void mime_arena_free(struct mime_arena *a)
{
    struct arena_blk *b, *n;

    if (a == NULL)
        return;
    for (b = a->blk; b != NULL; b = n) {
        n = b->next;
        free(b);
    }
    free(a);
}

void *mime_arena_alloc(struct mime_arena *a, size_t n)
{
    struct arena_blk *b = a->blk;
    void *p;

    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        b = xmalloc(sizeof(*b) + cap);
        b->used = 0;
        b->cap = cap;
        b->next = a->blk;
        a->blk = b;
    }
    p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *mime_arena_strndup(struct mime_arena *a, const char *s, size_t n)
{
    char *p = mime_arena_alloc(a, n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *mime_arena_lower(struct mime_arena *a, const char *s, size_t n)
{
    char *p = mime_arena_strndup(a, s, n);

    for (size_t i = 0; i < n; i++)
        if (p[i] >= 'A' && p[i] <= 'Z')
            p[i] = (char)(p[i] - 'A' + 'a');
    return p;
}

int mime_eq_nocase(const char *s, size_t n, const char *lit)
{
    size_t i;

    for (i = 0; i < n; i++) {
        char a = s[i], b = lit[i];
        if (b == '\0')
            return 0;
        if (a >= 'A' && a <= 'Z')
            a = (char)(a - 'A' + 'a');
        if (b >= 'A' && b <= 'Z')
            b = (char)(b - 'A' + 'a');
        if (a != b)
            return 0;
    }
    return lit[i] == '\0';
}

/* ---- parts ---- */

static struct ppart *part_new(struct parser *ps, struct ppart *parent, size_t off)
{
    struct ppart *p = mime_arena_alloc(ps->m->arena, sizeof(*p));

    p->pub.off = p->pub.body_off = p->pub.end = off;
    p->off_lf = ps->lonelf;
    p->in_header = 1;
    p->pub.type = "text";
    p->pub.subtype = "plain";
    p->pub.encoding = MIME_ENC_7BIT;
    if (parent != NULL) {
        p->pub.parent = &parent->pub;
        p->pub.depth = parent->pub.depth + 1;
        p->pub.index = ++parent->pub.nchildren;
        if (parent->last_child == NULL)
            parent->pub.children = &p->pub;
        else
            parent->last_child->pub.next = &p->pub;
        parent->last_child = p;
        if (mime_part_is(&parent->pub, "multipart", "digest")) {
            p->pub.type = "message";
            p->pub.subtype = "rfc822";
        }
    }
    ps->m->nparts++;
    return p;
}

static struct mime_param default_charset[1] = {
    { "charset", "us-ascii", "us-ascii", false },
};

/* The Content-* fields of p's header. */
static void part_fields(struct parser *ps, struct ppart *pp)
{
    struct mime_part *p = &pp->pub;
    struct mime_arena *a = ps->m->arena;
    struct mime_field_iter it;
    struct mime_field f;
    struct str v = STR_INIT;
    size_t n = 0;
    bool seen_ct = false, seen_cte = false, seen_cd = false;

    mime_field_iter_init(&it, ps->buf + p->off, p->body_off - p->off);
    while (mime_field_next(&it, &f) == 1) {
        if (++n > MIME_HEADER_FIELDS_MAX) {
            ps->m->flags |= MIME_MSG_FIELDS_LIMIT;
            break;
        }
        if (f.name_len < 8 || !mime_eq_nocase(f.name, 8, "content-"))
            continue;
        if (mime_field_value(&f, &v, 0))
            ps->m->flags |= MIME_MSG_FIELD_CUT;
        if (mime_field_is(&f, "content-type") && !seen_ct) {
            seen_ct = true;
            if (mime_parse_content_type(a, v.s, v.len, &p->type, &p->subtype,
                                        &p->params, &p->nparams, &ps->m->flags) == 0)
                p->type_given = true;
        } else if (mime_field_is(&f, "content-transfer-encoding") && !seen_cte) {
            size_t b = 0, e;
            seen_cte = true;
            /* the token, without comments or trailing junk */
            while (b < v.len && (v.s[b] == ' ' || v.s[b] == '\t'))
                b++;
            for (e = b; e < v.len && v.s[e] != ' ' && v.s[e] != '\t' && v.s[e] != '(' &&
                 v.s[e] != ';'; e++)
                ;
            if (e > b) {
                const char *en = mime_arena_lower(a, v.s + b, e - b);
                p->encoding_name = en;
                p->encoding = !strcmp(en, "7bit") ? MIME_ENC_7BIT
                    : !strcmp(en, "8bit") ? MIME_ENC_8BIT
                    : !strcmp(en, "binary") ? MIME_ENC_BINARY
                    : !strcmp(en, "quoted-printable") ? MIME_ENC_QP
                    : !strcmp(en, "base64") ? MIME_ENC_BASE64 : MIME_ENC_UNKNOWN;
            }
        } else if (mime_field_is(&f, "content-disposition") && !seen_cd) {
            seen_cd = true;
            (void)mime_parse_disposition(a, v.s, v.len, &p->disposition, &p->disp_params,
                                         &p->ndisp_params, &ps->m->flags);
        } else if (mime_field_is(&f, "content-id") && p->id == NULL) {
            p->id = mime_arena_strndup(a, v.s, v.len);
        } else if (mime_field_is(&f, "content-description") && p->description == NULL) {
            p->description = mime_arena_strndup(a, v.s, v.len);
        } else if (mime_field_is(&f, "content-md5") && p->md5 == NULL) {
            p->md5 = mime_arena_strndup(a, v.s, v.len);
        } else if (mime_field_is(&f, "content-language") && p->language == NULL) {
            p->language = mime_arena_strndup(a, v.s, v.len);
        } else if (mime_field_is(&f, "content-location") && p->location == NULL) {
            p->location = mime_arena_strndup(a, v.s, v.len);
        }
    }
    str_free(&v);
    /* RFC 2045 5.2: text without a charset is us-ascii (BODYSTRUCTURE shows it) */
    if (!strcmp(p->type, "text") &&
        mime_param_find(p->params, p->nparams, "charset") == NULL) {
        if (p->nparams == 0) {
            p->params = default_charset;
        } else {
            struct mime_param *np = mime_arena_alloc(a, (p->nparams + 1) * sizeof(*np));
            memcpy(np, p->params, p->nparams * sizeof(*np));
            np[p->nparams] = default_charset[0];
            p->params = np;
        }
        p->nparams++;
    }
}

/* Sets the end of pp at buffer offset end, with the numbers of "\n" and of bare "\n"
 * before it.  A body's line count is the number of "\n" in it, as Dovecot counts:
 * "a\r\nb" before a boundary is 1 line, "a\r\n" at the end of a message too. */
static void part_close_at(struct ppart *pp, size_t end, size_t lines, size_t lf)
{
    struct mime_part *p = &pp->pub;

    if (end < p->off) {
        /* a boundary right where the part starts: the part is empty, at the end of
         * the line before (whose line end belongs to that boundary) */
        p->off = end;
        pp->off_lf = lf;
    }
    if (pp->in_header) {
        /* no empty line: the header runs to the end, the body is empty */
        p->flags |= MIME_PART_HEADER_UNTERMINATED;
        p->body_off = end;
        pp->body_line = lines;
        pp->body_lf = lf;
        pp->in_header = 0;
    }
    if (end < p->body_off) {
        /* the header's empty line ends right at the boundary: its line end is the
         * boundary's, so the header stops before it and the body is empty */
        p->body_off = end;
        pp->body_line = lines;
        pp->body_lf = lf;
    }
    p->end = end;
    p->header_size = (p->body_off - p->off) + (pp->body_lf - pp->off_lf);
    if (end == p->body_off) {
        p->body_size = 0;
        p->body_lines = 0;
    } else {
        p->body_size = (end - p->body_off) + (lf - pp->body_lf);
        p->body_lines = lines - pp->body_line;
    }
}

/* Closes pp at EOF, or before the boundary line starting at ls. */
static void part_close(struct parser *ps, struct ppart *pp, size_t ls, bool at_eof)
{
    size_t end, lines, lf;
    bool header_open = pp->in_header;

    if (mime_part_is_multipart(&pp->pub) && !pp->closed && !pp->in_header &&
        pp->boundary != NULL) {
        pp->pub.flags |= MIME_PART_NO_END;
        ps->m->flags |= MIME_MSG_NO_END;
    }
    if (at_eof) {
        part_close_at(pp, ps->len, ps->nls, ps->lonelf);
    } else if (ps->line_idx == 0) {
        part_close_at(pp, ls, 0, 0);
    } else {
        /* the line end before the boundary belongs to the boundary */
        end = ls - ps->prev_eol;
        lines = ps->line_idx - 1;       /* "\n" bytes before the previous one */
        lf = ps->lonelf - (ps->prev_lone ? 1 : 0);
        part_close_at(pp, end, lines, lf);
    }
    /* a header cut short by a boundary or the end still says what the part is */
    if (header_open)
        part_fields(ps, pp);
    /* a multipart with no part gets one, its whole body, so that its structure is
     * still valid (RFC 3501's body-type-mpart needs a part) */
    if (mime_part_is_multipart(&pp->pub) && pp->pub.nchildren == 0) {
        struct ppart *c = part_new(ps, pp, pp->pub.body_off);
        c->in_header = 0;
        c->off_lf = c->body_lf = pp->body_lf;
        c->body_line = pp->body_line;
        c->pub.type = "text";
        c->pub.subtype = "plain";
        c->pub.params = default_charset;
        c->pub.nparams = 1;
        c->pub.flags |= MIME_PART_SYNTHETIC;
        c->pub.end = pp->pub.end;
        c->pub.body_size = pp->pub.body_size;
        c->pub.body_lines = pp->pub.body_lines;
    }
}

/* Does line[0..n) (line end excluded) delimit with boundary b?  1: "--b", 2: "--b--". */
static int boundary_match(const char *line, size_t n, const char *b, size_t blen)
{
    size_t i;
    int kind = 1;

    if (n < blen + 2 || memcmp(line + 2, b, blen) != 0)
        return 0;
    i = blen + 2;
    if (n - i >= 2 && line[i] == '-' && line[i + 1] == '-') {
        kind = 2;
        i += 2;
    }
    for (; i < n; i++)
        if (line[i] != ' ' && line[i] != '\t')
            return 0;
    return kind;
}

/* The header of cur ended (body at next): read its fields, open what it contains. */
static void header_done(struct parser *ps, size_t next, size_t lines, size_t lf)
{
    struct ppart *pp = ps->cur;
    struct mime_part *p = &pp->pub;

    pp->in_header = 0;
    p->body_off = next;
    pp->body_line = lines;
    pp->body_lf = lf;
    part_fields(ps, pp);

    if (mime_part_is_multipart(p)) {
        const struct mime_param *b = mime_param_find(p->params, p->nparams, "boundary");
        if (p->depth >= MIME_DEPTH_MAX) {
            p->flags |= MIME_PART_DEPTH_LIMIT;
            ps->m->flags |= MIME_MSG_DEPTH_LIMIT;
        } else if (b == NULL || b->raw[0] == '\0' || strlen(b->raw) > MIME_BOUNDARY_MAX) {
            p->flags |= MIME_PART_BAD_BOUNDARY;
            ps->m->flags |= MIME_MSG_BAD_BOUNDARY;
        } else {
            pp->boundary = b->raw;
            pp->blen = strlen(b->raw);
            ps->stack[ps->nstack++] = pp;
        }
    } else if (mime_part_is(p, "message", "rfc822") || mime_part_is(p, "message", "global")) {
        if (p->encoding != MIME_ENC_7BIT && p->encoding != MIME_ENC_8BIT &&
            p->encoding != MIME_ENC_BINARY)
            return;                     /* RFC 2046 5.2.1: not encoded; a leaf then */
        if (p->depth >= MIME_DEPTH_MAX) {
            p->flags |= MIME_PART_DEPTH_LIMIT;
            ps->m->flags |= MIME_MSG_DEPTH_LIMIT;
        } else if (ps->m->nparts >= MIME_PARTS_MAX) {
            ps->m->flags |= MIME_MSG_PARTS_LIMIT;
        } else {
            struct ppart *c = part_new(ps, pp, next);
            c->off_lf = lf;
            ps->cur = c;
        }
    }
}

/* A boundary line of stack[i] at [ls, next). */
static void boundary_seen(struct parser *ps, size_t i, int kind, size_t ls, size_t next,
                          size_t lf_after)
{
    struct ppart *mp = ps->stack[i], *q;

    if (kind == 1 && ps->m->nparts >= MIME_PARTS_MAX) {
        ps->m->flags |= MIME_MSG_PARTS_LIMIT;
        ps->boundaries_off = true;      /* the rest goes to the current part */
        return;
    }
    for (q = ps->cur; q != mp && q != NULL; q = (struct ppart *)q->pub.parent)
        part_close(ps, q, ls, false);
    ps->nstack = i + 1;
    if (kind == 2) {
        mp->closed = 1;
        ps->nstack = i;
        ps->cur = mp;                   /* the epilogue */
    } else {
        struct ppart *c = part_new(ps, mp, next);
        c->off_lf = lf_after;
        ps->cur = c;
    }
}

int mime_parse(struct mime_msg *m, const char *buf, size_t len)
{
    struct parser ps;
    size_t pos = 0;

    memset(m, 0, sizeof(*m));
    if (buf == NULL)
        buf = "";
    m->buf = buf;
    m->len = len;
    m->arena = mime_arena_new();
    memset(&ps, 0, sizeof(ps));
    ps.m = m;
    ps.buf = buf;
    ps.len = len;
    ps.cur = part_new(&ps, NULL, 0);
    m->root = &ps.cur->pub;
    if (len > 0 && memchr(buf, '\0', len) != NULL)
        m->flags |= MIME_MSG_NUL;

    while (pos < len) {
        const char *line = buf + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t next = nl != NULL ? (size_t)(nl - buf) + 1 : len;
        size_t n = nl != NULL ? (size_t)(nl - line) : len - pos;
        size_t eol = nl != NULL ? 1 : 0;
        bool lone = false, handled = false;

        if (nl != NULL) {
            if (n > 0 && line[n - 1] == '\r') {
                n--;
                eol = 2;
            } else {
                lone = true;
            }
        }
        if (!ps.boundaries_off && ps.nstack > 0 && n >= 2 && line[0] == '-' &&
            line[1] == '-') {
            for (size_t i = ps.nstack; i-- > 0;) {
                int k = boundary_match(line, n, ps.stack[i]->boundary, ps.stack[i]->blen);
                if (k != 0) {
                    boundary_seen(&ps, i, k, pos, next, ps.lonelf + (lone ? 1 : 0));
                    handled = true;
                    break;
                }
            }
        }
        if (!handled && ps.cur->in_header && n == 0 && nl != NULL)
            header_done(&ps, next, ps.line_idx + 1, ps.lonelf + (lone ? 1 : 0));
        ps.prev_eol = eol;
        ps.prev_lone = lone;
        ps.line_idx++;
        if (lone)
            ps.lonelf++;
        if (nl != NULL)
            ps.nls++;
        pos = next;
    }
    for (struct ppart *q = ps.cur; q != NULL; q = (struct ppart *)q->pub.parent)
        part_close(&ps, q, len, true);
    return 0;
}

void mime_free(struct mime_msg *m)
{
    mime_arena_free(m->arena);
    memset(m, 0, sizeof(*m));
}

/* ---- looking at the tree ---- */

bool mime_part_is(const struct mime_part *p, const char *type, const char *subtype)
{
    return strcmp(p->type, type) == 0 && (subtype == NULL || strcmp(p->subtype, subtype) == 0);
}

bool mime_part_is_multipart(const struct mime_part *p)
{
    return strcmp(p->type, "multipart") == 0;
}

bool mime_part_is_message(const struct mime_part *p)
{
    return strcmp(p->type, "message") == 0 && p->children != NULL;
}

const struct mime_part *mime_part_next(const struct mime_part *p)
{
    if (p->children != NULL)
        return p->children;
    while (p != NULL) {
        if (p->next != NULL)
            return p->next;
        p = p->parent;
    }
    return NULL;
}

const struct mime_param *mime_param_find(const struct mime_param *params, size_t n,
                                         const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (mime_eq_nocase(params[i].name, strlen(params[i].name), name))
            return &params[i];
    return NULL;
}

const struct mime_part *mime_part_lookup(const struct mime_msg *m, const unsigned *nums,
                                         size_t n)
{
    const struct mime_part *c = m->root, *p = m->root;
    bool entity = true;         /* c is a message entity (root or encapsulated) */

    for (size_t i = 0; i < n; i++) {
        if (mime_part_is_multipart(c)) {
            for (p = c->children; p != NULL && p->index != nums[i]; p = p->next)
                ;
            if (p == NULL)
                return NULL;
        } else if (entity && nums[i] == 1) {
            p = c;              /* the body of a single-part message is its part 1 */
        } else {
            return NULL;
        }
        if (mime_part_is_message(p)) {
            c = p->children;
            entity = true;
        } else {
            c = p;
            entity = false;
        }
    }
    return p;
}
