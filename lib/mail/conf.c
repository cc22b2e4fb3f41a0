/* postern.conf reader, typed getters and in-place editor (syntax in conf.h and
 * postern.conf(5)).  The file is trusted as far as the admin who wrote it, but it is
 * still parsed defensively: bounded size, no control characters, every value checked
 * against its key's type after $expansion, errors name file:line. */
#include "conf.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "file_read.h"
#include "log.h"
#include "str.h"
#include "xmalloc.h"

#ifndef POSTERN_SYSCONFDIR
#define POSTERN_SYSCONFDIR "/etc/postern"
#endif

#define CONF_FILE "postern.conf"
#define CONF_FILE_MAX (4u << 20)        /* bytes of postern.conf we accept */
#define CONF_VALUE_MAX (1u << 20)       /* longest value after expansion */
#define CONF_EXPAND_DEPTH 10            /* nesting of $key inside $key */

/* Index of the extra key after the table's keys. */
#define CONF_DIR_KEY "config_directory"

struct conf_entry {
    char *raw;              /* as set (file or conf_set), NULL = default */
    unsigned line;          /* line of the file that set it, 0 = conf_set/default */
    char *value;            /* expanded */
};

struct conf {
    char *dir;
    char *path;
    size_t n;               /* conf_ndefaults + 1 (config_directory) */
    struct conf_entry *e;
};

/* ---- key table ---- */

static long conf_index(const char *key)
{
    for (size_t i = 0; i < conf_ndefaults; i++)
        if (strcmp(conf_defaults[i].name, key) == 0)
            return (long)i;
    if (strcmp(key, CONF_DIR_KEY) == 0)
        return (long)conf_ndefaults;
    return -1;
}

static long conf_index_n(const char *key, size_t len)
{
    for (size_t i = 0; i < conf_ndefaults; i++)
        if (strlen(conf_defaults[i].name) == len
            && memcmp(conf_defaults[i].name, key, len) == 0)
            return (long)i;
    if (len == strlen(CONF_DIR_KEY) && memcmp(key, CONF_DIR_KEY, len) == 0)
        return (long)conf_ndefaults;
    return -1;
}

static const char *conf_key_name(size_t i)
{
    return i < conf_ndefaults ? conf_defaults[i].name : CONF_DIR_KEY;
}

static enum conf_type conf_key_type(size_t i)
{
    return i < conf_ndefaults ? conf_defaults[i].type : CONF_STR;
}

static int is_name_char(int c)
{
    return isascii(c) && (isalnum(c) || c == '_');
}

/* ---- type parsing ---- */

static int parse_ll(const char *s, long long *out, const char **end)
{
    const char *p = s;
    bool neg = false;
    unsigned long long v = 0;

    if (*p == '-') {
        neg = true;
        p++;
    }
    if (!isdigit((unsigned char)*p))
        return -1;
    while (isdigit((unsigned char)*p)) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
        p++;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return -1;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX)
            return -1;
        *out = (long long)v;
    }
    *end = p;
    return 0;
}

/* A unit letter (either case) and what it multiplies by; the list ends with a 0
 * letter, whose factor applies to a number without a unit. */
struct conf_unit {
    char letter;
    long long mul;
};

static const struct conf_unit time_units[] = {
    { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 }, { 0, 1 },
};
static const struct conf_unit size_units[] = {
    { 'k', 1024 }, { 'm', 1024 * 1024 }, { 'g', 1024 * 1024 * 1024 }, { 0, 1 },
};

/* A non-negative number with an optional one-letter unit from units. */
static int parse_scaled(const char *s, const struct conf_unit *units, const char *expected,
                        const char *range, long long *out, const char **why)
{
    const char *end;
    long long v;
    size_t i;

    if (parse_ll(s, &v, &end) < 0 || v < 0) {
        *why = expected;
        return -1;
    }
    for (i = 0; units[i].letter != 0; i++)
        if (*end == units[i].letter || *end == toupper((unsigned char)units[i].letter))
            break;
    if ((units[i].letter == 0 && *end != '\0') || (*end != '\0' && end[1] != '\0')) {
        *why = expected;
        return -1;
    }
    if (v > LLONG_MAX / units[i].mul) {
        *why = range;
        return -1;
    }
    *out = v * units[i].mul;
    return 0;
}

/* Parses s as type t into *out (ignored for STR and LIST).  0 or -1 with a
 * description of what was expected in *why. */
