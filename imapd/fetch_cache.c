/* FETCH's and SEARCH's use of the selected folder's index cache (see fetch_cache.h):
 * open, look up, fill from a parse, save.  The cache file is read by imap_index.c as
 * untrusted; here only whole entries of our own making go in, and what is read back
 * out of an entry (the envelope's subject) is parsed with every length checked. */
#include <string.h>

#include "fetch_cache.h"
#include "imap_index.h"
#include "imapd.h"
#include "log.h"
#include "mime.h"
#include "session.h"
#include "store.h"

static struct imap_index *cache;
static size_t cache_added;

static bool cache_keep(void *arg, uint32_t uid, const char *base)
{
    struct store_box *b = arg;
    long i = store_find(b, uid);
    const char *mb;
    size_t ml;

    if (i < 0)
        return false;
    imap_index_base(store_msg(b, (size_t)i)->file, &mb, &ml);
    return strlen(base) == ml && memcmp(base, mb, ml) == 0;
}

static void cache_save(struct imap_session *s, struct store_box *b)
{
    struct str err = STR_INIT;

    if (cache != NULL && imap_index_save(cache, b != NULL ? cache_keep : NULL, b, &err) < 0)
        log_warn("user=<%s>: index cache not saved: %s", s->c.user, err.s);
    cache_added = 0;
    str_free(&err);
}

void imap_fetch_cache_done(struct imap_session *s)
{
    if (cache == NULL)
        return;
    if (s->box != NULL && strcmp(store_dir(s->box), imap_index_dir(cache)) == 0
        && store_uidvalidity(s->box) == imap_index_uidvalidity(cache))
        cache_save(s, s->box);
    else
        cache_save(s, NULL);
    imap_index_close(cache);
    cache = NULL;
}

void imap_cache_open(struct imap_session *s)
{
    struct str why = STR_INIT;

    if (imap_cf.index_limit == 0)
        return;
    if (cache != NULL && strcmp(store_dir(s->box), imap_index_dir(cache)) == 0
        && store_uidvalidity(s->box) == imap_index_uidvalidity(cache))
        return;
    if (cache != NULL) {
        /* another folder's: its messages are not at hand to filter by */
        cache_save(s, NULL);
        imap_index_close(cache);
    }
    cache = imap_index_open(store_dir(s->box), store_uidvalidity(s->box), imap_cf.index_limit,
                            &why);
    cache_added = 0;
    if (why.len > 0)
        log_info("index cache of %s ignored and rebuilt: user=<%s>: %s", s->box_name.s,
                 s->c.user, why.s);
    str_free(&why);
}

const struct imap_index_entry *imap_cache_get(const struct store_msg *sm)
{
    const char *b;
    size_t bl;

    if (cache == NULL)
        return NULL;
    imap_index_base(sm->file, &b, &bl);
    return imap_index_get(cache, sm->uid, b, bl);
}

/* One nstring of an envelope at *p (before end): NIL (*nil), a quoted string or a
 * literal, appended to out when out is not NULL.  false when it is none of them. */
static bool env_nstring(const char **p, const char *end, struct str *out, bool *nil)
{
    const char *q = *p;
    size_t n = 0;

    *nil = false;
    if (end - q >= 3 && memcmp(q, "NIL", 3) == 0) {
        *nil = true;
        *p = q + 3;
        return true;
    }
    if (q < end && *q == '"') {
        for (q++; q < end && *q != '"'; q++) {
            if (*q == '\\' && ++q == end)
                return false;
            if (out != NULL)
                str_appendc(out, *q);
        }
        if (q == end)
            return false;
        *p = q + 1;
        return true;
    }
    if (q >= end || *q != '{')
        return false;
    for (q++; q < end && *q >= '0' && *q <= '9'; q++) {
        n = n * 10 + (size_t)(*q - '0');
        if (n > (size_t)(end - q))
            return false;
    }
    if (end - q < 3 || memcmp(q, "}\r\n", 3) != 0 || (size_t)(end - q - 3) < n)
        return false;
    q += 3;
    if (out != NULL)
        str_append(out, q, n);
    *p = q + n;
    return true;
}

int imap_cache_subject(const struct store_msg *sm, struct str *out)
{
    const struct imap_index_entry *e = imap_cache_get(sm);
    const char *p, *end;
    bool nil;

    str_clear(out);
    if (e == NULL || e->envelope == NULL)
        return -1;
    /* "(" date SP subject SP ... (RFC 3501 7.4.2) */
    p = e->envelope;
    end = p + e->envelope_len;
    if (p == end || *p++ != '(' || !env_nstring(&p, end, NULL, &nil) || p == end
        || *p++ != ' ' || !env_nstring(&p, end, out, &nil) || p == end || *p != ' ') {
        str_clear(out);
        return -1;
    }
    return nil ? 0 : 1;
}

void imap_cache_make(struct imap_session *s, struct imap_cache_meta *fm,
                     const struct store_msg *sm, const struct mime_msg *mm)
{
    const char *b;
    size_t bl;

    str_init(&fm->env);
    str_init(&fm->body);
    str_init(&fm->bs);
    mime_imap_envelope(mm, mm->root, &fm->env);
    mime_imap_bodystructure(mm, mm->root, false, &fm->body);
    mime_imap_bodystructure(mm, mm->root, true, &fm->bs);
    imap_index_base(sm->file, &b, &bl);
    memset(&fm->e, 0, sizeof(fm->e));
    fm->e.uid = sm->uid;
    fm->e.size = mm->root->header_size + mm->root->body_size;
    fm->e.base = NULL;
    fm->e.envelope = fm->env.s;
    fm->e.envelope_len = fm->env.len;
    fm->e.body = fm->body.s;
    fm->e.body_len = fm->body.len;
    fm->e.bodystructure = fm->bs.s;
    fm->e.bodystructure_len = fm->bs.len;
    if (cache != NULL && bl < 256) {
        char base[256];
        memcpy(base, b, bl);
        base[bl] = '\0';
        fm->e.base = base;
        if (imap_index_put(cache, &fm->e))
            cache_added++;
        fm->e.base = NULL;
    }
}

void imap_cache_meta_free(struct imap_cache_meta *fm)
{
    str_free(&fm->env);
    str_free(&fm->body);
    str_free(&fm->bs);
}

void imap_cache_command_end(struct imap_session *s)
{
    if (cache != NULL && cache_added >= 64 && cache_added * 8 >= imap_index_count(cache))
        cache_save(s, s->box);
}
