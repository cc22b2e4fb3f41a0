/* Reading queue files (format: postern-queue(5)).  A queue file is untrusted input:
 * anyone who can write the queue, a crash, or a full disk may have left any bytes
 * there.  The parser is strict: every length is checked before it is used, counts
 * are bounded, records come in their order, and the file must end exactly after E.
 * All reads are pread(2) through a buffer, so the file offset is never relied on. */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue.h"

#include "attr.h"
#include "str.h"
#include "xmalloc.h"

#define QR_BUF 65536u           /* read buffer */
#define QR_PEEK 64u             /* read size while walking content records */
#define QR_LEN_DIGITS 7         /* QUEUE_RECORD_MAX has 7 decimal digits */
#define QR_ATTR_MAX 10000       /* most A records */

struct qreader {
    int fd;
    off_t base;                 /* file offset of buf[0] */
    size_t pos, len;            /* next byte, bytes valid in buf */
    size_t want;                /* how much one refill reads (<= QR_BUF) */
    char *buf;
};

/* 1 for a byte, 0 at end of file, -1 on I/O error. */
static int qr_fill(struct qreader *r)
{
    ssize_t n;

    r->base += (off_t)r->pos;
    r->pos = r->len = 0;
    do
        n = pread(r->fd, r->buf, r->want, r->base);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    r->len = (size_t)n;
    return n > 0;
}

static off_t qr_tell(const struct qreader *r)
{
    return r->base + (off_t)r->pos;
}

static void qr_seek(struct qreader *r, off_t off)
{
    if (off >= r->base && off <= r->base + (off_t)r->len) {
        r->pos = (size_t)(off - r->base);
    } else {
        r->base = off;
        r->pos = r->len = 0;
    }
}

/* The next byte in *c: 1, 0 at EOF, -1 on error. */
static int qr_getc(struct qreader *r, char *c)
{
    if (r->pos == r->len) {
        int rc = qr_fill(r);
        if (rc <= 0)
            return rc;
    }
    *c = r->buf[r->pos++];
    return 1;
}

/* Reads exactly n bytes into dst: 1, 0 when the file ends first, -1 on error. */
static int qr_read(struct qreader *r, char *dst, size_t n)
{
    while (n > 0) {
        size_t k;
        if (r->pos == r->len) {
            int rc = qr_fill(r);
            if (rc <= 0)
                return rc;
        }
        k = r->len - r->pos;
        if (k > n)
            k = n;
        memcpy(dst, r->buf + r->pos, k);
        r->pos += k;
        dst += k;
        n -= k;
    }
    return 1;
}

enum { QR_OK = 1, QR_EOF = 0, QR_IOERR = -1, QR_CORRUPT = -2 };

/* Reads a record header "T<len>:": the type and length.  QR_EOF only when the file
 * ends before the type byte. */
static int qr_header(struct qreader *r, char *type, size_t *len, const char **why)
{
    char c;
    size_t v = 0;
    int digits = 0, rc;

    rc = qr_getc(r, type);
    if (rc <= 0)
        return rc;
    if (!((*type >= 'A' && *type <= 'Z') || (*type >= 'a' && *type <= 'z'))) {
        *why = "bad record type";
        return QR_CORRUPT;
    }
    for (;;) {
        rc = qr_getc(r, &c);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            *why = "truncated record header";
            return QR_CORRUPT;
        }
        if (c == ':')
            break;
        if (c < '0' || c > '9' || (digits == 1 && v == 0) || digits == QR_LEN_DIGITS) {
            *why = "bad record length";
            return QR_CORRUPT;
        }
        v = v * 10 + (size_t)(c - '0');
        digits++;
    }
    if (digits == 0) {
        *why = "bad record length";
        return QR_CORRUPT;
    }
    if (v > QUEUE_RECORD_MAX) {
        *why = "record too long";
        return QR_CORRUPT;
    }
    *len = v;
    return QR_OK;
}

/* The '\n' that ends every record. */
static int qr_newline(struct qreader *r, const char **why)
{
    char c;
    int rc = qr_getc(r, &c);

    if (rc < 0)
        return rc;
    if (rc == 0) {
        *why = "truncated record";
        return QR_CORRUPT;
    }
    if (c != '\n') {
        *why = "record not ended by newline";
        return QR_CORRUPT;
    }
    return QR_OK;
}

