/* The junk_headers tests (local(8)'s Junk folder): "Name: value" items, commas
 * between, parsed once; a message whose header has a field of that name with that
 * value (ASCII case ignored, white space trimmed) is spam.  Also the check of a
 * junk_folder name, for local and for "postern check". */
#include "junk.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "headers.h"
#include "str.h"
#include "xmalloc.h"

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static bool header_name_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == ':')
            return false;
    }
    return true;
}

static void strip(const char **s, size_t *n)
{
    while (*n > 0 && is_space(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_space((*s)[*n - 1]))
        (*n)--;
}

int junk_parse(const char *spec, struct junk_tests *jt, struct str *err)
{
    const char *p = spec;

    memset(jt, 0, sizeof(*jt));
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *item = p, *colon;
        size_t ilen = n;

        p += n;
        if (*p == ',')
            p++;
        strip(&item, &ilen);
        if (ilen == 0)
            continue;
        colon = memchr(item, ':', ilen);
        if (colon == NULL) {
            str_printf(err, "junk_headers: \"%.*s\" is not \"Name: value\"", (int)ilen, item);
            junk_free(jt);
            return -1;
        }
        {
            const char *name = item, *value = colon + 1;
            size_t nlen = (size_t)(colon - item), vlen = ilen - nlen - 1;

            strip(&name, &nlen);
            strip(&value, &vlen);
            if (!header_name_ok(name, nlen) || vlen == 0) {
                str_printf(err, "junk_headers: \"%.*s\" is not \"Name: value\"", (int)ilen,
                           item);
                junk_free(jt);
                return -1;
            }
            jt->name = xreallocarray(jt->name, jt->n + 1, sizeof(char *));
            jt->value = xreallocarray(jt->value, jt->n + 1, sizeof(char *));
            jt->name[jt->n] = xstrndup(name, nlen);
            jt->value[jt->n] = xstrndup(value, vlen);
            jt->n++;
        }
    }
    return 0;
}

void junk_free(struct junk_tests *jt)
{
    for (size_t i = 0; i < jt->n; i++) {
        free(jt->name[i]);
        free(jt->value[i]);
    }
    free(jt->name);
    free(jt->value);
    memset(jt, 0, sizeof(*jt));
}

bool junk_folder_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > 200 || name[0] == '.' || name[n - 1] == '.' || strstr(name, "..") != NULL)
        return false;
    for (const char *s = name; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '/')
            return false;
    }
    return true;
}

bool junk_match(const struct junk_tests *jt, const char *head, size_t len)
{
    struct header_reader hr;
    struct header_field f;
    bool hit = false;

    if (jt->n == 0)
        return false;
    header_reader_init(&hr, head, len);
    while (!hit && header_next(&hr, &f) == 1) {
        for (size_t i = 0; i < jt->n && !hit; i++)
            hit = header_name_is(&f, jt->name[i]) && f.value_len == strlen(jt->value[i])
                  && strncasecmp(f.value, jt->value[i], f.value_len) == 0;
    }
    header_reader_free(&hr);
    return hit;
}

