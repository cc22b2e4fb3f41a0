/* The IMAP index cache of a folder (see imap_index.h; format in postern-imap-index(5)).
 * The file is ours but lives in the user's Maildir, where the user (or anything
 * running as the user) may write: it is read as untrusted input.  Every number is
 * bounded, every length checked against what is left, the whole file against
 * max_bytes and its CRC-32; anything wrong and the whole file is ignored. */
#include "imap_index.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "atomic_file.h"
#include "file_read.h"
#include "str.h"
#include "xmalloc.h"

#define INDEX_MAGIC "postern-imap-index 1 "
#define INDEX_ENTRIES_MAX 2000000u  /* more than a folder may hold (IMAP_FOLDER_MSGS_MAX) */

struct ix_ent {
    struct imap_index_entry e;
    char *mem;                      /* base, envelope, body, bodystructure, each + NUL */
};

struct imap_index {
    char *dir;
    uint32_t uidvalidity;
    size_t max_bytes;
    struct ix_ent *v;
    size_t n, cap;
    uint32_t *slots;                /* open addressing by UID: index + 1, 0 empty */
    size_t nslots;                  /* a power of two, over twice n */
    bool dirty;
};

static size_t slot_of(const struct imap_index *ix, uint32_t uid)
{
    size_t mask = ix->nslots - 1, h = (size_t)(uid * 2654435761u) & mask;

    while (ix->slots[h] != 0 && ix->v[ix->slots[h] - 1].e.uid != uid)
        h = (h + 1) & mask;
    return h;
}

static void rehash(struct imap_index *ix, size_t want)
{
    size_t ns = 64;

    while (ns < want * 2 + 2)
        ns *= 2;
    free(ix->slots);
    ix->slots = xcalloc(ns, sizeof(*ix->slots));
    ix->nslots = ns;
    for (size_t i = 0; i < ix->n; i++)
        ix->slots[slot_of(ix, ix->v[i].e.uid)] = (uint32_t)(i + 1);
}

static bool plain_name(const char *s, size_t len)
{
    if (len == 0 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '/' || s[i] == '\0' || s[i] == '\n' || s[i] == ':')
            return false;
    return true;
}

/* Stores e with copies of its strings (lengths already checked). */
static void store(struct imap_index *ix, const struct imap_index_entry *e)
{
    size_t bl = strlen(e->base);
    size_t total = bl + e->envelope_len + e->body_len + e->bodystructure_len + 4;
    char *m = xmalloc(total), *p = m;
    struct ix_ent ne;
    size_t h;

    ne.e = *e;
    ne.mem = m;
#define PUT(field, len) do { memcpy(p, e->field, (len)); p[len] = '\0'; \
                             ne.e.field = p; p += (len) + 1; } while (0)
    PUT(base, bl);
    PUT(envelope, e->envelope_len);
    PUT(body, e->body_len);
    PUT(bodystructure, e->bodystructure_len);
#undef PUT
    if ((ix->n + 1) * 2 + 2 > ix->nslots)
        rehash(ix, ix->n + 1);
    h = slot_of(ix, e->uid);
    if (ix->slots[h] != 0) {
        struct ix_ent *old = &ix->v[ix->slots[h] - 1];
        free(old->mem);
        *old = ne;
        return;
    }
    if (ix->n == ix->cap) {
        ix->cap = ix->cap ? ix->cap * 2 : 256;
        ix->v = xreallocarray(ix->v, ix->cap, sizeof(*ix->v));
    }
    ix->v[ix->n] = ne;
    ix->slots[h] = (uint32_t)++ix->n;
}

static void clear(struct imap_index *ix)
{
    for (size_t i = 0; i < ix->n; i++)
        free(ix->v[i].mem);
    ix->n = 0;
    if (ix->slots != NULL)
        memset(ix->slots, 0, ix->nslots * sizeof(*ix->slots));
}