static int conf_parse_value(enum conf_type t, const char *s, long long *out,
                            const char **why)
{
    const char *end;
    long long v;

    switch (t) {
    case CONF_STR:
    case CONF_LIST:
        return 0;
    case CONF_BOOL:
        if (strcasecmp(s, "yes") == 0)
            *out = 1;
        else if (strcasecmp(s, "no") == 0)
            *out = 0;
        else {
            *why = "expected yes or no";
            return -1;
        }
        return 0;
    case CONF_INT:
        if (parse_ll(s, &v, &end) < 0 || *end != '\0') {
            *why = "expected a decimal integer";
            return -1;
        }
        *out = v;
        return 0;
    case CONF_TIME:
        return parse_scaled(s, time_units,
                            "expected a time: a number with an optional unit s, m, h, d or w",
                            "time out of range", out, why);
    case CONF_SIZE:
        return parse_scaled(s, size_units,
                            "expected a size: a number of bytes with an optional unit k, m or g",
                            "size out of range", out, why);
    }
    *why = "unknown type";
    return -1;
}

/* Rejects control characters (tab excepted) and non-UTF-8-looking NULs. */
static int has_control(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 1;
    }
    return 0;
}

/* ---- expansion ---- */

struct expand_state {
    struct conf *c;
    char **val;             /* expanded values being computed, NULL = not yet */
    unsigned char *busy;    /* 1 while a key is being expanded (loop detection) */
    unsigned *height;       /* longest chain of $references below each key */
    char *host;             /* system host name, filled on demand */
};

static void where(const struct conf *c, size_t i, struct str *err)
{
    if (c->e[i].raw != NULL && c->e[i].line > 0)
        str_printf(err, "%s:%u: ", c->path, c->e[i].line);
    else if (c->e[i].raw != NULL)
        ;   /* set by conf_set: the message names the key */
    else
        str_printf(err, "%s: default of %s: ", c->path, conf_key_name(i));
}

static const char *system_hostname(struct expand_state *st)
{
    if (st->host == NULL) {
        char buf[256];
        if (gethostname(buf, sizeof(buf) - 1) < 0 || buf[0] == '\0')
            strcpy(buf, "localhost");
        buf[sizeof(buf) - 1] = '\0';
        st->host = xstrdup(buf);
    }
    return st->host;
}

static int expand_key(struct expand_state *st, size_t i, unsigned depth, struct str *err);

/* Expands text into out.  i is the key whose value it is (for messages). */
static int expand_text(struct expand_state *st, size_t i, const char *text,
                       unsigned depth, struct str *out, struct str *err)
{
    st->height[i] = 0;
    const char *p = text;

    while (*p != '\0') {
        if (*p != '$') {
            const char *q = strchr(p, '$');
            size_t n = q ? (size_t)(q - p) : strlen(p);
            str_append(out, p, n);
            p += n;
            continue;
        }
        p++;
        if (*p == '$') {
            str_appendc(out, '$');
            p++;
            continue;
        }
        const char *name = p;
        size_t len;
        if (*p == '{') {
            name = ++p;
            while (is_name_char((unsigned char)*p))
                p++;
            if (*p != '}' || p == name) {
                where(st->c, i, err);
                str_printf(err, "%s: malformed ${...} (use $$ for a literal $)",
                           conf_key_name(i));
                return -1;
            }
            len = (size_t)(p - name);
            p++;
        } else {
            while (is_name_char((unsigned char)*p))
                p++;
            len = (size_t)(p - name);
            if (len == 0) {
                where(st->c, i, err);
                str_printf(err, "%s: '$' not followed by a key name (use $$ for a literal $)",
                           conf_key_name(i));
                return -1;
            }
        }
        long j = conf_index_n(name, len);
        if (j < 0) {
            where(st->c, i, err);
            str_printf(err, "%s: unknown $%.*s", conf_key_name(i), (int)len, name);
            return -1;
        }
        if (expand_key(st, (size_t)j, depth + 1, err) < 0)
            return -1;
        if (depth + 1 + st->height[j] > CONF_EXPAND_DEPTH) {
            where(st->c, i, err);
            str_printf(err, "%s: $expansion nested too deeply", conf_key_name(i));
            return -1;
        }
        if (st->height[j] + 1 > st->height[i])
            st->height[i] = st->height[j] + 1;
        str_appends(out, st->val[j]);
        if (out->len > CONF_VALUE_MAX) {
            where(st->c, i, err);
            str_printf(err, "%s: value longer than %u bytes after expansion",
                       conf_key_name(i), CONF_VALUE_MAX);
            return -1;
        }
    }
    return 0;
}

