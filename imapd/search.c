/* SEARCH and UID SEARCH (RFC 3501 6.4.4) with every key of RFC 3501 and RFC 7162's
 * MODSEQ (the result then ends with the highest MODSEQ found): the criteria
 * are parsed into a tree (nesting bounded by SEARCH_DEPTH_MAX, keys by
 * SEARCH_KEYS_MAX) and evaluated per message.  RETURN (MIN MAX COUNT ALL) answers
 * with ESEARCH (RFC 4731), as every SEARCH does after ENABLE IMAP4rev2; RETURN (SAVE)
 * keeps the result for "$" (SEARCHRES, RFC 5182), which later commands and SEARCH
 * itself may name.  Text keys match case-insensitively
 * (ASCII) as substrings: header keys against the field's value with RFC 2047 words
 * decoded, SUBJECT against the envelope's SUBJECT (the first Subject field, as RFC
 * 3501 defines it), BODY against the decoded text of every text part (mime_walk), TEXT
 * against both.  SUBJECT, LARGER and SMALLER are answered from the folder's index
 * cache (fetch_cache.h) when it has the message, without reading its file.  CHARSET
 * may be US-ASCII or UTF-8.  Criteria are the client's. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "fetch_cache.h"
#include "file_read.h"
#include "imapd.h"
#include "log.h"
#include "mime.h"
#include "session.h"
#include "store.h"
#include "stream.h"
#include "xmalloc.h"

#define SEARCH_DEPTH_MAX 32
#define SEARCH_KEYS_MAX 256
#define SEARCH_MSG_MAX ((size_t)1 << 30)

enum skey {
    K_ALL, K_SET, K_UIDSET, K_FLAG, K_UNFLAG, K_KEYWORD, K_UNKEYWORD, K_NEW, K_OLD,
    K_RECENT, K_LARGER, K_SMALLER, K_BEFORE, K_ON, K_SINCE, K_SENTBEFORE, K_SENTON,
    K_SENTSINCE, K_HEADER, K_SUBJECT, K_BODY, K_TEXT, K_NOT, K_OR, K_AND, K_SAVED, K_MODSEQ,
};

/* RETURN options (RFC 4731, 5182). */
#define R_MIN   0x1
#define R_MAX   0x2
#define R_ALL   0x4
#define R_COUNT 0x8
#define R_SAVE  0x10

struct snode {
    enum skey k;
    unsigned flag;                  /* K_FLAG / K_UNFLAG */
    int kw;                         /* K_KEYWORD: index, -1 when unknown */
    uint64_t num;                   /* LARGER, SMALLER */
    time_t day;                     /* dates: 00:00 UTC of the day */
    struct str field, text;         /* HEADER field / text keys */
    struct imap_seqset set;
    struct snode *a, *b;            /* NOT a; OR a b; AND list via a->next */
    struct snode *next;
};

struct sparse {
    struct imap_session *s;
    struct imap_parser *ip;
    int nkeys;
    const char *why;
    bool needs_msg;
    bool cached;                    /* a key the index cache can answer */
    bool modseq;                    /* a MODSEQ key: the result says the highest */
};

static void node_free(struct snode *n)
{
    while (n != NULL) {
        struct snode *next = n->next;
        node_free(n->a);
        node_free(n->b);
        str_free(&n->field);
        str_free(&n->text);
        imap_seq_free(&n->set);
        free(n);
        n = next;
    }
}

static bool parse_date(struct imap_parser *ip, time_t *out)
{
    static const char *const mon[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul",
                                       "aug", "sep", "oct", "nov", "dec" };
    struct str s = STR_INIT;
    struct tm tm;
    int d, y, k;
    char m[4];
    bool ok;

    ok = imap_p_peek(ip, '"') ? imap_p_string(ip, &s) : imap_p_atom(ip, &s, 16);
    ok = ok && sscanf(s.s, "%2d-%3[A-Za-z]-%4d", &d, m, &y) == 3 && d >= 1 && d <= 31
         && y >= 1900 && y <= 9999;
    str_free(&s);
    if (!ok)
        return false;
    for (k = 0; k < 12 && strcasecmp(m, mon[k]) != 0; k++)
        ;
    if (k == 12)
        return false;
    memset(&tm, 0, sizeof(tm));
    tm.tm_mday = d;
    tm.tm_mon = k;
    tm.tm_year = y - 1900;
    *out = timegm(&tm);
    return true;
}