/* Reads a record's data (NUL-terminated copy in val) and its '\n'. */
static int qr_value(struct qreader *r, size_t len, struct str *val, const char **why)
{
    int rc;

    str_clear(val);
    str_reserve(val, len);
    rc = qr_read(r, val->s, len);
    if (rc < 0)
        return rc;
    if (rc == 0) {
        *why = "truncated record";
        return QR_CORRUPT;
    }
    val->len = len;
    val->s[len] = '\0';
    return qr_newline(r, why);
}

static bool has_nul(const struct str *s)
{
    return memchr(s->s, '\0', s->len) != NULL;
}

static void qf_reset(struct queue_file *qf)
{
    memset(qf, 0, sizeof(*qf));
    qf->fd = -1;
    attr_init(&qf->attrs);
}

void queue_file_close(struct queue_file *qf)
{
    if (qf == NULL)
        return;
    if (qf->fd >= 0)
        close(qf->fd);
    free(qf->sender);
    attr_free(&qf->attrs);
    for (size_t i = 0; i < qf->nrcpt; i++) {
        free(qf->rcpt[i].addr);
        free(qf->rcpt[i].orcpt);
        free(qf->rcpt[i].notify);
    }
    free(qf->rcpt);
    qf_reset(qf);
}

static bool parse_time(const char *s, time_t *out)
{
    long long v = 0;

    if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (LLONG_MAX - 9) / 10)
            return false;
        v = v * 10 + (*s - '0');
    }
    *out = (time_t)v;
    return true;
}

