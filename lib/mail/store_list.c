/* LIST and LSUB on a Maildir++ tree, IMAP wildcards, and the subscriptions file in
 * Dovecot's format (see store_folder.h).  Directory entries and subscription lines
 * are untrusted: each name passes store_name_check or is skipped. */
#include "store_folder.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "file_read.h"
#include "str.h"
#include "xmalloc.h"

#define PATTERN_MAX 1024            /* longest pattern matched at all */
#define LIST_MAX_DEFAULT 100000
#define SUBS_FILE_MAX (4u << 20)

static bool inbox_prefix(const char *s)
{
    return strncasecmp(s, "INBOX", 5) == 0 && (s[5] == '\0' || s[5] == STORE_SEP);
}

bool store_wildmatch(const char *pattern, const char *name)
{
    size_t pl = strlen(pattern), nl = strlen(name);
    bool fold = inbox_prefix(name) && strncasecmp(pattern, "INBOX", 5) == 0;
    bool *prev, *cur;
    bool ok;

    if (pl > PATTERN_MAX || nl > PATTERN_MAX)
        return false;
    /* prev[j]: pattern[0..i) matches name[0..j).  O(pl * nl) steps, no recursion. */
    prev = xcalloc(nl + 1, sizeof(bool));
    cur = xcalloc(nl + 1, sizeof(bool));
    prev[0] = true;
    for (size_t i = 0; i < pl; i++) {
        char p = pattern[i];

        cur[0] = prev[0] && p == '*';
        if (p == '%')
            cur[0] = prev[0];
        for (size_t j = 1; j <= nl; j++) {
            char c = name[j - 1];

            if (p == '*')
                cur[j] = prev[j] || cur[j - 1];
            else if (p == '%')
                cur[j] = prev[j] || (cur[j - 1] && c != STORE_SEP);
            else if (fold && i < 5 && j - 1 == i)
                cur[j] = prev[j - 1] && (p | 0x20) == (c | 0x20);
            else
                cur[j] = prev[j - 1] && p == c;
        }
        bool *t = prev;
        prev = cur;
        cur = t;
    }
    ok = prev[nl];
    free(prev);
    free(cur);
    return ok;
}

/* A sorted set of names. */
struct names {
    char **v;
    size_t n, cap;
};