static struct snode *parse_key(struct sparse *p, int depth);

/* Keys up to ')' or the end: an AND of them. */
static struct snode *parse_list(struct sparse *p, int depth, bool paren)
{
    struct snode *head = NULL, **tail = &head, *and;

    for (;;) {
        struct snode *n = parse_key(p, depth);
        if (n == NULL) {
            node_free(head);
            return NULL;
        }
        *tail = n;
        tail = &n->next;
        if (!imap_p_sp(p->ip))
            break;
    }
    if (paren && !imap_p_char(p->ip, ')')) {
        p->why = "Unbalanced parentheses";
        node_free(head);
        return NULL;
    }
    and = xcalloc(1, sizeof(*and));
    and->k = K_AND;
    and->a = head;
    return and;
}

static const struct {
    const char *name;
    enum skey k;
    unsigned flag;
} flag_keys[] = {
    { "ANSWERED", K_FLAG, STORE_F_ANSWERED }, { "DELETED", K_FLAG, STORE_F_DELETED },
    { "DRAFT", K_FLAG, STORE_F_DRAFT }, { "FLAGGED", K_FLAG, STORE_F_FLAGGED },
    { "SEEN", K_FLAG, STORE_F_SEEN }, { "RECENT", K_RECENT, 0 },
    { "UNANSWERED", K_UNFLAG, STORE_F_ANSWERED }, { "UNDELETED", K_UNFLAG, STORE_F_DELETED },
    { "UNDRAFT", K_UNFLAG, STORE_F_DRAFT }, { "UNFLAGGED", K_UNFLAG, STORE_F_FLAGGED },
    { "UNSEEN", K_UNFLAG, STORE_F_SEEN }, { "NEW", K_NEW, 0 }, { "OLD", K_OLD, 0 },
    { "ALL", K_ALL, 0 },
};

static const struct {
    const char *name;
    const char *field;              /* NULL: BODY or TEXT */
    enum skey k;
} text_keys[] = {
    { "BCC", "Bcc", K_HEADER }, { "CC", "Cc", K_HEADER }, { "FROM", "From", K_HEADER },
    { "SUBJECT", "Subject", K_SUBJECT }, { "TO", "To", K_HEADER }, { "BODY", NULL, K_BODY },
    { "TEXT", NULL, K_TEXT },
};

static const struct {
    const char *name;
    enum skey k;
} date_keys[] = {
    { "BEFORE", K_BEFORE }, { "ON", K_ON }, { "SINCE", K_SINCE },
    { "SENTBEFORE", K_SENTBEFORE }, { "SENTON", K_SENTON }, { "SENTSINCE", K_SENTSINCE },
};

static struct snode *parse_key(struct sparse *p, int depth)
{
    struct imap_parser *ip = p->ip;
    struct snode *n;
    struct str name = STR_INIT;

