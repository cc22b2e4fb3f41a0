/* Maildrop files (postern-maildrop(5)): the writer sendmail uses and the strict
 * reader of pickup.  The reader trusts nothing: a local user may have left any bytes
 * in the file, cut it short, or made it huge. */

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fd.h"
#include "maildrop.h"
#include "dsn_notify.h"
#include "str.h"
#include "xmalloc.h"
#include "xtext.h"

#define MDW_BUF 65536u

/* ---- writing ---- */

enum mdw_state { MDW_START, MDW_HEADER, MDW_SENDER, MDW_ATTRS, MDW_RCPTS, MDW_CONTENT,
                 MDW_FAILED };

struct maildrop_writer {
    int fd;
    enum mdw_state state;
    size_t olen, clen, content_size;
    char obuf[MDW_BUF];
    char cbuf[MAILDROP_CHUNK];
};

struct maildrop_writer *mdw_open(int fd)
{
    struct maildrop_writer *w = xcalloc(1, sizeof(*w));

    w->fd = fd;
    w->state = MDW_START;
    return w;
}

static int mdw_fail(struct maildrop_writer *w, int e)
{
    w->state = MDW_FAILED;
    errno = e;
    return -1;
}

static int mdw_flush(struct maildrop_writer *w)
{
    if (w->olen > 0 && fd_write_all(w->fd, w->obuf, w->olen) < 0)
        return mdw_fail(w, errno);
    w->olen = 0;
    return 0;
}

static int mdw_out(struct maildrop_writer *w, const void *p, size_t n)
{
    if (n > MDW_BUF - w->olen && mdw_flush(w) < 0)
        return -1;
    if (n >= MDW_BUF) {
        if (fd_write_all(w->fd, p, n) < 0)
            return mdw_fail(w, errno);
        return 0;
    }
    memcpy(w->obuf + w->olen, p, n);
    w->olen += n;
    return 0;
}

static int mdw_record(struct maildrop_writer *w, char type, const void *data, size_t n)
{
    char head[32];
    int hl;

    if (type != 'C' && n > MAILDROP_ENV_MAX)
        return mdw_fail(w, EMSGSIZE);
    hl = snprintf(head, sizeof(head), "%c%zu:", type, n);
    if (mdw_out(w, head, (size_t)hl) < 0 || mdw_out(w, data, n) < 0 || mdw_out(w, "\n", 1) < 0)
        return -1;
    return 0;
}

/* A call out of its place is the caller's bug: the file fails as a whole. */
static int mdw_order(struct maildrop_writer *w, bool ok, enum mdw_state next)
{
    if (w->state == MDW_FAILED) {
        errno = EIO;
        return -1;
    }
    if (!ok)
        return mdw_fail(w, EINVAL);
    w->state = next;
    return 0;
}

int mdw_header(struct maildrop_writer *w, uid_t uid, const char *login, time_t when)
{
    char num[32];

    if (mdw_order(w, w->state == MDW_START, MDW_HEADER) < 0)
        return -1;
    if (mdw_record(w, 'V', MAILDROP_VERSION, strlen(MAILDROP_VERSION)) < 0)
        return -1;
    snprintf(num, sizeof(num), "%lu", (unsigned long)uid);
    if (mdw_record(w, 'U', num, strlen(num)) < 0
        || mdw_record(w, 'L', login, strlen(login)) < 0)
        return -1;
    snprintf(num, sizeof(num), "%lld", (long long)when);
    return mdw_record(w, 'T', num, strlen(num));
}

int mdw_sender(struct maildrop_writer *w, const char *sender)
{
    if (mdw_order(w, w->state == MDW_HEADER, MDW_SENDER) < 0)
        return -1;
    return mdw_record(w, 'F', sender, strlen(sender));
}

int mdw_attr(struct maildrop_writer *w, const char *name, const char *value)
{
    struct str rec = STR_INIT;
    int rc;

    if (mdw_order(w, w->state >= MDW_HEADER && w->state <= MDW_ATTRS, MDW_ATTRS) < 0)
        return -1;
    str_printf(&rec, "%s=%s", name, value);
    rc = mdw_record(w, 'A', rec.s, rec.len);
    str_free(&rec);
    return rc;
}

