/* The end of a message through a list of milters (milter_msg.h): the header fields
 * as a list that the filters' changes edit, the body with CRLF line ends for them,
 * and the message put back together after each filter. */
#include "milter_msg.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "headers.h"
#include "log.h"
#include "xmalloc.h"

/* One header field of the message being changed: its raw text ("Name: value\n",
 * continuation lines included). */
struct field {
    char *name;
    struct str raw;
};

struct fields {
    struct field *f;
    size_t n;
};

static void fields_insert(struct fields *fs, size_t at, const char *name, size_t nlen,
                          const char *raw, size_t rlen)
{
    fs->f = xreallocarray(fs->f, fs->n + 1, sizeof(*fs->f));
    memmove(fs->f + at + 1, fs->f + at, (fs->n - at) * sizeof(*fs->f));
    fs->f[at].name = xstrndup(name, nlen);
    str_init(&fs->f[at].raw);
    str_set(&fs->f[at].raw, raw, rlen);
    fs->n++;
}

static void fields_free(struct fields *fs)
{
    for (size_t i = 0; i < fs->n; i++) {
        free(fs->f[i].name);
        str_free(&fs->f[i].raw);
    }
    free(fs->f);
}

/* "Name: value\n" from a filter's name and value: CR LF and bare CR become LF, a
 * line break not followed by white space gets a tab (it must stay one field), and
 * empty or blank lines are dropped (one would end the header section). */
static void field_text(struct str *out, const char *name, const char *value)
{
    bool first = true;

    str_clear(out);
    str_printf(out, "%s:", name);
    for (const char *p = value;;) {
        size_t n = strcspn(p, "\r\n");

        /* an empty or blank line would end the header section: dropped */
        if (strspn(p, " \t") < n) {
            if (!first)
                str_appendc(out, '\n');
            if (*p != ' ' && *p != '\t')
                str_appendc(out, first ? ' ' : '\t');
            str_append(out, p, n);
            first = false;
        }
        p += n;
        if (*p == '\0')
            break;
        p++;
    }
    str_appendc(out, '\n');
}

/* The value of a raw field as a filter expects it: after "Name:" and one space,
 * without its last line end. */
static void field_value(const char *raw, size_t len, size_t name_len, struct str *out)
{
    size_t i = name_len;

    while (i < len && raw[i] != ':')
        i++;
    if (i < len)
        i++;
    if (i < len && raw[i] == ' ')
        i++;
    while (len > i && (raw[len - 1] == '\n' || raw[len - 1] == '\r'))
        len--;
    str_set(out, raw + i, len - i);
}

/* The content stages of one filter. */
static void content(struct milter *m, const char *id, const struct fields *fs,
                    const char *body, size_t body_len, struct milter_result *r)
{
    const char *macros[] = { "i", id, NULL };
    struct str v = STR_INIT;

    for (size_t i = 0; i < fs->n && r->verdict == MILTER_CONTINUE; i++) {
        field_value(fs->f[i].raw.s, fs->f[i].raw.len, strlen(fs->f[i].name), &v);
        milter_header(m, fs->f[i].name, v.s ? v.s : "", r);
    }
    str_free(&v);
    if (r->verdict == MILTER_CONTINUE)
        milter_eoh(m, r);
    if (r->verdict == MILTER_CONTINUE)
        milter_body(m, body, body_len, r);
    if (r->verdict == MILTER_CONTINUE) {
        milter_macros(m, 'E', macros);
        milter_eom(m, r);
    } else if (r->verdict == MILTER_ACCEPT) {
        milter_abort(m);
    }
}

/* Applies one filter's header and body changes to the fields and the body (LF line
 * ends); its envelope changes are moved to env. */