    if (depth > SEARCH_DEPTH_MAX) {
        p->why = "Search criteria nested too deeply";
        return NULL;
    }
    if (++p->nkeys > SEARCH_KEYS_MAX) {
        p->why = "Too many search keys";
        return NULL;
    }
    if (imap_p_char(ip, '('))
        return parse_list(p, depth + 1, true);
    n = xcalloc(1, sizeof(*n));
    if (imap_p_char(ip, '$')) {
        n->k = K_SAVED;
        return n;
    }
    if (imap_p_peek(ip, '*') || (ip->p < ip->end && *ip->p >= '0' && *ip->p <= '9')) {
        n->k = K_SET;
        if (!imap_p_seqset(ip, &n->set, &p->why))
            goto bad;
        return n;
    }
    if (!imap_p_atom(ip, &name, 16)) {
        p->why = "Search key expected";
        goto bad;
    }
    for (size_t i = 0; i < sizeof(flag_keys) / sizeof(flag_keys[0]); i++) {
        if (strcasecmp(name.s, flag_keys[i].name) == 0) {
            /* RFC 9051 has no \Recent: RECENT, NEW and OLD are not its keys */
            if (IMAP_REV2(p->s) && (flag_keys[i].k == K_RECENT || flag_keys[i].k == K_NEW
                                    || flag_keys[i].k == K_OLD)) {
                p->why = "RECENT, NEW and OLD are not IMAP4rev2 search keys";
                goto bad;
            }
            n->k = flag_keys[i].k;
            n->flag = flag_keys[i].flag;
            goto done;
        }
    }
    for (size_t i = 0; i < sizeof(text_keys) / sizeof(text_keys[0]); i++) {
        if (strcasecmp(name.s, text_keys[i].name) == 0) {
            n->k = text_keys[i].k;
            if (text_keys[i].field != NULL)
                str_sets(&n->field, text_keys[i].field);
            if (!imap_p_sp(ip) || !imap_p_astring(ip, &n->text)) {
                p->why = "Search text expected";
                goto bad;
            }
            p->needs_msg = true;
            p->cached = p->cached || n->k == K_SUBJECT;
            goto done;
        }
    }
    for (size_t i = 0; i < sizeof(date_keys) / sizeof(date_keys[0]); i++) {
        if (strcasecmp(name.s, date_keys[i].name) == 0) {
            n->k = date_keys[i].k;
            if (!imap_p_sp(ip) || !parse_date(ip, &n->day)) {
                p->why = "Invalid date";
                goto bad;
            }
            if (n->k >= K_SENTBEFORE)
                p->needs_msg = true;
            goto done;
        }
    }
    if (strcasecmp(name.s, "HEADER") == 0) {
        n->k = K_HEADER;
        if (!imap_p_sp(ip) || !imap_p_astring(ip, &n->field) || !imap_p_sp(ip)
            || !imap_p_astring(ip, &n->text) || n->field.len == 0) {
            p->why = "HEADER needs a field name and a text";
            goto bad;
        }
        p->needs_msg = true;
    } else if (strcasecmp(name.s, "KEYWORD") == 0 || strcasecmp(name.s, "UNKEYWORD") == 0) {
        n->k = toupper((unsigned char)name.s[0]) == 'K' ? K_KEYWORD : K_UNKEYWORD;
        if (!imap_p_sp(ip) || !imap_p_atom(ip, &n->text, STORE_KEYWORD_LEN)) {
            p->why = "Keyword expected";
            goto bad;
        }
        n->kw = store_keyword_index(p->s->box, n->text.s, false);
    } else if (strcasecmp(name.s, "LARGER") == 0 || strcasecmp(name.s, "SMALLER") == 0) {
        n->k = toupper((unsigned char)name.s[0]) == 'L' ? K_LARGER : K_SMALLER;
        if (!imap_p_sp(ip) || !imap_p_number(ip, UINT32_MAX, &n->num)) {
            p->why = "Number expected";
            goto bad;
        }
        p->needs_msg = true;
        p->cached = true;
    } else if (strcasecmp(name.s, "UID") == 0) {
        n->k = K_UIDSET;
        if (!imap_p_sp(ip))
            goto bad;
        if (imap_p_char(ip, '$'))
            n->k = K_SAVED;
        else if (!imap_p_seqset(ip, &n->set, &p->why))
            goto bad;
    } else if (strcasecmp(name.s, "MODSEQ") == 0) {
        n->k = K_MODSEQ;
        if (!imap_p_search_modseq(ip, &n->num)) {
            p->why = "MODSEQ needs a mod-sequence from 0 to 2^63-1";
            goto bad;
        }
        p->modseq = true;
    } else if (strcasecmp(name.s, "NOT") == 0) {
        n->k = K_NOT;
        if (!imap_p_sp(ip) || (n->a = parse_key(p, depth + 1)) == NULL)
            goto bad;
    } else if (strcasecmp(name.s, "OR") == 0) {
        n->k = K_OR;
        if (!imap_p_sp(ip) || (n->a = parse_key(p, depth + 1)) == NULL || !imap_p_sp(ip)
            || (n->b = parse_key(p, depth + 1)) == NULL)
            goto bad;
    } else {
        p->why = "Unknown search key";
        goto bad;
    }
done:
    str_free(&name);
    return n;
bad:
    if (p->why == NULL)
        p->why = "Invalid search criteria";
    str_free(&name);
    node_free(n);
    return NULL;
}

