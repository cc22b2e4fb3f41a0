/* IMAP ENVELOPE (RFC 3501 7.4.2): the ten fields of a message's header, the address
 * fields parsed into (name adl mailbox host) lists with groups per RFC 3501's rules
 * (a group start is (NIL NIL "name" NIL), its end (NIL NIL NIL NIL)).  The parser is
 * RFC 5322's address-list, lenient as mail needs (obsolete routes, comments as names,
 * a missing domain), and bounded by the field's length: every step consumes input. */
#include <string.h>

#include "mime.h"
#include "mime_int.h"

/* What RFC 3501 cannot express (NIL there would mean a group), written as Dovecot does */
#define MISSING_DOMAIN "MISSING_DOMAIN"
#define MISSING_MAILBOX "MISSING_MAILBOX"

struct ap {
    const char *s;
    size_t n, i;
    struct str comment;         /* the last comment seen (a name, in "a@b (Name)") */
};

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_special(char c)
{
    return strchr("()<>[]:;@\\,.\"", c) != NULL;
}

static void skip_cfws(struct ap *a)
{
    while (a->i < a->n) {
        if (is_wsp(a->s[a->i])) {
            a->i++;
        } else if (a->s[a->i] == '(') {
            unsigned depth = 0;
            str_clear(&a->comment);
            while (a->i < a->n) {
                char c = a->s[a->i++];
                if (c == '\\' && a->i < a->n) {
                    str_appendc(&a->comment, a->s[a->i++]);
                    continue;
                }
                if (c == '(' && depth++ == 0)
                    continue;
                if (c == ')' && --depth == 0)
                    break;
                str_appendc(&a->comment, c);
            }
        } else {
            return;
        }
    }
}

/* A quoted string (unquoted into out) at a->i, which is '"'. */
static void quoted(struct ap *a, struct str *out)
{
    a->i++;
    while (a->i < a->n && a->s[a->i] != '"') {
        if (a->s[a->i] == '\\' && a->i + 1 < a->n)
            a->i++;
        if (a->s[a->i] != '\r' && a->s[a->i] != '\n')
            str_appendc(out, a->s[a->i]);
        a->i++;
    }
    if (a->i < a->n)
        a->i++;
}

/* An atom (8-bit bytes allowed: UTF-8 headers) appended to out; false if none. */
static bool atom(struct ap *a, struct str *out)
{
    size_t b = a->i;

    while (a->i < a->n && !is_wsp(a->s[a->i]) && !is_special(a->s[a->i]) &&
           (unsigned char)a->s[a->i] >= 32)
        a->i++;
    str_append(out, a->s + b, a->i - b);
    return a->i > b;
}

/* A phrase: words (atoms, quoted strings, and '.' of obsolete phrases) joined by
 * single spaces.  Stops before any other special. */
static void phrase(struct ap *a, struct str *out)
{
    for (;;) {
        size_t before = out->len;
        skip_cfws(a);
        if (a->i >= a->n)
            return;
        if (before > 0)
            str_appendc(out, ' ');
        if (a->s[a->i] == '"')
            quoted(a, out);
        else if (a->s[a->i] == '.') {
            if (before > 0)
                str_truncate(out, before);  /* "Q." not "Q ." */
            str_appendc(out, a->s[a->i++]);
        }
        else if (!atom(a, out)) {
            str_truncate(out, before);
            return;
        }
    }
}

/* local-part or domain: dot-separated words/literals with nothing between them. */
static void dotted(struct ap *a, struct str *out, bool domain)
{
    for (;;) {
        skip_cfws(a);
        if (a->i >= a->n)
            return;
        if (a->s[a->i] == '"' && !domain) {
            quoted(a, out);
        } else if (a->s[a->i] == '[' && domain) {
            size_t b = a->i;
            while (a->i < a->n && a->s[a->i] != ']')
                a->i++;
            if (a->i < a->n)
                a->i++;
            str_append(out, a->s + b, a->i - b);
        } else if (!atom(a, out)) {
            return;
        }
        skip_cfws(a);
        if (a->i < a->n && a->s[a->i] == '.') {
            str_appendc(out, '.');
            a->i++;
        } else {
            return;
        }
    }
}

static void addr_out(struct str *out, const struct str *name, const struct str *adl,
                     const struct str *mbox, const struct str *host)
{
    str_appendc(out, '(');
    mime_imap_string(out, name->len > 0 ? name->s : NULL, name->len);
    str_appendc(out, ' ');
    mime_imap_string(out, adl->len > 0 ? adl->s : NULL, adl->len);
    str_appendc(out, ' ');
    if (mbox->len > 0)
        mime_imap_string(out, mbox->s, mbox->len);
    else
        str_appends(out, "\"" MISSING_MAILBOX "\"");
    str_appendc(out, ' ');
    if (host->len > 0)
        mime_imap_string(out, host->s, host->len);
    else
        str_appends(out, "\"" MISSING_DOMAIN "\"");
    str_appendc(out, ')');
}

/* addr-spec or angle-addr after the phrase already read into name.  Returns false
 * when nothing was there. */
