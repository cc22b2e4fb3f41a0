/* sendmail: one message from the input into a maildrop file.  The header section is
 * read into memory (bounded: SM_HEADER_MAX), Bcc removed, recipients taken from
 * To/Cc/Bcc with -t, Date/Message-ID/From added when missing; the body is streamed
 * to the file, bounded by message_size_limit.  Lines end in '\n' in the file ("\r\n"
 * on input becomes "\n"). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "addr.h"
#include "headers.h"
#include "maildrop.h"
#include "queue.h"
#include "sendmail.h"
#include "xmalloc.h"

#define SM_HEADER_MAX (1024 * 1024)     /* header section kept in memory */
#define SM_LINE_CHUNK 65536             /* longest piece of a line read at once */

void env_add_rcpt(struct sm_envelope *e, const char *addr, const char *notify)
{
    if (e->nrcpt == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 8;
        e->rcpt = xreallocarray(e->rcpt, e->cap, sizeof(*e->rcpt));
        e->notify = xreallocarray(e->notify, e->cap, sizeof(*e->notify));
    }
    e->rcpt[e->nrcpt] = xstrdup(addr);
    e->notify[e->nrcpt] = notify ? xstrdup(notify) : NULL;
    e->nrcpt++;
}

void env_free_rcpts(struct sm_envelope *e)
{
    for (size_t i = 0; i < e->nrcpt; i++) {
        free(e->rcpt[i]);
        free(e->notify[i]);
    }
    free(e->rcpt);
    free(e->notify);
    e->rcpt = e->notify = NULL;
    e->nrcpt = e->cap = 0;
}

int sm_addr(const struct sm *sm, const char *text, bool allow_null, struct str *out,
            struct str *why)
{
    struct str path = STR_INIT;
    const char *rest = NULL, *reason = NULL;
    bool in_quote = false, at = false;
    int rc;

    while (*text == ' ' || *text == '\t')
        text++;
    if (allow_null && (*text == '\0' || strcmp(text, "<>") == 0)) {
        str_sets(out, "");
        return 0;
    }
    str_appendc(&path, '<');
    if (*text == '<') {
        size_t n = strlen(text);
        if (n < 2 || text[n - 1] != '>') {
            str_printf(why, "%s: Syntax error in address", text);
            str_free(&path);
            return -1;
        }
        str_append(&path, text + 1, n - 2);
    } else {
        str_appends(&path, text);
    }
    /* an '@' outside a quoted local part: there is a domain */
    for (size_t i = 1; i < path.len; i++) {
        if (path.s[i] == '\\' && in_quote && i + 1 < path.len)
            i++;
        else if (path.s[i] == '"')
            in_quote = !in_quote;
        else if (path.s[i] == '@' && !in_quote)
            at = true;
    }
    if (!at && path.len > 1)
        str_printf(&path, "@%s", sm->myorigin);
    str_appendc(&path, '>');
    rc = addr_parse_path(path.s, 0, out, &rest, &reason);
    if (rc == 0 && *rest != '\0') {
        rc = -1;
        reason = "Syntax error in address";
    }
    if (rc < 0)
        str_printf(why, "%s: %s", text, reason);
    else
        addr_fold_domain(out->s);
    str_free(&path);
    return rc;
}

/* One address of a list, as collected: the text in <> when there was one, else the
 * text outside comments, trimmed. */
static int list_item(const struct sm *sm, struct str *text, struct str *angle, bool had_angle,
                     struct sm_envelope *env, struct str *why)
{
    struct str *a = had_angle ? angle : text;
    struct str out = STR_INIT;
    size_t b = 0, e = a->len;
    int rc = 0;

