/* postern.conf reader, typed accessors and in-place editor (syntax in conf.h and
 * postern.conf(5)).  The file is trusted as far as the admin who wrote it, but it is
 * still parsed defensively: bounded size, no control characters, every value checked
 * against its key's type and bounds after $expansion (conf_check.c), errors name
 * file:line, key, value and rule. */
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

#define CONF_SHOW_MAX 200                /* bytes of a value quoted in a message */

struct conf_entry {
    char *raw;              /* as set (file or conf_set), NULL = default */
    unsigned line;          /* line of the file that set it, 0 = conf_set/default */
    char *value;            /* expanded */
    long long num;          /* COUNT, TIME (seconds), SIZE, BOOL: the parsed value */
};

struct conf {
    char *dir;
    char *path;
    struct str text;        /* what the file held */
    bool unchecked;         /* conf_load_unchecked: values not checked (yet) */
    struct conf_entry e[CONF_NKEYS];
};

/* ---- key table ---- */

static enum conf_type key_type(size_t i)
{
    return i < conf_ndefaults ? conf_defaults[i].type : CONF_PATH;
}

const char *conf_key_name(enum conf_key k)
{
    if ((size_t)k < conf_ndefaults)
        return conf_defaults[k].name;
    return k == CONF_config_directory ? "config_directory" : "(no such key)";
}

static long conf_index_n(const char *key, size_t len)
{
    for (size_t i = 0; i < CONF_NKEYS; i++) {
        const char *name = conf_key_name((enum conf_key)i);
        if (strlen(name) == len && memcmp(name, key, len) == 0)
            return (long)i;
    }
    return -1;
}

int conf_key_find(const char *name)
{
    return (int)conf_index_n(name, strlen(name));
}

static int is_name_char(int c)
{
    return isascii(c) && (isalnum(c) || c == '_');
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
    char *val[CONF_NKEYS];          /* expanded values being computed, NULL = not yet */
    long long num[CONF_NKEYS];      /* their parsed numbers */
    unsigned char busy[CONF_NKEYS]; /* 1 while a key is being expanded (loops) */
    unsigned height[CONF_NKEYS];    /* longest chain of $references below each key */
    char *host;                     /* system host name, filled on demand */
};