static bool mailbox(struct ap *a, struct str *out, struct str *name, size_t pstart)
{
    struct str adl = STR_INIT, mbox = STR_INIT, host = STR_INIT;
    bool any = false;

    skip_cfws(a);
    if (a->i < a->n && a->s[a->i] == '<') {
        a->i++;
        skip_cfws(a);
        /* obs-route: "@a,@b:" */
        while (a->i < a->n && (a->s[a->i] == '@' || a->s[a->i] == ',')) {
            if (a->s[a->i] == ',') {
                a->i++;
                skip_cfws(a);
                continue;
            }
            a->i++;
            if (adl.len > 0)
                str_appendc(&adl, ',');
            str_appendc(&adl, '@');
            dotted(a, &adl, true);
            skip_cfws(a);
        }
        if (adl.len > 0 && a->i < a->n && a->s[a->i] == ':')
            a->i++;
        dotted(a, &mbox, false);
        skip_cfws(a);
        if (a->i < a->n && a->s[a->i] == '@') {
            a->i++;
            dotted(a, &host, true);
        }
        while (a->i < a->n && a->s[a->i] != '>' && a->s[a->i] != ',')
            a->i++;                     /* junk inside the brackets */
        if (a->i < a->n && a->s[a->i] == '>')
            a->i++;
        any = true;
    } else {
        /* no brackets: what was read as a phrase is an addr-spec; read it again */
        a->i = pstart;
        str_clear(name);
        str_clear(&a->comment);
        dotted(a, &mbox, false);
        skip_cfws(a);
        if (a->i < a->n && a->s[a->i] == '@') {
            a->i++;
            dotted(a, &host, true);
        }
        skip_cfws(a);
        if (a->comment.len > 0)
            str_set(name, a->comment.s, a->comment.len);
        any = mbox.len > 0 || host.len > 0;
    }
    if (any)
        addr_out(out, name, &adl, &mbox, &host);
    str_free(&adl);
    str_free(&mbox);
    str_free(&host);
    return any;
}

/* An address-list as a parenthesised list, or NIL when it holds no address. */
static void address_list(const char *s, size_t n, struct str *out)
{
    struct ap a = { s, n, 0, STR_INIT };
    struct str name = STR_INIT;
    size_t start = out->len, count = 0, pstart;
    bool in_group = false;

    str_appendc(out, '(');
    while (a.i < a.n) {
        size_t before = a.i;

        str_clear(&name);
        skip_cfws(&a);
        if (a.i >= a.n)
            break;
        if (a.s[a.i] == ',') {
            a.i++;
            continue;
        }
        if (a.s[a.i] == ';') {
            a.i++;
            if (in_group) {
                str_appends(out, "(NIL NIL NIL NIL)");
                in_group = false;
            }
            continue;
        }
        pstart = a.i;
        phrase(&a, &name);
        skip_cfws(&a);
        if (a.i < a.n && a.s[a.i] == ':' && !in_group) {
            a.i++;
            str_appends(out, "(NIL NIL ");
            mime_imap_string(out, name.s != NULL ? name.s : "", name.len);
            str_appends(out, " NIL)");
            in_group = true;
            count++;
            continue;
        }
        if (mailbox(&a, out, &name, pstart))
            count++;
        skip_cfws(&a);
        /* anything else up to the next separator is junk */
        while (a.i < a.n && a.s[a.i] != ',' && a.s[a.i] != ';')
            a.i++;
        if (a.i == before)
            a.i++;                      /* always progress */
    }
    if (in_group)
        str_appends(out, "(NIL NIL NIL NIL)");
    str_appendc(out, ')');
    if (count == 0) {
        str_truncate(out, start);
        str_appends(out, "NIL");
    }
    str_free(&name);
    str_free(&a.comment);
}

static const char *const fields[] = {
    "date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc",
    "in-reply-to", "message-id",
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

void mime_imap_envelope(const struct mime_msg *m, const struct mime_part *p,
                        struct str *out)
{
    struct str v[NFIELDS];
    bool have[NFIELDS] = { false };
    struct mime_field_iter it;
    struct mime_field f;
    size_t i, nf = 0;

    for (i = 0; i < NFIELDS; i++)
        str_init(&v[i]);
    mime_field_iter_init(&it, m->buf + p->off, p->body_off - p->off);
    while (mime_field_next(&it, &f) == 1 && nf++ < MIME_HEADER_FIELDS_MAX) {
        for (i = 0; i < NFIELDS; i++) {
            if (!have[i] && mime_field_is(&f, fields[i])) {
                (void)mime_field_value(&f, &v[i], 0);
                have[i] = true;
                break;
            }
        }
    }
    /* sender and reply-to default to from when absent or empty */
    for (i = 3; i <= 4; i++)
        if (!have[i] || v[i].len == 0) {
            have[i] = have[2];
            str_set(&v[i], v[2].s != NULL ? v[2].s : "", v[2].len);
        }
    str_appendc(out, '(');
    for (i = 0; i < NFIELDS; i++) {
        if (i > 0)
            str_appendc(out, ' ');
        if (!have[i])
            str_appends(out, "NIL");
        else if (i >= 2 && i <= 7)
            address_list(v[i].s, v[i].len, out);
        else
            mime_imap_string(out, v[i].s != NULL ? v[i].s : "", v[i].len);
        str_free(&v[i]);
    }
    str_appendc(out, ')');
}
