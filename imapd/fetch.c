/* FETCH and UID FETCH (RFC 3501 6.4.5, 7.4.2): FLAGS, UID, INTERNALDATE, RFC822.SIZE,
 * RFC822, RFC822.HEADER, RFC822.TEXT, ENVELOPE, BODY, BODYSTRUCTURE, BODY[section]
 * and BODY.PEEK[section] with <origin.count>, the macros ALL, FAST and FULL, and
 * RFC 7162's MODSEQ with the modifiers CHANGEDSINCE and VANISHED (condstore.c), and
 * RFC 3516's BINARY[part]<origin.count>, BINARY.PEEK[part] and BINARY.SIZE[part].
 * The message is read from its file and parsed by the MIME library (mime.h), which
 * gives the structures and the section bytes with every line end as CRLF; a body
 * fetched without PEEK sets \Seen.  RFC822.SIZE, ENVELOPE, BODY and BODYSTRUCTURE
 * come from the folder's index cache (imap_index.h) when it knows the message, and
 * go into it when it does not, so a warm folder answers them without opening files.
 * The request is the client's, the message is whoever sent it: both untrusted. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "fetch_cache.h"
#include "file_read.h"
#include "imap_index.h"
#include "imapd.h"
#include "log.h"
#include "mime.h"
#include "session.h"
#include "store.h"
#include "stream.h"
#include "xmalloc.h"

#define FETCH_ITEMS_MAX 64          /* items in one FETCH */
#define FETCH_MSG_MAX ((size_t)1 << 30)     /* largest message file read */

enum fetch_kind {
    F_FLAGS, F_UID, F_INTERNALDATE, F_SIZE, F_RFC822, F_RFC822_HEADER, F_RFC822_TEXT,
    F_ENVELOPE, F_BODY, F_BODYSTRUCTURE, F_SECTION, F_MODSEQ, F_BINARY, F_BINARY_SIZE,
};

struct fetch_item {
    enum fetch_kind kind;
    bool peek;
    bool partial;
    uint64_t origin, count;
    struct mime_section sec;
    struct str canon;               /* the section as it is answered */
    struct str bin;                 /* BINARY: the decoded part of this message */
    int bin_rc;                     /* and mime_section_fetch's answer for it */
};

struct fetch_req {
    struct fetch_item v[FETCH_ITEMS_MAX];
    size_t n;
    bool need_msg;                  /* an item needs the message's bytes */
    bool need_meta;                 /* an item the index cache can answer */
    bool sets_seen;
    bool has_flags, has_uid, has_modseq;
    bool unknown_cte;               /* a BINARY part had an unknown encoding */
    bool rev2;                      /* IMAP4rev2 is enabled: no RFC822[.HEADER|.TEXT] */
    const char *why;                /* the reason for BAD, when not the usual one */
};

static const struct {
    const char *name;
    enum fetch_kind kind;
} simple[] = {
    { "FLAGS", F_FLAGS }, { "UID", F_UID }, { "INTERNALDATE", F_INTERNALDATE },
    { "RFC822.SIZE", F_SIZE }, { "RFC822", F_RFC822 }, { "RFC822.HEADER", F_RFC822_HEADER },
    { "RFC822.TEXT", F_RFC822_TEXT }, { "ENVELOPE", F_ENVELOPE },
    { "BODYSTRUCTURE", F_BODYSTRUCTURE }, { "BODY", F_BODY }, { "MODSEQ", F_MODSEQ },
};

static bool add(struct fetch_req *r, enum fetch_kind k)
{
    if (r->n == FETCH_ITEMS_MAX)
        return false;
    memset(&r->v[r->n], 0, sizeof(r->v[r->n]));
    r->v[r->n].kind = k;
    r->n++;
    if (k == F_FLAGS)
        r->has_flags = true;
    if (k == F_UID)
        r->has_uid = true;
    if (k == F_MODSEQ)
        r->has_modseq = true;
    if (k == F_SIZE || k == F_ENVELOPE || k == F_BODY || k == F_BODYSTRUCTURE)
        r->need_meta = true;
    else if (k != F_FLAGS && k != F_UID && k != F_INTERNALDATE && k != F_MODSEQ)
        r->need_msg = true;
    if (k == F_RFC822 || k == F_RFC822_TEXT)
        r->sets_seen = true;
    return true;
}

