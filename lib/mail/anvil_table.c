/* anvil's counters (see anvil_table.h): a hash table of entries, with a list in the
 * order of last use for dropping the oldest when the table is full.  Entries that
 * hold open connections are taken off that list (pinned) until they hold none.  The
 * hash is seeded at random, so that a peer cannot choose keys that all collide. */
#include "anvil_table.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

enum anvil_kind {
    KIND_CONN,
    KIND_CLIENT,
    KIND_ACCOUNT,
    KIND_PAIR,
};

struct entry {
    struct entry *hnext;            /* hash chain */
    struct entry *prev, *next;      /* use order; not on it while pinned */
    enum anvil_kind kind;
    unsigned conns;                 /* open connections (KIND_CONN) */
    unsigned count;                 /* events in the window */
    long long window_start;
    long long logged;               /* last limit hit reported; < 0: never */
    uint64_t hash;
    size_t keylen;
    char key[];                     /* not NUL-terminated; may hold NUL separators */
};

struct anvil_table {
    struct entry **bucket;
    size_t nbucket;                 /* a power of two */
    size_t n, max;
    long long unit_ms;
    uint64_t seed;
    struct entry *oldest, *newest;  /* use order of unpinned entries */
};

struct anvil_owner {
    struct anvil_table *t;
    struct entry **slot;
    size_t n, cap;
};

/* ---- keys ---- */

struct key {
    char buf[2 * ANVIL_KEY_MAX + 1];
    size_t len;
};

/* a, or a NUL b; the account part lower-cased.  0, or -1 (EINVAL). */
static int key_make(struct key *k, const char *a, const char *b, bool lower_b)
{
    size_t la = strlen(a), lb = b != NULL ? strlen(b) : 0;

    if (la == 0 || la > ANVIL_KEY_MAX || (b != NULL && (lb == 0 || lb > ANVIL_KEY_MAX))) {
        errno = EINVAL;
        return -1;
    }
    memcpy(k->buf, a, la);
    k->len = la;
    if (b != NULL) {
        k->buf[k->len++] = '\0';
        for (size_t i = 0; i < lb; i++) {
            char c = b[i];
            if (lower_b && c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            k->buf[k->len++] = c;
        }
    }
    return 0;
}

static int key_account(struct key *k, const char *account)
{
    size_t n = strlen(account);

    if (n == 0 || n > ANVIL_KEY_MAX) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        k->buf[i] = account[i] >= 'A' && account[i] <= 'Z'
                    ? (char)(account[i] - 'A' + 'a') : account[i];
    k->len = n;
    return 0;
}

static uint64_t key_hash(const struct anvil_table *t, enum anvil_kind kind,
                         const struct key *k)
{
    uint64_t h = 1469598103934665603ULL ^ t->seed;

    h = (h ^ (uint64_t)kind) * 1099511628211ULL;
    for (size_t i = 0; i < k->len; i++)
        h = (h ^ (unsigned char)k->buf[i]) * 1099511628211ULL;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 32;
    return h;
}

/* ---- use order ---- */

static void order_unlink(struct anvil_table *t, struct entry *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else if (t->oldest == e)
        t->oldest = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else if (t->newest == e)
        t->newest = e->prev;
    e->prev = e->next = NULL;
}

static void order_append(struct anvil_table *t, struct entry *e)
{
    e->prev = t->newest;
    e->next = NULL;
    if (t->newest != NULL)
        t->newest->next = e;
    else
        t->oldest = e;
    t->newest = e;
}

static bool pinned(const struct entry *e)
{
    return e->conns > 0;
}

static void touch(struct anvil_table *t, struct entry *e)
{
    if (pinned(e))
        return;
    order_unlink(t, e);
    order_append(t, e);
}

/* ---- the table ---- */

struct anvil_table *anvil_table_new(size_t max_entries, long long unit_ms)
{
    struct anvil_table *t = xcalloc(1, sizeof(*t));
    size_t nb = 16;

    if (max_entries < 4 || unit_ms <= 0)
        log_panic("anvil_table_new: bad arguments");
    while (nb < max_entries / 2 && nb < ((size_t)1 << 24))
        nb *= 2;
    t->bucket = xcalloc(nb, sizeof(*t->bucket));
    t->nbucket = nb;
    t->max = max_entries;
    t->unit_ms = unit_ms;
    t->seed = ((uint64_t)arc4random() << 32) | arc4random();
    return t;
}

void anvil_table_free(struct anvil_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nbucket; i++) {
        struct entry *e = t->bucket[i], *next;
        for (; e != NULL; e = next) {
            next = e->hnext;
            free(e);
        }
    }
    free(t->bucket);
    free(t);
}