/* Case-insensitive (ASCII) substring. */
static bool contains(const char *hay, size_t hlen, const struct str *needle)
{
    if (needle->len == 0)
        return true;
    if (hay == NULL || hlen < needle->len)
        return false;
    for (size_t i = 0; i + needle->len <= hlen; i++)
        if (strncasecmp(hay + i, needle->s, needle->len) == 0)
            return true;
    return false;
}

/* One message being evaluated: its parse made when a key needs it. */
struct smsg {
    struct imap_session *s;
    size_t i, seq;
    const struct store_msg *m;
    struct str data;
    struct mime_msg mm;
    bool parsed, failed;
    time_t sent;                    /* the Date field's day, -1 unknown */
};

static bool load(struct smsg *x)
{
    struct str err = STR_INIT;
    int fd;

    if (x->parsed || x->failed)
        return x->parsed;
    fd = store_open_msg(x->s->box, x->i);
    if (fd < 0 || file_read_fd(fd, x->m->file, SEARCH_MSG_MAX, &x->data, &err) < 0) {
        x->failed = true;
        if (fd >= 0)
            close(fd);
        str_free(&err);
        return false;
    }
    close(fd);
    mime_parse(&x->mm, x->data.s != NULL ? x->data.s : "", x->data.len);
    x->parsed = true;
    return true;
}

static bool header_has(struct smsg *x, const char *field, const struct str *text)
{
    struct mime_field_iter it;
    struct mime_field f;
    struct str v = STR_INIT, d = STR_INIT;
    bool found = false;

    if (!load(x))
        return false;
    mime_field_iter_init(&it, x->mm.buf + x->mm.root->off,
                         x->mm.root->body_off - x->mm.root->off);
    while (!found && mime_field_next(&it, &f) == 1) {
        if (field != NULL && !mime_field_is(&f, field))
            continue;
        str_clear(&v);
        str_clear(&d);
        mime_field_value(&f, &v, MIME_FIELD_MAX);
        mime_header_decode(v.s != NULL ? v.s : "", v.len, &d);
        found = contains(d.s, d.len, text) || (field == NULL && contains(f.name, f.name_len, text));
    }
    str_free(&v);
    str_free(&d);
    return found;
}

/* SUBJECT: the envelope's (RFC 3501 6.4.4), from the index cache when it has the
 * message, else from the first Subject field as the envelope is made of it
 * (mime_imap_envelope: unfolded, NUL dropped). */
static bool subject_has(struct smsg *x, const struct str *text)
{
    struct str v = STR_INIT, d = STR_INIT;
    bool found = false;
    int r = x->parsed ? -1 : imap_cache_subject(x->m, &v);

    if (r < 0) {
        size_t k = 0;

        if (!load(x)) {
            str_free(&v);
            return false;
        }
        r = mime_header_get(&x->mm, x->mm.root, "Subject", &v);
        for (size_t i = 0; i < v.len; i++)
            if (v.s[i] != '\0')
                v.s[k++] = v.s[i];
        str_truncate(&v, k);
    }
    if (r > 0) {
        mime_header_decode(v.s != NULL ? v.s : "", v.len, &d);
        found = contains(d.s, d.len, text);
    }
    str_free(&v);
    str_free(&d);
    return found;
}

struct body_match {
    const struct str *text;
    bool found;
};

static int body_line(void *arg, const struct mime_part *p, const char *line, size_t len,
                     const char *raw, size_t raw_len)
{
    struct body_match *b = arg;

    (void)p;
    (void)raw;
    (void)raw_len;
    if (contains(line, len, b->text)) {
        b->found = true;
        return 1;
    }
    return 0;
}

static bool body_has(struct smsg *x, const struct str *text)
{
    struct body_match b = { text, false };
    const struct mime_walk_ops ops = { NULL, body_line };

    if (!load(x))
        return false;
    (void)mime_walk(&x->mm, &ops, 0, &b);
    return b.found;
}

