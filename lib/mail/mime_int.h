/* Internals shared by the mime_*.c files (not for other modules): the arena that owns
 * every string and part of a tree, and the parsers of structured Content-* fields. */
#ifndef POSTERN_MIME_INT_H
#define POSTERN_MIME_INT_H

#include <stddef.h>

#include "mime.h"

struct mime_arena;
struct mime_arena *mime_arena_new(void);
void mime_arena_free(struct mime_arena *a);
void *mime_arena_alloc(struct mime_arena *a, size_t n);     /* zeroed */
char *mime_arena_strndup(struct mime_arena *a, const char *s, size_t n);
char *mime_arena_lower(struct mime_arena *a, const char *s, size_t n);

/* "type/subtype; params" (value unfolded): 0 with *type and *subtype (lower case)
 * and the parameters, -1 when the type is not valid (then nothing is set). */
int mime_parse_content_type(struct mime_arena *a, const char *v, size_t len,
                            const char **type, const char **subtype,
                            struct mime_param **params, size_t *nparams,
                            unsigned *msg_flags);
/* "value; params" of Content-Disposition: 0 with *value (lower case), -1 if none. */
int mime_parse_disposition(struct mime_arena *a, const char *v, size_t len,
                           const char **value, struct mime_param **params,
                           size_t *nparams, unsigned *msg_flags);

/* ASCII case-insensitive equality of s[0..n) with the NUL-terminated lit. */
int mime_eq_nocase(const char *s, size_t n, const char *lit);

#endif
