/* Writing queue files (format: postern-queue(5)).  The file is made in tmp/ with
 * O_EXCL, written through a 64 KiB buffer, and made visible by qw_commit() only
 * after its E record is on disk: fsync, rename without overwriting, fsync of the
 * target directory.  The writer enforces the record order; the envelope values come
 * from our own daemons, the content from the network (it is only copied).
 *
 * The envelope is also kept in memory, so that content checks and milters, which see
 * the whole message before a byte of it is written, may still change the sender, an
 * attribute or the recipients: the edits mark the envelope dirty, and the first
 * content (or the commit) cuts the file back to its T record and writes the envelope
 * again from memory. */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "fd.h"
#include "queue.h"
#include "str.h"
#include "xmalloc.h"

#define QW_BUF 65536u           /* output buffer */
#define QW_CHUNK 65536u         /* largest C record written */
#define ATTR_NAME_CHARS "abcdefghijklmnopqrstuvwxyz0123456789_"

enum qw_state { QW_START, QW_SENDER, QW_ATTRS, QW_RCPTS, QW_CONTENT, QW_FAILED };

struct qw_rcpt {
    char *addr, *orcpt, *notify;    /* orcpt, notify may be NULL */
};

struct queue_writer {
    int fd;
    enum qw_state state;
    int error;                  /* first errno of a failed write, sticky */
    char id[QUEUE_ID_SIZE];
    struct str qdir;
    struct str tmp_path;        /* qdir/tmp/ID */
    size_t nrcpt;
    size_t content_size;
    size_t olen;                /* bytes in obuf */
    size_t clen;                /* bytes in cbuf (content not yet in a record) */
    off_t written;              /* bytes written to fd */
    off_t env_off;              /* where the S record starts */
    bool dirty;                 /* the envelope was edited: write it again */
    char *sender;               /* the envelope, as written or edited */
    char **attrs;               /* "name=value" */
    size_t nattrs;
    struct qw_rcpt *rcpts;
    char obuf[QW_BUF];
    char cbuf[QW_CHUNK];
};

static int qw_fail(struct queue_writer *qw, int e)
{
    if (qw->error == 0)
        qw->error = e;
    qw->state = QW_FAILED;
    errno = qw->error;
    return -1;
}

static int qw_flush(struct queue_writer *qw)
{
    if (qw->olen > 0 && fd_write_all(qw->fd, qw->obuf, qw->olen) < 0)
        return qw_fail(qw, errno);
    qw->written += (off_t)qw->olen;
    qw->olen = 0;
    return 0;
}

static int qw_out(struct queue_writer *qw, const void *data, size_t n)
{
    const char *p = data;

    if (n >= QW_BUF) {
        if (qw_flush(qw) < 0)
            return -1;
        if (fd_write_all(qw->fd, p, n) < 0)
            return qw_fail(qw, errno);
        qw->written += (off_t)n;
        return 0;
    }
    if (n > QW_BUF - qw->olen && qw_flush(qw) < 0)
        return -1;
    memcpy(qw->obuf + qw->olen, p, n);
    qw->olen += n;
    return 0;
}

static int qw_record(struct queue_writer *qw, char type, const void *data, size_t n)
{
    char head[32];
    int hl;

    if (n > QUEUE_RECORD_MAX)
        return qw_fail(qw, EMSGSIZE);
    hl = snprintf(head, sizeof(head), "%c%zu:", type, n);
    if (qw_out(qw, head, (size_t)hl) < 0 || qw_out(qw, data, n) < 0 ||
        qw_out(qw, "\n", 1) < 0)
        return -1;
    return 0;
}

static int qw_record_s(struct queue_writer *qw, char type, const char *s)
{
    return qw_record(qw, type, s, strlen(s));
}

/* Checks that a call comes in its place: a call out of order is the caller's bug;
 * it fails the whole file so that nothing half-formed is ever committed. */
static int qw_order(struct queue_writer *qw, bool ok)
{
    if (qw->state == QW_FAILED) {
        errno = qw->error;
        return -1;
    }
    if (!ok)
        return qw_fail(qw, EINVAL);
    return 0;
}