/* "[section]<o.n>" after BODY or BODY.PEEK; "[part]<o.n>" after BINARY and
 * BINARY.PEEK, "[part]" after BINARY.SIZE (RFC 3516 section-binary: numbers only). */
static bool parse_section(struct imap_parser *ip, struct fetch_item *it)
{
    const char *start = ip->p + 1, *p = start;
    bool q = false;
    int depth = 0;

    for (; p < ip->end; p++) {
        if (q) {
            if (*p == '\\' && p + 1 < ip->end)
                p++;
            else if (*p == '"')
                q = false;
        } else if (*p == '"') {
            q = true;
        } else if (*p == '(') {
            depth++;
        } else if (*p == ')') {
            depth--;
        } else if (*p == ']' && depth == 0) {
            break;
        }
    }
    if (p == ip->end || mime_section_parse(start, (size_t)(p - start), &it->sec) < 0)
        return false;
    ip->p = p + 1;
    str_init(&it->canon);
    str_init(&it->bin);
    mime_section_format(&it->sec, &it->canon);
    if (it->kind != F_SECTION && it->sec.text != MIME_SECT_NONE)
        return false;
    if (it->kind != F_BINARY_SIZE && imap_p_char(ip, '<')) {
        if (!imap_p_number(ip, UINT32_MAX, &it->origin) || !imap_p_char(ip, '.')
            || !imap_p_number(ip, UINT32_MAX, &it->count) || it->count == 0
            || !imap_p_char(ip, '>'))
            return false;
        it->partial = true;
    }
    return true;
}

static bool parse_item(struct imap_parser *ip, struct fetch_req *r)
{
    const char *start = ip->p;
    char name[20];
    size_t len;

    while (ip->p < ip->end && (((*ip->p | 0x20) >= 'a' && (*ip->p | 0x20) <= 'z')
                               || (*ip->p >= '0' && *ip->p <= '9') || *ip->p == '.'))
        ip->p++;
    len = (size_t)(ip->p - start);
    if (len == 0 || len >= sizeof(name))
        return false;
    memcpy(name, start, len);
    name[len] = '\0';
    if (imap_p_peek(ip, '[')) {
        struct fetch_item *it;
        enum fetch_kind k = F_SECTION;
        bool peek = strcasecmp(name, "BODY.PEEK") == 0 || strcasecmp(name, "BINARY.PEEK") == 0;
        if (strncasecmp(name, "BINARY", 6) == 0)
            k = strcasecmp(name, "BINARY.SIZE") == 0 ? F_BINARY_SIZE : F_BINARY;
        if (!peek && k != F_BINARY_SIZE && strcasecmp(name, "BODY") != 0
            && strcasecmp(name, "BINARY") != 0)
            return false;
        if (!add(r, k))
            return false;
        it = &r->v[r->n - 1];
        it->peek = peek || k == F_BINARY_SIZE;
        if (!it->peek)
            r->sets_seen = true;
        return parse_section(ip, it);
    }
    if (strcasecmp(name, "ALL") == 0 || strcasecmp(name, "FAST") == 0
        || strcasecmp(name, "FULL") == 0) {
        bool ok = add(r, F_FLAGS) && add(r, F_INTERNALDATE) && add(r, F_SIZE);
        if (ok && strcasecmp(name, "FAST") != 0)
            ok = add(r, F_ENVELOPE);
        if (ok && strcasecmp(name, "FULL") == 0)
            ok = add(r, F_BODY);
        return ok;
    }
    for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
        if (strcasecmp(name, simple[i].name) != 0)
            continue;
        /* RFC 9051 removed them (RFC822.SIZE stays): BODY[], BODY[HEADER], BODY[TEXT] */
        if (r->rev2 && (simple[i].kind == F_RFC822 || simple[i].kind == F_RFC822_HEADER
                        || simple[i].kind == F_RFC822_TEXT)) {
            r->why = "RFC822, RFC822.HEADER and RFC822.TEXT are not IMAP4rev2 FETCH items";
            return false;
        }
        return add(r, simple[i].kind);
    }
    return false;
}

static bool parse_request(struct imap_parser *ip, struct fetch_req *r)
{
    if (!imap_p_char(ip, '('))
        return parse_item(ip, r);
    do {
        if (!parse_item(ip, r))
            return false;
    } while (imap_p_sp(ip));
    return imap_p_char(ip, ')');
}