/* The envelope and content walk.  Returns QR_OK or a negative QR_ code. */
static int qf_parse(struct qreader *r, struct queue_file *qf, const char **why)
{
    struct str val = STR_INIT;
    char *orcpt = NULL, *notify = NULL;
    size_t rcap = 0, nattr = 0;
    bool have_time = false, in_content = false;
    int rc;
    char type;
    size_t len;

    /* V first. */
    rc = qr_header(r, &type, &len, why);
    if (rc == QR_EOF) {
        *why = "empty queue file";
        return QR_CORRUPT;
    }
    if (rc < 0)
        return rc;
    if (type != 'V') {
        *why = "missing version record";
        return QR_CORRUPT;
    }
    if ((rc = qr_value(r, len, &val, why)) < 0)
        goto out;
    if (strcmp(val.s, QUEUE_FORMAT_VERSION) != 0 || val.len != 1) {
        *why = "unsupported version";
        rc = QR_CORRUPT;
        goto out;
    }

    for (;;) {
        off_t type_offset = qr_tell(r);

        rc = qr_header(r, &type, &len, why);
        if (rc == QR_EOF) {
            *why = "missing end record";
            rc = QR_CORRUPT;
        }
        if (rc < 0)
            goto out;
        if (in_content && type != 'C' && type != 'E') {
            *why = "unexpected record after content";
            rc = QR_CORRUPT;
            goto out;
        }
        if ((orcpt || notify) && type != 'R' && type != 'D' && type != 'O' && type != 'N') {
            *why = "recipient options without recipient";
            rc = QR_CORRUPT;
            goto out;
        }
        switch (type) {
        case 'C':
            if (qf->sender == NULL || qf->nrcpt == 0) {
                *why = "content before envelope";
                rc = QR_CORRUPT;
                goto out;
            }
            if (!in_content) {
                in_content = true;
                qf->content_offset = type_offset;
                r->want = QR_PEEK;
            }
            if (len > SIZE_MAX - qf->content_size) {
                *why = "content too large";
                rc = QR_CORRUPT;
                goto out;
            }
            qf->content_size += len;
            qr_seek(r, qr_tell(r) + (off_t)len);
            if ((rc = qr_newline(r, why)) < 0)
                goto out;
            continue;
        case 'E':
            if (len != 0) {
                *why = "bad end record";
                rc = QR_CORRUPT;
                goto out;
            }
            if ((rc = qr_newline(r, why)) < 0)
                goto out;
            if (qf->sender == NULL || qf->nrcpt == 0 || !have_time) {
                *why = "incomplete envelope";
                rc = QR_CORRUPT;
                goto out;
            }
            if (!in_content)
                qf->content_offset = type_offset;
            {
                char c;
                rc = qr_getc(r, &c);
                if (rc < 0)
                    goto out;
                if (rc > 0) {
                    *why = "data after end record";
                    rc = QR_CORRUPT;
                    goto out;
                }
            }
            rc = QR_OK;
            goto out;
        default:
            break;
        }

        /* Envelope records: read the value. */
        if ((rc = qr_value(r, len, &val, why)) < 0)
            goto out;
        switch (type) {
        case 'V':
            *why = "duplicate version record";
            rc = QR_CORRUPT;
            goto out;
        case 'T':
            if (have_time || qf->sender != NULL || !parse_time(val.s, &qf->arrival)) {
                *why = "bad arrival time record";
                rc = QR_CORRUPT;
                goto out;
            }
            have_time = true;
            break;
        case 'S':
            if (qf->sender != NULL || !have_time || has_nul(&val)) {
                *why = "bad sender record";
                rc = QR_CORRUPT;
                goto out;
            }
            qf->sender = xstrdup(val.s);
            break;
        case 'A': {
            char *eq = memchr(val.s, '=', val.len);
            if (qf->sender == NULL || qf->nrcpt > 0 || eq == NULL ||
                !attr_name_valid(val.s, (size_t)(eq - val.s))) {
                *why = "bad attribute record";
                rc = QR_CORRUPT;
                goto out;
            }
            if (++nattr > QR_ATTR_MAX) {
                *why = "too many attributes";
                rc = QR_CORRUPT;
                goto out;
            }
            *eq = '\0';
            attr_addn(&qf->attrs, val.s, eq + 1, val.len - (size_t)(eq + 1 - val.s));
            break;
        }
        case 'O':
        case 'N':
            if (qf->sender == NULL || has_nul(&val) ||
                (type == 'O' ? orcpt != NULL : notify != NULL)) {
                *why = "bad recipient option record";
                rc = QR_CORRUPT;
                goto out;
            }
            if (type == 'O')
                orcpt = xstrdup(val.s);
            else
                notify = xstrdup(val.s);
            break;
        case 'R':
        case 'D': {
            struct queue_rcpt *rc_;
            if (qf->sender == NULL || has_nul(&val) || val.len == 0) {
                *why = "bad recipient record";
                rc = QR_CORRUPT;
                goto out;
            }
            if (qf->nrcpt >= QUEUE_RCPT_MAX) {
                *why = "too many recipients";
                rc = QR_CORRUPT;
                goto out;
            }
            if (qf->nrcpt == rcap) {
                rcap = rcap ? rcap * 2 : 8;
                qf->rcpt = xreallocarray(qf->rcpt, rcap, sizeof(*qf->rcpt));
            }
            rc_ = &qf->rcpt[qf->nrcpt++];
            rc_->addr = xstrdup(val.s);
            rc_->orcpt = orcpt;
            rc_->notify = notify;
            rc_->type_offset = type_offset;
            rc_->done = type == 'D';
            orcpt = notify = NULL;
            break;
        }
        default:
            /* A record type of a later minor revision: skipped. */
            break;
        }
    }
out:
    free(orcpt);
    free(notify);
    str_free(&val);
    return rc;
}

int queue_file_openat(int dirfd, const char *name, int flags, struct queue_file *qf,
                      struct str *err)
{
    struct qreader r;
    const char *why = NULL, *base;
    size_t n;
    int rc, e;

    qf_reset(qf);
    if ((flags & O_ACCMODE) != O_RDONLY && (flags & O_ACCMODE) != O_RDWR) {
        errno = EINVAL;
        str_printf(err, "%s: bad open flags", name);
        return -1;
    }
    base = strrchr(name, '/');
    base = base ? base + 1 : name;
    n = strlen(base);
    if (n > QUEUE_ID_LEN)
        n = QUEUE_ID_LEN;
    memcpy(qf->id, base, n);
    qf->id[n] = '\0';

