/* Allocation that cannot fail: out of memory is fatal (logged, exit 1). */
#ifndef POSTERN_XMALLOC_H
#define POSTERN_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t n, size_t size);   /* overflow-checked */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* NULL-terminated string vectors, as conf_list() and map lists return them. */
void strv_free(char **v);
size_t strv_len(char *const *v);

#endif