/* A decimal number ending in sep at *p (before end), at most max. */
static bool number(const char **p, const char *end, char sep, uint64_t max, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    if (s == end || *s < '0' || *s > '9')
        return false;
    for (; s < end && *s >= '0' && *s <= '9'; s++) {
        if (s - *p >= 19 || v > (max - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (s == end || *s != sep)
        return false;
    *p = s + 1;
    *out = v;
    return true;
}

/* Parses the whole file; false (why set) at the first thing wrong. */
static bool parse(struct imap_index *ix, const char *buf, size_t len, const char **why)
{
    const char *p = buf, *end = buf + len, *tail;
    uint64_t v, count, crc, f[6];
    size_t n = 0;

    /* the end record: "end COUNT CRC\n", the last line */
    if (len < sizeof(INDEX_MAGIC) || buf[len - 1] != '\n') {
        *why = "truncated";
        return false;
    }
    tail = end - 1;
    while (tail > buf && tail[-1] != '\n')
        tail--;
    if (end - tail < 8 || memcmp(tail, "end ", 4) != 0) {
        *why = "truncated";
        return false;
    }
    {
        const char *q = tail + 4;
        if (!number(&q, end, ' ', INDEX_ENTRIES_MAX, &count) || !number(&q, end, '\n',
                                                                         UINT32_MAX, &crc)
            || q != end) {
            *why = "bad end record";
            return false;
        }
    }
    if (crc32(0L, (const Bytef *)buf, (uInt)(tail - buf)) != (uLong)crc) {
        *why = "checksum mismatch";
        return false;
    }
    if (memcmp(p, INDEX_MAGIC, sizeof(INDEX_MAGIC) - 1) != 0) {
        *why = "not an index of this version";
        return false;
    }
    p += sizeof(INDEX_MAGIC) - 1;
    if (!number(&p, tail, '\n', UINT32_MAX, &v)) {
        *why = "bad header";
        return false;
    }
    if (v != ix->uidvalidity) {
        *why = "of another UIDVALIDITY";
        return false;
    }
    while (p < tail) {
        struct imap_index_entry e;
        size_t need;

        for (int k = 0; k < 6; k++) {
            uint64_t max = k == 0 ? UINT32_MAX : k == 1 ? UINT64_MAX / 4
                           : k == 2 ? 255 : IMAP_INDEX_FIELD_MAX;
            if (!number(&p, tail, k == 5 ? '\n' : ' ', max, &f[k])) {
                *why = "bad record";
                return false;
            }
        }
        need = (size_t)(f[2] + f[3] + f[4] + f[5]) + 1;
        if ((size_t)(tail - p) < need || p[need - 1] != '\n' || f[0] == 0
            || !plain_name(p, (size_t)f[2]) || ++n > count) {
            *why = "bad record";
            return false;
        }
        {
            char base[256];
            memcpy(base, p, (size_t)f[2]);
            base[f[2]] = '\0';
            e.uid = (uint32_t)f[0];
            e.size = f[1];
            e.base = base;
            e.envelope = p + f[2];
            e.envelope_len = (size_t)f[3];
            e.body = e.envelope + f[3];
            e.body_len = (size_t)f[4];
            e.bodystructure = e.body + f[4];
            e.bodystructure_len = (size_t)f[5];
            store(ix, &e);
        }
        p += need;
    }
    if (n != count) {
        *why = "count mismatch";
        return false;
    }
    return true;
}

struct imap_index *imap_index_open(const char *dir, uint32_t uidvalidity, size_t max_bytes,
                                   struct str *why)
{
    struct imap_index *ix = xcalloc(1, sizeof(*ix));
    struct str path = STR_INIT, data = STR_INIT, err = STR_INIT;
    const char *bad = NULL;
    int fd;

    ix->dir = xstrdup(dir);
    ix->uidvalidity = uidvalidity;
    ix->max_bytes = max_bytes;
    rehash(ix, 0);
    if (why != NULL)
        str_sets(why, "");
    str_printf(&path, "%s/%s", dir, IMAP_INDEX_FILE);
    fd = open(path.s, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            bad = strerror(errno);
    } else {
        if (file_read_fd(fd, path.s, max_bytes, &data, &err) < 0)
            bad = "unreadable or over the size limit";
        else if (!parse(ix, data.s != NULL ? data.s : "", data.len, &bad))
            clear(ix);
        close(fd);
    }
    if (bad != NULL) {
        ix->dirty = true;           /* written anew at the next save */
        if (why != NULL)
            str_sets(why, bad);
    }
    str_free(&path);
    str_free(&data);
    str_free(&err);
    return ix;
}

void imap_index_close(struct imap_index *ix)
{
    if (ix == NULL)
        return;
    clear(ix);
    free(ix->v);
    free(ix->slots);
    free(ix->dir);
    free(ix);
}

const char *imap_index_dir(const struct imap_index *ix)
{
    return ix->dir;
}

uint32_t imap_index_uidvalidity(const struct imap_index *ix)
{
    return ix->uidvalidity;
}

size_t imap_index_count(const struct imap_index *ix)
{
    return ix->n;
}

const struct imap_index_entry *imap_index_get(const struct imap_index *ix, uint32_t uid,
                                              const char *base, size_t base_len)
{
    size_t h = slot_of(ix, uid);
    const struct imap_index_entry *e;

    if (ix->slots[h] == 0)
        return NULL;
    e = &ix->v[ix->slots[h] - 1].e;
    if (strlen(e->base) != base_len || memcmp(e->base, base, base_len) != 0)
        return NULL;
    return e;
}

bool imap_index_put(struct imap_index *ix, const struct imap_index_entry *e)
{
    if (e->uid == 0 || !plain_name(e->base, strlen(e->base))
        || e->envelope_len > IMAP_INDEX_FIELD_MAX || e->body_len > IMAP_INDEX_FIELD_MAX
        || e->bodystructure_len > IMAP_INDEX_FIELD_MAX || e->size > UINT64_MAX / 4
        || ix->n >= INDEX_ENTRIES_MAX)
        return false;
    store(ix, e);
    ix->dirty = true;
    return true;
}

static int by_uid(const void *a, const void *b)
{
    uint32_t x = (*(const struct ix_ent *const *)a)->e.uid;
    uint32_t y = (*(const struct ix_ent *const *)b)->e.uid;

    return x < y ? -1 : x > y;
}

int imap_index_save(struct imap_index *ix, bool (*keep)(void *arg, uint32_t uid,
                                                        const char *base), void *arg,
                    struct str *err)
{
    struct str out = STR_INIT, path = STR_INIT;
    struct ix_ent **order;
    size_t kept = 0;
    int rc;

    if (!ix->dirty)
        return 0;
    order = xreallocarray(NULL, ix->n + 1, sizeof(*order));
    for (size_t i = 0; i < ix->n; i++)
        order[i] = &ix->v[i];
    qsort(order, ix->n, sizeof(*order), by_uid);
    str_printf(&out, INDEX_MAGIC "%" PRIu32 "\n", ix->uidvalidity);
    for (size_t i = 0; i < ix->n; i++) {
        const struct imap_index_entry *e = &order[i]->e;
        size_t before = out.len;

        if (keep != NULL && !keep(arg, e->uid, e->base))
            continue;
        str_printf(&out, "%" PRIu32 " %" PRIu64 " %zu %zu %zu %zu\n", e->uid, e->size,
                   strlen(e->base), e->envelope_len, e->body_len, e->bodystructure_len);
        str_appends(&out, e->base);
        str_append(&out, e->envelope, e->envelope_len);
        str_append(&out, e->body, e->body_len);
        str_append(&out, e->bodystructure, e->bodystructure_len);
        str_appendc(&out, '\n');
        if (out.len + 32 > ix->max_bytes) {
            str_truncate(&out, before);     /* the bound: later UIDs are not cached */
            break;
        }
        kept++;
    }
    str_printf(&out, "end %zu %lu\n", kept,
               (unsigned long)crc32(0L, (const Bytef *)out.s, (uInt)out.len));
    str_printf(&path, "%s/%s", ix->dir, IMAP_INDEX_FILE);
    rc = atomic_file_write(path.s, out.s, out.len, 0600, NULL, err);
    if (rc == 0)
        ix->dirty = false;
    free(order);
    str_free(&out);
    str_free(&path);
    return rc;
}

void imap_index_base(const char *file, const char **base, size_t *len)
{
    const char *slash = strrchr(file, '/'), *b = slash != NULL ? slash + 1 : file;
    const char *colon = strchr(b, ':');

    *base = b;
    *len = colon != NULL ? (size_t)(colon - b) : strlen(b);
}