static time_t sent_day(struct smsg *x)
{
    static const char *const mon[] = { "jan", "feb", "mar", "apr", "may", "jun", "jul",
                                       "aug", "sep", "oct", "nov", "dec" };
    struct str v = STR_INIT;
    const char *p;
    int d, y, k;
    char m[4];
    struct tm tm;

    if (x->sent != 0)
        return x->sent;
    x->sent = -1;
    if (!load(x) || mime_header_get(&x->mm, x->mm.root, "Date", &v) <= 0) {
        str_free(&v);
        return x->sent;
    }
    p = v.s;
    if (strchr(p, ',') != NULL)
        p = strchr(p, ',') + 1;
    if (sscanf(p, " %2d %3[A-Za-z] %4d", &d, m, &y) == 3 && d >= 1 && d <= 31) {
        if (y < 50)
            y += 2000;
        else if (y < 1000)
            y += 1900;
        for (k = 0; k < 12 && strcasecmp(m, mon[k]) != 0; k++)
            ;
        if (k < 12) {
            memset(&tm, 0, sizeof(tm));
            tm.tm_mday = d;
            tm.tm_mon = k;
            tm.tm_year = y - 1900;
            x->sent = timegm(&tm);
        }
    }
    str_free(&v);
    return x->sent;
}

static int cmp_uid(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static time_t day_of(time_t t)
{
    return t - (t % 86400 + 86400) % 86400;
}

static bool eval(struct smsg *x, const struct snode *n)
{
    const struct store_msg *m = x->m;
    const struct imap_index_entry *e;
    size_t size;
    time_t t;

    switch (n->k) {
    case K_ALL:
        return true;
    case K_SET:
        return imap_seq_has(&n->set, (uint32_t)x->seq);
    case K_UIDSET:
        return imap_seq_has(&n->set, m->uid);
    case K_FLAG:
        return (m->flags & n->flag) != 0;
    case K_UNFLAG:
        return (m->flags & n->flag) == 0;
    case K_KEYWORD:
        return n->kw >= 0 && (m->keywords & (1u << n->kw));
    case K_UNKEYWORD:
        return n->kw < 0 || !(m->keywords & (1u << n->kw));
    case K_RECENT:
        return store_recent(x->s->box, m->uid);
    case K_NEW:
        return store_recent(x->s->box, m->uid) && !(m->flags & STORE_F_SEEN);
    case K_OLD:
        return !store_recent(x->s->box, m->uid);
    case K_LARGER:
    case K_SMALLER:
        if (!x->parsed && (e = imap_cache_get(m)) != NULL)
            size = e->size;
        else if (load(x))
            size = x->mm.root->header_size + x->mm.root->body_size;
        else
            return false;
        return n->k == K_LARGER ? size > n->num : size < n->num;
    case K_BEFORE:
    case K_ON:
    case K_SINCE:
        if (m->internaldate == 0)
            (void)store_stat(x->s->box, x->i);
        x->m = m = store_msg(x->s->box, x->i);
        t = day_of(m->internaldate);
        return n->k == K_BEFORE ? t < n->day : n->k == K_ON ? t == n->day : t >= n->day;
    case K_SENTBEFORE:
    case K_SENTON:
    case K_SENTSINCE:
        t = sent_day(x);
        if (t == -1)
            return false;
        return n->k == K_SENTBEFORE ? t < n->day : n->k == K_SENTON ? t == n->day
                                                                    : t >= n->day;
    case K_HEADER:
        return header_has(x, n->field.s, &n->text);
    case K_SUBJECT:
        return subject_has(x, &n->text);
    case K_BODY:
        return body_has(x, &n->text);
    case K_TEXT:
        return header_has(x, NULL, &n->text) || body_has(x, &n->text);
    case K_SAVED:
        return x->s->nsaved > 0 && bsearch(&m->uid, x->s->saved, x->s->nsaved,
                                           sizeof(*x->s->saved), cmp_uid) != NULL;
    case K_MODSEQ:
        return m->modseq >= n->num;
    case K_NOT:
        return !eval(x, n->a);
    case K_OR:
        return eval(x, n->a) || eval(x, n->b);
    case K_AND:
        for (const struct snode *c = n->a; c != NULL; c = c->next)
            if (!eval(x, c))
                return false;
        return true;
    }
    return false;
}

/* Resolves "*" in the sets of the tree against the view. */
static void resolve(struct snode *n, uint32_t nmsgs, uint32_t lastuid)
{
    for (; n != NULL; n = n->next) {
        if (n->k == K_SET)
            imap_seq_resolve(&n->set, nmsgs);
        else if (n->k == K_UIDSET)
            imap_seq_resolve(&n->set, lastuid);
        resolve(n->a, nmsgs, lastuid);
        resolve(n->b, nmsgs, lastuid);
    }
}

void imap_saved_clear(struct imap_session *s)
{
    free(s->saved);
    s->saved = NULL;
    s->nsaved = 0;
}

/* RETURN "(" [option *(SP option)] ")": the options, R_ALL when none is named. */
static bool parse_return(struct imap_parser *ip, unsigned *ret)
{
    static const struct {
        const char *name;
        unsigned bit;
    } opts[] = {
        { "MIN", R_MIN }, { "MAX", R_MAX }, { "ALL", R_ALL }, { "COUNT", R_COUNT },
        { "SAVE", R_SAVE },
    };
    struct str o = STR_INIT;
    bool ok = imap_p_char(ip, '(');

    *ret = 0;
    while (ok && !imap_p_char(ip, ')')) {
        size_t i;

        if ((*ret != 0 && !imap_p_sp(ip)) || !imap_p_atom(ip, &o, 16)) {
            ok = false;
            break;
        }
        for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
            if (strcasecmp(o.s, opts[i].name) == 0)
                break;
        if (i == sizeof(opts) / sizeof(opts[0])) {
            ok = false;
            break;
        }
        *ret |= opts[i].bit;
    }
    str_free(&o);
    if (ok && *ret == 0)
        *ret = R_ALL;
    return ok && imap_p_sp(ip);
}

/* A set as RFC 4731 writes it ("2,10:15,47") of ascending numbers. */
static void put_set(struct stream *st, const uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = i;

        while (j + 1 < n && v[j + 1] == v[j] + 1)
            j++;
        stream_printf(st, "%s%u", i ? "," : "", v[i]);
        if (j > i)
            stream_printf(st, ":%u", v[j]);
        i = j;
    }
}

