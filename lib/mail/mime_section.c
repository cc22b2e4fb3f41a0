/* BODY[section]<partial> and BINARY[section] of RFC 3501 6.4.5 and RFC 3516: parsing
 * a section-spec, resolving it on a MIME tree, and copying its bytes (bare "\n"
 * written as "\r\n", so that what is sent matches the sizes of the tree).  The spec
 * comes from a client and is untrusted: numbers are bounded, the part list is no
 * deeper than the tree can be, and the field list is bounded. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mime.h"
#include "mime_int.h"
#include "xmalloc.h"

static bool is_atom_char(char c)
{
    unsigned char u = (unsigned char)c;
    return u > 32 && u < 127 && strchr("(){ %*\"\\]", c) == NULL;
}

static bool kw(const char *s, size_t len, size_t *i, const char *word)
{
    size_t n = strlen(word);

    if (len - *i < n || !mime_eq_nocase(s + *i, n, word))
        return false;
    *i += n;
    return true;
}

static int field_list(const char *s, size_t len, size_t *i, struct mime_section *sec)
{
    struct str name = STR_INIT;
    int rc = -1;

    if (*i >= len || s[*i] != ' ')
        return -1;
    (*i)++;
    if (*i >= len || s[*i] != '(')
        return -1;
    (*i)++;
    for (;;) {
        str_clear(&name);
        if (*i < len && s[*i] == '"') {
            (*i)++;
            while (*i < len && s[*i] != '"') {
                if (s[*i] == '\\' && *i + 1 < len)
                    (*i)++;
                /* TEXT-CHAR of RFC 3501: 7-bit, no CR, LF or NUL */
                if (s[*i] == '\r' || s[*i] == '\n' || s[*i] == '\0' ||
                    (unsigned char)s[*i] >= 0x80)
                    goto out;
                str_appendc(&name, s[(*i)++]);
            }
            if (*i >= len)
                goto out;
            (*i)++;
        } else {
            while (*i < len && is_atom_char(s[*i]))
                str_appendc(&name, s[(*i)++]);
        }
        if (name.len == 0 || sec->nfields >= MIME_SECTION_FIELDS_MAX)
            goto out;
        sec->fields = xreallocarray(sec->fields, sec->nfields + 1, sizeof(char *));
        sec->fields[sec->nfields++] = xstrndup(name.s, name.len);
        if (*i < len && s[*i] == ' ') {
            (*i)++;
            continue;
        }
        if (*i < len && s[*i] == ')') {
            (*i)++;
            rc = 0;
        }
        break;
    }
out:
    str_free(&name);
    return rc;
}

int mime_section_parse(const char *s, size_t len, struct mime_section *sec)
{
    size_t i = 0;

    memset(sec, 0, sizeof(*sec));
    /* section-part */
    while (i < len && s[i] >= '1' && s[i] <= '9') {
        uint64_t v = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (uint64_t)(s[i++] - '0');
            if (v > 0xffffffffu)
                goto bad;
        }
        if (sec->nnums == sizeof(sec->nums) / sizeof(sec->nums[0]))
            goto bad;
        sec->nums[sec->nnums++] = (unsigned)v;
        if (i < len && s[i] == '.' && i + 1 < len && s[i + 1] >= '1' && s[i + 1] <= '9') {
            i++;
            continue;
        }
        break;
    }
    if (i == len)
        return 0;
    if (sec->nnums > 0) {
        if (s[i] != '.')
            goto bad;
        i++;
        if (kw(s, len, &i, "MIME")) {
            sec->text = MIME_SECT_MIME;
            goto end;
        }
    }
    if (kw(s, len, &i, "HEADER.FIELDS.NOT")) {
        sec->text = MIME_SECT_FIELDS_NOT;
        if (field_list(s, len, &i, sec) < 0)
            goto bad;
    } else if (kw(s, len, &i, "HEADER.FIELDS")) {
        sec->text = MIME_SECT_FIELDS;
        if (field_list(s, len, &i, sec) < 0)
            goto bad;
    } else if (kw(s, len, &i, "HEADER")) {
        sec->text = MIME_SECT_HEADER;
    } else if (kw(s, len, &i, "TEXT")) {
        sec->text = MIME_SECT_TEXT;
    } else {
        goto bad;
    }
end:
    if (i == len)
        return 0;
bad:
    mime_section_free(sec);
    return -1;
}

void mime_section_free(struct mime_section *sec)
{
    for (size_t i = 0; i < sec->nfields; i++)
        free(sec->fields[i]);
    free(sec->fields);
    memset(sec, 0, sizeof(*sec));
}

