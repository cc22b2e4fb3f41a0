/* Unit tests for lib/util/str.c and lib/util/xmalloc.c. */
#include <stdlib.h>
#include <string.h>

#include "str.h"
#include "unit.h"
#include "xmalloc.h"

TEST(init_empty)
{
    struct str s;
    str_init(&s);
    CHECK(s.len == 0);
    CHECK_STR(s.s, "");
    str_free(&s);
    CHECK(s.s == NULL);
}

TEST(append_from_static_init)
{
    struct str s = STR_INIT;
    str_appends(&s, "abc");
    str_appendc(&s, 'd');
    str_append(&s, "efgh", 2);
    CHECK_STR(s.s, "abcdef");
    CHECK(s.len == 6);
    str_free(&s);
}

TEST(embedded_nul)
{
    struct str s = STR_INIT;
    str_append(&s, "a\0b", 3);
    CHECK(s.len == 3);
    CHECK(memcmp(s.s, "a\0b", 4) == 0);
    str_appendc(&s, '\0');
    CHECK(s.len == 4);
    CHECK(s.s[4] == '\0');
    str_free(&s);
}

TEST(growth)
{
    struct str s = STR_INIT;
    for (int i = 0; i < 100000; i++)
        str_appendc(&s, (char)('a' + i % 26));
    CHECK(s.len == 100000);
    CHECK(s.cap > s.len);
    CHECK(s.s[100000] == '\0');
    CHECK(s.s[26] == 'a' && s.s[99999] == (char)('a' + 99999 % 26));
    str_reserve(&s, 1000000);
    CHECK(s.cap >= s.len + 1000001);
    str_free(&s);
}

TEST(set_clear_truncate)
{
    struct str s = STR_INIT;
    str_sets(&s, "hello world");
    str_truncate(&s, 5);
    CHECK_STR(s.s, "hello");
    str_set(&s, "xyz", 2);
    CHECK_STR(s.s, "xy");
    str_sets(&s, "abcdef");
    str_set(&s, s.s + 2, 3);        /* overlapping source */
    CHECK_STR(s.s, "cde");
    str_clear(&s);
    CHECK(s.len == 0);
    CHECK_STR(s.s, "");
    str_clear(&s);
    str_free(&s);
}

TEST(printf_appends)
{
    struct str s = STR_INIT;
    str_sets(&s, "n=");
    str_printf(&s, "%d %s", 42, "x");
    CHECK_STR(s.s, "n=42 x");
    str_clear(&s);
    char big[3000];
    memset(big, 'q', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    str_printf(&s, "<%s>", big);
    CHECK(s.len == sizeof(big) + 1);
    CHECK(s.s[0] == '<' && s.s[s.len - 1] == '>');
    str_free(&s);
}

TEST(lower_detach)
{
    struct str s = STR_INIT;
    str_sets(&s, "MiXeD\xC3\x89 123");
    str_lower(&s);
    CHECK_STR(s.s, "mixed\xC3\x89 123");
    char *p = str_detach(&s);
    CHECK_STR(p, "mixed\xC3\x89 123");
    CHECK(s.s == NULL && s.len == 0);
    free(p);
    p = str_detach(&s);
    CHECK_STR(p, "");
    free(p);
}

TEST(xmalloc_helpers)
{
    char *p = xstrndup("abcdef", 3);
    CHECK_STR(p, "abc");
    free(p);
    p = xstrdup("");
    CHECK_STR(p, "");
    free(p);
    char **v = xcalloc(3, sizeof(char *));
    v[0] = xstrdup("a");
    v[1] = xstrdup("b");
    CHECK(strv_len(v) == 2);
    CHECK(strv_len(NULL) == 0);
    strv_free(v);
    strv_free(NULL);
    int *a = xreallocarray(NULL, 10, sizeof(int));
    a[9] = 1;
    free(a);
}
