/* map_build(): compiles a text map ("key value" lines) into FILE.cdb through a
 * temporary file, fsync and rename(2), so readers see the old table or the new one,
 * never half of one.  The text file is the admin's; it is still checked line by line
 * (control characters, duplicate keys, line length) and errors name file:line. */

#include <cdb.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "map.h"
#include "str.h"
#include "xmalloc.h"

#define MAP_LINE_MAX (1u << 20)         /* longest text line */
#define MAP_ENTRY_MAX (1u << 20)        /* longest key + value after continuation */

struct map_builder {
    const char *path;
    struct cdb_make cm;
    struct str key;
    struct str value;
    unsigned line;              /* line of the pending entry, 0 = none */
    long count;
};

static bool bad_char(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return true;
    }
    return false;
}

/* Adds the pending entry, if any. */
static int builder_flush(struct map_builder *b, struct str *err)
{
    if (b->line == 0)
        return 0;
    if (bad_char(b->key.s, b->key.len) || bad_char(b->value.s, b->value.len)) {
        str_printf(err, "%s:%u: control character in key or value", b->path, b->line);
        return -1;
    }
    if (b->value.len == 0) {
        str_printf(err, "%s:%u: expected \"key value\"", b->path, b->line);
        return -1;
    }
    str_lower(&b->key);
    int r = cdb_make_exists(&b->cm, b->key.s, (unsigned)b->key.len);
    if (r < 0) {
        str_printf(err, "%s.cdb: %s", b->path, strerror(errno));
        return -1;
    }
    if (r > 0) {
        str_printf(err, "%s:%u: duplicate key \"%s\"", b->path, b->line, b->key.s);
        return -1;
    }
    if (cdb_make_add(&b->cm, b->key.s, (unsigned)b->key.len, b->value.s,
                     (unsigned)b->value.len) < 0) {
        str_printf(err, "%s.cdb: %s", b->path, strerror(errno));
        return -1;
    }
    b->count++;
    b->line = 0;
    return 0;
}

static void trim_ws(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

static int builder_line(struct map_builder *b, const char *line, size_t n,
                        unsigned lineno, struct str *err)
{
    const char *s = line;
    size_t len = n;

    if (memchr(line, '\0', n) != NULL) {
        str_printf(err, "%s:%u: NUL byte in line", b->path, lineno);
        return -1;
    }
    trim_ws(&s, &len);
    if (len == 0 || s[0] == '#')
        return 0;
    if (s != line) {
        /* continuation of the previous entry */
        if (b->line == 0) {
            str_printf(err, "%s:%u: continuation line without an entry before it",
                       b->path, lineno);
            return -1;
        }
        if (b->value.len + 1 + len > MAP_ENTRY_MAX) {
            str_printf(err, "%s:%u: entry too long", b->path, lineno);
            return -1;
        }
        if (b->value.len > 0)
            str_appendc(&b->value, ' ');
        str_append(&b->value, s, len);
        return 0;
    }
    if (builder_flush(b, err) < 0)
        return -1;
    size_t k = 0;
    while (k < len && s[k] != ' ' && s[k] != '\t')
        k++;
    str_set(&b->key, s, k);
    const char *v = s + k;
    size_t vlen = len - k;
    trim_ws(&v, &vlen);
    str_set(&b->value, v, vlen);
    b->line = lineno;
    return 0;
}

static int fsync_parent(const char *path)
{
    char *copy = xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = -1;
    if (fd >= 0) {
        rc = fsync(fd);
        close(fd);
    }
    free(copy);
    return rc;
}

long map_build(const char *textfile, struct str *err)
{
    struct map_builder b;
    struct str target = STR_INIT, tmp = STR_INIT;
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned lineno = 0;
    int fd = -1;
    long rc = -1;
    bool started = false;
    struct stat sb, old;

    memset(&b, 0, sizeof(b));
    b.path = textfile;
    str_init(&b.key);
    str_init(&b.value);
    str_init(&target);
    str_init(&tmp);

    f = fopen(textfile, "re");
    if (f == NULL || fstat(fileno(f), &sb) < 0) {
        str_printf(err, "%s: %s", textfile, strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {
        str_printf(err, "%s: not a regular file", textfile);
        goto out;
    }
    str_printf(&target, "%s.cdb", textfile);
    str_printf(&tmp, "%s.tmpXXXXXX", target.s);
    fd = mkstemp(tmp.s);
    if (fd < 0) {
        str_printf(err, "%s: %s", tmp.s, strerror(errno));
        str_clear(&tmp);
        goto out;
    }
    if (cdb_make_start(&b.cm, fd) < 0) {
        str_printf(err, "%s: %s", tmp.s, strerror(errno));
        goto out;
    }
    started = true;

    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        size_t len = (size_t)n;
        if (len > MAP_LINE_MAX) {
            str_printf(err, "%s:%u: line longer than %u bytes", textfile, lineno,
                       MAP_LINE_MAX);
            goto out;
        }
        if (line[len - 1] == '\n')
            len--;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (builder_line(&b, line, len, lineno, err) < 0)
            goto out;
    }
    if (ferror(f)) {
        str_printf(err, "%s: %s", textfile, strerror(errno));
        goto out;
    }
    if (builder_flush(&b, err) < 0)
        goto out;
    started = false;
    if (cdb_make_finish(&b.cm) < 0) {
        str_printf(err, "%s: %s", tmp.s, strerror(errno));
        goto out;
    }

    /* The table gets the rights of the table it replaces, else those of its source
     * (a password map stays as private as its text file). */
    const struct stat *like = stat(target.s, &old) == 0 ? &old : &sb;
    if (fchmod(fd, like->st_mode & 0777) < 0) {
        str_printf(err, "%s: %s", tmp.s, strerror(errno));
        goto out;
    }
    if (geteuid() == 0 && fchown(fd, like->st_uid, like->st_gid) < 0) {
        str_printf(err, "%s: %s", tmp.s, strerror(errno));
        goto out;
    }
    if (fsync(fd) < 0) {
        str_printf(err, "%s: %s", tmp.s, strerror(errno));
        goto out;
    }
    int c = close(fd);
    fd = -1;
    if (c < 0) {
        str_printf(err, "%s: %s", tmp.s, strerror(errno));
        goto out;
    }
    if (rename(tmp.s, target.s) < 0) {
        str_printf(err, "%s: %s", target.s, strerror(errno));
        goto out;
    }
    str_clear(&tmp);
    (void)fsync_parent(target.s);
    rc = b.count;
out:
    if (started)
        (void)cdb_make_finish(&b.cm);    /* frees its memory; the file goes */
    if (fd >= 0)
        close(fd);
    if (rc < 0 && tmp.len > 0)
        (void)unlink(tmp.s);
    if (f != NULL)
        fclose(f);
    free(line);
    str_free(&b.key);
    str_free(&b.value);
    str_free(&target);
    str_free(&tmp);
    return rc;
}