static void apply(struct milter_result *r, struct fields *fs, struct str *body,
                  bool *body_replaced, struct milter_result *env)
{
    struct str text = STR_INIT;
    bool body_new = false;

    for (size_t k = 0; k < r->nmods; k++) {
        struct milter_mod *md = &r->mods[k];

        switch (md->type) {
        case MILTER_MOD_ADDHDR:
        case MILTER_MOD_INSHDR: {
            size_t at = md->type == MILTER_MOD_ADDHDR || md->index > fs->n ? fs->n
                                                                            : md->index;
            field_text(&text, md->name, md->value.s);
            fields_insert(fs, at, md->name, strlen(md->name), text.s, text.len);
            break;
        }
        case MILTER_MOD_CHGHDR: {
            unsigned long seen = 0;
            size_t i;

            for (i = 0; i < fs->n; i++)
                if (strcasecmp(fs->f[i].name, md->name) == 0 && ++seen == md->index)
                    break;
            if (i == fs->n) {
                /* No such field: a non-empty value adds it (as Sendmail does). */
                if (md->value.len > 0) {
                    field_text(&text, md->name, md->value.s);
                    fields_insert(fs, fs->n, md->name, strlen(md->name), text.s, text.len);
                }
            } else if (md->value.len == 0) {
                free(fs->f[i].name);
                str_free(&fs->f[i].raw);
                memmove(fs->f + i, fs->f + i + 1, (fs->n - i - 1) * sizeof(*fs->f));
                fs->n--;
            } else {
                field_text(&text, md->name, md->value.s);
                str_set(&fs->f[i].raw, text.s, text.len);
            }
            break;
        }
        case MILTER_MOD_BODY:
            /* A filter's first body piece replaces the body as the filters before it
             * left it; its further pieces follow. */
            if (!body_new) {
                str_clear(body);
                body_new = true;
                *body_replaced = true;
            }
            for (size_t i = 0; i < md->value.len; i++)
                if (md->value.s[i] != '\r' || (i + 1 < md->value.len && md->value.s[i + 1] != '\n'))
                    str_appendc(body, md->value.s[i] == '\r' ? '\n' : md->value.s[i]);
            break;
        case MILTER_MOD_CHGFROM:
        case MILTER_MOD_ADDRCPT:
        case MILTER_MOD_DELRCPT:
            env->mods = xreallocarray(env->mods, env->nmods + 1, sizeof(*env->mods));
            env->mods[env->nmods++] = *md;
            md->name = NULL;
            str_init(&md->value);
            break;
        }
    }
    str_free(&text);
}

static void to_crlf(const struct str *body, struct str *crlf)
{
    str_clear(crlf);
    str_reserve(crlf, body->len + body->len / 32 + 1);
    for (size_t i = 0; i < body->len; i++) {
        if (body->s[i] == '\n')
            str_appendc(crlf, '\r');
        str_appendc(crlf, body->s[i]);
    }
}

void milter_msg_run(struct milter *const *ms, size_t n, const char *id,
                    enum milter_verdict def, struct str *msg, struct milter_result *out,
                    const char **who)
{
    struct fields fs = { NULL, 0 };
    struct header_reader hr;
    struct header_field f;
    struct str body = STR_INIT, crlf = STR_INIT;
    const char *buf = msg->s ? msg->s : "";
    size_t hlen = header_section_len(buf, msg->len);
    size_t raw_len = 0;
    bool body_replaced = false, stop = false;

    *who = NULL;
    out->verdict = MILTER_CONTINUE;
    header_reader_init(&hr, buf, msg->len);
    while (header_next(&hr, &f) == 1) {
        fields_insert(&fs, fs.n, f.name, f.name_len, f.raw, f.raw_len);
        raw_len += f.raw_len;
    }
    header_reader_free(&hr);
    /* The body after the empty line that ends the header. */
    str_set(&body, buf + hlen, msg->len - hlen);
    to_crlf(&body, &crlf);
    for (size_t i = 0; i < n && !stop; i++) {
        struct milter *m = ms[i];
        struct milter_result r;
        bool was_replaced = body_replaced;

        if (milter_done(m) && !milter_failed(m))
            continue;
        milter_result_init(&r);
        if (milter_failed(m))
            r.verdict = MILTER_FAILED;
        else
            content(m, id, &fs, crlf.s ? crlf.s : "", crlf.len, &r);
        switch (r.verdict) {
        case MILTER_FAILED:
            if (def == MILTER_ACCEPT)
                break;      /* as if the filter were not there */
            /* fall through */
        case MILTER_DISCARD:
        case MILTER_REJECT:
        case MILTER_TEMPFAIL:
            out->verdict = r.verdict;
            str_set(&out->reply, r.reply.s ? r.reply.s : "", r.reply.len);
            *who = milter_name(m);
            stop = true;
            break;
        case MILTER_CONTINUE:
        case MILTER_ACCEPT:
            body_replaced = false;
            apply(&r, &fs, &body, &body_replaced, out);
            if (body_replaced)
                to_crlf(&body, &crlf);
            body_replaced = body_replaced || was_replaced;
            if (r.quarantine && !out->quarantine) {
                out->quarantine = true;
                str_set(&out->reason, r.reason.s ? r.reason.s : "", r.reason.len);
                *who = milter_name(m);
            }
            break;
        }
        milter_result_free(&r);
    }
    if (out->verdict == MILTER_CONTINUE) {
        /* The message as the filters left it: the fields, the empty line that ended
         * the header (when there was one), the body. */
        struct str res = STR_INIT;

        for (size_t i = 0; i < fs.n; i++)
            str_append(&res, fs.f[i].raw.s, fs.f[i].raw.len);
        if (hlen > raw_len)
            str_append(&res, buf + raw_len, hlen - raw_len);
        else if (body_replaced && fs.n > 0)
            str_appendc(&res, '\n');
        if (body.len > 0)
            str_append(&res, body.s, body.len);
        str_free(msg);
        *msg = res;
    }
    fields_free(&fs);
    str_free(&body);
    str_free(&crlf);
}