int mdw_recipient(struct maildrop_writer *w, const char *addr, const char *notify)
{
    if (mdw_order(w, w->state >= MDW_HEADER && w->state <= MDW_RCPTS, MDW_RCPTS) < 0)
        return -1;
    if (notify != NULL && mdw_record(w, 'N', notify, strlen(notify)) < 0)
        return -1;
    return mdw_record(w, 'R', addr, strlen(addr));
}

static int mdw_content_flush(struct maildrop_writer *w)
{
    if (w->clen == 0)
        return 0;
    if (mdw_record(w, 'C', w->cbuf, w->clen) < 0)
        return -1;
    w->clen = 0;
    return 0;
}

int mdw_content(struct maildrop_writer *w, const void *data, size_t len)
{
    const char *p = data;

    if (mdw_order(w, w->state == MDW_RCPTS || w->state == MDW_CONTENT, MDW_CONTENT) < 0)
        return -1;
    if (len > SIZE_MAX - w->content_size)
        return mdw_fail(w, EFBIG);
    w->content_size += len;
    while (len > 0) {
        size_t n = MAILDROP_CHUNK - w->clen;
        if (n > len)
            n = len;
        memcpy(w->cbuf + w->clen, p, n);
        w->clen += n;
        p += n;
        len -= n;
        if (w->clen == MAILDROP_CHUNK && mdw_content_flush(w) < 0)
            return -1;
    }
    return 0;
}

size_t mdw_content_size(const struct maildrop_writer *w)
{
    return w->content_size;
}

int mdw_finish(struct maildrop_writer *w)
{
    int rc = -1, e = EIO;

    if (mdw_order(w, w->state == MDW_RCPTS || w->state == MDW_CONTENT, MDW_CONTENT) == 0
        && mdw_content_flush(w) == 0 && mdw_record(w, 'E', "", 0) == 0 && mdw_flush(w) == 0) {
        if (fsync(w->fd) == 0)
            rc = 0;
        else
            e = errno;
    } else {
        e = errno;
    }
    if (close(w->fd) < 0 && rc == 0) {
        e = errno;
        rc = -1;
    }
    free(w);
    if (rc < 0)
        errno = e;
    return rc;
}

void mdw_abort(struct maildrop_writer *w)
{
    if (w == NULL)
        return;
    close(w->fd);
    free(w);
}

/* ---- reading ---- */

#define MDR_BUF 65536u
#define MDR_LEN_DIGITS 5            /* MAILDROP_CHUNK has 5 decimal digits */

struct mdr {
    int fd;
    size_t pos, len;
    char buf[MDR_BUF];
};

/* 1 with a byte, 0 at end of file, -1 on error. */
static int mdr_getc(struct mdr *r, char *c)
{
    if (r->pos == r->len) {
        ssize_t n;
        do
            n = read(r->fd, r->buf, sizeof(r->buf));
        while (n < 0 && errno == EINTR);
        if (n <= 0)
            return n < 0 ? -1 : 0;
        r->pos = 0;
        r->len = (size_t)n;
    }
    *c = r->buf[r->pos++];
    return 1;
}

static int mdr_read(struct mdr *r, char *dst, size_t n)
{
    while (n > 0) {
        char c;
        int rc;
        if (r->pos < r->len) {
            size_t k = r->len - r->pos;
            if (k > n)
                k = n;
            memcpy(dst, r->buf + r->pos, k);
            r->pos += k;
            dst += k;
            n -= k;
            continue;
        }
        rc = mdr_getc(r, &c);
        if (rc <= 0)
            return rc;
        *dst++ = c;
        n--;
    }
    return 1;
}

static int corrupt(struct str *err, const char *why)
{
    str_sets(err, why);
    errno = EINVAL;
    return -1;
}

/* One record: type and value (value NUL-terminated, len bytes).  1, 0 at a clean end
 * of file (before a type byte), -1 with errno/err. */
