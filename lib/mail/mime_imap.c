/* IMAP's views of a MIME tree (RFC 3501 7.4.2, RFC 9051 7.5.2): strings in quoted or
 * literal form, and BODY / BODYSTRUCTURE.  Values come from the message: every one
 * goes through mime_imap_string(), so that no quote, backslash, line end or 8-bit
 * byte can break the response's syntax. */
#include <string.h>

#include "mime.h"
#include "mime_int.h"

#define QUOTED_MAX 1000

void mime_imap_string(struct str *out, const char *s, size_t n)
{
    bool quoted = n <= QUOTED_MAX;
    size_t nul = 0, i;

    if (s == NULL) {
        str_appends(out, "NIL");
        return;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\0')
            nul++;
        else if (c == '\r' || c == '\n' || c >= 0x80)
            quoted = false;
    }
    if (quoted) {
        str_appendc(out, '"');
        for (i = 0; i < n; i++) {
            if (s[i] == '\0')
                continue;               /* NUL can be in neither form: dropped */
            if (s[i] == '"' || s[i] == '\\')
                str_appendc(out, '\\');
            str_appendc(out, s[i]);
        }
        str_appendc(out, '"');
        return;
    }
    str_printf(out, "{%zu}\r\n", n - nul);
    for (i = 0; i < n; i++)
        if (s[i] != '\0')
            str_appendc(out, s[i]);
}

void mime_imap_nstring(struct str *out, const char *s)
{
    mime_imap_string(out, s, s != NULL ? strlen(s) : 0);
}

static void params(struct str *out, const struct mime_param *p, size_t n)
{
    if (n == 0) {
        str_appends(out, "NIL");
        return;
    }
    str_appendc(out, '(');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            str_appendc(out, ' ');
        if (p[i].extended) {
            struct str name = STR_INIT;
            str_appends(&name, p[i].name);
            str_appendc(&name, '*');
            mime_imap_string(out, name.s, name.len);
            str_free(&name);
        } else {
            mime_imap_nstring(out, p[i].name);
        }
        str_appendc(out, ' ');
        mime_imap_nstring(out, p[i].raw);
    }
    str_appendc(out, ')');
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static void ext_common(struct str *out, const struct mime_part *p)
{
    str_appendc(out, ' ');
    if (p->disposition == NULL) {
        str_appends(out, "NIL");
    } else {
        str_appendc(out, '(');
        mime_imap_nstring(out, p->disposition);
        str_appendc(out, ' ');
        params(out, p->disp_params, p->ndisp_params);
        str_appendc(out, ')');
    }
    str_appendc(out, ' ');
    if (p->language == NULL) {
        str_appends(out, "NIL");
    } else {
        /* a list of language tags, separated by commas (RFC 3282) */
        const char *s = p->language;
        size_t n = 0;
        str_appendc(out, '(');
        while (*s != '\0') {
            size_t b;
            while (*s == ' ' || *s == '\t' || *s == ',')
                s++;
            b = strcspn(s, " \t,");
            if (b == 0)
                break;
            if (n++ > 0)
                str_appendc(out, ' ');
            mime_imap_string(out, s, b);
            s += b;
        }
        if (n == 0)
            str_appends(out, "\"\"");
        str_appendc(out, ')');
    }
    str_appendc(out, ' ');
    mime_imap_nstring(out, p->location);
}

static void empty_text(struct str *out, bool ext)
{
    str_appends(out, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0");
    if (ext)
        str_appends(out, " NIL NIL NIL NIL");
    str_appendc(out, ')');
}

static void part(const struct mime_msg *m, const struct mime_part *p, bool ext,
                 struct str *out)
{
    str_appendc(out, '(');
    if (mime_part_is_multipart(p)) {
        for (const struct mime_part *c = p->children; c != NULL; c = c->next)
            part(m, c, ext, out);
        str_appendc(out, ' ');
        mime_imap_nstring(out, p->subtype);
        if (ext) {
            str_appendc(out, ' ');
            params(out, p->params, p->nparams);
            ext_common(out, p);
        }
        str_appendc(out, ')');
        return;
    }
    mime_imap_nstring(out, p->type);
    str_appendc(out, ' ');
    mime_imap_nstring(out, p->subtype);
    str_appendc(out, ' ');
    params(out, p->params, p->nparams);
    str_appendc(out, ' ');
    mime_imap_nstring(out, p->id);
    str_appendc(out, ' ');
    mime_imap_nstring(out, p->description);
    str_appendc(out, ' ');
    mime_imap_nstring(out, p->encoding_name != NULL ? p->encoding_name : "7bit");
    str_printf(out, " %zu", p->body_size);
    if (mime_part_is(p, "message", "rfc822") || mime_part_is(p, "message", "global")) {
        /* body-type-msg: an encapsulated message that was not parsed (encoded, or
         * too deep) shows an empty envelope and body, as Dovecot does */
        str_appendc(out, ' ');
        if (p->children != NULL) {
            mime_imap_envelope(m, p->children, out);
            str_appendc(out, ' ');
            part(m, p->children, ext, out);
        } else {
            str_appends(out, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) ");
            empty_text(out, ext);
        }
        str_printf(out, " %zu", p->body_lines);
    } else if (strcmp(p->type, "text") == 0) {
        str_printf(out, " %zu", p->body_lines);
    }
    if (ext) {
        str_appendc(out, ' ');
        mime_imap_nstring(out, p->md5);
        ext_common(out, p);
    }
    str_appendc(out, ')');
}

void mime_imap_bodystructure(const struct mime_msg *m, const struct mime_part *p,
                             bool extended, struct str *out)
{
    part(m, p, extended, out);
}
