/* Attribute frames between daemons: "LEN:name=value," netstrings ended by "0:,".
 * The reader trusts nothing: lengths are digits only without leading zeros, at most
 * 10 digits, the whole frame is bounded by max_frame and the count by ATTR_COUNT_MAX,
 * names are [a-z0-9_]+, and any deviation ends the frame with an error. */
#include "attr.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "str.h"
#include "stream.h"
#include "xmalloc.h"

#define ATTR_LEN_DIGITS 10

void attr_init(struct attr_list *al)
{
    al->v = NULL;
    al->n = 0;
    al->cap = 0;
}

void attr_clear(struct attr_list *al)
{
    for (size_t i = 0; i < al->n; i++)
        free(al->v[i].name);        /* name and value share one block */
    al->n = 0;
}

void attr_free(struct attr_list *al)
{
    attr_clear(al);
    free(al->v);
    attr_init(al);
}

bool attr_name_valid(const char *name, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* Appends an attribute, taking name and value from one freshly allocated block. */
static void attr_push(struct attr_list *al, const char *name, size_t nlen,
                      const void *value, size_t vlen)
{
    char *block;
    struct attr *a;

    if (nlen > SIZE_MAX - 2 || vlen > SIZE_MAX - 2 - nlen)
        log_panic("attr: size overflow");
    if (al->n == al->cap) {
        size_t cap = al->cap ? al->cap * 2 : 8;
        al->v = xreallocarray(al->v, cap, sizeof(*al->v));
        al->cap = cap;
    }
    block = xmalloc(nlen + vlen + 2);
    memcpy(block, name, nlen);
    block[nlen] = '\0';
    if (vlen > 0)
        memcpy(block + nlen + 1, value, vlen);
    block[nlen + 1 + vlen] = '\0';
    a = &al->v[al->n++];
    a->name = block;
    a->value = block + nlen + 1;
    a->len = vlen;
}

void attr_addn(struct attr_list *al, const char *name, const void *value, size_t len)
{
    size_t nlen = strlen(name);

    if (!attr_name_valid(name, nlen))
        log_panic("attr: invalid attribute name \"%s\"", name);
    attr_push(al, name, nlen, value, len);
}

void attr_add(struct attr_list *al, const char *name, const char *value)
{
    attr_addn(al, name, value, strlen(value));
}

void attr_addf(struct attr_list *al, const char *name, const char *fmt, ...)
{
    struct str sb = STR_INIT;
    va_list ap;

    va_start(ap, fmt);
    str_vprintf(&sb, fmt, ap);
    va_end(ap);
    attr_addn(al, name, sb.s, sb.len);
    str_free(&sb);
}

void attr_add_int(struct attr_list *al, const char *name, long long value)
{
    attr_addf(al, name, "%lld", value);
}

const char *attr_get(const struct attr_list *al, const char *name)
{
    for (size_t i = 0; i < al->n; i++)
        if (strcmp(al->v[i].name, name) == 0)
            return al->v[i].value;
    return NULL;
}

int attr_parse_int(const char *s, size_t len, long long *out)
{
    const char *p = s, *end = s + len;
    bool neg = false;
    unsigned long long v = 0, limit;

    if (p < end && *p == '-') {
        neg = true;
        p++;
    }
    if (p == end)
        return -1;
    limit = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    for (; p < end; p++) {
        unsigned d;
        if (*p < '0' || *p > '9')
            return -1;
        d = (unsigned)(*p - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    else
        *out = (long long)v;
    return 0;
}

int attr_get_int(const struct attr_list *al, const char *name, long long *out)
{
    for (size_t i = 0; i < al->n; i++)
        if (strcmp(al->v[i].name, name) == 0)
            return attr_parse_int(al->v[i].value, al->v[i].len, out);
    return -1;
}

void attr_wipe(struct attr_list *al)
{
    for (size_t i = 0; i < al->n; i++)
        explicit_bzero(al->v[i].value, al->v[i].len);
}

int attr_write(struct stream *st, const struct attr_list *al)
{
    for (size_t i = 0; i < al->n; i++) {
        const struct attr *a = &al->v[i];
        size_t nlen = strlen(a->name);

        if (stream_printf(st, "%zu:", nlen + 1 + a->len) < 0
            || stream_write(st, a->name, nlen) < 0
            || stream_write(st, "=", 1) < 0
            || stream_write(st, a->value, a->len) < 0
            || stream_write(st, ",", 1) < 0)
            return -1;
    }
    if (stream_write(st, "0:,", 3) < 0)
        return -1;
    return stream_flush(st);
}

void attr_encode(const struct attr_list *al, struct str *out)
{
    for (size_t i = 0; i < al->n; i++) {
        const struct attr *a = &al->v[i];
        size_t nlen = strlen(a->name);

        str_printf(out, "%zu:%s=", nlen + 1 + a->len, a->name);
        str_append(out, a->value, a->len);
        str_appendc(out, ',');
    }
    str_appends(out, "0:,");
}

/* Where a frame is read from: a stream, or bytes in memory. */
struct attr_src {
    struct stream *st;          /* NULL: the memory below */
    const char *p;
    size_t left;
};

/* One byte: 1, 0 at EOF, -1 on error. */
static int attr_byte(struct attr_src *src, char *c)
{
    ssize_t n;

    if (src->st == NULL) {
        if (src->left == 0)
            return 0;
        *c = *src->p++;
        src->left--;
        return 1;
    }
    n = stream_read(src->st, c, 1);
    return n < 0 ? -1 : (int)n;
}

/* Exactly len bytes: 0, or -1 (errno EPROTO at an early end). */
static int attr_bytes(struct attr_src *src, char *buf, size_t len)
{
    if (src->st == NULL) {
        if (src->left < len) {
            errno = EPROTO;
            return -1;
        }
        memcpy(buf, src->p, len);
        src->p += len;
        src->left -= len;
        return 0;
    }
    if (stream_read_full(src->st, buf, len) < 0) {
        if (errno == EPIPE)
            errno = EPROTO;
        return -1;
    }
    return 0;
}

static int attr_malformed(void)
{
    errno = EPROTO;
    return -1;
}

/* Reads "LEN:" and returns 1 with *len, 0 at a clean EOF when first is true,
 * or -1 (errno EPROTO when malformed). */
static int attr_read_len(struct attr_src *src, size_t *len, size_t *used, bool first)
{
    unsigned long long v = 0;
    int ndigits = 0;
    char c;

    for (;;) {
        int r = attr_byte(src, &c);
        if (r < 0)
            return -1;
        if (r == 0) {
            if (first && ndigits == 0)
                return 0;
            return attr_malformed();
        }
        (*used)++;
        if (c == ':')
            break;
        if (c < '0' || c > '9')
            return attr_malformed();
        if (ndigits == ATTR_LEN_DIGITS || (ndigits == 1 && v == 0))
            return attr_malformed();        /* too long, or a leading zero */
        v = v * 10 + (unsigned)(c - '0');
        ndigits++;
    }
    if (ndigits == 0)
        return attr_malformed();
    if (v > SIZE_MAX)
        return attr_malformed();
    *len = (size_t)v;
    return 1;
}

static int attr_parse(struct attr_src *src, struct attr_list *al, size_t max_frame)
{
    size_t used = 0;
    char *buf = NULL;
    size_t bufcap = 0;
    int rc = -1;

    if (max_frame == 0)
        max_frame = ATTR_FRAME_MAX;
    attr_clear(al);
    for (bool first = true;; first = false) {
        size_t len;
        char comma, *eq;
        int r = attr_read_len(src, &len, &used, first);

        if (r <= 0) {
            rc = r;
            break;
        }
        if (used > max_frame || len > max_frame - used || max_frame - used - len < 1) {
            errno = EMSGSIZE;
            break;
        }
        if (len > 0 && al->n == ATTR_COUNT_MAX) {
            errno = EMSGSIZE;
            break;
        }
        if (len + 1 > bufcap) {
            bufcap = len + 1;
            free(buf);
            buf = xmalloc(bufcap);
        }
        if (len > 0 && attr_bytes(src, buf, len) < 0)
            break;
        r = attr_byte(src, &comma);
        if (r < 0)
            break;
        if (r == 0 || comma != ',') {
            attr_malformed();
            break;
        }
        used += len + 1;
        if (len == 0) {
            rc = 1;
            break;
        }
        eq = memchr(buf, '=', len);
        if (eq == NULL || !attr_name_valid(buf, (size_t)(eq - buf))) {
            attr_malformed();
            break;
        }
        attr_push(al, buf, (size_t)(eq - buf), eq + 1, len - (size_t)(eq - buf) - 1);
    }
    free(buf);
    if (rc != 1)
        attr_clear(al);
    return rc;
}

int attr_read(struct stream *st, struct attr_list *al, size_t max_frame)
{
    struct attr_src src = { st, NULL, 0 };

    return attr_parse(&src, al, max_frame);
}

int attr_decode(const void *buf, size_t len, struct attr_list *al, size_t max_frame)
{
    struct attr_src src = { NULL, buf, len };
    int rc = attr_parse(&src, al, max_frame);

    if (rc == 1 && src.left == 0)
        return 0;
    attr_clear(al);
    if (rc >= 0)
        errno = EPROTO;         /* empty, or bytes after the frame */
    return -1;
}