static int mdr_record(struct mdr *r, char *type, struct str *value, struct str *err)
{
    size_t len = 0, max;
    int digits = 0, rc;
    char c;

    rc = mdr_getc(r, type);
    if (rc <= 0)
        return rc;
    if (!isupper((unsigned char)*type))
        return corrupt(err, "bad record type");
    max = *type == 'C' ? MAILDROP_CHUNK : MAILDROP_ENV_MAX;
    for (;;) {
        rc = mdr_getc(r, &c);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return corrupt(err, "truncated record length");
        if (c == ':')
            break;
        if (c < '0' || c > '9' || digits == MDR_LEN_DIGITS || (digits == 1 && len == 0))
            return corrupt(err, "bad record length");
        len = len * 10 + (size_t)(c - '0');
        digits++;
    }
    if (digits == 0)
        return corrupt(err, "bad record length");
    if (len > max)
        return corrupt(err, "record too long");
    str_clear(value);
    str_reserve(value, len + 1);
    rc = mdr_read(r, value->s, len);
    if (rc < 0)
        return -1;
    value->len = len;
    value->s[len] = '\0';
    if (rc == 0 || (rc = mdr_getc(r, &c)) == 0)
        return corrupt(err, "truncated record");
    if (rc < 0)
        return -1;
    if (c != '\n')
        return corrupt(err, "record not ended by a newline");
    if (*type != 'C' && memchr(value->s, '\0', len) != NULL)
        return corrupt(err, "NUL byte in an envelope record");
    return 1;
}

static bool all_digits(const struct str *v, size_t max)
{
    if (v->len == 0 || v->len > max || (v->len > 1 && v->s[0] == '0'))
        return false;
    return strspn(v->s, "0123456789") == v->len;
}

/* No control characters: an address in its internal form (a quoted local part may
 * hold spaces); the caller parses it properly. */
static bool addr_text_valid(const struct str *v)
{
    for (size_t i = 0; i < v->len; i++) {
        unsigned char c = (unsigned char)v->s[i];
        if (c < ' ' || c == 0x7f)
            return false;
    }
    return v->len <= 256;
}

bool maildrop_login_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > MAILDROP_LOGIN_MAX || s[0] == '.' || s[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isascii(c) && (isalnum(c) || c == '.' || c == '_' || c == '-')))
            return false;
    }
    return true;
}


void maildrop_env_free(struct maildrop_env *env)
{
    free(env->login);
    free(env->sender);
    free(env->ret);
    free(env->envid);
    for (size_t i = 0; i < env->nrcpt; i++) {
        free(env->rcpt[i].addr);
        free(env->rcpt[i].notify);
    }
    free(env->rcpt);
    memset(env, 0, sizeof(*env));
}

/* One A record "name=value". */
static int env_attr(struct maildrop_env *env, const struct str *v, struct str *err)
{
    const char *eq = strchr(v->s, '=');

    if (eq == NULL)
        return corrupt(err, "attribute without '='");
    if ((size_t)(eq - v->s) == 3 && strncmp(v->s, "ret", 3) == 0) {
        if (env->ret != NULL)
            return corrupt(err, "ret given twice");
        if (strcmp(eq + 1, "FULL") != 0 && strcmp(eq + 1, "HDRS") != 0)
            return corrupt(err, "bad ret value");
        env->ret = xstrdup(eq + 1);
    } else if ((size_t)(eq - v->s) == 5 && strncmp(v->s, "envid", 5) == 0) {
        if (env->envid != NULL)
            return corrupt(err, "envid given twice");
        if (!xtext_valid(eq + 1, MAILDROP_ENVID_MAX))
            return corrupt(err, "bad envid value");
        env->envid = xstrdup(eq + 1);
    } else {
        return corrupt(err, "unknown attribute");
    }
    return 0;
}