static void where(const struct conf *c, size_t i, struct str *err)
{
    if (c->e[i].raw != NULL && c->e[i].line > 0)
        str_printf(err, "%s:%u: ", c->path, c->e[i].line);
    else if (c->e[i].raw != NULL)
        ;   /* set by conf_set: the message names the key */
    else
        str_printf(err, "%s: (default) ", c->path);
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

/* "key = value: rule", the value cut short when it is long. */
static void refusal(struct str *err, size_t i, const char *value, const char *rule)
{
    size_t n = strlen(value);

    str_printf(err, "%s = %.*s%s: %s", conf_key_name(i),
               (int)(n > CONF_SHOW_MAX ? CONF_SHOW_MAX : n), value,
               n > CONF_SHOW_MAX ? "..." : "", rule);
}

static int expand_key(struct expand_state *st, size_t i, unsigned depth, struct str *err)
{
    struct conf *c = st->c;
    struct str out = STR_INIT, why = STR_INIT;
    const char *raw;
    int rc = -1;

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
    str_init(&why);

    if (i == CONF_config_directory) {
        str_sets(&out, c->dir);
    } else {
        raw = c->e[i].raw != NULL ? c->e[i].raw : conf_defaults[i].value;
        if (expand_text(st, i, raw, depth, &out, err) < 0)
            goto out;
        /* The value as configured is checked; the computed defaults below are the
         * system's, not the admin's. */
        if (conf_value_check(&conf_defaults[i], out.s, &st->num[i], &why) < 0
            && !c->unchecked) {
            where(c, i, err);
            refusal(err, i, out.s, why.s);
            goto out;
        }
        if (out.len == 0 && i == CONF_myhostname) {
            str_sets(&out, system_hostname(st));
        } else if (out.len == 0 && i == CONF_mydomain) {
            if (expand_key(st, CONF_myhostname, depth + 1, err) < 0)
                goto out;
            const char *h = st->val[CONF_myhostname];
            const char *dot = strchr(h, '.');
            str_sets(&out, dot != NULL && dot[1] != '\0' ? dot + 1 : h);
        }
    }
    st->val[i] = str_detach(&out);
    rc = 0;
out:
    st->busy[i] = 0;
    str_free(&out);
    str_free(&why);
    return rc;
}

/* Computes every expanded value; on success replaces c's values. */
static int conf_expand_all(struct conf *c, struct str *err)
{
    struct expand_state *st = xcalloc(1, sizeof(*st));
    int rc = 0;

    st->c = c;
    for (size_t i = 0; i < CONF_NKEYS && rc == 0; i++)
        rc = expand_key(st, i, 0, err);
    for (size_t i = 0; i < CONF_NKEYS; i++) {
        if (rc == 0) {
            free(c->e[i].value);
            c->e[i].value = st->val[i];
            c->e[i].num = st->num[i];
        } else {
            free(st->val[i]);
        }
    }
    free(st->host);
    free(st);
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
    if ((size_t)i == CONF_config_directory) {
        str_printf(err, "%s:%u: config_directory cannot be set", c->path, lineno);
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

static struct conf *conf_new(const char *config_dir)
{
    struct conf *c = xcalloc(1, sizeof(*c));
    struct str path = STR_INIT;

    str_init(&path);
    str_init(&c->text);
    c->dir = xstrdup(config_dir);
    str_printf(&path, "%s/%s", config_dir, CONF_FILE);
    c->path = str_detach(&path);
    return c;
}

/* Parses c->text and computes every value. */
static struct conf *conf_finish(struct conf *c, struct str *err)
{
    if (conf_parse(c, c->text.s, c->text.len, err) < 0 || conf_expand_all(c, err) < 0) {
        conf_free(c);
        return NULL;
    }
    return c;
}

struct conf *conf_load(const char *config_dir, struct str *err)
{
    struct conf *c = conf_new(config_dir);

    if (read_file(c->path, &c->text, err) < 0) {
        conf_free(c);
        return NULL;
    }
    return conf_finish(c, err);
}

struct conf *conf_load_unchecked(const char *config_dir, struct str *err)
{
    struct conf *c = conf_new(config_dir);

    c->unchecked = true;
    if (read_file(c->path, &c->text, err) < 0) {
        conf_free(c);
        return NULL;
    }
    return conf_finish(c, err);
}

struct conf *conf_load_fd(const char *config_dir, int fd, struct str *err)
{
    struct conf *c = conf_new(config_dir);
    char buf[8192];
    off_t off = 0;

    for (;;) {
        ssize_t n = pread(fd, buf, sizeof(buf), off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            str_printf(err, "%s (descriptor %d): %s", c->path, fd, strerror(errno));
            conf_free(c);
            return NULL;
        }
        if (n == 0)
            break;
        if (c->text.len + (size_t)n > CONF_FILE_MAX) {
            str_printf(err, "%s (descriptor %d): larger than %u bytes", c->path, fd,
                       CONF_FILE_MAX);
            conf_free(c);
            return NULL;
        }
        str_append(&c->text, buf, (size_t)n);
        off += n;
    }
    return conf_finish(c, err);
}

const char *conf_text(const struct conf *c, size_t *len)
{
    *len = c->text.len;
    return c->text.s;
}

void conf_free(struct conf *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < CONF_NKEYS; i++) {
        free(c->e[i].raw);
        free(c->e[i].value);
    }
    str_free(&c->text);
    free(c->dir);
    free(c->path);
    free(c);
}

int conf_set(struct conf *c, const char *key, const char *value, struct str *err)
{
    int i = conf_key_find(key);
    struct str why = STR_INIT;
    char *old_raw;
    unsigned old_line;

    if (i < 0) {
        str_printf(err, "unknown key \"%s\"", key);
        return -1;
    }
    if (i == CONF_config_directory) {
        str_printf(err, "config_directory cannot be set");
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
    /* Unchecked, the other keys wait for conf_check_all; this one is checked now. */
    if (c->unchecked && conf_value_check(&conf_defaults[i], c->e[i].value, NULL, &why) < 0) {
        refusal(err, (size_t)i, c->e[i].value, why.s);
        str_free(&why);
        free(c->e[i].raw);
        c->e[i].raw = old_raw;
        c->e[i].line = old_line;
        if (conf_expand_all(c, &why) < 0)
            log_panic("conf_set: the configuration no longer expands: %s", why.s);
        str_free(&why);
        return -1;
    }
    free(old_raw);
    return 0;
}

int conf_check_all(struct conf *c, struct str *err)
{
    if (!c->unchecked)
        return 0;
    c->unchecked = false;
    if (conf_expand_all(c, err) < 0) {
        c->unchecked = true;
        return -1;
    }
    return 0;
}

/* ---- accessors ---- */

#define T(type) (1u << (type))
#define STR_TYPES (T(CONF_STR) | T(CONF_ENUM) | T(CONF_HOST) | T(CONF_HOSTPORT) \
                   | T(CONF_PATH) | T(CONF_RELPATH) | T(CONF_MAPS) | T(CONF_USER) \
                   | T(CONF_GROUP))
#define LIST_TYPES (T(CONF_LIST) | T(CONF_DOMAINS) | T(CONF_CIDRS) | T(CONF_ADDRS) \
                    | T(CONF_ADDRPORTS))

/* The entry of key k, which the caller reads as one of types: anything else is a
 * bug in the caller. */
static const struct conf_entry *entry(const struct conf *c, enum conf_key k, unsigned types,
                                      const char *accessor)
{
    if ((size_t)k >= CONF_NKEYS)
        log_panic("%s: no configuration key number %d", accessor, (int)k);
    if ((T(key_type(k)) & types) == 0)
        log_panic("%s: configuration key %s is a %s", accessor, conf_key_name(k),
                  conf_type_name(key_type(k)));
    if (c->unchecked && (types & (STR_TYPES | LIST_TYPES)) == 0)
        log_panic("%s: configuration key %s read before it was checked", accessor,
                  conf_key_name(k));
    return &c->e[k];
}

const char *conf_str(const struct conf *c, enum conf_key k)
{
    return entry(c, k, STR_TYPES, "conf_str")->value;
}

char **conf_list(const struct conf *c, enum conf_key k)
{
    return conf_list_split(entry(c, k, LIST_TYPES, "conf_list")->value);
}

long long conf_count(const struct conf *c, enum conf_key k)
{
    return entry(c, k, T(CONF_COUNT), "conf_count")->num;
}

bool conf_bool(const struct conf *c, enum conf_key k)
{
    return entry(c, k, T(CONF_BOOL), "conf_bool")->num != 0;
}

long long conf_time_ms(const struct conf *c, enum conf_key k)
{
    /* at most 100 days by the table's bounds: no overflow */
    return entry(c, k, T(CONF_TIME), "conf_time_ms")->num * 1000;
}

long long conf_size(const struct conf *c, enum conf_key k)
{
    return entry(c, k, T(CONF_SIZE), "conf_size")->num;
}

#define ANY_TYPE (~0u)

bool conf_is_set(const struct conf *c, enum conf_key k)
{
    return entry(c, k, ANY_TYPE, "conf_is_set")->raw != NULL;
}

const char *conf_raw(const struct conf *c, enum conf_key k)
{
    const struct conf_entry *e = entry(c, k, ANY_TYPE, "conf_raw");

    if (k == CONF_config_directory)
        return c->dir;
    return e->raw != NULL ? e->raw : conf_defaults[k].value;
}

const char *conf_expanded(const struct conf *c, enum conf_key k)
{
    return entry(c, k, ANY_TYPE, "conf_expanded")->value;
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
    int ki = conf_key_find(key);
    bool done = false, dropping = false;
    size_t pos = 0, nsets = 0, seen = 0;
    struct stat sb;
    mode_t mode = 0644;
    bool have_owner = false;
    int rc = -1;

    str_init(&path);
    str_init(&in);
    str_init(&out);
    if (ki < 0 || ki == CONF_config_directory) {
        str_printf(err, ki < 0 ? "unknown key \"%s\"" : "%s cannot be set", key);
        goto out;
    }
    if (value != NULL && has_control(value, strlen(value))) {
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

    /* The last setting of the key is the one that counts: that one is replaced. */
    while (pos < in.len) {
        const char *line = in.s + pos;
        const char *nl = memchr(line, '\n', in.len - pos);
        size_t cut = nl ? (size_t)(nl - line) : in.len - pos;
        pos += cut + (nl ? 1 : 0);
        if (cut > 0 && line[cut - 1] == '\r')
            cut--;
        if (line_kind(line, cut) == LINE_SETTING && line_sets(line, cut, key))
            nsets++;
    }
    pos = 0;
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
        if (k == LINE_SETTING && line_sets(line, cut, key)
            && (value == NULL || (!done && ++seen == nsets))) {
            if (value != NULL)
                str_printf(&out, "%s = %s\n", key, value);
            done = true;
            dropping = true;
            continue;
        }
        str_append(&out, line, llen);
        str_appendc(&out, '\n');
    }
    if (!done && value != NULL)
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
