/* The UID list file, postern-uidlist (format in postern-maildir(5)), its lock, and
 * the parts of a Maildir file name.  The file may have been damaged or written by
 * someone else: it is parsed strictly, and any fault makes the caller rebuild it. */
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "file_read.h"
#include "str.h"
#include "xmalloc.h"

#define UIDLIST_MAGIC "postern-uidlist 1\n"

/* The Maildir flag letters, sorted, and their bits. */
static const struct {
    char letter;
    uint8_t bit;
} letters[] = {
    { 'D', STORE_F_DRAFT }, { 'F', STORE_F_FLAGGED }, { 'P', STORE_F_PASSED },
    { 'R', STORE_F_ANSWERED }, { 'S', STORE_F_SEEN }, { 'T', STORE_F_DELETED },
};

#define NAMES_BLOCK 65536                  /* bytes of base names a block holds */
#define UIDLIST_PRESIZE_MAX (1u << 21)     /* most records made room for at once */

void uidlist_free(struct uidlist *ul)
{
    for (size_t i = 0; i < ul->n; i++)
        free(ul->v[i].file);
    free(ul->v);
    free(ul->exp);
    while (ul->names != NULL) {
        struct uidlist_names *next = ul->names->next;

        free(ul->names);
        ul->names = next;
    }
    memset(ul, 0, sizeof(*ul));
}

/* A copy of s (len bytes, then a NUL) among the list's names. */
static char *names_add(struct uidlist *ul, const char *s, size_t len)
{
    struct uidlist_names *nb = ul->names;
    char *p;

    if (nb == NULL || nb->cap - nb->len < len + 1) {
        size_t cap = len + 1 > NAMES_BLOCK ? len + 1 : NAMES_BLOCK;

        nb = xmalloc(sizeof(*nb) + cap);
        nb->next = ul->names;
        nb->len = 0;
        nb->cap = cap;
        ul->names = nb;
    }
    p = nb->s + nb->len;
    memcpy(p, s, len);
    p[len] = '\0';
    nb->len += len + 1;
    return p;
}

/* A block for len bytes of names at once. */
static void names_reserve(struct uidlist *ul, size_t len)
{
    struct uidlist_names *nb = xmalloc_large(1, sizeof(*nb) + len + 1);

    nb->next = ul->names;
    nb->len = 0;
    nb->cap = len + 1;
    ul->names = nb;
}

struct uidlist_rec *uidlist_add(struct uidlist *ul, uint32_t uid, const char *base, size_t blen,
                                uint8_t flags, uint32_t keywords, uint64_t modseq)
{
    struct uidlist_rec *r;

    if (ul->n == ul->cap) {
        ul->cap = ul->cap ? ul->cap * 2 : 64;
        ul->v = xreallocarray(ul->v, ul->cap, sizeof(*ul->v));
    }
    r = &ul->v[ul->n++];
    r->uid = uid;
    r->flags = flags;
    r->keywords = keywords;
    r->modseq = modseq;
    r->base = names_add(ul, base, blen);
    r->blen = (uint16_t)blen;           /* at most 255: store_base_ok */
    r->file = NULL;
    return r;
}

void uidlist_expunged(struct uidlist *ul, uint32_t uid, uint64_t modseq, bool join)
{
    struct uidlist_exp *last = ul->nexp > 0 ? &ul->exp[ul->nexp - 1] : NULL;

    if (join && last != NULL && last->hi < uid && last->modseq + 1 == modseq) {
        last->hi = uid;
        last->modseq = modseq;
        return;
    }
    if (ul->nexp >= STORE_EXPUNGED_KEEP) {
        size_t drop = ul->nexp - STORE_EXPUNGED_KEEP + 1;

        for (size_t i = 0; i < drop; i++)
            if (ul->exp[i].modseq > ul->exp_floor)
                ul->exp_floor = ul->exp[i].modseq;
        memmove(ul->exp, ul->exp + drop, (ul->nexp - drop) * sizeof(*ul->exp));
        ul->nexp -= drop;
    }
    if (ul->nexp == ul->capexp) {
        ul->capexp = ul->capexp ? ul->capexp * 2 : 64;
        ul->exp = xreallocarray(ul->exp, ul->capexp, sizeof(*ul->exp));
    }
    ul->exp[ul->nexp].lo = uid;
    ul->exp[ul->nexp].hi = uid;
    ul->exp[ul->nexp].modseq = modseq;
    ul->nexp++;
}

/* bit c: byte c may not be in a base name (controls, space, '/', ':', DEL) */
static const uint32_t refused[8] = { 0xffffffffu, 0x04008001u, 0, 0x80000000u };

