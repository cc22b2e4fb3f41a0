/* The defer record of a message: QUEUE/defer/ID says, for each recipient still
 * deferred after the last delivery attempt, why (the reason) and when that attempt
 * was and the next one is due.  qmgr writes it (temporary file, fsync, rename) before
 * moving the message to deferred/, and removes it with the message; the admin
 * command reads it.  The format, records "T<len>:<bytes>\n" as in queue files, is in
 * postern-queue(5).  A record is read as untrusted: bounded, strictly parsed. */
#include "queue.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file_read.h"
#include "str.h"
#include "xmalloc.h"

#define DEFER_FILE_MAX (8u << 20)

static void record(struct str *out, char type, const char *data)
{
    str_printf(out, "%c%zu:", type, strlen(data));
    str_appends(out, data);
    str_appendc(out, '\n');
}

static void path_of(struct str *p, const char *qdir, const char *id, const char *suffix)
{
    str_clear(p);
    str_printf(p, "%s/%s/%s%s", qdir, QUEUE_DEFER_DIR, id, suffix);
}

int queue_defer_write(const char *qdir, const char *id, const struct queue_defer_rcpt *r,
                      size_t n, struct str *err)
{
    struct str text = STR_INIT, path = STR_INIT, tmp = STR_INIT;
    int fd = -1, rc = -1;

    str_init(&text);
    str_init(&path);
    str_init(&tmp);
    if (!queue_id_valid(id)) {
        errno = EINVAL;
        str_printf(err, "%s: not a queue id", id);
        goto out;
    }
    record(&text, 'V', QUEUE_DEFER_VERSION);
    for (size_t i = 0; i < n; i++) {
        char num[32];
        record(&text, 'R', r[i].addr);
        record(&text, 'W', r[i].reason != NULL ? r[i].reason : "");
        snprintf(num, sizeof(num), "%lld", (long long)r[i].attempt);
        record(&text, 'A', num);
        snprintf(num, sizeof(num), "%lld", (long long)r[i].next);
        record(&text, 'N', num);
    }
    record(&text, 'E', "");
    path_of(&path, qdir, id, "");
    path_of(&tmp, qdir, id, ".tmp");
    fd = open(tmp.s, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
    if (fd < 0) {
        str_printf(err, "%s: %s", tmp.s, strerror(errno));
        goto out;
    }
    size_t off = 0;
    while (off < text.len) {
        ssize_t w = write(fd, text.s + off, text.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            str_printf(err, "%s: %s", tmp.s, w < 0 ? strerror(errno) : "short write");
            goto out;
        }
        off += (size_t)w;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        fd = -1;
        str_printf(err, "%s: %s", tmp.s, strerror(errno));
        goto out;
    }
    fd = -1;
    if (rename(tmp.s, path.s) < 0) {
        str_printf(err, "rename %s: %s", tmp.s, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc < 0 && tmp.s != NULL)
        unlink(tmp.s);
    str_free(&text);
    str_free(&path);
    str_free(&tmp);
    return rc;
}

int queue_defer_remove(const char *qdir, const char *id)
{
    struct str path = STR_INIT;
    int rc;

    if (!queue_id_valid(id)) {
        errno = EINVAL;
        return -1;
    }
    str_init(&path);
    path_of(&path, qdir, id, "");
    rc = unlink(path.s) < 0 && errno != ENOENT ? -1 : 0;
    str_free(&path);
    return rc;
}

/* One record at *pos: type, and its data copied into out.  0, or -1 (malformed). */
static int next_record(const char *buf, size_t len, size_t *pos, char *type, struct str *out)
{
    size_t p = *pos, n = 0;

    if (p >= len)
        return -1;
    *type = buf[p++];
    if (p >= len || buf[p] < '0' || buf[p] > '9')
        return -1;
    while (p < len && buf[p] >= '0' && buf[p] <= '9') {
        n = n * 10 + (size_t)(buf[p] - '0');
        if (n > QUEUE_RECORD_MAX)
            return -1;
        p++;
    }
    if (p >= len || buf[p] != ':')
        return -1;
    p++;
    if (len - p < n + 1 || buf[p + n] != '\n' || memchr(buf + p, '\0', n) != NULL)
        return -1;
    str_set(out, buf + p, n);
    *pos = p + n + 1;
    return 0;
}

static int parse_time(const char *s, time_t *t)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0)
        return -1;
    *t = (time_t)v;
    return 0;
}

int queue_defer_read(const char *qdir, const char *id, struct queue_defer *d, struct str *err)
{
    struct str path = STR_INIT, buf = STR_INIT, data = STR_INIT;
    struct queue_defer_rcpt *cur = NULL;
    size_t pos = 0;
    char type;
    int fd, rc = -1;
    bool versioned = false, ended = false;

    memset(d, 0, sizeof(*d));
    if (!queue_id_valid(id)) {
        errno = EINVAL;
        str_printf(err, "%s: not a queue id", id);
        return -1;
    }
    str_init(&path);
    str_init(&buf);
    str_init(&data);
    path_of(&path, qdir, id, "");
    fd = open(path.s, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        str_printf(err, "%s: %s", path.s, strerror(e));
        errno = e;
        goto out;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        errno = EINVAL;
        str_printf(err, "%s: not a regular file", path.s);
        goto out;
    }
    if (file_read_fd(fd, path.s, DEFER_FILE_MAX, &buf, err) < 0) {
        close(fd);
        goto out;
    }
    close(fd);
    while (pos < buf.len && !ended) {
        if (next_record(buf.s, buf.len, &pos, &type, &data) < 0)
            goto corrupt;
        if (!versioned) {
            if (type != 'V' || strcmp(data.s ? data.s : "", QUEUE_DEFER_VERSION) != 0)
                goto corrupt;
            versioned = true;
            continue;
        }
        switch (type) {
        case 'R':
            if (d->n >= QUEUE_RCPT_MAX)
                goto corrupt;
            d->r = xreallocarray(d->r, d->n + 1, sizeof(*d->r));
            cur = &d->r[d->n++];
            memset(cur, 0, sizeof(*cur));
            cur->addr = xstrdup(data.s ? data.s : "");
            break;
        case 'W':
            if (cur == NULL || cur->reason != NULL)
                goto corrupt;
            cur->reason = xstrdup(data.s ? data.s : "");
            break;
        case 'A':
            if (cur == NULL || parse_time(data.s ? data.s : "", &cur->attempt) < 0)
                goto corrupt;
            break;
        case 'N':
            if (cur == NULL || parse_time(data.s ? data.s : "", &cur->next) < 0)
                goto corrupt;
            break;
        case 'E':
            ended = true;
            break;
        default:
            break;      /* a record type of a later version: skipped */
        }
    }
    if (!ended || pos != buf.len)
        goto corrupt;
    rc = 0;
    goto out;
corrupt:
    queue_defer_free(d);
    errno = EINVAL;
    str_printf(err, "%s: corrupt defer record", path.s);
out:
    str_free(&path);
    str_free(&buf);
    str_free(&data);
    return rc;
}

void queue_defer_free(struct queue_defer *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->r[i].addr);
        free(d->r[i].reason);
    }
    free(d->r);
    memset(d, 0, sizeof(*d));
}

const struct queue_defer_rcpt *queue_defer_find(const struct queue_defer *d, const char *addr)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->r[i].addr, addr) == 0)
            return &d->r[i];
    return NULL;
}
