/* Growable byte strings.  s is always NUL-terminated (after str_init it is "")
 * and may also hold NUL bytes inside; len counts the bytes before the final NUL. */
#ifndef POSTERN_STR_H
#define POSTERN_STR_H

#include <stdarg.h>
#include <stddef.h>

struct str {
    char *s;
    size_t len;
    size_t cap;
};

#define STR_INIT { NULL, 0, 0 }

void str_init(struct str *sb);
void str_free(struct str *sb);
void str_clear(struct str *sb);                 /* len = 0, keeps memory */
void str_reserve(struct str *sb, size_t extra); /* room for extra more bytes + NUL */
void str_append(struct str *sb, const void *p, size_t n);
void str_appends(struct str *sb, const char *s);
void str_appendc(struct str *sb, char c);
void str_set(struct str *sb, const void *p, size_t n);
void str_sets(struct str *sb, const char *s);
void str_printf(struct str *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));      /* appends */
void str_vprintf(struct str *sb, const char *fmt, va_list ap);
void str_truncate(struct str *sb, size_t len);  /* len <= sb->len */
void str_lower(struct str *sb);                 /* ASCII only */
char *str_detach(struct str *sb);               /* caller frees; sb is reset */

#endif