size_t anvil_table_size(const struct anvil_table *t)
{
    return t->n;
}

static struct entry *lookup(struct anvil_table *t, enum anvil_kind kind, const struct key *k)
{
    uint64_t h = key_hash(t, kind, k);

    for (struct entry *e = t->bucket[h & (t->nbucket - 1)]; e != NULL; e = e->hnext)
        if (e->hash == h && e->kind == kind && e->keylen == k->len
            && memcmp(e->key, k->buf, k->len) == 0)
            return e;
    return NULL;
}

static void entry_remove(struct anvil_table *t, struct entry *e)
{
    struct entry **pp = &t->bucket[e->hash & (t->nbucket - 1)];

    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    order_unlink(t, e);
    t->n--;
    free(e);
}

/* The entry for (kind, k), made when missing, and marked as used now.  In a full
 * table the unpinned entry used least recently goes, but never keep1 or keep2
 * (entries the caller still holds).  NULL (errno ENOSPC) when nothing can go. */
static struct entry *entry_get(struct anvil_table *t, enum anvil_kind kind,
                               const struct key *k, const struct entry *keep1,
                               const struct entry *keep2)
{
    struct entry *e = lookup(t, kind, k);
    uint64_t h;

    if (e != NULL) {
        touch(t, e);
        return e;
    }
    if (t->n >= t->max) {
        struct entry *old = t->oldest;
        while (old != NULL && (old == keep1 || old == keep2))
            old = old->next;
        if (old == NULL) {
            errno = ENOSPC;
            return NULL;
        }
        entry_remove(t, old);
    }
    h = key_hash(t, kind, k);
    e = xcalloc(1, sizeof(*e) + k->len);
    e->kind = kind;
    e->hash = h;
    e->keylen = k->len;
    e->logged = -1;
    memcpy(e->key, k->buf, k->len);
    e->hnext = t->bucket[h & (t->nbucket - 1)];
    t->bucket[h & (t->nbucket - 1)] = e;
    order_append(t, e);
    t->n++;
    return e;
}

/* Starts a new window when the current one is over. */
static void window(const struct anvil_table *t, struct entry *e, long long now)
{
    if (e->count == 0 || now - e->window_start >= t->unit_ms || now < e->window_start) {
        e->count = 0;
        e->window_start = now;
    }
}

static unsigned window_count(const struct anvil_table *t, const struct entry *e, long long now)
{
    if (e == NULL || now - e->window_start >= t->unit_ms || now < e->window_start)
        return 0;
    return e->count;
}

static void bump(unsigned *v)
{
    if (*v < UINT32_MAX)
        (*v)++;
}

/* ---- owners ---- */

struct anvil_owner *anvil_owner_new(struct anvil_table *t)
{
    struct anvil_owner *o = xcalloc(1, sizeof(*o));

    o->t = t;
    return o;
}

static void release(struct anvil_table *t, struct entry *e)
{
    if (e->conns == 0)
        log_panic("anvil: releasing a connection that is not open");
    if (--e->conns == 0)
        order_append(t, e);         /* unpinned: it may be dropped again */
}

void anvil_owner_free(struct anvil_owner *o)
{
    if (o == NULL)
        return;
    for (size_t i = 0; i < o->n; i++)
        release(o->t, o->slot[i]);
    free(o->slot);
    free(o);
}

size_t anvil_owner_slots(const struct anvil_owner *o)
{
    return o->n;
}

int anvil_table_connect(struct anvil_table *t, struct anvil_owner *o, const char *service,
                        const char *client, long long now, unsigned *conns, unsigned *rate)
{
    struct key k;
    struct entry *e;

    if (key_make(&k, service, client, false) < 0)
        return -1;
    if (o->n >= ANVIL_OWNER_SLOTS) {
        errno = EMFILE;
        return -1;
    }
    e = entry_get(t, KIND_CONN, &k, NULL, NULL);
    if (e == NULL)
        return -1;
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 4;
        o->slot = xreallocarray(o->slot, o->cap, sizeof(*o->slot));
    }
    o->slot[o->n++] = e;
    if (e->conns++ == 0)
        order_unlink(t, e);         /* pinned while it holds connections */
    window(t, e, now);
    bump(&e->count);
    *conns = e->conns;
    *rate = e->count;
    return 0;
}