static int expand_key(struct expand_state *st, size_t i, unsigned depth, struct str *err)
{
    struct conf *c = st->c;
    struct str out = STR_INIT;
    const char *raw;
    long myhostname = conf_index("myhostname");
    long mydomain = conf_index("mydomain");

    if (st->val[i] != NULL)
        return 0;
    if (st->busy[i] || depth > CONF_EXPAND_DEPTH) {
        where(c, i, err);
        str_printf(err, "%s: $expansion %s", conf_key_name(i),
                   st->busy[i] ? "refers to itself" : "nested too deeply");
        return -1;
    }
    st->busy[i] = 1;
    str_init(&out);

    if (i == conf_ndefaults) {
        str_sets(&out, c->dir);
    } else {
        raw = c->e[i].raw != NULL ? c->e[i].raw : conf_defaults[i].value;
        if (expand_text(st, i, raw, depth, &out, err) < 0) {
            str_free(&out);
            st->busy[i] = 0;
            return -1;
        }
        if (out.len == 0 && (long)i == myhostname) {
            str_sets(&out, system_hostname(st));
        } else if (out.len == 0 && (long)i == mydomain && myhostname >= 0) {
            if (expand_key(st, (size_t)myhostname, depth + 1, err) < 0) {
                str_free(&out);
                st->busy[i] = 0;
                return -1;
            }
            const char *h = st->val[myhostname];
            const char *dot = strchr(h, '.');
            str_sets(&out, dot != NULL && dot[1] != '\0' ? dot + 1 : h);
        }
    }

    long long dummy;
    const char *why = NULL;
    if (conf_parse_value(conf_key_type(i), out.s, &dummy, &why) < 0) {
        where(c, i, err);
        str_printf(err, "%s = %s: %s", conf_key_name(i), out.s, why);
        str_free(&out);
        st->busy[i] = 0;
        return -1;
    }
    st->busy[i] = 0;
    st->val[i] = str_detach(&out);
    return 0;
}

/* Computes every expanded value; on success replaces c's values. */
static int conf_expand_all(struct conf *c, struct str *err)
{
    struct expand_state st;
    int rc = 0;

    st.c = c;
    st.val = xcalloc(c->n, sizeof(*st.val));
    st.busy = xcalloc(c->n, 1);
    st.height = xcalloc(c->n, sizeof(*st.height));
    st.host = NULL;
    for (size_t i = 0; i < c->n && rc == 0; i++)
        rc = expand_key(&st, i, 0, err);
    if (rc == 0) {
        for (size_t i = 0; i < c->n; i++) {
            free(c->e[i].value);
            c->e[i].value = st.val[i];
        }
    } else {
        for (size_t i = 0; i < c->n; i++)
            free(st.val[i]);
    }
    free(st.val);
    free(st.busy);
    free(st.height);
    free(st.host);
    return rc;
}

/* ---- reading the file ---- */