int maildrop_read(int fd, size_t content_max, const struct maildrop_reader_ops *ops,
                  void *arg, struct maildrop_env *env, struct str *err)
{
    struct mdr *r = xcalloc(1, sizeof(*r));
    struct str v = STR_INIT, notify = STR_INIT;
    bool have_notify = false, envelope_done = false;
    size_t content = 0, cap = 0;
    unsigned step = 0;          /* records seen of V U L T */
    char type;
    int rc;

    memset(env, 0, sizeof(*env));
    r->fd = fd;
    for (;;) {
        rc = mdr_record(r, &type, &v, err);
        if (rc == 0) {
            rc = corrupt(err, "no end record");
            break;
        }
        if (rc < 0)
            break;
        rc = -1;
        if (step < 4) {
            static const char want[] = "VULT";
            if (type != want[step]) {
                corrupt(err, step == 0 ? "not a maildrop file"
                                       : "envelope records out of order");
                break;
            }
            step++;
            if (type == 'V' && strcmp(v.s, MAILDROP_VERSION) != 0) {
                corrupt(err, "unknown maildrop format version");
                break;
            }
            if (type == 'U') {
                if (!all_digits(&v, 10)
                    || strtoull(v.s, NULL, 10) > (unsigned long long)(uid_t)-1) {
                    corrupt(err, "bad uid");
                    break;
                }
                env->uid = (uid_t)strtoull(v.s, NULL, 10);
            } else if (type == 'L') {
                if (!maildrop_login_valid(v.s)) {
                    corrupt(err, "bad login name");
                    break;
                }
                env->login = xstrdup(v.s);
            } else if (type == 'T') {
                if (!all_digits(&v, 18)) {
                    corrupt(err, "bad time");
                    break;
                }
                env->when = (time_t)strtoll(v.s, NULL, 10);
            }
            continue;
        }
        if (type == 'F') {
            if (env->sender != NULL || env->nrcpt > 0 || env->ret || env->envid
                || have_notify) {
                corrupt(err, "sender record out of order");
                break;
            }
            if (!addr_text_valid(&v)) {
                corrupt(err, "bad sender");
                break;
            }
            env->sender = xstrdup(v.s);
        } else if (type == 'A') {
            if (env->nrcpt > 0 || have_notify) {
                corrupt(err, "attribute record out of order");
                break;
            }
            if (env_attr(env, &v, err) < 0)
                break;
        } else if (type == 'N') {
            if (envelope_done || have_notify) {
                corrupt(err, "notify record out of order");
                break;
            }
            if (dsn_notify_parse(v.s, &notify) < 0 || strcmp(notify.s, v.s) != 0) {
                corrupt(err, "bad notify value");
                break;
            }
            have_notify = true;
        } else if (type == 'R') {
            if (envelope_done) {
                corrupt(err, "recipient after the content");
                break;
            }
            if (env->nrcpt >= MAILDROP_RCPT_MAX) {
                corrupt(err, "too many recipients");
                break;
            }
            if (v.len == 0 || !addr_text_valid(&v)) {
                corrupt(err, "bad recipient");
                break;
            }
            if (env->nrcpt == cap) {
                cap = cap ? cap * 2 : 8;
                env->rcpt = xreallocarray(env->rcpt, cap, sizeof(*env->rcpt));
            }
            env->rcpt[env->nrcpt].addr = xstrdup(v.s);
            env->rcpt[env->nrcpt].notify = have_notify ? xstrdup(notify.s) : NULL;
            env->nrcpt++;
            have_notify = false;
        } else if (type == 'C' || type == 'E') {
            if (!envelope_done) {
                if (env->nrcpt == 0 || have_notify) {
                    corrupt(err, env->nrcpt == 0 ? "no recipients"
                                                 : "notify without recipient");
                    break;
                }
                envelope_done = true;
                if (ops->envelope != NULL && (rc = ops->envelope(arg, env)) != 0)
                    break;
                rc = -1;
            }
            if (type == 'E') {
                char c;
                if (v.len != 0) {
                    corrupt(err, "end record not empty");
                    break;
                }
                rc = mdr_getc(r, &c);
                if (rc < 0)
                    break;
                if (rc > 0) {
                    rc = corrupt(err, "data after the end record");
                    break;
                }
                rc = 0;
                break;
            }
            if (v.len > SIZE_MAX - content
                || (content_max > 0 && content + v.len > content_max)) {
                errno = EFBIG;
                str_sets(err, "message too big");
                break;
            }
            content += v.len;
            if (ops->content != NULL && (rc = ops->content(arg, v.s, v.len)) != 0)
                break;
            rc = -1;
        } else {
            corrupt(err, "unknown record type");
            break;
        }
    }
    str_free(&v);
    str_free(&notify);
    free(r);
    return rc;
}