static bool is_refused(unsigned char c)
{
    return (refused[c >> 5] >> (c & 31)) & 1;
}

bool store_base_ok(const char *s, size_t len)
{
    if (len == 0 || len > 255 || s[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++)
        if (is_refused((unsigned char)s[i]))
            return false;
    return true;
}

/* The base name that starts at p and ends at a line's end before end: its end
 * (the '\n'), or NULL when a byte on the way may not be in one (or no line end
 * comes).  One pass for both the search and the check. */
static const char *base_line_end(const char *p, const char *end)
{
    const char *q = p;

    while (q < end && !is_refused((unsigned char)*q))
        q++;
    if (q == end || *q != '\n' || q == p || q - p > 255 || *p == '.')
        return NULL;
    return q;
}

/* The flag and keyword letters of s (len bytes) as bits; others are ignored. */
static void letters_read(const char *s, size_t len, uint8_t *flags, uint32_t *keywords)
{
    uint8_t f = 0;
    uint32_t kw = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i];

        if (c >= 'a' && c <= 'z')
            kw |= 1u << (c - 'a');
        for (size_t k = 0; k < sizeof(letters) / sizeof(letters[0]); k++)
            if (c == letters[k].letter)
                f |= letters[k].bit;
    }
    *flags = f;
    *keywords = kw;
}

size_t store_name_base(const char *name, uint8_t *flags, uint32_t *keywords)
{
    const char *colon = strchr(name, ':');

    *flags = 0;
    *keywords = 0;
    if (colon != NULL && colon[1] == '2' && colon[2] == ',')
        letters_read(colon + 3, strlen(colon + 3), flags, keywords);
    return colon != NULL ? (size_t)(colon - name) : strlen(name);
}

/* ":2," and the letters of flags and keywords, sorted, at p (room for
 * INFO_MAX bytes); their number. */
#define INFO_MAX (3 + 6 + STORE_KEYWORDS_MAX)

static size_t info_put(char *p, uint8_t flags, uint32_t keywords)
{
    size_t n = 0;

    p[n++] = ':';
    p[n++] = '2';
    p[n++] = ',';
    for (size_t k = 0; flags != 0 && k < sizeof(letters) / sizeof(letters[0]); k++)
        if (flags & letters[k].bit)
            p[n++] = letters[k].letter;
    keywords &= (1u << STORE_KEYWORDS_MAX) - 1;
    for (; keywords != 0; keywords &= keywords - 1)     /* lowest set bit first */
        p[n++] = (char)('a' + __builtin_ctz(keywords));
    return n;
}

void store_name_make(struct str *out, const char *base, size_t blen, uint8_t flags,
                     uint32_t keywords)
{
    char info[INFO_MAX];

    str_clear(out);
    str_append(out, base, blen);
    str_append(out, info, info_put(info, flags, keywords));
}

size_t store_rec_file_len(const struct uidlist_rec *rec)
{
    char info[INFO_MAX];

    if (rec->file != NULL)
        return strlen(rec->file);
    return rec->blen + info_put(info, rec->flags, rec->keywords);
}

size_t store_rec_file_put(const struct uidlist_rec *rec, char *p)
{
    size_t n;

    if (rec->file != NULL) {
        n = strlen(rec->file);
        memcpy(p, rec->file, n + 1);
        return n;
    }
    memcpy(p, rec->base, rec->blen);
    n = rec->blen + info_put(p + rec->blen, rec->flags, rec->keywords);
    p[n] = '\0';
    return n;
}

void store_rec_file(const struct uidlist_rec *rec, struct str *out)
{
    if (rec->file != NULL)
        str_sets(out, rec->file);
    else
        store_name_make(out, rec->base, rec->blen, rec->flags, rec->keywords);
}

void store_unique_name(struct str *out)
{
    static unsigned counter;
    struct timeval tv;
    char host[256];

    gettimeofday(&tv, NULL);
    if (gethostname(host, sizeof(host) - 1) < 0)
        strcpy(host, "localhost");
    host[sizeof(host) - 1] = '\0';
    str_clear(out);
    str_printf(out, "%lld.M%ldP%ldQ%u.", (long long)tv.tv_sec, (long)tv.tv_usec,
               (long)getpid(), ++counter);
    /* The Maildir specification's escapes for '/' and ':' in the host name. */
    for (const char *h = host; *h != '\0'; h++) {
        if (*h == '/')
            str_appends(out, "\\057");
        else if (*h == ':')
            str_appends(out, "\\072");
        else if ((unsigned char)*h > 0x20 && (unsigned char)*h < 0x7f)
            str_appendc(out, *h);
    }
}