/* Reads path into buf.  1 read, 0 missing, -1 error (err set). */
static int read_file(const char *path, struct str *buf, struct str *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat sb;

    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        str_printf(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) < 0) {
        str_printf(err, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(sb.st_mode)) {
        str_printf(err, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if (file_read_fd(fd, path, CONF_FILE_MAX, buf, err) < 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return 1;
}

enum line_kind { LINE_BLANK, LINE_COMMENT, LINE_CONT, LINE_SETTING };

static enum line_kind line_kind(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i == len)
        return LINE_BLANK;
    if (s[i] == '#')
        return LINE_COMMENT;
    return i > 0 ? LINE_CONT : LINE_SETTING;
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

/* Stores one logical line "key = value" that began at line lineno. */
static int conf_setting(struct conf *c, const char *s, size_t len, unsigned lineno,
                        struct str *err)
{
    const char *eq = memchr(s, '=', len);
    const char *key = s, *val;
    size_t klen, vlen;

    if (eq == NULL) {
        str_printf(err, "%s:%u: expected \"key = value\"", c->path, lineno);
        return -1;
    }
    klen = (size_t)(eq - s);
    trim(&key, &klen);
    val = eq + 1;
    vlen = len - (size_t)(val - s);
    trim(&val, &vlen);
    for (size_t i = 0; i < klen; i++) {
        if (!is_name_char((unsigned char)key[i])) {
            str_printf(err, "%s:%u: malformed key name", c->path, lineno);
            return -1;
        }
    }
    if (klen == 0) {
        str_printf(err, "%s:%u: missing key name before '='", c->path, lineno);
        return -1;
    }
    long i = conf_index_n(key, klen);
    if (i < 0) {
        str_printf(err, "%s:%u: unknown key \"%.*s\"", c->path, lineno, (int)klen, key);
        return -1;
    }
    if ((size_t)i == conf_ndefaults) {
        str_printf(err, "%s:%u: %s cannot be set", c->path, lineno, CONF_DIR_KEY);
        return -1;
    }
    free(c->e[i].raw);
    c->e[i].raw = xstrndup(val, vlen);
    c->e[i].line = lineno;
    return 0;
}

static int conf_parse(struct conf *c, const char *buf, size_t len, struct str *err)
{
    struct str logical = STR_INIT;
    unsigned lineno = 0, start = 0;
    size_t pos = 0;
    int rc = 0;

    str_init(&logical);
    while (pos < len && rc == 0) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - (buf + pos)) : len - pos;
        const char *line = buf + pos;
        pos += llen + (nl ? 1 : 0);
        lineno++;
        if (llen > 0 && line[llen - 1] == '\r')
            llen--;
        if (has_control(line, llen) || memchr(line, '\0', llen) != NULL) {
            str_printf(err, "%s:%u: control character in line", c->path, lineno);
            rc = -1;
            break;
        }
        switch (line_kind(line, llen)) {
        case LINE_COMMENT:
            break;
        case LINE_BLANK:
            if (start > 0)
                rc = conf_setting(c, logical.s, logical.len, start, err);
            start = 0;
            break;
        case LINE_CONT:
            if (start == 0) {
                str_printf(err, "%s:%u: continuation line without a setting before it",
                           c->path, lineno);
                rc = -1;
                break;
            }
            {
                const char *t = line;
                size_t tl = llen;
                trim(&t, &tl);
                str_appendc(&logical, ' ');
                str_append(&logical, t, tl);
            }
            break;
        case LINE_SETTING:
            if (start > 0)
                rc = conf_setting(c, logical.s, logical.len, start, err);
            str_set(&logical, line, llen);
            start = lineno;
            break;
        }
    }
    if (rc == 0 && start > 0)
        rc = conf_setting(c, logical.s, logical.len, start, err);
    str_free(&logical);
    return rc;
}

struct conf *conf_load(const char *config_dir, struct str *err)
{
    struct conf *c = xcalloc(1, sizeof(*c));
    struct str buf = STR_INIT;
    struct str path = STR_INIT;
    int r;

    str_init(&buf);
    str_init(&path);
    c->dir = xstrdup(config_dir);
    str_printf(&path, "%s/%s", config_dir, CONF_FILE);
    c->path = str_detach(&path);
    c->n = conf_ndefaults + 1;
    c->e = xcalloc(c->n, sizeof(*c->e));

    r = read_file(c->path, &buf, err);
    if (r < 0 || (r > 0 && conf_parse(c, buf.s, buf.len, err) < 0)
        || conf_expand_all(c, err) < 0) {
        str_free(&buf);
        conf_free(c);
        return NULL;
    }
    str_free(&buf);
    return c;
}

void conf_free(struct conf *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].raw);
        free(c->e[i].value);
    }
    free(c->e);
    free(c->dir);
    free(c->path);
    free(c);
}

int conf_set(struct conf *c, const char *key, const char *value, struct str *err)
{
    long i = conf_index(key);
    char *old_raw;
    unsigned old_line;

    if (i < 0) {
        str_printf(err, "unknown key \"%s\"", key);
        return -1;
    }
    if ((size_t)i == conf_ndefaults) {
        str_printf(err, "%s cannot be set", CONF_DIR_KEY);
        return -1;
    }
    if (has_control(value, strlen(value))) {
        str_printf(err, "%s: control character in value", key);
        return -1;
    }
    old_raw = c->e[i].raw;
    old_line = c->e[i].line;
    c->e[i].raw = xstrdup(value);
    c->e[i].line = 0;
    if (conf_expand_all(c, err) < 0) {
        free(c->e[i].raw);
        c->e[i].raw = old_raw;
        c->e[i].line = old_line;
        return -1;
    }
    free(old_raw);
    return 0;
}

/* ---- getters ---- */

static size_t conf_need(const struct conf *c, const char *key)
{
    long i = conf_index(key);
    if (i < 0)
        log_panic("configuration key \"%s\" is not in the table", key);
    (void)c;
    return (size_t)i;
}

static long long conf_typed(const struct conf *c, const char *key, enum conf_type t)
{
    size_t i = conf_need(c, key);
    long long v = 0;
    const char *why = NULL;

    if (conf_parse_value(t, c->e[i].value, &v, &why) < 0)
        log_fatal("%s = %s: %s", key, c->e[i].value, why);
    return v;
}

const char *conf_str(const struct conf *c, const char *key)
{
    return c->e[conf_need(c, key)].value;
}

