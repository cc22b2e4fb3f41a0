/* FETCH's use of the selected folder's index cache (see fetch_cache.h): open,
 * look up, fill from a parse, save.  The cache file is read by imap_index.c as
 * untrusted; here only whole entries of our own making go in. */
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
