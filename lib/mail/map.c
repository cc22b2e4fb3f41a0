/* Lookup tables behind one interface (map.h): cdb, static, inline, unix:passwd and
 * pcre, and ordered lists of them.  Map files are trusted as far as the admin who
 * built them, but every length read from a file is bounded, and a file that cannot be
 * read is a failed lookup (-1), never "not found". */
#include "map.h"

#include <cdb.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "clock.h"
#include "str.h"
#include "xmalloc.h"

#define MAP_VALUE_MAX (1u << 20)        /* longest value we hand out */
#define MAP_KEY_MAX 4096                /* longest key we look up */
#define MAP_PCRE_KEY_MAX (1u << 20)     /* longest subject of a pcre: map (header lines) */
#define MAP_PCRE_MATCH_LIMIT 1000000    /* pcre2_set_match_limit: backtracking steps */
#define MAP_PCRE_DEPTH_LIMIT 10000      /* pcre2_set_depth_limit: nested backtracking */
#define MAP_PCRE_FILE_MAX (1u << 20)    /* largest pcre: file */
#define MAP_PASSWD_SNAPSHOT_MAX 1000000 /* most users copied by map_pin */
#define MAP_PASSWD_FILE "/etc/passwd"   /* watched for changes while pinned */

enum map_type { MAP_CDB, MAP_STATIC, MAP_INLINE, MAP_UNIX_PASSWD, MAP_PCRE };

struct map_pair {
    char *key;
    char *value;
};

struct map_pcre_rule {
    pcre2_code *re;
    char *result;           /* with $1-style references */
    bool negate;            /* "!/pattern/": matches when the pattern does not */
    unsigned lineno;        /* for the log of a match that hit a limit */
};

struct map {
    char *spec;
    enum map_type type;

    /* cdb */
    char *path;             /* file.cdb */
    int fd;
    struct cdb cdb;
    dev_t dev;
    ino_t ino;
    struct timespec mtime;
    off_t size;
    time_t checked;         /* monotonic seconds of the last stat */
    int check_errno;        /* that stat's or reopen's failure, 0 if none */
    bool pinned;            /* maplist_pin: keep the open file, never stat the path */

    /* unix:passwd, pinned: the user database as it was at map_pin(), sorted by name
     * (in pairs/npairs); snapshot_errno: why it could not be taken, or 0 */
    bool snapshot;
    int snapshot_errno;
    int passwd_fd;          /* /etc/passwd as it was then, to notice a new one; or -1 */

    /* static */
    char *value;

    /* inline */
    struct map_pair *pairs;
    size_t npairs;

    /* pcre */
    struct map_pcre_rule *rules;
    size_t nrules;
    pcre2_match_data *md;
    pcre2_match_context *mctx;  /* the match and depth limits */
    char *file;                 /* the pattern file, for file:line in the log */
};

static bool has_ctl(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

static bool has_ctl_but_tab(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return true;
    }
    return false;
}