    while (b < e && isspace((unsigned char)a->s[b]))
        b++;
    while (e > b && isspace((unsigned char)a->s[e - 1]))
        e--;
    if (e > b) {
        struct str one = STR_INIT;
        str_set(&one, a->s + b, e - b);
        rc = sm_addr(sm, one.s, false, &out, why);
        if (rc == 0)
            env_add_rcpt(env, out.s, NULL);
        str_free(&one);
    }
    str_clear(text);
    str_clear(angle);
    str_free(&out);
    return rc;
}

int sm_addr_list(const struct sm *sm, const char *value, struct sm_envelope *env,
                 struct str *why)
{
    struct str text = STR_INIT, angle = STR_INIT;
    int comment = 0, rc = 0;
    bool quote = false, in_angle = false, had_angle = false;

    str_sets(&text, "");
    str_sets(&angle, "");
    for (const char *p = value; rc == 0; p++) {
        char c = *p;
        struct str *cur = in_angle ? &angle : &text;

        if (c == '\0') {
            rc = list_item(sm, &text, &angle, had_angle, env, why);
            break;
        }
        if (quote) {
            str_appendc(cur, c);
            if (c == '\\' && p[1] != '\0')
                str_appendc(cur, *++p);
            else if (c == '"')
                quote = false;
            continue;
        }
        if (comment > 0) {
            if (c == '\\' && p[1] != '\0')
                p++;
            else if (c == '(')
                comment++;
            else if (c == ')')
                comment--;
            continue;
        }
        switch (c) {
        case '"':
            quote = true;
            str_appendc(cur, c);
            break;
        case '(':
            if (comment < 100)
                comment++;
            break;
        case '<':
            if (!in_angle) {
                in_angle = true;
                had_angle = true;
                str_clear(&angle);
            }
            break;
        case '>':
            in_angle = false;
            break;
        case ':':
            if (in_angle)
                str_appendc(cur, c);
            else
                str_clear(&text);       /* a group's display name */
            break;
        case ',':
        case ';':
            if (in_angle) {
                str_appendc(cur, c);
                break;
            }
            rc = list_item(sm, &text, &angle, had_angle, env, why);
            had_angle = false;
            break;
        default:
            str_appendc(cur, c);
        }
    }
    str_free(&text);
    str_free(&angle);
    return rc;
}

/* Reads a line (at most SM_LINE_CHUNK bytes of it) without its line end: 1, 0 at end
 * of input.  *eol: the line ended here ("\n" or "\r\n"); false for a piece of a longer
 * line, or the last line without a newline. */
static int read_line(FILE *in, struct str *line, bool *eol)
{
    int c;

    str_clear(line);
    *eol = false;
    while (line->len < SM_LINE_CHUNK && (c = getc_unlocked(in)) != EOF) {
        if (c == '\n') {
            *eol = true;
            if (line->len > 0 && line->s[line->len - 1] == '\r')
                str_truncate(line, line->len - 1);
            return 1;
        }
        str_appendc(line, (char)c);
    }
    if (line->s == NULL)
        str_sets(line, "");
    return line->len > 0 ? 1 : 0;
}

/* The input as lines of the message: dots and the end marker handled per mode.
 * 1 with a line, 0 at the message's end, -1 when the input ended too soon (SMTP). */
struct input {
    FILE *in;
    enum sm_input mode;
    bool at_line_start;
    bool done;
};

static int next_line(struct input *ip, struct str *line, bool *eol)
{
    bool start = ip->at_line_start;
    int rc;

    if (ip->done)
        return 0;
    rc = read_line(ip->in, line, eol);
    if (rc == 0) {
        ip->done = true;
        return ip->mode == SM_INPUT_SMTP ? -1 : 0;
    }
    ip->at_line_start = *eol;
    if (start && ip->mode != SM_INPUT_EOF && line->len >= 1 && line->s[0] == '.') {
        if (line->len == 1 && *eol) {
            ip->done = true;
            return 0;
        }
        if (ip->mode == SM_INPUT_SMTP) {
            memmove(line->s, line->s + 1, line->len - 1);
            str_truncate(line, line->len - 1);
        }
    }
    return 1;
}