static void req_free(struct fetch_req *r)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].kind == F_SECTION || r->v[i].kind == F_BINARY
            || r->v[i].kind == F_BINARY_SIZE) {
            mime_section_free(&r->v[i].sec);
            str_free(&r->v[i].canon);
            str_free(&r->v[i].bin);
        }
    }
}

static void put_literal(struct imap_session *s, const char *p, size_t n)
{
    stream_printf(s->c.st, "{%zu}\r\n", n);
    stream_write(s->c.st, p, n);
}

/* BINARY data: a literal8 "~{n}" when it holds a NUL (RFC 3516), else a literal. */
static void put_literal8(struct imap_session *s, const char *p, size_t n)
{
    if (memchr(p, '\0', n) != NULL)
        stream_puts(s->c.st, "~");
    put_literal(s, p, n);
}

/* BINARY and BINARY.SIZE items of message mm decoded into each item's bin (before
 * the response starts, since an unknown encoding makes the command NO).  false when
 * a part's encoding is unknown. */
static bool binary_prepare(struct fetch_req *r, const struct mime_msg *mm)
{
    for (size_t k = 0; k < r->n; k++) {
        struct fetch_item *it = &r->v[k];
        if (it->kind != F_BINARY && it->kind != F_BINARY_SIZE)
            continue;
        str_clear(&it->bin);
        it->bin_rc = mime_section_fetch(mm, &it->sec, MIME_FETCH_BINARY, &it->bin);
        if (it->bin_rc == -2)
            return false;
        if (it->bin_rc < 0)
            str_clear(&it->bin);    /* a part that does not exist is empty */
    }
    return true;
}

static void put_binary(struct imap_session *s, const struct fetch_item *it)
{
    size_t start = 0, n = it->bin.len;

    if (it->kind == F_BINARY_SIZE) {
        stream_printf(s->c.st, "BINARY.SIZE[%s] %zu", it->canon.s ? it->canon.s : "", n);
        return;
    }
    if (it->partial)
        mime_partial(it->bin.len, it->origin, it->count, &start, &n);
    stream_printf(s->c.st, "BINARY[%s]", it->canon.s ? it->canon.s : "");
    if (it->partial)
        stream_printf(s->c.st, "<%llu>", (unsigned long long)it->origin);
    stream_puts(s->c.st, " ");
    put_literal8(s, it->bin.s != NULL ? it->bin.s + start : "", n);
}