void mime_section_format(const struct mime_section *sec, struct str *out)
{
    static const char *const words[] = {
        [MIME_SECT_NONE] = "", [MIME_SECT_HEADER] = "HEADER",
        [MIME_SECT_FIELDS] = "HEADER.FIELDS", [MIME_SECT_FIELDS_NOT] = "HEADER.FIELDS.NOT",
        [MIME_SECT_TEXT] = "TEXT", [MIME_SECT_MIME] = "MIME",
    };

    for (size_t i = 0; i < sec->nnums; i++)
        str_printf(out, "%s%u", i > 0 ? "." : "", sec->nums[i]);
    if (sec->text == MIME_SECT_NONE)
        return;
    if (sec->nnums > 0)
        str_appendc(out, '.');
    str_appends(out, words[sec->text]);
    if (sec->text == MIME_SECT_FIELDS || sec->text == MIME_SECT_FIELDS_NOT) {
        str_appends(out, " (");
        for (size_t i = 0; i < sec->nfields; i++) {
            const char *f = sec->fields[i];
            bool atom = f[0] != '\0';
            if (i > 0)
                str_appendc(out, ' ');
            for (const char *p = f; *p != '\0'; p++)
                atom = atom && is_atom_char(*p);
            if (atom)
                str_appends(out, f);
            else
                mime_imap_nstring(out, f);
        }
        str_appendc(out, ')');
    }
}

/* buf[b..e) appended, bare "\n" as "\r\n" unless raw. */
static void copy(const struct mime_msg *m, size_t b, size_t e, bool raw, struct str *out)
{
    const char *s = m->buf;

    if (raw) {
        str_append(out, s + b, e - b);
        return;
    }
    while (b < e) {
        const char *nl = memchr(s + b, '\n', e - b);
        size_t k = nl != NULL ? (size_t)(nl - s) : e;
        str_append(out, s + b, k - b);
        if (nl == NULL)
            break;
        if (k == 0 || s[k - 1] != '\r')
            str_appendc(out, '\r');
        str_appendc(out, '\n');
        b = k + 1;
    }
}

static bool listed(const struct mime_section *sec, const struct mime_field *f)
{
    for (size_t i = 0; i < sec->nfields; i++)
        if (mime_field_is(f, sec->fields[i]))
            return true;
    return false;
}

int mime_section_fetch(const struct mime_msg *m, const struct mime_section *sec,
                       unsigned flags, struct str *out)
{
    const struct mime_part *p = m->root, *e;
    bool raw = (flags & MIME_FETCH_RAW_EOL) != 0;

    if (sec->nnums > 0 && (p = mime_part_lookup(m, sec->nums, sec->nnums)) == NULL)
        return -1;
    if (flags & MIME_FETCH_BINARY) {
        if (sec->text != MIME_SECT_NONE)
            return -1;
        if (sec->nnums == 0) {
            copy(m, 0, m->len, raw, out);
            return 0;
        }
        if (p->encoding == MIME_ENC_UNKNOWN)
            return -2;
        if (p->encoding == MIME_ENC_QP || p->encoding == MIME_ENC_BASE64) {
            (void)mime_part_decode(m, p, out, 0);
            return 0;
        }
        copy(m, p->body_off, p->end, raw, out);
        return 0;
    }
    /* the message entity that HEADER and TEXT refer to */
    if (sec->nnums == 0)
        e = m->root;
    else if (mime_part_is_message(p))
        e = p->children;
    else
        e = NULL;
    switch (sec->text) {
    case MIME_SECT_NONE:
        if (sec->nnums == 0)
            copy(m, 0, m->len, raw, out);
        else
            copy(m, p->body_off, p->end, raw, out);
        return 0;
    case MIME_SECT_MIME:
        copy(m, p->off, p->body_off, raw, out);
        return 0;
    case MIME_SECT_HEADER:
        if (e == NULL)
            return -1;
        copy(m, e->off, e->body_off, raw, out);
        return 0;
    case MIME_SECT_TEXT:
        if (e == NULL)
            return -1;
        copy(m, e->body_off, e->end, raw, out);
        return 0;
    case MIME_SECT_FIELDS:
    case MIME_SECT_FIELDS_NOT: {
        struct mime_field_iter it;
        struct mime_field f;
        size_t n = 0;
        if (e == NULL)
            return -1;
        mime_field_iter_init(&it, m->buf + e->off, e->body_off - e->off);
        while (mime_field_next(&it, &f) == 1 && n++ < MIME_HEADER_FIELDS_MAX) {
            if (listed(sec, &f) != (sec->text == MIME_SECT_FIELDS))
                continue;
            copy(m, (size_t)(f.raw - m->buf), (size_t)(f.raw - m->buf) + f.raw_len, raw,
                 out);
            if (f.raw[f.raw_len - 1] != '\n')
                str_appends(out, "\r\n");
        }
        str_appends(out, "\r\n");      /* the blank line is always included */
        return 0;
    }
    }
    return -1;
}

void mime_partial(size_t len, uint64_t origin, uint64_t count, size_t *start, size_t *n)
{
    if (origin >= len) {
        *start = len;
        *n = 0;
        return;
    }
    *start = (size_t)origin;
    *n = count < len - *start ? (size_t)count : len - *start;
}
