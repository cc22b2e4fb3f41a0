/* Growable byte strings (see str.h).  Trusts only its own invariants: s is NULL or a
 * buffer of cap bytes holding len bytes and a NUL; every size is overflow-checked. */
#include "str.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xmalloc.h"

void str_init(struct str *sb)
{
    sb->cap = 16;
    sb->s = xmalloc(sb->cap);
    sb->s[0] = '\0';
    sb->len = 0;
}

void str_free(struct str *sb)
{
    free(sb->s);
    sb->s = NULL;
    sb->len = 0;
    sb->cap = 0;
}

void str_clear(struct str *sb)
{
    if (sb->s == NULL)
        str_init(sb);
    sb->len = 0;
    sb->s[0] = '\0';
}

void str_reserve(struct str *sb, size_t extra)
{
    size_t need, cap;

    if (sb->len > SIZE_MAX - 1 - extra)
        log_panic("str_reserve: size overflow");
    need = sb->len + extra + 1;
    if (sb->s != NULL && need <= sb->cap)
        return;
    cap = sb->cap ? sb->cap : 16;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    /* a first large block gets huge pages (xmalloc_large); later growth keeps it */
    sb->s = sb->s == NULL && cap >= XMALLOC_LARGE_MIN ? xmalloc_large(cap, 1)
                                                       : xrealloc(sb->s, cap);
    if (sb->cap == 0)
        sb->s[0] = '\0';
    sb->cap = cap;
}

void str_append(struct str *sb, const void *p, size_t n)
{
    str_reserve(sb, n);
    if (n > 0)
        memmove(sb->s + sb->len, p, n);
    sb->len += n;
    sb->s[sb->len] = '\0';
}

void str_appends(struct str *sb, const char *s)
{
    str_append(sb, s, strlen(s));
}

void str_appendc(struct str *sb, char c)
{
    str_reserve(sb, 1);
    sb->s[sb->len++] = c;
    sb->s[sb->len] = '\0';
}

void str_set(struct str *sb, const void *p, size_t n)
{
    /* p may point into sb itself: memmove in str_append copes with that. */
    if (sb->s != NULL && (const char *)p >= sb->s && (const char *)p < sb->s + sb->cap) {
        memmove(sb->s, p, n);
        sb->len = n;
        sb->s[n] = '\0';
        return;
    }
    str_clear(sb);
    str_append(sb, p, n);
}

void str_sets(struct str *sb, const char *s)
{
    str_set(sb, s, strlen(s));
}

void str_vprintf(struct str *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;
    size_t room;

    str_reserve(sb, 64);
    room = sb->cap - sb->len;
    va_copy(ap2, ap);
    n = vsnprintf(sb->s + sb->len, room, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        sb->s[sb->len] = '\0';
        log_panic("str_vprintf: bad format");
    }
    if ((size_t)n >= room) {
        str_reserve(sb, (size_t)n);
        va_copy(ap2, ap);
        n = vsnprintf(sb->s + sb->len, sb->cap - sb->len, fmt, ap2);
        va_end(ap2);
        if (n < 0)
            log_panic("str_vprintf: bad format");
    }
    sb->len += (size_t)n;
}

void str_printf(struct str *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    str_vprintf(sb, fmt, ap);
    va_end(ap);
}

void str_truncate(struct str *sb, size_t len)
{
    if (sb->s == NULL)
        str_init(sb);
    if (len > sb->len)
        log_panic("str_truncate: %zu beyond length %zu", len, sb->len);
    sb->len = len;
    sb->s[len] = '\0';
}

void str_lower(struct str *sb)
{
    for (size_t i = 0; i < sb->len; i++)
        if (sb->s[i] >= 'A' && sb->s[i] <= 'Z')
            sb->s[i] = (char)(sb->s[i] - 'A' + 'a');
}

char *str_detach(struct str *sb)
{
    char *p;
    if (sb->s == NULL)
        str_init(sb);
    p = sb->s;
    sb->s = NULL;
    sb->len = 0;
    sb->cap = 0;
    return p;
}