/* The matches (by UID, ascending) as ESEARCH says them (RFC 4731 3.1), with the
 * highest mod-sequence among them when modseq > 0. */
static void put_esearch(struct imap_session *s, bool uid, unsigned ret, const uint32_t *hits,
                        size_t n, uint64_t modseq)
{
    uint32_t *num = xreallocarray(NULL, n > 0 ? n : 1, sizeof(*num));

    for (size_t i = 0; i < n; i++)
        num[i] = uid ? hits[i] : (uint32_t)imap_view_seq(s, hits[i]);
    stream_printf(s->c.st, "* ESEARCH (TAG \"%s\")%s", s->c.tag, uid ? " UID" : "");
    if ((ret & R_MIN) && n > 0)
        stream_printf(s->c.st, " MIN %u", num[0]);
    if ((ret & R_MAX) && n > 0)
        stream_printf(s->c.st, " MAX %u", num[n - 1]);
    if (ret & R_COUNT)
        stream_printf(s->c.st, " COUNT %zu", n);
    if ((ret & R_ALL) && n > 0) {
        stream_puts(s->c.st, " ALL ");
        put_set(s->c.st, num, n);
    }
    /* RFC 7162 3.1.5: "MODSEQ" with the highest mod-sequence of what matched */
    if (modseq > 0)
        stream_printf(s->c.st, " MODSEQ %llu", (unsigned long long)modseq);
    stream_puts(s->c.st, "\r\n");
    free(num);
}

/* RFC 5182 2.4: with MIN or MAX but neither ALL nor COUNT, only those are kept. */
static void save_result(struct imap_session *s, unsigned ret, const uint32_t *hits, size_t n)
{
    imap_saved_clear(s);
    if (n == 0)
        return;
    s->saved = xreallocarray(NULL, n, sizeof(*s->saved));
    if ((ret & (R_MIN | R_MAX)) && !(ret & (R_ALL | R_COUNT))) {
        if (ret & R_MIN)
            s->saved[s->nsaved++] = hits[0];
        if ((ret & R_MAX) && (s->nsaved == 0 || hits[n - 1] != hits[0]))
            s->saved[s->nsaved++] = hits[n - 1];
    } else {
        memcpy(s->saved, hits, n * sizeof(*hits));
        s->nsaved = n;
    }
}