/* Is this line (the start of) a header field "name:"? */
static bool field_start(const struct str *l)
{
    size_t i = 0;

    while (i < l->len && l->s[i] > ' ' && l->s[i] < 0x7f && l->s[i] != ':')
        i++;
    if (i == 0)
        return false;
    while (i < l->len && (l->s[i] == ' ' || l->s[i] == '\t'))
        i++;
    return i < l->len && l->s[i] == ':';
}

/* A display name as a quoted-string when it needs one; control characters dropped. */
static void append_phrase(struct str *out, const char *name)
{
    bool plain = *name != '\0';

    for (const char *p = name; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == ' ' || strchr("!#$%&'*+-/=?^_`{|}~", *p)))
            plain = false;
    if (plain) {
        str_appends(out, name);
        return;
    }
    str_appendc(out, '"');
    for (const char *p = name; *p; p++) {
        if ((unsigned char)*p < ' ' || *p == 0x7f)
            continue;
        if (*p == '"' || *p == '\\')
            str_appendc(out, '\\');
        str_appendc(out, *p);
    }
    str_appendc(out, '"');
}

struct msg {
    struct sm *sm;
    struct sm_drop *drop;
    struct maildrop_writer *w;
    size_t size;
    bool too_big;
    bool write_failed;
};

static void put(struct msg *m, const char *data, size_t len)
{
    if (m->too_big || m->write_failed)
        return;
    if (m->sm->size_limit > 0 && (long long)(m->size + len) > m->sm->size_limit) {
        m->too_big = true;
        return;
    }
    m->size += len;
    if (mdw_content(m->w, data, len) < 0)
        m->write_failed = true;
}

/* The added fields: Date, Message-ID, From, when the message lacks them. */
static void added_fields(struct msg *m, const struct sm_envelope *env, const char *id,
                         bool date, bool msgid, bool from, struct str *out)
{
    const struct sm *sm = m->sm;

    if (!date) {
        str_appends(out, "Date: ");
        header_date(out, time(NULL));
        str_appendc(out, '\n');
    }
    if (!msgid)
        str_printf(out, "Message-ID: <%s@%s>\n", id, sm->myhostname);
    if (!from) {
        struct str a = STR_INIT;
        const char *fullname = env->fullname ? env->fullname : sm->gecos;

        if (env->sender != NULL && env->sender[0] != '\0')
            addr_quote(env->sender, &a);
        else
            str_printf(&a, "%s@%s", sm->login, sm->myorigin);
        str_appends(out, "From: ");
        if (fullname != NULL && *fullname != '\0') {
            append_phrase(out, fullname);
            str_printf(out, " <%s>\n", a.s);
        } else {
            str_printf(out, "%s\n", a.s);
        }
        str_free(&a);
    }
}

static int write_envelope(struct msg *m, const struct sm_envelope *env)
{
    struct maildrop_writer *w = m->w;

    if (mdw_header(w, m->sm->uid, m->sm->login, time(NULL)) < 0)
        return -1;
    if (env->sender != NULL && mdw_sender(w, env->sender) < 0)
        return -1;
    if (env->ret != NULL && mdw_attr(w, "ret", env->ret) < 0)
        return -1;
    if (env->envid != NULL && mdw_attr(w, "envid", env->envid) < 0)
        return -1;
    for (size_t i = 0; i < env->nrcpt; i++)
        if (mdw_recipient(w, env->rcpt[i],
                          env->notify[i] ? env->notify[i] : env->dsn_notify) < 0)
            return -1;
    return 0;
}

int sm_message(struct sm *sm, FILE *in, enum sm_input mode, bool extract,
               struct sm_envelope *env, char *id, struct str *why)
{
    struct input ip = { .in = in, .mode = mode, .at_line_start = true };
    struct str head = STR_INIT, line = STR_INIT, fields = STR_INIT;
    struct msg m = { .sm = sm };
    struct header_reader hr;
    struct header_field f;
    bool eol = true, have_line = false, blank_ended = false;
    bool date = false, msgid = false, from = false;
    char mid[QUEUE_ID_SIZE];
    int rc, ex = EX_OK;