long long conf_int(const struct conf *c, const char *key)
{
    return conf_typed(c, key, CONF_INT);
}

bool conf_bool(const struct conf *c, const char *key)
{
    return conf_typed(c, key, CONF_BOOL) != 0;
}

long long conf_time(const struct conf *c, const char *key)
{
    return conf_typed(c, key, CONF_TIME);
}

int conf_time_ms(const struct conf *c, const char *key)
{
    long long s = conf_time(c, key);

    if (s <= 0)
        return 0;
    return s > INT_MAX / 1000 ? INT_MAX : (int)(s * 1000);
}

long long conf_size(const struct conf *c, const char *key)
{
    return conf_typed(c, key, CONF_SIZE);
}

char **conf_list(const struct conf *c, const char *key)
{
    const char *p = c->e[conf_need(c, key)].value;
    size_t n = 0, cap = 4;
    char **v = xreallocarray(NULL, cap, sizeof(*v));

    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *start = p;
        while (*p != '\0' && *p != ' ' && *p != '\t' && *p != ',')
            p++;
        if (n + 1 >= cap) {
            cap *= 2;
            v = xreallocarray(v, cap, sizeof(*v));
        }
        v[n++] = xstrndup(start, (size_t)(p - start));
    }
    v[n] = NULL;
    return v;
}

bool conf_is_set(const struct conf *c, const char *key)
{
    return c->e[conf_need(c, key)].raw != NULL;
}

const char *conf_raw(const struct conf *c, const char *key)
{
    size_t i = conf_need(c, key);
    if (i == conf_ndefaults)
        return c->dir;
    return c->e[i].raw != NULL ? c->e[i].raw : conf_defaults[i].value;
}

const char *conf_dir(const struct conf *c)
{
    return c->dir;
}

const char *conf_default_dir(void)
{
    const char *d = getenv("POSTERN_CONFIG_DIR");
    return d != NULL && d[0] != '\0' ? d : POSTERN_SYSCONFDIR;
}

/* ---- editing ---- */

/* Does this setting line set key? */
static bool line_sets(const char *line, size_t len, const char *key)
{
    size_t klen = strlen(key);
    if (len < klen || memcmp(line, key, klen) != 0)
        return false;
    for (size_t i = klen; i < len; i++) {
        if (line[i] == '=')
            return true;
        if (line[i] != ' ' && line[i] != '\t')
            return false;
    }
    return false;
}

int conf_edit(const char *config_dir, const char *key, const char *value, struct str *err)
{
    struct str path = STR_INIT, in = STR_INIT, out = STR_INIT;
    long ki = conf_index(key);
    bool done = false, dropping = false;
    size_t pos = 0;
    struct stat sb;
    mode_t mode = 0644;
    bool have_owner = false;
    int rc = -1;

    str_init(&path);
    str_init(&in);
    str_init(&out);
    if (ki < 0 || (size_t)ki == conf_ndefaults) {
        str_printf(err, ki < 0 ? "unknown key \"%s\"" : "%s cannot be set", key);
        goto out;
    }
    if (has_control(value, strlen(value))) {
        str_printf(err, "%s: control character in value", key);
        goto out;
    }
    str_printf(&path, "%s/%s", config_dir, CONF_FILE);
    if (read_file(path.s, &in, err) < 0)
        goto out;
    if (stat(path.s, &sb) == 0) {
        mode = sb.st_mode & 07777;
        have_owner = true;
    }

    while (pos < in.len) {
        const char *line = in.s + pos;
        const char *nl = memchr(line, '\n', in.len - pos);
        size_t llen = nl ? (size_t)(nl - line) : in.len - pos;
        size_t cut = llen;
        pos += llen + (nl ? 1 : 0);
        if (cut > 0 && line[cut - 1] == '\r')
            cut--;
        enum line_kind k = line_kind(line, cut);
        if (dropping) {
            if (k == LINE_CONT)
                continue;
            if (k != LINE_COMMENT)
                dropping = false;
        }
        if (!done && k == LINE_SETTING && line_sets(line, cut, key)) {
            str_printf(&out, "%s = %s\n", key, value);
            done = true;
            dropping = true;
            continue;
        }
        str_append(&out, line, llen);
        str_appendc(&out, '\n');
    }
    if (!done)
        str_printf(&out, "%s = %s\n", key, value);

    if (atomic_file_write(path.s, out.s ? out.s : "", out.len, mode,
                          have_owner ? &sb : NULL, err) < 0)
        goto out;
    rc = 0;
out:
    str_free(&path);
    str_free(&in);
    str_free(&out);
    return rc;
}