void imap_cmd_search(struct imap_session *s, struct imap_parser *ip, bool uid)
{
    struct sparse p = { s, ip, 0, NULL, false, false, false };
    uint64_t top = 0;
    struct snode *root = NULL;
    struct str cs = STR_INIT;
    uint32_t *hits = NULL;
    size_t nhits = 0;
    unsigned ret = 0;
    bool esearch = IMAP_REV2(s);

    if (!imap_p_sp(ip)) {
        imap_bad(&s->c, "SEARCH needs criteria");
        goto out;
    }
    if (ip->end - ip->p > 7 && strncasecmp(ip->p, "RETURN ", 7) == 0) {
        ip->p += 7;
        if (!parse_return(ip, &ret)) {
            imap_bad(&s->c, "Invalid RETURN options");
            goto fail;
        }
        esearch = true;
    }
    if (ip->end - ip->p > 8 && strncasecmp(ip->p, "CHARSET ", 8) == 0) {
        ip->p += 8;
        if (!imap_p_astring(ip, &cs) || !imap_p_sp(ip)) {
            imap_bad(&s->c, "CHARSET needs a name");
            goto fail;
        }
        if (strcasecmp(cs.s, "UTF-8") != 0 && strcasecmp(cs.s, "US-ASCII") != 0) {
            imap_no(&s->c, "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
            goto fail;
        }
    }
    root = parse_list(&p, 0, false);
    if (root == NULL || !imap_p_eol(ip)) {
        imap_bad(&s->c, "%s", p.why != NULL ? p.why : "Invalid search criteria");
        goto fail;
    }
    if (esearch && ret == 0)
        ret = R_ALL;
    if (p.modseq)
        imap_condstore_on(s);
    if (p.cached)
        imap_cache_open(s);
    resolve(root, (uint32_t)s->nview, s->nview > 0 ? s->view[s->nview - 1] : 0);
    hits = xreallocarray(NULL, s->nview > 0 ? s->nview : 1, sizeof(*hits));
    for (size_t k = 0; k < s->nview; k++) {
        struct smsg x;
        long i = store_find(s->box, s->view[k]);

        if (i < 0)
            continue;
        memset(&x, 0, sizeof(x));
        x.s = s;
        x.i = (size_t)i;
        x.seq = k + 1;
        x.m = store_msg(s->box, (size_t)i);
        if (eval(&x, root)) {
            hits[nhits++] = s->view[k];
            if (x.m->modseq > top)
                top = x.m->modseq;
        }
        if (x.parsed)
            mime_free(&x.mm);
        str_free(&x.data);
    }
    if (!esearch) {
        stream_puts(s->c.st, "* SEARCH");
        for (size_t k = 0; k < nhits; k++)
            stream_printf(s->c.st, " %u", uid ? hits[k] : (uint32_t)imap_view_seq(s, hits[k]));
        /* RFC 7162 3.1.5: the highest mod-sequence of what matched */
        if (p.modseq && top > 0)
            stream_printf(s->c.st, " (MODSEQ %llu)", (unsigned long long)top);
        stream_puts(s->c.st, "\r\n");
    } else if (ret & (R_MIN | R_MAX | R_ALL | R_COUNT)) {
        put_esearch(s, uid, ret, hits, nhits, p.modseq ? top : 0);
    }
    /* "$" in this very command meant the result before it (RFC 5182 2.1) */
    if (ret & R_SAVE)
        save_result(s, ret, hits, nhits);
    imap_report_changes(s, uid);
    imap_ok(&s->c, "SEARCH completed");
    goto out;
fail:
    /* RFC 5182 2.1: a failed SEARCH that would have saved leaves "$" empty */
    if (ret & R_SAVE)
        imap_saved_clear(s);
out:
    free(hits);
    node_free(root);
    str_free(&cs);
}