int anvil_table_disconnect(struct anvil_table *t, struct anvil_owner *o, const char *service,
                           const char *client)
{
    struct key k;
    struct entry *e;

    if (key_make(&k, service, client, false) < 0)
        return -1;
    e = lookup(t, KIND_CONN, &k);
    if (e == NULL)
        return -1;
    for (size_t i = o->n; i-- > 0;)
        if (o->slot[i] == e) {
            o->slot[i] = o->slot[--o->n];
            release(t, e);
            return 0;
        }
    return -1;
}

void anvil_table_conn_query(struct anvil_table *t, const char *service, const char *client,
                            long long now, unsigned *conns, unsigned *rate)
{
    struct key k;
    struct entry *e = NULL;

    if (key_make(&k, service, client, false) == 0)
        e = lookup(t, KIND_CONN, &k);
    *conns = e != NULL ? e->conns : 0;
    *rate = window_count(t, e, now);
}

int anvil_table_limit(struct anvil_table *t, const char *service, const char *client,
                      long long now)
{
    struct key k;
    struct entry *e;

    if (key_make(&k, service, client, false) < 0)
        return -1;
    e = entry_get(t, KIND_CONN, &k, NULL, NULL);
    if (e == NULL)
        return 1;                   /* cannot remember it: log it */
    if (e->logged >= 0 && now >= e->logged && now - e->logged < ANVIL_LOG_INTERVAL_MS)
        return 0;
    e->logged = now;
    return 1;
}

/* ---- login failures ---- */

struct login_keys {
    struct key client, account, pair;
};

static int login_keys(struct login_keys *lk, const char *client, const char *account)
{
    if (key_make(&lk->client, client, NULL, false) < 0
        || key_account(&lk->account, account) < 0
        || key_make(&lk->pair, client, account, true) < 0)
        return -1;
    return 0;
}

int anvil_table_login_query(struct anvil_table *t, const char *client, const char *account,
                            long long now, unsigned *by_client, unsigned *by_account)
{
    struct login_keys lk;

    if (login_keys(&lk, client, account) < 0)
        return -1;
    *by_client = window_count(t, lookup(t, KIND_CLIENT, &lk.client), now);
    *by_account = window_count(t, lookup(t, KIND_ACCOUNT, &lk.account), now);
    return 0;
}

int anvil_table_login_fail(struct anvil_table *t, const char *client, const char *account,
                           long long now, unsigned *by_client, unsigned *by_account)
{
    struct login_keys lk;
    struct entry *c, *a, *p;

    if (login_keys(&lk, client, account) < 0)
        return -1;
    if ((c = entry_get(t, KIND_CLIENT, &lk.client, NULL, NULL)) == NULL
        || (a = entry_get(t, KIND_ACCOUNT, &lk.account, c, NULL)) == NULL)
        return -1;
    window(t, c, now);
    bump(&c->count);
    window(t, a, now);
    bump(&a->count);
    *by_client = c->count;
    *by_account = a->count;
    /* The pair only serves login_ok: when the table cannot hold it, the failures
     * stay counted (the safe side).  Making it never drops c or a, used last. */
    p = entry_get(t, KIND_PAIR, &lk.pair, c, a);
    if (p != NULL) {
        window(t, p, now);
        bump(&p->count);
    }
    return 0;
}

static void take_off(const struct anvil_table *t, struct entry *e, unsigned n, long long now)
{
    unsigned have = window_count(t, e, now);

    if (e != NULL && have > 0)
        e->count = have > n ? have - n : 0;
}

int anvil_table_login_ok(struct anvil_table *t, const char *client, const char *account,
                         long long now)
{
    struct login_keys lk;
    struct entry *p;
    unsigned n;

    if (login_keys(&lk, client, account) < 0)
        return -1;
    p = lookup(t, KIND_PAIR, &lk.pair);
    if (p == NULL)
        return 0;
    n = window_count(t, p, now);
    take_off(t, lookup(t, KIND_CLIENT, &lk.client), n, now);
    take_off(t, lookup(t, KIND_ACCOUNT, &lk.account), n, now);
    entry_remove(t, p);
    return 0;
}