static void put_internaldate(struct imap_session *s, time_t t)
{
    static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
                                       "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    stream_printf(s->c.st, "INTERNALDATE \"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
                  mon[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The section's bytes (before <partial>), or false when the part does not exist. */
static void put_section(struct imap_session *s, const struct mime_msg *m,
                        const struct fetch_item *it, struct str *buf)
{
    size_t start = 0, n;

    str_clear(buf);
    if (mime_section_fetch(m, &it->sec, 0, buf) < 0)
        str_clear(buf);     /* RFC 3501: a part that does not exist is empty */
    n = buf->len;
    if (it->partial)
        mime_partial(buf->len, it->origin, it->count, &start, &n);
    stream_printf(s->c.st, "BODY[%s]", it->canon.s ? it->canon.s : "");
    if (it->partial)
        stream_printf(s->c.st, "<%llu>", (unsigned long long)it->origin);
    stream_puts(s->c.st, " ");
    put_literal(s, buf->s != NULL ? buf->s + start : "", n);
}

/* One message's FETCH response.  -1 when its file is gone, -2 (nothing sent) when a
 * BINARY part's encoding is unknown. */
static int fetch_one(struct imap_session *s, struct fetch_req *r, size_t seq, size_t i,
                     bool uid, bool seen_set)
{
    const struct store_msg *sm = store_msg(s->box, i);
    struct str data = STR_INIT, err = STR_INIT, buf = STR_INIT;
    struct mime_msg mm;
    struct imap_cache_meta fm;
    const struct imap_index_entry *ce = NULL;
    bool parsed = false, first = true, made = false;
    int rc = 0;

    if (r->need_meta)
        ce = imap_cache_get(sm);
    if (r->need_msg || (r->need_meta && ce == NULL)) {
        int fd = store_open_msg(s->box, i);
        if (fd < 0)
            return -1;
        rc = file_read_fd(fd, sm->file, FETCH_MSG_MAX, &data, &err);
        close(fd);
        if (rc < 0) {
            log_warn("user=<%s>: %s", s->c.user, err.s);
            str_free(&err);
            str_free(&data);
            return -1;
        }
        mime_parse(&mm, data.s != NULL ? data.s : "", data.len);
        parsed = true;
        if (!binary_prepare(r, &mm)) {
            mime_free(&mm);
            str_free(&data);
            str_free(&err);
            return -2;
        }
        if (r->need_meta && ce == NULL) {
            imap_cache_make(s, &fm, sm, &mm);
            made = true;
            ce = &fm.e;
        }
    }
    for (size_t k = 0; k < r->n; k++)
        if (r->v[k].kind == F_INTERNALDATE && sm->internaldate == 0)
            (void)store_stat(s->box, i);
    sm = store_msg(s->box, i);
    stream_printf(s->c.st, "* %zu FETCH (", seq);
    if (uid && !r->has_uid) {
        stream_printf(s->c.st, "UID %u", sm->uid);
        first = false;
    }
    if (seen_set && !r->has_flags) {
        stream_puts(s->c.st, first ? "" : " ");
        imap_put_flags(s, sm);
        first = false;
    }
    for (size_t k = 0; k < r->n; k++) {
        const struct fetch_item *it = &r->v[k];

        stream_puts(s->c.st, first ? "" : " ");
        first = false;
        switch (it->kind) {
        case F_FLAGS:
            imap_put_flags(s, sm);
            break;
        case F_UID:
            stream_printf(s->c.st, "UID %u", sm->uid);
            break;
        case F_INTERNALDATE:
            put_internaldate(s, sm->internaldate);
            break;
        case F_SIZE:
            stream_printf(s->c.st, "RFC822.SIZE %llu", (unsigned long long)ce->size);
            break;
        case F_RFC822:
        case F_RFC822_HEADER:
        case F_RFC822_TEXT: {
            struct mime_section sec;
            memset(&sec, 0, sizeof(sec));
            sec.text = it->kind == F_RFC822 ? MIME_SECT_NONE
                       : it->kind == F_RFC822_HEADER ? MIME_SECT_HEADER : MIME_SECT_TEXT;
            str_clear(&buf);
            (void)mime_section_fetch(&mm, &sec, 0, &buf);
            stream_puts(s->c.st, it->kind == F_RFC822 ? "RFC822 "
                                 : it->kind == F_RFC822_HEADER ? "RFC822.HEADER "
                                                                : "RFC822.TEXT ");
            put_literal(s, buf.s != NULL ? buf.s : "", buf.len);
            break;
        }
        case F_ENVELOPE:
            stream_puts(s->c.st, "ENVELOPE ");
            stream_write(s->c.st, ce->envelope, ce->envelope_len);
            break;
        case F_BODY:
            stream_puts(s->c.st, "BODY ");
            stream_write(s->c.st, ce->body, ce->body_len);
            break;
        case F_BODYSTRUCTURE:
            stream_puts(s->c.st, "BODYSTRUCTURE ");
            stream_write(s->c.st, ce->bodystructure, ce->bodystructure_len);
            break;
        case F_SECTION:
            put_section(s, &mm, it, &buf);
            break;
        case F_MODSEQ:
            stream_printf(s->c.st, "MODSEQ (%llu)", (unsigned long long)sm->modseq);
            break;
        case F_BINARY:
        case F_BINARY_SIZE:
            put_binary(s, it);
            break;
        }
    }
    if (seen_set && (s->enabled & IMAP_EN_CONDSTORE) && !r->has_modseq)
        stream_printf(s->c.st, " MODSEQ (%llu)", (unsigned long long)sm->modseq);
    stream_puts(s->c.st, ")\r\n");
    if (made)
        imap_cache_meta_free(&fm);
    if (parsed)
        mime_free(&mm);
    str_free(&data);
    str_free(&buf);
    str_free(&err);
    return 0;
}

static int cmp_uid(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

/* The folder index of uid: the one after last when it is there (a set walked in
 * order), else found. */
static long next_index(const struct imap_session *s, uint32_t uid, long last)
{
    const struct store_msg *m;

    if (last >= 0 && (m = store_msg(s->box, (size_t)last + 1)) != NULL && m->uid == uid)
        return last + 1;
    return store_find(s->box, uid);
}

/* The sequence number of uid: the one after last when it is, else looked up. */
static size_t next_seq(const struct imap_session *s, uint32_t uid, size_t last)
{
    if (last > 0 && last < s->nview && s->view[last] == uid)
        return last + 1;
    return imap_view_seq(s, uid);
}

/* BODY[] and the like set \Seen (RFC 3501 6.4.5): on the messages of uids (those
 * the client knows, without it, past changedsince) in one change of the folder,
 * before any is sent.  *seen: the UIDs it was set on, ascending. */
static void set_seen(struct imap_session *s, const uint32_t *uids, size_t n,
                     uint64_t changedsince, uint32_t **seen, size_t *nseen)
{
    uint32_t *want = xreallocarray(NULL, n ? n : 1, sizeof(*want)), *failed = NULL;
    size_t nwant = 0, nf = 0;
    struct str err = STR_INIT;
    long last = -1;
    size_t last_seq = 0;

    for (size_t k = 0; k < n; k++) {
        long i = next_index(s, uids[k], last);
        size_t seq = next_seq(s, uids[k], last_seq);
        const struct store_msg *m;

        if (i < 0 || seq == 0)
            continue;
        last = i;
        last_seq = seq;
        m = store_msg(s->box, (size_t)i);
        if ((changedsince == 0 || m->modseq > changedsince) && !(m->flags & STORE_F_SEEN))
            want[nwant++] = uids[k];
    }
    if (nwant > 0 && store_set_flags(s->box, want, nwant, '+', STORE_F_SEEN, 0, 0, &failed,
                                     &nf, &err) == 0) {
        *seen = want;
        *nseen = nwant;
        want = NULL;
    }
    free(want);
    free(failed);
    str_free(&err);
}

void imap_cmd_fetch(struct imap_session *s, struct imap_parser *ip, bool uid)
{
    uint32_t *seen = NULL;                  /* set \Seen by this FETCH, ascending */
    size_t nseen = 0, last_seq = 0;
    long last_i = -1;
    struct fetch_req *r = xcalloc(1, sizeof(*r));
    uint32_t *uids = NULL;
    size_t n = 0, gone = 0;
    struct imap_parser at_set;
    uint64_t changedsince;
    bool vanished;

    r->rev2 = IMAP_REV2(s);
    if (!imap_p_sp(ip))
        goto bad;
    at_set = *ip;
    if (!imap_set_uids(s, ip, uid, &uids, &n))
        goto out;
    if (!imap_p_sp(ip) || !parse_request(ip, r))
        goto bad;
    if (!imap_p_fetch_mods(s, ip, uid, &changedsince, &vanished))
        goto out;
    if (!imap_p_eol(ip))
        goto bad;
    /* RFC 7162 3.1.4: CHANGEDSINCE implies MODSEQ; asking for MODSEQ enables. */
    if ((changedsince != 0 && !r->has_modseq && !add(r, F_MODSEQ)))
        goto bad;
    if (r->has_modseq)
        imap_condstore_on(s);
    if (vanished)
        imap_fetch_vanished(s, &at_set, changedsince);
    if (r->need_meta)
        imap_cache_open(s);
    if (r->sets_seen && !s->readonly)
        set_seen(s, uids, n, changedsince, &seen, &nseen);
    for (size_t k = 0; k < n && !s->c.closing; k++) {
        long i = next_index(s, uids[k], last_i);
        size_t seq = next_seq(s, uids[k], last_seq);

        if (i < 0 || seq == 0) {
            gone++;
            continue;
        }
        last_i = i;
        last_seq = seq;
        if (changedsince != 0 && store_msg(s->box, (size_t)i)->modseq <= changedsince)
            continue;
        bool seen_set = nseen > 0 && bsearch(&uids[k], seen, nseen, sizeof(*seen), cmp_uid);
        switch (fetch_one(s, r, seq, (size_t)i, uid, seen_set)) {
        case -1:
            gone++;
            break;
        case -2:
            r->unknown_cte = true;
            break;
        }
        if (stream_error(s->c.st))
            break;
    }
    imap_cache_command_end(s);
    imap_report_changes(s, uid);
    if (r->unknown_cte)
        imap_no(&s->c, "[UNKNOWN-CTE] Unknown content transfer encoding");
    else if (gone > 0 && !uid)
        imap_no(&s->c, "[EXPUNGEISSUED] Some messages were expunged meanwhile");
    else
        imap_ok(&s->c, "FETCH completed");
    goto out;
bad:
    imap_bad(&s->c, "%s", r->why != NULL ? r->why : "Invalid FETCH items");
out:
    req_free(r);
    free(r);
    free(uids);
    free(seen);
}
