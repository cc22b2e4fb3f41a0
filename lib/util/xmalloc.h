/* Allocation that cannot fail: out of memory is fatal (logged, exit 1). */
#ifndef POSTERN_XMALLOC_H
#define POSTERN_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t n, size_t size);   /* overflow-checked */
/* Room for n elements of size in one large block, freed with free(): from
 * XMALLOC_LARGE_MIN bytes on it asks for transparent huge pages, so that touching
 * it costs a page fault for each 2 MiB rather than each 4 KiB. */
#define XMALLOC_LARGE_MIN (2u << 20)
void *xmalloc_large(size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* NULL-terminated string vectors, as conf_list() and map lists return them. */
void strv_free(char **v);
size_t strv_len(char *const *v);

#endif