static void names_add(struct names *s, const char *name)
{
    if (s->n + 1 >= s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
    }
    s->v[s->n++] = xstrdup(name);
    s->v[s->n] = NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_sort(struct names *s)
{
    size_t k = 0;

    if (s->n == 0)
        return;
    qsort(s->v, s->n, sizeof(*s->v), cmp_str);
    for (size_t i = 0; i < s->n; i++) {
        if (k > 0 && strcmp(s->v[k - 1], s->v[i]) == 0)
            free(s->v[i]);
        else
            s->v[k++] = s->v[i];
    }
    s->n = k;
    s->v[k] = NULL;
}

static bool names_has(const struct names *s, const char *name)
{
    return s->n > 0 && bsearch(&name, s->v, s->n, sizeof(*s->v), cmp_str) != NULL;
}

/* True when a name in s is a child of name. */
static bool names_has_child(const struct names *s, const char *name)
{
    size_t len = strlen(name), lo = 0, hi = s->n;

    /* Children sort right after "name." : find the first entry >= "name.". */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strncmp(s->v[mid], name, len);

        if (c < 0 || (c == 0 && s->v[mid][len] < STORE_SEP))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && strncmp(s->v[lo], name, len) == 0 && s->v[lo][len] == STORE_SEP;
}

static void names_free(struct names *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

/* The folders that exist: INBOX and each valid ".NAME" directory. */
static int read_folders(const char *maildir, size_t max, struct names *out, struct str *err)
{
    int fd = open(maildir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d;
    struct dirent *de;
    struct str tmp = STR_INIT;

    if (fd < 0 || (d = fdopendir(fd)) == NULL) {
        str_clear(err);
        str_printf(err, "open %s: %s", maildir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    names_add(out, "INBOX");
    while ((de = readdir(d)) != NULL && out->n < max) {
        struct stat st;

        if (de->d_name[0] != '.' || store_name_check(de->d_name + 1, &tmp) < 0 ||
            store_name_is_inbox(de->d_name + 1))
            continue;
        if (de->d_type != DT_DIR &&
            (de->d_type != DT_UNKNOWN ||
             fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
             !S_ISDIR(st.st_mode)))
            continue;
        names_add(out, de->d_name + 1);
    }
    closedir(d);
    str_free(&tmp);
    names_sort(out);
    return 0;
}

void store_list_free(struct store_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static void list_add(struct store_list *l, const char *name, unsigned attrs)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
    }
    l->v[l->n].name = xstrdup(name);
    l->v[l->n].attrs = attrs;
    l->n++;
}

static int cmp_entry(const void *a, const void *b)
{
    const struct store_list_entry *x = a, *y = b;
    bool xi = strcmp(x->name, "INBOX") == 0, yi = strcmp(y->name, "INBOX") == 0;

    if (xi != yi)
        return xi ? -1 : 1;
    return strcmp(x->name, y->name);
}

int store_folder_list(const char *maildir, const char *pattern, bool subscribed_only,
                      size_t max, struct store_list *out, struct str *err)
{
    struct names have = { 0 }, all = { 0 }, subs = { 0 };
    char **sv = NULL;
    int rc = 0;

    if (max == 0)
        max = LIST_MAX_DEFAULT;
    memset(out, 0, sizeof(*out));
    if (read_folders(maildir, max, &have, err) < 0)
        return -1;
    if (store_subs_read(maildir, &sv, err) < 0) {
        names_free(&have);
        return -1;
    }
    for (size_t i = 0; sv[i] != NULL; i++)
        names_add(&subs, store_name_is_inbox(sv[i]) ? "INBOX" : sv[i]);
    strv_free(sv);
    names_sort(&subs);
    /* Every existing name and each of its parents (those without a directory are
     * \Noselect), or the subscribed names. */
    const struct names *base = subscribed_only ? &subs : &have;
    for (size_t i = 0; i < base->n; i++) {
        struct str p = STR_INIT;
        const char *s = base->v[i];

        names_add(&all, s);
        for (const char *dot = strchr(s, STORE_SEP); !subscribed_only && dot != NULL;
             dot = strchr(dot + 1, STORE_SEP)) {
            str_set(&p, s, (size_t)(dot - s));
            names_add(&all, p.s);
        }
        str_free(&p);
    }
    names_sort(&all);
    for (size_t i = 0; i < all.n && out->n < max; i++) {
        const char *name = all.v[i];
        unsigned attrs = 0;

        if (!store_wildmatch(pattern, name))
            continue;
        if (!names_has(&have, name))
            attrs |= subscribed_only ? STORE_LIST_NONEXISTENT : STORE_LIST_NOSELECT;
        attrs |= names_has_child(&have, name) ? STORE_LIST_HASCHILDREN
                                              : STORE_LIST_HASNOCHILDREN;
        if (names_has(&subs, name))
            attrs |= STORE_LIST_SUBSCRIBED;
        if (names_has(&have, name))
            attrs |= store_special_use(maildir, name);
        list_add(out, name, attrs);
    }
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), cmp_entry);
    names_free(&have);
    names_free(&all);
    names_free(&subs);
    return rc;
}

/* Subscriptions. */

int store_subs_read(const char *maildir, char ***names, struct str *err)
{
    struct str path = STR_INIT, buf = STR_INIT, tmp = STR_INIT, nm = STR_INIT;
    struct names out = { 0 };
    const char *p, *end;
    bool v2 = false;
    int fd;

    names_add(&out, "x");           /* makes v non-NULL; removed below */
    free(out.v[0]);
    out.n = 0;
    out.v[0] = NULL;
    str_printf(&path, "%s/subscriptions", maildir);
    fd = open(path.s, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;

        str_free(&path);
        if (e == ENOENT) {
            *names = out.v;
            return 0;
        }
        free(out.v);
        str_clear(err);
        str_printf(err, "open subscriptions: %s", strerror(e));
        errno = e;
        return -1;
    }
    if (file_read_fd(fd, path.s, SUBS_FILE_MAX, &buf, err) < 0) {
        close(fd);
        str_free(&path);
        str_free(&buf);
        free(out.v);
        return -1;
    }
    close(fd);
    p = buf.s != NULL ? buf.s : "";
    end = p + buf.len;
    if (buf.len >= 2 && p[0] == 'V' && p[1] == '\t') {
        /* Version 2: a header line, an empty line, then names with TAB separators. */
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        v2 = true;
        p = nl != NULL ? nl + 1 : end;
        if (p < end && *p == '\n')
            p++;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

        str_set(&nm, p, len);
        if (nm.len > 0 && nm.s[nm.len - 1] == '\r')
            str_truncate(&nm, nm.len - 1);
        for (size_t i = 0; v2 && i < nm.len; i++)
            if (nm.s[i] == '\t')
                nm.s[i] = STORE_SEP;
        if (nm.len == strlen(nm.s) && nm.len > 0 && store_name_check(nm.s, &tmp) == 0)
            names_add(&out, nm.s);
        p += len + 1;
    }
    names_sort(&out);
    *names = out.v;
    str_free(&path);
    str_free(&buf);
    str_free(&tmp);
    str_free(&nm);
    return 0;
}

bool store_subs_has(char *const *names, const char *name)
{
    for (size_t i = 0; names[i] != NULL; i++)
        if (strcmp(names[i], name) == 0 ||
            (store_name_is_inbox(name) && store_name_is_inbox(names[i])))
            return true;
    return false;
}

int store_subscribe(const char *maildir, const char *name, bool on, struct str *err)
{
    char **subs = NULL;
    struct str text = STR_INIT, path = STR_INIT;
    bool found;
    int rc = 0;

    if (store_name_check(name, err) < 0)
        return -1;
    if (store_subs_read(maildir, &subs, err) < 0)
        return -1;
    found = store_subs_has(subs, name);
    if (found != on) {
        str_sets(&text, "V\t2\n\n");
        for (size_t i = 0; subs[i] != NULL; i++) {
            size_t at;

            if (!on && (strcmp(subs[i], name) == 0 ||
                        (store_name_is_inbox(name) && store_name_is_inbox(subs[i]))))
                continue;
            at = text.len;
            str_appends(&text, subs[i]);
            str_appendc(&text, '\n');
            for (size_t k = at; k < text.len; k++)
                if (text.s[k] == STORE_SEP)
                    text.s[k] = '\t';
        }
        if (on) {
            size_t at = text.len;

            str_appends(&text, name);
            str_appendc(&text, '\n');
            for (size_t k = at; k < text.len; k++)
                if (text.s[k] == STORE_SEP)
                    text.s[k] = '\t';
        }
        str_printf(&path, "%s/subscriptions", maildir);
        rc = atomic_file_write(path.s, text.s, text.len, 0600, NULL, err);
    }
    strv_free(subs);
    str_free(&text);
    str_free(&path);
    return rc;
}