struct queue_writer *qw_create(const char *qdir, char id[QUEUE_ID_SIZE], struct str *err)
{
    struct queue_writer *qw = xcalloc(1, sizeof(*qw));
    char arrival[32];

    str_init(&qw->qdir);
    str_init(&qw->tmp_path);
    str_sets(&qw->qdir, qdir);
    for (int tries = 0;; tries++) {
        queue_id_new(qw->id);
        str_clear(&qw->tmp_path);
        str_printf(&qw->tmp_path, "%s/tmp/%s", qdir, qw->id);
        qw->fd = open(qw->tmp_path.s, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
        if (qw->fd >= 0)
            break;
        /* A leftover from a crashed process with our pid: take a new id. */
        if (errno != EEXIST || tries >= 5) {
            int e = errno;
            str_printf(err, "create %s: %s", qw->tmp_path.s, strerror(e));
            str_free(&qw->qdir);
            str_free(&qw->tmp_path);
            free(qw);
            errno = e;
            return NULL;
        }
    }
    memcpy(id, qw->id, QUEUE_ID_SIZE);
    qw->state = QW_START;
    snprintf(arrival, sizeof(arrival), "%lld", (long long)time(NULL));
    qw_record_s(qw, 'V', QUEUE_FORMAT_VERSION);
    qw_record_s(qw, 'T', arrival);
    qw->env_off = qw->written + (off_t)qw->olen;
    return qw;
}

int qw_sender(struct queue_writer *qw, const char *sender)
{
    if (qw_order(qw, qw->state == QW_START) < 0)
        return -1;
    if (qw_record_s(qw, 'S', sender) < 0)
        return -1;
    qw->sender = xstrdup(sender);
    qw->state = QW_SENDER;
    return 0;
}

int qw_attr(struct queue_writer *qw, const char *name, const char *value)
{
    struct str rec = STR_INIT;
    int rc;

    if (qw_order(qw, (qw->state == QW_SENDER || qw->state == QW_ATTRS) &&
                         *name != '\0' && strspn(name, ATTR_NAME_CHARS) == strlen(name)) < 0)
        return -1;
    str_printf(&rec, "%s=%s", name, value);
    rc = qw_record(qw, 'A', rec.s, rec.len);
    if (rc == 0) {
        qw->attrs = xreallocarray(qw->attrs, qw->nattrs + 1, sizeof(*qw->attrs));
        qw->attrs[qw->nattrs++] = str_detach(&rec);
        qw->state = QW_ATTRS;
    }
    str_free(&rec);
    return rc;
}

int qw_recipient(struct queue_writer *qw, const char *addr, const char *orcpt,
                 const char *notify)
{
    if (qw_order(qw, qw->state >= QW_SENDER && qw->state <= QW_RCPTS) < 0)
        return -1;
    if (qw->nrcpt >= QUEUE_RCPT_MAX)
        return qw_fail(qw, E2BIG);
    if (orcpt != NULL && qw_record_s(qw, 'O', orcpt) < 0)
        return -1;
    if (notify != NULL && qw_record_s(qw, 'N', notify) < 0)
        return -1;
    if (qw_record_s(qw, 'R', addr) < 0)
        return -1;
    qw->rcpts = xreallocarray(qw->rcpts, qw->nrcpt + 1, sizeof(*qw->rcpts));
    qw->rcpts[qw->nrcpt].addr = xstrdup(addr);
    qw->rcpts[qw->nrcpt].orcpt = orcpt ? xstrdup(orcpt) : NULL;
    qw->rcpts[qw->nrcpt].notify = notify ? xstrdup(notify) : NULL;
    qw->nrcpt++;
    qw->state = QW_RCPTS;
    return 0;
}

/* ---- envelope edits before the content ---- */

size_t qw_rcpt_count(const struct queue_writer *qw)
{
    return qw->nrcpt;
}

const char *qw_rcpt_addr(const struct queue_writer *qw, size_t i)
{
    return i < qw->nrcpt ? qw->rcpts[i].addr : NULL;
}

const char *qw_rcpt_orcpt(const struct queue_writer *qw, size_t i)
{
    return i < qw->nrcpt ? qw->rcpts[i].orcpt : NULL;
}

const char *qw_envelope_sender(const struct queue_writer *qw)
{
    return qw->sender;
}

static int qw_edit_ok(struct queue_writer *qw)
{
    return qw_order(qw, qw->state >= QW_SENDER && qw->state <= QW_RCPTS);
}

int qw_edit_sender(struct queue_writer *qw, const char *sender)
{
    if (qw_edit_ok(qw) < 0)
        return -1;
    free(qw->sender);
    qw->sender = xstrdup(sender);
    qw->dirty = true;
    return 0;
}

int qw_edit_attr(struct queue_writer *qw, const char *name, const char *value)
{
    size_t nlen = strlen(name);
    struct str rec = STR_INIT;

    if (qw_order(qw, qw->state >= QW_SENDER && qw->state <= QW_RCPTS && nlen > 0
                         && strspn(name, ATTR_NAME_CHARS) == nlen) < 0)
        return -1;
    str_printf(&rec, "%s=%s", name, value);
    for (size_t i = 0; i < qw->nattrs; i++) {
        if (strncmp(qw->attrs[i], name, nlen) == 0 && qw->attrs[i][nlen] == '=') {
            free(qw->attrs[i]);
            qw->attrs[i] = str_detach(&rec);
            qw->dirty = true;
            return 0;
        }
    }
    qw->attrs = xreallocarray(qw->attrs, qw->nattrs + 1, sizeof(*qw->attrs));
    qw->attrs[qw->nattrs++] = str_detach(&rec);
    qw->dirty = true;
    return 0;
}

static void rcpt_free(struct qw_rcpt *r)
{
    free(r->addr);
    free(r->orcpt);
    free(r->notify);
}

int qw_edit_del_rcpt(struct queue_writer *qw, size_t i)
{
    if (qw_order(qw, qw->state >= QW_SENDER && qw->state <= QW_RCPTS && i < qw->nrcpt) < 0)
        return -1;
    rcpt_free(&qw->rcpts[i]);
    memmove(qw->rcpts + i, qw->rcpts + i + 1, (qw->nrcpt - i - 1) * sizeof(*qw->rcpts));
    qw->nrcpt--;
    qw->dirty = true;
    return 0;
}

/* Writes the edited envelope again over what the file holds after its T record. */
static int qw_rewrite(struct queue_writer *qw)
{
    if (!qw->dirty)
        return 0;
    if (qw_flush(qw) < 0)
        return -1;
    if (ftruncate(qw->fd, qw->env_off) < 0 || lseek(qw->fd, qw->env_off, SEEK_SET) < 0)
        return qw_fail(qw, errno);
    qw->written = qw->env_off;
    qw->dirty = false;
    if (qw_record_s(qw, 'S', qw->sender ? qw->sender : "") < 0)
        return -1;
    for (size_t i = 0; i < qw->nattrs; i++)
        if (qw_record_s(qw, 'A', qw->attrs[i]) < 0)
            return -1;
    for (size_t i = 0; i < qw->nrcpt; i++) {
        const struct qw_rcpt *r = &qw->rcpts[i];

        if ((r->orcpt != NULL && qw_record_s(qw, 'O', r->orcpt) < 0)
            || (r->notify != NULL && qw_record_s(qw, 'N', r->notify) < 0)
            || qw_record_s(qw, 'R', r->addr) < 0)
            return -1;
    }
    if (qw->nrcpt == 0)
        return qw_fail(qw, EINVAL);     /* a message for nobody is never committed */
    return 0;
}

static int qw_content_flush(struct queue_writer *qw)
{
    if (qw->clen == 0)
        return 0;
    if (qw_record(qw, 'C', qw->cbuf, qw->clen) < 0)
        return -1;
    qw->clen = 0;
    return 0;
}

int qw_content(struct queue_writer *qw, const void *data, size_t len)
{
    const char *p = data;

    if (qw_order(qw, qw->state == QW_RCPTS || qw->state == QW_CONTENT) < 0)
        return -1;
    if (qw->state == QW_RCPTS && qw_rewrite(qw) < 0)
        return -1;
    qw->state = QW_CONTENT;
    if (len > SIZE_MAX - qw->content_size)
        return qw_fail(qw, EFBIG);
    qw->content_size += len;
    while (len > 0) {
        size_t n = QW_CHUNK - qw->clen;
        if (n > len)
            n = len;
        memcpy(qw->cbuf + qw->clen, p, n);
        qw->clen += n;
        p += n;
        len -= n;
        if (qw->clen == QW_CHUNK && qw_content_flush(qw) < 0)
            return -1;
    }
    return 0;
}

size_t qw_content_size(const struct queue_writer *qw)
{
    return qw->content_size;
}

static void qw_free(struct queue_writer *qw)
{
    if (qw->fd >= 0)
        close(qw->fd);
    str_free(&qw->qdir);
    str_free(&qw->tmp_path);
    free(qw->sender);
    for (size_t i = 0; i < qw->nattrs; i++)
        free(qw->attrs[i]);
    free(qw->attrs);
    for (size_t i = 0; i < qw->nrcpt; i++)
        rcpt_free(&qw->rcpts[i]);
    free(qw->rcpts);
    free(qw);
}

void qw_abort(struct queue_writer *qw)
{
    if (qw == NULL)
        return;
    unlink(qw->tmp_path.s);
    qw_free(qw);
}

/* rename(2) that never replaces an existing file: renameat2(RENAME_NOREPLACE), or
 * link+unlink where the file system or kernel lacks it. */
static int rename_noreplace(const char *from, const char *to)
{
#ifdef RENAME_NOREPLACE
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -1;
#endif
    if (link(from, to) < 0)
        return -1;
    unlink(from);
    return 0;
}

int qw_commit(struct queue_writer *qw, const char *to, struct str *err)
{
    struct str target = STR_INIT, tdir = STR_INIT;
    int e;

    if (qw_order(qw, qw->state == QW_RCPTS || qw->state == QW_CONTENT) < 0) {
        str_printf(err, "%s: %s", qw->id,
                   qw->error == EINVAL ? "queue file records out of order"
                                       : strerror(qw->error));
        goto fail;
    }
    if ((qw->state == QW_RCPTS && qw_rewrite(qw) < 0)
        || qw_content_flush(qw) < 0 || qw_record(qw, 'E', "", 0) < 0 || qw_flush(qw) < 0) {
        str_printf(err, "write %s: %s", qw->tmp_path.s, strerror(errno));
        goto fail;
    }
    if (fsync(qw->fd) < 0) {
        str_printf(err, "fsync %s: %s", qw->tmp_path.s, strerror(errno));
        goto fail;
    }
    if (close(qw->fd) < 0) {
        qw->fd = -1;
        str_printf(err, "close %s: %s", qw->tmp_path.s, strerror(errno));
        goto fail;
    }
    qw->fd = -1;
    str_printf(&tdir, "%s/%s", qw->qdir.s, to);
    str_printf(&target, "%s/%s", tdir.s, qw->id);
    if (rename_noreplace(qw->tmp_path.s, target.s) < 0) {
        str_printf(err, "rename %s to %s: %s", qw->tmp_path.s, target.s, strerror(errno));
        goto fail;
    }
    if (fsync_dir(tdir.s) < 0) {
        /* The file is in place but perhaps not durable: the caller must not
         * acknowledge it.  It stays; a duplicate delivery is allowed, a loss not. */
        e = errno;
        str_printf(err, "fsync %s: %s", tdir.s, strerror(e));
        str_free(&target);
        str_free(&tdir);
        qw_free(qw);
        errno = e;
        return -1;
    }
    str_free(&target);
    str_free(&tdir);
    qw_free(qw);
    return 0;

fail:
    e = errno;
    str_free(&target);
    str_free(&tdir);
    qw_abort(qw);
    errno = e;
    return -1;
}
