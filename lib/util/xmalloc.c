/* Allocation that cannot fail: on out of memory we log and exit(1).  Sizes come from
 * callers; products are overflow-checked here. */
#include "xmalloc.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "log.h"

#define HUGE_PAGE (2u << 20)

static _Noreturn void xmalloc_fail(size_t n)
{
    log_fatal("out of memory (%zu bytes)", n);
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        xmalloc_fail(n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p;
    if (n == 0 || size == 0)
        n = size = 1;
    p = calloc(n, size);
    if (p == NULL)
        xmalloc_fail(n);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        xmalloc_fail(n);
    return q;
}

void *xreallocarray(void *p, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        log_panic("allocation size overflow (%zu x %zu)", n, size);
    return xrealloc(p, n * size);
}

void *xmalloc_large(size_t n, size_t size)
{
    size_t len, round;
    void *p;

    if (size != 0 && n > SIZE_MAX / size)
        log_panic("allocation size overflow (%zu x %zu)", n, size);
    len = n * size;
    if (len < XMALLOC_LARGE_MIN || len > SIZE_MAX - HUGE_PAGE)
        return xmalloc(len);
    round = (len + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
    if ((p = aligned_alloc(HUGE_PAGE, round)) == NULL)
        xmalloc_fail(round);
#ifdef MADV_HUGEPAGE
    (void)madvise(p, round, MADV_HUGEPAGE);     /* a hint: refused, it is ordinary memory */
#endif
    return p;
}

char *xstrdup(const char *s)
{
    size_t n = strlen(s);
    char *p = xmalloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

char *xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void strv_free(char **v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

size_t strv_len(char *const *v)
{
    size_t n = 0;
    if (v != NULL)
        while (v[n] != NULL)
            n++;
    return n;
}
