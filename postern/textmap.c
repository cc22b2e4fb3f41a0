/* Editing text maps ("key value" lines, the source of FILE.cdb) and writing files
 * atomically, for "postern init" and "postern user".  The files are the instance's
 * own; lines are still handled without limits on content beyond what map_build
 * later checks. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "conf.h"
#include "file_read.h"
#include "map.h"
#include "postern.h"
#include "str.h"
#include "xmalloc.h"

#define TEXTMAP_MAX (64u << 20)

char *cmd_map_file(const struct conf *c, enum conf_key key, const char *fallback)
{
    struct str p = STR_INIT;
    char **v;

    str_init(&p);
    v = map_specs_split(conf_str(c, key), &p);      /* checked at load: no error */
    if (v == NULL)
        v = xcalloc(1, sizeof(*v));
    str_clear(&p);
    for (size_t i = 0; v[i] != NULL; i++) {
        if (strncmp(v[i], "cdb:", 4) == 0 && v[i][4] != '\0') {
            str_sets(&p, v[i] + 4);
            strv_free(v);
            return str_detach(&p);
        }
    }
    strv_free(v);
    str_printf(&p, "%s/maps/%s", conf_dir(c), fallback);
    return str_detach(&p);
}

int file_write_atomic(const char *path, const char *data, size_t len, mode_t mode,
                      struct str *err)
{
    return atomic_file_write(path, data, len, mode, NULL, err);
}

/* Reads a whole text file; a missing file reads as empty when missing_ok (and *sb
 * then says new_mode, owned by us). */
static int read_text(const char *path, struct str *buf, struct stat *sb, bool missing_ok,
                     mode_t new_mode, struct str *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && missing_ok) {
            if (sb != NULL) {
                memset(sb, 0, sizeof(*sb));
                sb->st_mode = new_mode;
                sb->st_uid = geteuid();
                sb->st_gid = getegid();
            }
            return 0;
        }
        str_printf(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    if (sb != NULL && fstat(fd, sb) < 0) {
        str_printf(err, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (file_read_fd(fd, path, TEXTMAP_MAX, buf, err) < 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

enum tm_kind { TM_SKIP, TM_CONT, TM_ENTRY };

/* Classifies a line; for an entry, copies its lower-cased key into key. */
static enum tm_kind tm_line(const char *line, size_t len, struct str *key)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len || line[i] == '#')
        return TM_SKIP;
    if (i > 0)
        return TM_CONT;
    while (i < len && line[i] != ' ' && line[i] != '\t')
        i++;
    str_set(key, line, i);
    str_lower(key);
    return TM_ENTRY;
}

/* Walks the lines of buf: fn(line, len incl. newline, kind, key, arg). */
static void tm_walk(const struct str *buf,
                    void (*fn)(const char *, size_t, enum tm_kind, const char *, void *),
                    void *arg)
{
    struct str key = STR_INIT;
    size_t pos = 0;

    str_init(&key);
    while (pos < buf->len) {
        const char *line = buf->s + pos;
        const char *nl = memchr(line, '\n', buf->len - pos);
        size_t full = nl ? (size_t)(nl - line) + 1 : buf->len - pos;
        size_t len = nl ? full - 1 : full;
        pos += full;
        enum tm_kind k = tm_line(line, len, &key);
        fn(line, full, k, k == TM_ENTRY ? key.s : NULL, arg);
    }
    str_free(&key);
}

struct rewrite_state {
    const char *drop;
    struct str out;
    bool dropping;
    int dropped;
};

static void rewrite_line(const char *line, size_t len, enum tm_kind k, const char *key,
                         void *arg)
{
    struct rewrite_state *st = arg;

    if (k == TM_ENTRY)
        st->dropping = st->drop != NULL && strcmp(key, st->drop) == 0;
    if (st->dropping && k != TM_SKIP) {
        st->dropped = 1;
        return;
    }
    str_append(&st->out, line, len);
    if (len > 0 && line[len - 1] != '\n')
        str_appendc(&st->out, '\n');
}

int textmap_rewrite(const char *path, const char *drop, const char *add, mode_t new_mode,
                    struct str *err)
{
    struct str buf = STR_INIT;
    struct rewrite_state st;
    struct stat sb;
    int rc;

    str_init(&buf);
    if (read_text(path, &buf, &sb, true, new_mode, err) < 0) {
        str_free(&buf);
        return -1;
    }
    st.drop = drop;
    str_init(&st.out);
    st.dropping = false;
    st.dropped = 0;
    tm_walk(&buf, rewrite_line, &st);
    if (add != NULL) {
        str_appends(&st.out, add);
        str_appendc(&st.out, '\n');
    }
    rc = atomic_file_write(path, st.out.s ? st.out.s : "", st.out.len, new_mode, &sb, err);
    str_free(&buf);
    str_free(&st.out);
    return rc < 0 ? -1 : st.dropped;
}

struct keys_state {
    void (*fn)(const char *key, void *arg);
    void *arg;
};

static void keys_line(const char *line, size_t len, enum tm_kind k, const char *key,
                      void *arg)
{
    struct keys_state *st = arg;
    if (k == TM_ENTRY)
        st->fn(key, st->arg);
}

int textmap_keys(const char *path, void (*fn)(const char *key, void *arg), void *arg,
                 struct str *err)
{
    struct str buf = STR_INIT;
    struct keys_state st = { fn, arg };

    str_init(&buf);
    if (read_text(path, &buf, NULL, false, 0, err) < 0) {
        str_free(&buf);
        return -1;
    }
    tm_walk(&buf, keys_line, &st);
    str_free(&buf);
    return 0;
}

struct has_state {
    const char *key;
    int found;
};

static void has_key(const char *key, void *arg)
{
    struct has_state *st = arg;
    if (strcmp(key, st->key) == 0)
        st->found = 1;
}

int textmap_has(const char *path, const char *key, struct str *err)
{
    struct has_state st = { key, 0 };
    if (access(path, F_OK) < 0 && errno == ENOENT)
        return 0;
    if (textmap_keys(path, has_key, &st, err) < 0)
        return -1;
    return st.found;
}