/* Parsing. */

static bool get_u64(const char **p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = *p;

    if (s >= end || *s < '0' || *s > '9')
        return false;
    while (s < end && *s >= '0' && *s <= '9') {
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
        s++;
    }
    *p = s;
    *out = v;
    return true;
}

static bool get_u32(const char **p, const char *end, uint32_t *out)
{
    uint64_t v;

    if (!get_u64(p, end, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool expect_c(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c)
        return false;
    (*p)++;
    return true;
}

static bool expect(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return false;
    *p += n;
    return true;
}

static int bad(struct str *err, size_t line, const char *what)
{
    str_clear(err);
    str_printf(err, "%s line %zu: %s", UIDLIST_FILE, line, what);
    errno = EINVAL;
    return -1;
}

int uidlist_parse(const char *text, size_t len, struct uidlist *ul, struct str *err)
{
    const char *p = text, *end = text + len;
    size_t line = 2;

    memset(ul, 0, sizeof(*ul));
    if (!expect(&p, end, UIDLIST_MAGIC))
        return bad(err, 1, "not a postern-uidlist version 1");
    if (!expect(&p, end, "V ") || !get_u32(&p, end, &ul->uidvalidity) ||
        !expect(&p, end, " N ") || !get_u32(&p, end, &ul->nextuid) ||
        !expect(&p, end, " M ") || !get_u64(&p, end, &ul->highestmodseq) ||
        !expect(&p, end, " E ") || !get_u64(&p, end, &ul->exp_floor) ||
        !expect(&p, end, "\n") || ul->uidvalidity == 0 || ul->nextuid == 0 ||
        ul->exp_floor > ul->highestmodseq)
        return bad(err, line, "bad header");
    while (p < end) {
        line++;
        if (*p == 'X') {
            uint32_t lo, hi;
            uint64_t ms;

            p++;
            if (!expect(&p, end, " ") || !get_u32(&p, end, &lo))
                goto corrupt;
            hi = lo;
            if (expect(&p, end, ":") && !get_u32(&p, end, &hi))
                goto corrupt;
            if (!expect(&p, end, " ") || !get_u64(&p, end, &ms) || !expect(&p, end, "\n") ||
                lo == 0 || hi < lo || hi >= ul->nextuid || ms > ul->highestmodseq ||
                ms <= ul->exp_floor || (ul->nexp > 0 && ms < ul->exp[ul->nexp - 1].modseq))
                goto corrupt;
            if (ul->nexp >= STORE_EXPUNGED_KEEP)
                goto corrupt;
            uidlist_expunged(ul, lo, ms, false);
            ul->exp[ul->nexp - 1].hi = hi;
        } else {
            uint32_t uid;
            uint64_t ms;
            const char *fs, *bs, *nl;
            uint8_t f;
            uint32_t kw;

            if (!get_u32(&p, end, &uid) || !expect_c(&p, end, ' ') || !get_u64(&p, end, &ms) ||
                !expect_c(&p, end, ' '))
                goto corrupt;
            fs = p;
            while (p < end && *p != ' ' && *p != '\n')
                p++;
            if (!expect_c(&p, end, ' '))
                goto corrupt;
            bs = p;
            nl = base_line_end(bs, end);
            if (nl == NULL || uid == 0 ||
                uid >= ul->nextuid || ms == 0 || ms > ul->highestmodseq ||
                (ul->n > 0 && uid <= ul->v[ul->n - 1].uid))
                goto corrupt;
            if (!(bs - fs == 2 && fs[0] == '-'))
                letters_read(fs, (size_t)(bs - fs - 1), &f, &kw);
            else
                f = 0, kw = 0;
            if (ul->n == 0 && ul->cap == 0) {
                /* Room for the records at once (the text holds no more lines than
                 * that), unless the text is so large that growing is wiser. */
                size_t lines = 0;
                const char *q = p;

                while (q < end && (q = memchr(q, '\n', (size_t)(end - q))) != NULL) {
                    lines++;
                    q++;
                }
                ul->cap = lines < UIDLIST_PRESIZE_MAX ? lines + 1 : 64;
                ul->v = xmalloc_large(ul->cap, sizeof(*ul->v));
                names_reserve(ul, (size_t)(end - p));
            }
            uidlist_add(ul, uid, bs, (size_t)(nl - bs), f, kw, ms);
            p = nl + 1;
        }
    }
    return 0;
corrupt:
    uidlist_free(ul);
    return bad(err, line, "malformed or out of order");
}

/* Appends v in decimal. */
static void put_dec(struct str *out, uint64_t v)
{
    char buf[20];
    size_t n = sizeof(buf);

    do {
        buf[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    str_append(out, buf + n, sizeof(buf) - n);
}

void uidlist_format(const struct uidlist *ul, struct str *out)
{
    char info[INFO_MAX];
    size_t total = 128 + ul->nexp * 48;

    for (size_t i = 0; i < ul->n; i++)
        total += 44 + INFO_MAX + ul->v[i].blen;
    str_clear(out);
    str_reserve(out, total);
    str_appends(out, UIDLIST_MAGIC);
    str_printf(out, "V %" PRIu32 " N %" PRIu32 " M %" PRIu64 " E %" PRIu64 "\n",
               ul->uidvalidity, ul->nextuid, ul->highestmodseq, ul->exp_floor);
    for (size_t i = 0; i < ul->nexp; i++) {
        const struct uidlist_exp *x = &ul->exp[i];

        if (x->hi > x->lo)
            str_printf(out, "X %" PRIu32 ":%" PRIu32 " %" PRIu64 "\n", x->lo, x->hi, x->modseq);
        else
            str_printf(out, "X %" PRIu32 " %" PRIu64 "\n", x->lo, x->modseq);
    }
    /* "UID MODSEQ FLAGS BASE", FLAGS "-" when none: one record a line. */
    for (size_t i = 0; i < ul->n; i++) {
        const struct uidlist_rec *r = &ul->v[i];
        size_t n = info_put(info, r->flags, r->keywords);

        put_dec(out, r->uid);
        str_appendc(out, ' ');
        put_dec(out, r->modseq);
        str_appendc(out, ' ');
        if (n > 3)
            str_append(out, info + 3, n - 3);
        else
            str_appendc(out, '-');
        str_appendc(out, ' ');
        str_append(out, r->base, r->blen);
        str_appendc(out, '\n');
    }
}

int uidlist_read(int dirfd, struct uidlist *ul, struct str *err)
{
    int fd = openat(dirfd, UIDLIST_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct str buf = STR_INIT;
    int rc;

    memset(ul, 0, sizeof(*ul));
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        if (errno == ELOOP) {       /* a link planted there: rebuilt in its place */
            str_sets(err, UIDLIST_FILE " is a symbolic link");
            return -1;
        }
        str_clear(err);
        str_printf(err, "open %s: %s", UIDLIST_FILE, strerror(errno));
        return -2;
    }
    rc = file_read_fd(fd, UIDLIST_FILE, UIDLIST_MAX, &buf, err);
    if (rc < 0 && errno != EFBIG && errno != EISDIR) {
        close(fd);
        str_free(&buf);
        return -2;
    }
    close(fd);
    if (rc == 0)
        rc = uidlist_parse(buf.s != NULL ? buf.s : "", buf.len, ul, err) < 0 ? -1 : 1;
    str_free(&buf);
    return rc;
}

int uidlist_write(int dirfd, const char *dir, const struct uidlist *ul, struct str *err)
{
    struct str text = STR_INIT, why = STR_INIT;
    int rc;

    uidlist_format(ul, &text);
    rc = atomic_file_write_at(dirfd, UIDLIST_FILE, text.s, text.len, 0600, &why);
    if (rc < 0) {
        str_clear(err);
        str_printf(err, "%s/%s", dir, why.s);
    }
    str_free(&text);
    str_free(&why);
    return rc;
}

/* The lock. */

int store_lock(int dirfd, struct str *err)
{
    int fd = openat(dirfd, UIDLIST_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    struct flock fl;
    struct timespec pause = { 0, 2000000 };

    if (fd < 0) {
        str_clear(err);
        str_printf(err, "open %s: %s", UIDLIST_LOCK, strerror(errno));
        return -1;
    }
    for (unsigned waited = 0;; waited += 2) {
        memset(&fl, 0, sizeof(fl));
        fl.l_type = F_WRLCK;
        fl.l_whence = SEEK_SET;
        if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
            return fd;
        if ((errno != EAGAIN && errno != EACCES) || waited >= STORE_LOCK_WAIT_MS) {
            int e = errno == EAGAIN || errno == EACCES ? ETIMEDOUT : errno;

            close(fd);
            str_clear(err);
            str_printf(err, "lock %s: %s", UIDLIST_LOCK, strerror(e));
            errno = e;
            return -1;
        }
        nanosleep(&pause, NULL);
    }
}

void store_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}