static void lower(char *s)
{
    for (; *s != '\0'; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* ---- cdb ---- */

static int cdb_map_open(struct map *m, struct str *err)
{
    int fd = open(m->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat sb;

    if (fd < 0) {
        str_printf(err, "%s: %s", m->path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) < 0) {
        int e = errno;
        str_printf(err, "%s: %s", m->path, strerror(e));
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        str_printf(err, "%s: not a regular file", m->path);
        close(fd);
        errno = EINVAL;
        return -1;
    }
    if (cdb_init(&m->cdb, fd) < 0) {
        str_printf(err, "%s: not a cdb file", m->path);
        close(fd);
        errno = EINVAL;
        return -1;
    }
    m->fd = fd;
    m->dev = sb.st_dev;
    m->ino = sb.st_ino;
    m->mtime = sb.st_mtim;
    m->size = sb.st_size;
    m->checked = (time_t)(clock_ms() / 1000);
    return 0;
}

/* Reopens the file when it was replaced: at once when the open file has lost its
 * name (a rebuild renames a new file over it: the process that accepted an address
 * and the one that delivers to it must agree), else after at most a second (a stat
 * of the path). */
static int cdb_map_check(struct map *m, struct str *err)
{
    struct stat sb;
    time_t now = (time_t)(clock_ms() / 1000);

    if (m->fd >= 0 && m->pinned)
        return 0;
    if (m->fd >= 0 && now == m->checked && m->check_errno == 0
        && fstat(m->fd, &sb) == 0 && sb.st_nlink == 0)
        m->checked = now - 1;
    if (m->fd >= 0 && now == m->checked) {
        if (m->check_errno == 0)
            return 0;
        str_printf(err, "%s: %s", m->path, strerror(m->check_errno));
        errno = m->check_errno;
        return -1;
    }
    m->checked = now;
    m->check_errno = 0;
    if (stat(m->path, &sb) < 0) {
        int e = errno;
        str_printf(err, "%s: %s", m->path, strerror(e));
        m->check_errno = errno = e;
        return -1;
    }
    if (m->fd >= 0 && sb.st_dev == m->dev && sb.st_ino == m->ino
        && sb.st_mtim.tv_sec == m->mtime.tv_sec && sb.st_mtim.tv_nsec == m->mtime.tv_nsec
        && sb.st_size == m->size)
        return 0;

    struct cdb old = m->cdb;
    int oldfd = m->fd;
    m->fd = -1;
    if (cdb_map_open(m, err) < 0) {
        /* Keep the old file open so the next check tries again. */
        int e = errno;
        m->cdb = old;
        m->fd = oldfd;
        m->checked = now;
        m->check_errno = errno = e;
        return -1;
    }
    if (oldfd >= 0) {
        cdb_free(&old);
        close(oldfd);
    }
    return 0;
}

static int cdb_map_lookup(struct map *m, const char *key, struct str *value,
                          struct str *err)
{
    int r;

    if (cdb_map_check(m, err) < 0)
        return -1;
    r = cdb_find(&m->cdb, key, (unsigned)strlen(key));
    if (r < 0) {
        str_printf(err, "%s: corrupt cdb file", m->path);
        errno = EIO;
        return -1;
    }
    if (r == 0)
        return 0;
    unsigned len = cdb_datalen(&m->cdb);
    if (len > MAP_VALUE_MAX) {
        str_printf(err, "%s: value longer than %u bytes", m->path, MAP_VALUE_MAX);
        errno = EIO;
        return -1;
    }
    const void *p = cdb_get(&m->cdb, len, cdb_datapos(&m->cdb));
    if (p == NULL) {
        str_printf(err, "%s: corrupt cdb file", m->path);
        errno = EIO;
        return -1;
    }
    str_set(value, p, len);
    return 1;
}

/* ---- inline ---- */

static int inline_parse(struct map *m, const char *body, struct str *err)
{
    size_t len = strlen(body);
    const char *p, *end;

    if (len < 2 || body[0] != '{' || body[len - 1] != '}') {
        str_printf(err, "%s: expected inline:{key=value, ...}", m->spec);
        return -1;
    }
    p = body + 1;
    end = body + len - 1;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p == end)
            break;
        const char *item = p;
        while (p < end && *p != ',')
            p++;
        const char *ie = p;
        while (ie > item && (ie[-1] == ' ' || ie[-1] == '\t'))
            ie--;
        const char *eq = memchr(item, '=', (size_t)(ie - item));
        if (eq == NULL || eq == item) {
            str_printf(err, "%s: expected key=value in \"%.*s\"", m->spec,
                       (int)(ie - item), item);
            return -1;
        }
        const char *ke = eq, *v = eq + 1;
        while (ke > item && (ke[-1] == ' ' || ke[-1] == '\t'))
            ke--;
        while (v < ie && (*v == ' ' || *v == '\t'))
            v++;
        m->pairs = xreallocarray(m->pairs, m->npairs + 1, sizeof(*m->pairs));
        m->pairs[m->npairs].key = xstrndup(item, (size_t)(ke - item));
        lower(m->pairs[m->npairs].key);
        m->pairs[m->npairs].value = xstrndup(v, (size_t)(ie - v));
        m->npairs++;
    }
    return 0;
}

/* ---- unix:passwd ---- */

static int passwd_lookup(const char *key, struct str *value, struct str *err)
{
    size_t bufsize = 1024;
    char *buf;
    struct passwd pw, *res = NULL;
    int r;

    for (;;) {
        buf = xmalloc(bufsize);
        r = getpwnam_r(key, &pw, buf, bufsize, &res);
        if (r != ERANGE || bufsize >= (1u << 20))
            break;
        free(buf);
        bufsize *= 4;
    }
    if (r != 0 && r != ENOENT && r != ESRCH && r != EBADF && r != EPERM) {
        free(buf);
        str_printf(err, "unix:passwd: %s", strerror(r));
        errno = r;
        return -1;
    }
    if (r != 0 || res == NULL) {
        free(buf);
        return 0;
    }
    str_clear(value);
    str_printf(value, "%s:%lu:%lu:%s", pw.pw_name, (unsigned long)pw.pw_uid,
               (unsigned long)pw.pw_gid, pw.pw_dir);
    free(buf);
    return 1;
}

/* A snapshot of the user database for a process about to chroot, where getpwnam
 * no longer finds /etc/passwd: every entry getpwent(3) gives, sorted for bsearch,
 * the first entry of a name kept (as getpwnam would find it).  When it cannot be
 * taken, lookups fail (temporary), never "not found". */
struct passwd_entry {
    char *key;
    char *value;
    size_t order;
};

static int entry_cmp(const void *a, const void *b)
{
    const struct passwd_entry *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    return c != 0 ? c : (x->order > y->order) - (x->order < y->order);
}

static int pair_cmp(const void *a, const void *b)
{
    return strcmp(((const struct map_pair *)a)->key, ((const struct map_pair *)b)->key);
}

static void passwd_snapshot(struct map *m)
{
    struct passwd_entry *e = NULL;
    struct passwd *pw;
    size_t cap = 0, n = 0;
    struct str v = STR_INIT;
    struct stat sb;
    int saved;

    m->snapshot = true;
    /* Kept open so that map_changed can tell when it was replaced or rewritten. */
    m->passwd_fd = open(MAP_PASSWD_FILE, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (m->passwd_fd >= 0 && fstat(m->passwd_fd, &sb) == 0) {
        m->mtime = sb.st_mtim;
        m->size = sb.st_size;
    } else if (m->passwd_fd >= 0) {
        close(m->passwd_fd);
        m->passwd_fd = -1;
    }
    errno = 0;
    setpwent();
    while ((pw = getpwent()) != NULL) {
        if (pw->pw_name == NULL || pw->pw_name[0] == '\0' || pw->pw_dir == NULL) {
            errno = 0;
            continue;
        }
        if (n == MAP_PASSWD_SNAPSHOT_MAX) {
            errno = E2BIG;
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            e = xreallocarray(e, cap, sizeof(*e));
        }
        str_clear(&v);
        str_printf(&v, "%s:%lu:%lu:%s", pw->pw_name, (unsigned long)pw->pw_uid,
                   (unsigned long)pw->pw_gid, pw->pw_dir);
        e[n].key = xstrdup(pw->pw_name);
        e[n].value = xstrdup(v.s);
        e[n].order = n;
        n++;
        errno = 0;
    }
    saved = errno == ENOENT || errno == ESRCH ? 0 : errno;
    endpwent();
    str_free(&v);
    if (n == 0 && saved == 0)
        saved = ENOENT;         /* no user at all: the database was not readable */
    m->snapshot_errno = saved;
    if (n > 0)
        qsort(e, n, sizeof(*e), entry_cmp);
    m->pairs = xcalloc(n + 1, sizeof(*m->pairs));
    for (size_t i = 0; i < n; i++) {
        if (m->npairs > 0 && strcmp(m->pairs[m->npairs - 1].key, e[i].key) == 0) {
            free(e[i].key);
            free(e[i].value);
            continue;
        }
        m->pairs[m->npairs].key = e[i].key;
        m->pairs[m->npairs++].value = e[i].value;
    }
    free(e);
}

static int passwd_snapshot_lookup(struct map *m, const char *key, struct str *value,
                                  struct str *err)
{
    struct map_pair k = { (char *)key, NULL }, *hit;

    if (m->snapshot_errno != 0) {
        str_printf(err, "unix:passwd: no copy of the user database: %s",
                   strerror(m->snapshot_errno));
        errno = m->snapshot_errno;
        return -1;
    }
    hit = m->npairs > 0 ? bsearch(&k, m->pairs, m->npairs, sizeof(*m->pairs), pair_cmp) : NULL;
    if (hit == NULL)
        return 0;
    str_sets(value, hit->value);
    return 1;
}

/* ---- pcre ---- */

/* Parses one "/pattern/flags result" line. */
static int pcre_rule(struct map *m, const char *path, unsigned lineno, const char *line,
                     struct str *err)
{
    const char *p = line;
    bool negate = false;
    struct str pat = STR_INIT;
    uint32_t opts = PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF;

    if (*p == '!') {
        negate = true;
        p++;
    }
    char delim = *p++;
    str_init(&pat);
    if (delim == '\0' || isalnum((unsigned char)delim) || delim == '\\' || delim == ' ') {
        str_printf(err, "%s:%u: expected /pattern/ at the start of the line", path, lineno);
        return -1;
    }
    /* The pattern runs to the next unescaped delimiter; "\/" stands for "/". */
    while (*p != '\0' && *p != delim) {
        if (*p == '\\' && p[1] == delim) {
            str_appendc(&pat, delim);
            p += 2;
            continue;
        }
        if (*p == '\\' && p[1] != '\0') {
            str_append(&pat, p, 2);
            p += 2;
            continue;
        }
        str_appendc(&pat, *p++);
    }
    if (*p != delim) {
        str_printf(err, "%s:%u: pattern without its closing %c", path, lineno, delim);
        str_free(&pat);
        return -1;
    }
    p++;
    while (*p != '\0' && *p != ' ' && *p != '\t') {
        switch (*p++) {
        case 'i': opts ^= PCRE2_CASELESS; break;
        case 'x': opts |= PCRE2_EXTENDED; break;
        case 's': opts |= PCRE2_DOTALL; break;
        case 'm': opts |= PCRE2_MULTILINE; break;
        default:
            str_printf(err, "%s:%u: unknown pattern flag '%c'", path, lineno, p[-1]);
            str_free(&pat);
            return -1;
        }
    }
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0') {
        str_printf(err, "%s:%u: pattern without a result", path, lineno);
        str_free(&pat);
        return -1;
    }
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)(pat.s ? pat.s : ""), pat.len, opts,
                                   &code, &off, NULL);
    str_free(&pat);
    if (re == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof(msg));
        str_printf(err, "%s:%u: pattern: %s at offset %zu", path, lineno, (char *)msg,
                   (size_t)off);
        return -1;
    }
    m->rules = xreallocarray(m->rules, m->nrules + 1, sizeof(*m->rules));
    m->rules[m->nrules].re = re;
    m->rules[m->nrules].result = xstrdup(p);
    m->rules[m->nrules].negate = negate;
    m->rules[m->nrules].lineno = lineno;
    m->nrules++;
    return 0;
}