    /* O_NONBLOCK: a FIFO planted in a queue directory (maildrop/ is writable by a
     * group) must not hang the reader in open(2); anything but a regular file is
     * corrupt.  The flag changes nothing for regular files. */
    qf->fd = openat(dirfd, name,
                    (flags & O_ACCMODE) | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    if (qf->fd < 0) {
        e = errno;
        str_printf(err, "open %s: %s", name, strerror(e));
        qf_reset(qf);
        errno = e;
        return -1;
    }
    {
        struct stat sb;
        int st = fstat(qf->fd, &sb);
        if (st < 0 || !S_ISREG(sb.st_mode)) {
            e = st < 0 ? errno : EINVAL;
            if (st < 0)
                str_printf(err, "stat %s: %s", name, strerror(e));
            else
                str_printf(err, "%s: corrupt queue file: not a regular file", name);
            queue_file_close(qf);
            errno = e;
            return -1;
        }
    }
    r.fd = qf->fd;
    r.base = 0;
    r.pos = r.len = 0;
    r.want = QR_BUF;
    r.buf = xmalloc(QR_BUF);
    rc = qf_parse(&r, qf, &why);
    e = errno;
    free(r.buf);
    if (rc == QR_OK)
        return 0;
    if (rc == QR_CORRUPT) {
        e = EINVAL;
        str_printf(err, "%s: corrupt queue file: %s", name, why ? why : "bad format");
    } else {
        str_printf(err, "read %s: %s", name, strerror(e));
    }
    queue_file_close(qf);
    errno = e;
    return -1;
}

int queue_file_open(const char *path, int flags, struct queue_file *qf, struct str *err)
{
    return queue_file_openat(AT_FDCWD, path, flags, qf, err);
}

const char *queue_file_attr(const struct queue_file *qf, const char *name)
{
    return attr_get(&qf->attrs, name);
}

int queue_file_content(struct queue_file *qf,
                       int (*fn)(void *arg, const char *data, size_t len), void *arg)
{
    struct qreader r;
    const char *why = NULL;
    int rc;

    r.fd = qf->fd;
    r.base = qf->content_offset;
    r.pos = r.len = 0;
    r.want = QR_BUF;
    r.buf = xmalloc(QR_BUF);
    for (;;) {
        char type;
        size_t len;

        rc = qr_header(&r, &type, &len, &why);
        if (rc == QR_IOERR)
            break;
        if (rc != QR_OK || (type != 'C' && type != 'E')) {
            errno = EINVAL;
            rc = -1;
            break;
        }
        if (type == 'E') {
            rc = 0;
            break;
        }
        /* Hand over what the buffer holds, refilling, without copying. */
        while (len > 0) {
            size_t k;
            if (r.pos == r.len) {
                int f = qr_fill(&r);
                if (f <= 0) {
                    if (f == 0)
                        errno = EINVAL;
                    rc = -1;
                    goto out;
                }
            }
            k = r.len - r.pos;
            if (k > len)
                k = len;
            rc = fn(arg, r.buf + r.pos, k);
            if (rc != 0)
                goto out;
            r.pos += k;
            len -= k;
        }
        if (qr_newline(&r, &why) != QR_OK) {
            errno = EINVAL;
            rc = -1;
            break;
        }
    }
out:
    free(r.buf);
    return rc;
}

int queue_mark_done(struct queue_file *qf, size_t i)
{
    char c;
    ssize_t n;

    if (i >= qf->nrcpt) {
        errno = EINVAL;
        return -1;
    }
    do
        n = pread(qf->fd, &c, 1, qf->rcpt[i].type_offset);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if (n == 0 || (c != 'R' && c != 'D')) {
        errno = EINVAL;
        return -1;
    }
    if (c == 'R') {
        do
            n = pwrite(qf->fd, "D", 1, qf->rcpt[i].type_offset);
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return -1;
        if (n != 1) {
            errno = EIO;
            return -1;
        }
    }
    qf->rcpt[i].done = true;
    return 0;
}

int queue_file_sync(struct queue_file *qf)
{
    return fsync(qf->fd);
}