    /* The header section. */
    str_sets(&head, "");
    for (;;) {
        rc = next_line(&ip, &line, &eol);
        if (rc <= 0)
            break;
        if (line.len == 0 && eol) {
            blank_ended = true;
            break;
        }
        bool cont = (line.s[0] == ' ' || line.s[0] == '\t') && head.len > 0;
        if (!eol || !(cont || field_start(&line)) || head.len + line.len + 1 > SM_HEADER_MAX) {
            have_line = true;           /* the body starts with this line */
            break;
        }
        str_append(&head, line.s, line.len);
        str_appendc(&head, '\n');
    }
    if (rc < 0) {
        str_sets(why, "input ended before the message did");
        ex = EX_DATAERR;
        goto out;
    }

    /* Recipients from the header, Bcc out, what is missing. */
    str_sets(&fields, "");
    header_reader_init(&hr, head.s, head.len);
    while (header_next(&hr, &f) == 1) {
        bool bcc = header_name_is(&f, "Bcc");
        if (extract && (bcc || header_name_is(&f, "To") || header_name_is(&f, "Cc"))
            && sm_addr_list(sm, f.value, env, why) < 0) {
            ex = EX_DATAERR;
            break;
        }
        date |= header_name_is(&f, "Date");
        msgid |= header_name_is(&f, "Message-ID");
        from |= header_name_is(&f, "From");
        if (!bcc)
            str_append(&fields, f.raw, f.raw_len);
    }
    header_reader_free(&hr);
    if (ex != EX_OK)
        goto out;
    if (env->nrcpt == 0) {
        str_sets(why, extract ? "no recipient addresses found in the message header"
                              : "no recipients");
        ex = EX_USAGE;
        goto out;
    }
    if (env->nrcpt > MAILDROP_RCPT_MAX) {
        str_printf(why, "too many recipients (at most %u)", MAILDROP_RCPT_MAX);
        ex = EX_USAGE;
        goto out;
    }

    m.drop = drop_open(sm, why);
    if (m.drop == NULL) {
        ex = EX_CANTCREAT;
        goto out;
    }
    m.w = drop_writer(m.drop);
    queue_id_new(mid);
    if (write_envelope(&m, env) < 0)
        m.write_failed = true;
    put(&m, fields.s, fields.len);
    str_clear(&fields);
    added_fields(&m, env, mid, date, msgid, from, &fields);
    put(&m, fields.s, fields.len);
    if (blank_ended || have_line)
        put(&m, "\n", 1);
    if (have_line) {
        put(&m, line.s, line.len);
        if (eol)
            put(&m, "\n", 1);
    }
    bool last_eol = !have_line || eol;
    while ((rc = next_line(&ip, &line, &eol)) > 0) {
        put(&m, line.s, line.len);
        if (eol)
            put(&m, "\n", 1);
        last_eol = eol;
    }
    if (rc == 0 && !last_eol)
        put(&m, "\n", 1);               /* the last line had no newline */
    if (rc < 0) {
        str_sets(why, "input ended before the message did");
        ex = EX_DATAERR;
    } else if (m.too_big) {
        str_printf(why, "message too big (message_size_limit is %lld bytes)", sm->size_limit);
        ex = EX_DATAERR;
    } else if (m.write_failed) {
        str_printf(why, "cannot write the maildrop file: %s", strerror(errno));
        ex = EX_IOERR;
    }
    if (ex != EX_OK) {
        drop_abort(sm, m.drop);
        goto out;
    }
    if (drop_commit(sm, m.drop, id, why) < 0)
        ex = EX_IOERR;

out:
    str_free(&head);
    str_free(&line);
    str_free(&fields);
    return ex;
}