static int pcre_load(struct map *m, const char *path, struct str *err)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0, total = 0;
    ssize_t n;
    unsigned lineno = 0;
    int rc = 0;

    if (f == NULL) {
        str_printf(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        total += (size_t)n;
        if (total > MAP_PCRE_FILE_MAX) {
            str_printf(err, "%s: larger than %u bytes", path, MAP_PCRE_FILE_MAX);
            rc = -1;
            break;
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (has_ctl_but_tab(line, (size_t)n)) {
            str_printf(err, "%s:%u: control character in line", path, lineno);
            rc = -1;
            break;
        }
        const char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0' || *s == '#')
            continue;
        if (s != line) {
            str_printf(err, "%s:%u: continuation lines are not allowed in pcre maps",
                       path, lineno);
            rc = -1;
            break;
        }
        if (pcre_rule(m, path, lineno, s, err) < 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        str_printf(err, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    if (rc == 0) {
        m->md = pcre2_match_data_create(10, NULL);
        m->mctx = pcre2_match_context_create(NULL);
        if (m->md == NULL || m->mctx == NULL) {
            str_printf(err, "%s: out of memory", path);
            return -1;
        }
        pcre2_set_match_limit(m->mctx, MAP_PCRE_MATCH_LIMIT);
        pcre2_set_depth_limit(m->mctx, MAP_PCRE_DEPTH_LIMIT);
        m->file = xstrdup(path);
    }
    return rc;
}

/* Appends result with $N and ${N} replaced by the captured groups. */
static void pcre_expand(const char *result, const char *subject, pcre2_match_data *md,
                        int ngroups, struct str *out)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    const char *p = result;

    str_clear(out);
    while (*p != '\0') {
        if (*p != '$') {
            str_appendc(out, *p++);
            continue;
        }
        p++;
        if (*p == '$') {
            str_appendc(out, *p++);
            continue;
        }
        bool brace = *p == '{';
        const char *q = p + (brace ? 1 : 0);
        if (!isdigit((unsigned char)*q)) {
            str_appendc(out, '$');
            continue;
        }
        int g = *q++ - '0';
        if (brace) {
            if (*q != '}') {
                str_appendc(out, '$');
                continue;
            }
            q++;
        }
        p = q;
        if (g < ngroups && ov[2 * g] != PCRE2_UNSET)
            str_append(out, subject + ov[2 * g], ov[2 * g + 1] - ov[2 * g]);
    }
}

/* A pattern that exceeds the match or depth limit (catastrophic backtracking) is a
 * failed lookup naming file:line, never a hang and never "not found". */
static int pcre_lookup(struct map *m, const char *key, struct str *value, struct str *err)
{
    for (size_t i = 0; i < m->nrules; i++) {
        int r = pcre2_match(m->rules[i].re, (PCRE2_SPTR)key, strlen(key), 0, 0, m->md,
                            m->mctx);
        if (r == PCRE2_ERROR_NOMATCH) {
            if (!m->rules[i].negate)
                continue;
            pcre_expand(m->rules[i].result, key, m->md, 0, value);
            return 1;
        }
        if (r < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(r, msg, sizeof(msg));
            str_printf(err, "%s:%u: %s", m->file, m->rules[i].lineno, (char *)msg);
            errno = EIO;
            return -1;
        }
        if (m->rules[i].negate)
            continue;
        pcre_expand(m->rules[i].result, key, m->md, r == 0 ? 10 : r, value);
        return 1;
    }
    return 0;
}

/* ---- the interface ---- */

struct map *map_open(const char *spec, struct str *err)
{
    const char *colon = strchr(spec, ':');
    struct map *m;

    if (colon == NULL || colon == spec) {
        str_printf(err, "%s: expected type:name", spec);
        return NULL;
    }
    if (has_ctl(spec, strlen(spec))) {
        str_printf(err, "map name with a control character");
        return NULL;
    }
    m = xcalloc(1, sizeof(*m));
    m->spec = xstrdup(spec);
    m->fd = -1;
    m->passwd_fd = -1;
    const char *name = colon + 1;
    size_t tlen = (size_t)(colon - spec);

#define IS_TYPE(t) (tlen == sizeof(t) - 1 && memcmp(spec, t, tlen) == 0)
    if (IS_TYPE("cdb")) {
        m->type = MAP_CDB;
        if (name[0] == '\0') {
            str_printf(err, "%s: missing file name", spec);
            goto fail;
        }
        struct str p = STR_INIT;
        str_init(&p);
        str_printf(&p, "%s.cdb", name);
        m->path = str_detach(&p);
        if (cdb_map_open(m, err) < 0)
            goto fail;
    } else if (IS_TYPE("static")) {
        m->type = MAP_STATIC;
        size_t n = strlen(name);
        if (n >= 2 && name[0] == '{' && name[n - 1] == '}')
            m->value = xstrndup(name + 1, n - 2);
        else
            m->value = xstrdup(name);
    } else if (IS_TYPE("inline")) {
        m->type = MAP_INLINE;
        if (inline_parse(m, name, err) < 0)
            goto fail;
    } else if (IS_TYPE("unix")) {
        m->type = MAP_UNIX_PASSWD;
        if (strcmp(name, "passwd") != 0) {
            str_printf(err, "%s: only unix:passwd is supported", spec);
            goto fail;
        }
    } else if (IS_TYPE("pcre")) {
        m->type = MAP_PCRE;
        if (name[0] == '\0') {
            str_printf(err, "%s: missing file name", spec);
            goto fail;
        }
        if (pcre_load(m, name, err) < 0)
            goto fail;
    } else {
        str_printf(err, "%s: unknown map type \"%.*s\"", spec, (int)tlen, spec);
        goto fail;
    }
#undef IS_TYPE
    return m;
fail:
    map_close(m);
    return NULL;
}

void map_close(struct map *m)
{
    if (m == NULL)
        return;
    if (m->fd >= 0) {
        cdb_free(&m->cdb);
        close(m->fd);
    }
    if (m->passwd_fd >= 0)
        close(m->passwd_fd);
    for (size_t i = 0; i < m->npairs; i++) {
        free(m->pairs[i].key);
        free(m->pairs[i].value);
    }
    for (size_t i = 0; i < m->nrules; i++) {
        pcre2_code_free(m->rules[i].re);
        free(m->rules[i].result);
    }
    pcre2_match_data_free(m->md);
    pcre2_match_context_free(m->mctx);
    free(m->file);
    free(m->rules);
    free(m->pairs);
    free(m->value);
    free(m->path);
    free(m->spec);
    free(m);
}

int map_lookup(struct map *m, const char *key, struct str *value, struct str *err)
{
    struct str dummy = STR_INIT;
    struct str *e = err != NULL ? err : &dummy;
    char *k;
    int r = 0;
    size_t klen = strlen(key);

    if (klen > (m->type == MAP_PCRE ? MAP_PCRE_KEY_MAX : MAP_KEY_MAX))
        return 0;       /* no map holds keys this long */
    k = xstrdup(key);
    if (m->type != MAP_UNIX_PASSWD && m->type != MAP_PCRE)
        lower(k);

    switch (m->type) {
    case MAP_CDB:
        r = cdb_map_lookup(m, k, value, e);
        break;
    case MAP_STATIC:
        str_sets(value, m->value);
        r = 1;
        break;
    case MAP_INLINE:
        for (size_t i = 0; i < m->npairs; i++) {
            if (strcmp(m->pairs[i].key, k) == 0) {
                str_sets(value, m->pairs[i].value);
                r = 1;
                break;
            }
        }
        break;
    case MAP_UNIX_PASSWD:
        r = m->snapshot ? passwd_snapshot_lookup(m, k, value, e) : passwd_lookup(k, value, e);
        break;
    case MAP_PCRE:
        r = pcre_lookup(m, k, value, e);
        break;
    }
    free(k);
    if (err == NULL) {
        int saved = errno;
        str_free(&dummy);
        errno = saved;
    }
    return r;
}

/* ---- lists ---- */

struct maplist {
    struct map **maps;
    size_t n;
};

char **map_specs_split(const char *specs, struct str *err)
{
    size_t n = 0;
    char **v = xcalloc(1, sizeof(*v));
    const char *p = specs;

    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',' || *p == '\n')
            p++;
        if (*p == '\0')
            break;
        const char *start = p;
        int depth = 0;
        while (*p != '\0' && (depth > 0 || (*p != ' ' && *p != '\t' && *p != ','
                                            && *p != '\n'))) {
            if (*p == '{')
                depth++;
            else if (*p == '}' && depth > 0)
                depth--;
            p++;
        }
        if (depth > 0) {
            str_printf(err, "%s: missing '}'", start);
            strv_free(v);
            return NULL;
        }
        v = xreallocarray(v, n + 2, sizeof(*v));
        v[n++] = xstrndup(start, (size_t)(p - start));
        v[n] = NULL;
    }
    return v;
}

int map_spec_check(const char *spec, struct str *err)
{
    const char *colon = strchr(spec, ':');
    const char *name = colon != NULL ? colon + 1 : "";
    size_t tlen = colon != NULL ? (size_t)(colon - spec) : 0;
    int rc = 0;

    if (colon == NULL || colon == spec) {
        str_printf(err, "\"%s\": expected type:name", spec);
        return -1;
    }
    if (has_ctl(spec, strlen(spec))) {
        str_printf(err, "map name with a control character");
        return -1;
    }
#define IS_TYPE(t) (tlen == sizeof(t) - 1 && memcmp(spec, t, tlen) == 0)
    if (IS_TYPE("cdb") || IS_TYPE("pcre")) {
        if (name[0] != '/') {
            str_printf(err, "\"%s\": %s", spec,
                       name[0] == '\0' ? "missing file name" : "the file needs an absolute path");
            rc = -1;
        }
    } else if (IS_TYPE("inline")) {
        struct map m;
        memset(&m, 0, sizeof(m));
        m.spec = (char *)spec;
        rc = inline_parse(&m, name, err);
        for (size_t i = 0; i < m.npairs; i++) {
            free(m.pairs[i].key);
            free(m.pairs[i].value);
        }
        free(m.pairs);
    } else if (IS_TYPE("unix")) {
        if (strcmp(name, "passwd") != 0) {
            str_printf(err, "\"%s\": only unix:passwd is supported", spec);
            rc = -1;
        }
    } else if (!IS_TYPE("static")) {
        str_printf(err, "\"%s\": unknown map type \"%.*s\" (cdb, pcre, static, inline, "
                   "unix)", spec, (int)tlen, spec);
        rc = -1;
    }
#undef IS_TYPE
    return rc;
}

struct maplist *maplist_open(const char *specs, struct str *err)
{
    struct maplist *ml = xcalloc(1, sizeof(*ml));
    char **v = map_specs_split(specs, err);

    if (v == NULL) {
        maplist_close(ml);
        return NULL;
    }
    for (size_t i = 0; v[i] != NULL; i++) {
        struct map *m = map_open(v[i], err);
        if (m == NULL) {
            strv_free(v);
            maplist_close(ml);
            return NULL;
        }
        ml->maps = xreallocarray(ml->maps, ml->n + 1, sizeof(*ml->maps));
        ml->maps[ml->n++] = m;
    }
    strv_free(v);
    return ml;
}

void maplist_close(struct maplist *ml)
{
    if (ml == NULL)
        return;
    for (size_t i = 0; i < ml->n; i++)
        map_close(ml->maps[i]);
    free(ml->maps);
    free(ml);
}

int maplist_lookup(struct maplist *ml, const char *key, struct str *value, struct str *err)
{
    for (size_t i = 0; i < ml->n; i++) {
        int r = map_lookup(ml->maps[i], key, value, err);
        if (r != 0)
            return r;
    }
    return 0;
}

/* A file held open: removed (replaced by rename), or written since it was read. */
static bool file_changed(int fd, const struct timespec *mtime, off_t size)
{
    struct stat sb;

    if (fstat(fd, &sb) < 0)
        return true;
    return sb.st_nlink == 0 || sb.st_size != size || sb.st_mtim.tv_sec != mtime->tv_sec
           || sb.st_mtim.tv_nsec != mtime->tv_nsec;
}

bool map_changed(const struct map *m)
{
    if (m->type == MAP_CDB && m->pinned && m->fd >= 0)
        return file_changed(m->fd, &m->mtime, m->size);
    if (m->type == MAP_UNIX_PASSWD && m->snapshot && m->passwd_fd >= 0)
        return file_changed(m->passwd_fd, &m->mtime, m->size);
    return false;
}

bool maplist_changed(const struct maplist *ml)
{
    for (size_t i = 0; i < ml->n; i++)
        if (map_changed(ml->maps[i]))
            return true;
    return false;
}

void map_pin(struct map *m)
{
    m->pinned = true;
    if (m->type == MAP_UNIX_PASSWD && !m->snapshot)
        passwd_snapshot(m);
}

void maplist_pin(struct maplist *ml)
{
    for (size_t i = 0; i < ml->n; i++)
        map_pin(ml->maps[i]);
}

size_t maplist_count(const struct maplist *ml)
{
    return ml->n;
}
