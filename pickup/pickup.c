/* pickup(8): moves what sendmail(1) left in maildrop/ into the queue.  One process,
 * chrooted to the queue, running its own poll() loop over its wake-up socket
 * (public/pickup, reachable by every local user through setgid_group) and a scan
 * timer.  Every maildrop file is hostile: pickup checks its format (maildrop.h), its
 * owner and every address, decides the sender itself from the owner's uid (the
 * file's -f stands only for trusted_users), writes a queue file with the queue
 * writer, removes the maildrop file only once the queue file is durable, and wakes
 * qmgr.  With non_smtpd_milters the message is kept in memory and goes through the
 * filters first (pickup_milter.c).  A file it cannot take goes to corrupt/ with a log line. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "attr.h"
#include "attr_scan.h"
#include "clock.h"
#include "conf.h"
#include "fd.h"
#include "headers.h"
#include "ipc_proto.h"
#include "log.h"
#include "maildrop.h"
#include "pickup.h"
#include "priv.h"
#include "proto.h"
#include "queue.h"
#include "resolve_clnt.h"
#include "server.h"
#include "stream.h"
#include "wakeup.h"
#include "xmalloc.h"

#define PICKUP_SCAN_INTERVAL 60         /* seconds between scans without a wake-up */
#define PICKUP_STALE_TMP (24 * 3600)    /* a temporary file this old was abandoned */
#define PICKUP_BATCH 100                /* files per scan before serving clients again */
#define PICKUP_CLIENTS_MAX 32
#define PICKUP_FRAME_MAX 1024
#define PICKUP_CLIENT_TIMEOUT_MS 1000
#define PICKUP_KEEP_MAX (64u * 1024 * 1024)   /* a message kept for the milters */

struct pickup {
    struct conf *conf;
    int listen_fd;
    struct stream *clients[PICKUP_CLIENTS_MAX];
    long long client_since[PICKUP_CLIENTS_MAX];    /* clock_ms() of the accept */
    size_t nclients;
    uid_t *trusted;
    size_t ntrusted;
    const char *myorigin;
    const char *myhostname;
    size_t content_max;
    struct resolve_clnt *resolve;
    struct pickup_milters *milters;     /* non_smtpd_milters, or NULL */
    bool want_scan;
    bool more;                          /* the last scan stopped at PICKUP_BATCH */
    time_t next_scan;
};

static struct pickup *the_pickup;

/* trusted_users, as uids: looked up before the chroot, where the password file is. */
static void pickup_pre_jail(struct server *srv)
{
    struct pickup *p = xcalloc(1, sizeof(*p));
    char **names = conf_list(srv->conf, CONF_trusted_users);
    struct str err = STR_INIT;
    size_t n = 0;

    while (names[n] != NULL)
        n++;
    p->trusted = xcalloc(n + 1, sizeof(*p->trusted));
    for (size_t i = 0; i < n; i++) {
        uid_t uid;
        gid_t gid;
        str_clear(&err);
        if (priv_lookup(names[i], &uid, &gid, &err) < 0) {
            log_info("trusted_users: no user \"%s\" on this host: ignored", names[i]);
            continue;
        }
        p->trusted[p->ntrusted++] = uid;
    }
    strv_free(names);
    str_free(&err);
    the_pickup = p;
}

static bool trusted(const struct pickup *p, uid_t uid)
{
    for (size_t i = 0; i < p->ntrusted; i++)
        if (p->trusted[i] == uid)
            return true;
    return false;
}

/* ---- one file ---- */

/* What reading one maildrop file builds. */
struct take {
    struct pickup *p;
    const char *name;           /* in maildrop/ */
    uid_t owner;
    struct queue_writer *qw;
    char id[QUEUE_ID_SIZE];
    struct str sender;
    struct str why;             /* a reason to send the file to corrupt/ */
    bool forged;                /* a sender asked for and not allowed */
    struct str asked;
    bool io_error;
    bool tempfail;              /* the resolver could not answer: try again later */
    char **finals;              /* recipients written so far */
    size_t nfinal, cap;
    bool keeping;               /* the message is kept for the milters */
    bool to_hold;               /* a milter quarantined it */
    bool keep_too_big;
    struct str keep;
};

/* An address of the file (internal form, or bare) checked as an SMTP path would be,
 * with @myorigin added to a bare name.  0 or -1. */
static int check_addr(const struct pickup *p, const char *text, bool null_ok, struct str *out)
{
    struct str path = STR_INIT, ext = STR_INIT;
    const char *rest = NULL, *why = NULL;
    int rc;

    if (*text == '\0') {
        str_sets(out, "");
        return null_ok ? 0 : -1;
    }
    if (strchr(text, '@') == NULL)
        str_printf(&ext, "%s@%s", text, p->myorigin);
    else
        str_sets(&ext, text);
    str_appendc(&path, '<');
    addr_quote(ext.s, &path);
    str_appendc(&path, '>');
    rc = addr_parse_path(path.s, 0, out, &rest, &why);
    if (rc == 0 && *rest != '\0')
        rc = -1;
    if (rc == 0)
        addr_fold_domain(out->s);
    str_free(&path);
    str_free(&ext);
    return rc;
}

/* Adds a final recipient once (an address that two aliases both name is written
 * once).  0 or -1. */
static int rcpt_add(struct take *t, const char *final, const char *orcpt, const char *notify)
{
    for (size_t i = 0; i < t->nfinal; i++)
        if (strcmp(t->finals[i], final) == 0)
            return 0;
    if (t->nfinal == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->finals = xreallocarray(t->finals, t->cap, sizeof(*t->finals));
    }
    t->finals[t->nfinal++] = xstrdup(final);
    return qw_recipient(t->qw, final, orcpt, notify);
}

static int take_envelope(void *arg, const struct maildrop_env *env)
{
    struct take *t = arg;
    struct pickup *p = t->p;
    struct str err = STR_INIT, a = STR_INIT, hdr = STR_INIT;
    if (env->uid != t->owner) {
        str_printf(&t->why, "uid %lu in the file, but owned by uid %lu",
                   (unsigned long)env->uid, (unsigned long)t->owner);
        return 1;
    }
    /* The sender: the owner's address unless the owner is trusted. */
    str_printf(&t->sender, "%s@%s", env->login, p->myorigin);
    if (check_addr(p, t->sender.s, false, &a) < 0) {
        str_printf(&t->why, "login name \"%s\" makes no address", env->login);
        return 1;
    }
    str_sets(&t->sender, a.s);
    if (env->sender != NULL) {
        if (check_addr(p, env->sender, true, &a) < 0) {
            str_sets(&t->why, "bad sender address");
            return 1;
        }
        if (trusted(p, t->owner)) {
            str_sets(&t->sender, a.s);
        } else if (strcasecmp(a.s, t->sender.s) != 0) {
            t->forged = true;
            str_sets(&t->asked, a.s);
        }
    }
    for (size_t i = 0; i < env->nrcpt; i++) {
        if (check_addr(p, env->rcpt[i].addr, false, &a) < 0) {
            str_sets(&t->why, "bad recipient address");
            return 1;
        }
    }

    t->qw = qw_create(".", t->id, &err);
    if (t->qw == NULL) {
        log_warn("maildrop/%s: cannot create a queue file: %s", t->name, err.s);
        t->io_error = true;
        str_free(&err);
        str_free(&a);
        return 2;
    }
    if (qw_sender(t->qw, t->sender.s) < 0 || qw_attr(t->qw, "protocol", "sendmail") < 0
        || (env->ret != NULL && qw_attr(t->qw, "ret", env->ret) < 0)
        || (env->envid != NULL && qw_attr(t->qw, "envid", env->envid) < 0)
        || (conf_str(p->conf, CONF_content_filter)[0] != '\0'
            && qw_attr(t->qw, "content_filter", conf_str(p->conf, CONF_content_filter)) < 0))
        t->io_error = true;
    /* Each recipient expanded as smtpd's RCPT does (aliases, virtual aliases); one
     * the resolver refuses is kept as given, so that qmgr bounces it to the sender. */
    for (size_t i = 0; i < env->nrcpt && !t->io_error && !t->tempfail; i++) {
        struct router_verdict v;

        check_addr(p, env->rcpt[i].addr, false, &a);
        router_verdict_init(&v);
        resolve_verify(p->resolve, a.s, &v);
        if (v.status == ROUTER_TEMPFAIL) {
            log_warn("maildrop/%s: <%s>: %s: will try again", t->name, a.s, v.text.s);
            t->tempfail = true;
        } else if (v.status != ROUTER_OK) {
            if (rcpt_add(t, a.s, a.s, env->rcpt[i].notify) < 0)
                t->io_error = true;
        } else {
            for (size_t k = 0; k < v.nexpanded && !t->io_error; k++)
                if (rcpt_add(t, v.expanded[k], a.s, env->rcpt[i].notify) < 0)
                    t->io_error = true;
        }
        router_verdict_free(&v);
    }
    if (t->tempfail) {
        str_free(&err);
        str_free(&a);
        return 2;
    }
    str_printf(&hdr, "Received: by %s (%s, from userid %lu)\n\tid %s; ", p->myhostname,
               conf_str(p->conf, CONF_mail_name), (unsigned long)t->owner, t->id);
    header_date(&hdr, time(NULL));
    str_appendc(&hdr, '\n');
    if (t->keeping)
        str_append(&t->keep, hdr.s, hdr.len);
    else if (!t->io_error && qw_content(t->qw, hdr.s, hdr.len) < 0)
        t->io_error = true;
    str_free(&err);
    str_free(&a);
    str_free(&hdr);
    return t->io_error ? 2 : 0;
}

static int take_content(void *arg, const char *data, size_t len)
{
    struct take *t = arg;

    if (t->keeping) {
        if (t->keep.len + len > PICKUP_KEEP_MAX)
            t->keep_too_big = true;
        else
            str_append(&t->keep, data, len);
        return 0;
    }
    if (qw_content(t->qw, data, len) < 0) {
        t->io_error = true;
        return 2;
    }
    return 0;
}

/* The kept message through non_smtpd_milters (pickup_milter.c), then into the queue
 * file.  TAKE: the content is written, the caller commits.  Otherwise the file is
 * discarded (*gone) or stays for a later scan, logged; t->qw is aborted. */
static enum pickup_milter_verdict take_milters(struct pickup *p, struct take *t, int dirfd,
                                               bool *gone)
{
    struct str why = STR_INIT;
    const char *to = "incoming";
    enum pickup_milter_verdict v;

    if (t->keep_too_big) {
        /* It would be too large on every later scan too: bounced, as sendmail(1)
         * has gone and nobody else can hear of it. */
        str_sets(&why, "5.3.4 Message too large for the mail filters");
        log_warn("%s: maildrop/%s: more than %u bytes to keep for the milters: %s", t->id,
                 t->name, PICKUP_KEEP_MAX, why.s);
        v = PICKUP_MILTER_REJECT;
    } else {
        v = pickup_milter_run(p->milters, t->qw, p->resolve, t->id, &t->keep, &to, &why);
    }
    if (v == PICKUP_MILTER_REJECT && qw_edit_attr(t->qw, "reject", why.s) < 0)
        t->io_error = true;
    if ((v == PICKUP_MILTER_TAKE || v == PICKUP_MILTER_REJECT) && !t->io_error
        && t->keep.len > 0 && qw_content(t->qw, t->keep.s, t->keep.len) < 0)
        t->io_error = true;
    if (t->io_error) {
        log_warn("maildrop/%s: queue file write error: will try again", t->name);
        v = PICKUP_MILTER_TEMPFAIL;
    }
    if (v == PICKUP_MILTER_TAKE || v == PICKUP_MILTER_REJECT) {
        t->to_hold = strcmp(to, "hold") == 0;
        str_free(&why);
        return PICKUP_MILTER_TAKE;
    }
    qw_abort(t->qw);
    t->qw = NULL;
    if (v == PICKUP_MILTER_DISCARD) {
        *gone = true;
        if (unlinkat(dirfd, t->name, 0) < 0)
            log_warn("maildrop/%s: cannot remove: %s", t->name, strerror(errno));
        log_info("%s: uid=%lu from=<%s>, maildrop=%s: discarded by a filter", t->id,
                 (unsigned long)t->owner, t->sender.s, t->name);
    } else {
        log_warn("%s: maildrop/%s: %s: will try again", t->id, t->name,
                 why.len ? why.s : "temporary failure");
    }
    str_free(&why);
    return v;
}

/* Moves maildrop/name to corrupt/ under a fresh queue id, with a log line.  true
 * when it has left maildrop/. */
static bool to_corrupt(const char *name, uid_t owner, bool owner_known, const char *why)
{
    char id[QUEUE_ID_SIZE], dst[64];

    queue_id_new(id);
    snprintf(dst, sizeof(dst), "corrupt/%s", id);
    {
        char src[300];
        if ((size_t)snprintf(src, sizeof(src), "maildrop/%s", name) >= sizeof(src)
            || rename(src, dst) < 0) {
            log_warn("maildrop/%s: cannot move to corrupt/: %s", name, strerror(errno));
            return false;
        }
    }
    fsync_dir("corrupt");
    if (owner_known)
        log_warn("maildrop/%s: uid=%lu: %s: moved to corrupt/%s", name, (unsigned long)owner,
                 why, id);
    else
        log_warn("maildrop/%s: %s: moved to corrupt/%s", name, why, id);
    return true;
}

/* Takes maildrop/name into the queue, or to corrupt/.  true when it has left
 * maildrop/ (false: it stays for a later scan). */
static bool take_file(struct pickup *p, int dirfd, const char *name)
{
    struct take t = { .p = p, .name = name };
    struct maildrop_env env;
    const struct maildrop_reader_ops ops = { take_envelope, take_content };
    struct str err = STR_INIT;
    struct stat sb;
    int fd, rc, read_errno;
    bool gone = false;

    fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ELOOP)
            return to_corrupt(name, 0, false, "a symbolic link");
        if (errno != ENOENT)
            log_warn("maildrop/%s: cannot open: %s", name, strerror(errno));
        return errno == ENOENT;
    }
    if (fstat(fd, &sb) < 0) {
        log_warn("maildrop/%s: cannot stat: %s", name, strerror(errno));
        close(fd);
        return false;
    }
    if (!S_ISREG(sb.st_mode) || sb.st_nlink != 1) {
        close(fd);
        return to_corrupt(name, sb.st_uid, true, S_ISREG(sb.st_mode) ? "more than one link"
                                                                     : "not a regular file");
    }
    t.owner = sb.st_uid;
    t.keeping = p->milters != NULL;
    rc = maildrop_read(fd, p->content_max, &ops, &t, &env, &err);
    read_errno = errno;
    close(fd);
    if (rc == 0 && !t.io_error && t.keeping
        && take_milters(p, &t, dirfd, &gone) != PICKUP_MILTER_TAKE) {
        /* discarded, or left for a later scan: logged */
    } else if (rc == 0 && !t.io_error) {
        str_clear(&err);
        if (qw_commit(t.qw, t.to_hold ? "hold" : "incoming", &err) < 0) {
            t.qw = NULL;
            log_warn("maildrop/%s: cannot queue: %s", name, err.s);
        } else {
            t.qw = NULL;
            /* The queue file is durable: the maildrop file may go. */
            gone = true;
            if (unlinkat(dirfd, name, 0) < 0)
                log_warn("maildrop/%s: cannot remove: %s", name, strerror(errno));
            if (t.forged)
                log_warn("%s: uid=%lu: sender <%s> replaced by <%s>: uid not in trusted_users",
                         t.id, (unsigned long)t.owner, t.asked.s, t.sender.s);
            log_info("%s: uid=%lu from=<%s>, maildrop=%s%s", t.id, (unsigned long)t.owner,
                     t.sender.s, name, t.to_hold ? " (queue hold)" : "");
            (void)wakeup_send(PROTO_PATH_QMGR, PROTO_REQ_WAKEUP);
        }
    } else {
        if (t.qw != NULL)
            qw_abort(t.qw);
        bool bad = rc == 1 || (rc < 0 && (read_errno == EINVAL || read_errno == EFBIG));
        /* After an I/O error or a resolver failure (both logged) the file stays for
         * the next scan. */
        if (!t.io_error && !t.tempfail) {
            if (bad)
                gone = to_corrupt(name, t.owner, true, rc == 1 ? t.why.s : err.s);
            else
                log_warn("maildrop/%s: cannot read: %s", name, strerror(read_errno));
        }
    }
    maildrop_env_free(&env);
    str_free(&err);
    str_free(&t.sender);
    str_free(&t.why);
    str_free(&t.asked);
    str_free(&t.keep);
    for (size_t i = 0; i < t.nfinal; i++)
        free(t.finals[i]);
    free(t.finals);
    return gone;
}

/* One pass over maildrop/: at most PICKUP_BATCH files. */
static void scan(struct pickup *p)
{
    int dirfd = open("maildrop", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d;
    struct dirent *de;
    size_t done = 0, moved = 0;
    time_t now = time(NULL);

    p->more = false;
    if (dirfd < 0 || (d = fdopendir(dirfd)) == NULL) {
        log_warn("cannot open maildrop/: %s", strerror(errno));
        if (dirfd >= 0)
            close(dirfd);
        return;
    }
    while ((de = readdir(d)) != NULL && !server_stop) {
        const char *name = de->d_name;
        struct stat sb;

        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        if (done == PICKUP_BATCH) {
            /* Go on at once, unless nothing could be taken (the resolver is down,
             * the disk full): then wait for the timer or a wake-up. */
            p->more = moved > 0;
            break;
        }
        if (strncmp(name, MAILDROP_TMP_PREFIX, strlen(MAILDROP_TMP_PREFIX)) == 0) {
            /* being written; abandoned when old */
            if (fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0
                && now - sb.st_mtime > PICKUP_STALE_TMP) {
                moved += to_corrupt(name, sb.st_uid, true,
                                    "temporary file abandoned by sendmail");
                done++;
            }
            continue;
        }
        if (!queue_id_valid(name)) {
            moved += to_corrupt(name, 0, false, "not a maildrop file name");
            done++;
            continue;
        }
        moved += take_file(p, dirfd, name);
        done++;
    }
    closedir(d);
}

/* ---- wake-ups ---- */

static void client_drop(struct pickup *p, size_t i)
{
    stream_close(p->clients[i]);
    p->nclients--;
    p->clients[i] = p->clients[p->nclients];
    p->client_since[i] = p->client_since[p->nclients];
}

static void clients_accept(struct pickup *p)
{
    for (;;) {
        int fd = accept(p->listen_fd, NULL, NULL);

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
                && errno != ECONNABORTED)
                log_warn("accept: %s", strerror(errno));
            return;
        }
        if (p->nclients == PICKUP_CLIENTS_MAX) {
            /* Full of clients that say nothing: the oldest gives its place up, and
             * in case it had a request coming, maildrop/ is looked at anyway. */
            size_t oldest = 0;
            for (size_t k = 1; k < p->nclients; k++)
                if (p->client_since[k] < p->client_since[oldest])
                    oldest = k;
            client_drop(p, oldest);
            p->want_scan = true;
        }
        fd_nonblock(fd, false);
        fd_cloexec(fd, true);
        p->clients[p->nclients] = stream_fdopen(fd);
        stream_set_timeout(p->clients[p->nclients], PICKUP_CLIENT_TIMEOUT_MS);
        p->client_since[p->nclients] = clock_ms();
        p->nclients++;
    }
}

/* One frame from client i; false when the client is done or bad. */
static bool client_read(struct pickup *p, size_t i)
{
    struct attr_list al = ATTR_LIST_INIT;
    struct str err = STR_INIT;
    const char *req = NULL;
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_REQ, 0, &req, 0),
        ATTR_END,
    };
    bool keep = false;
    int rc = attr_read(p->clients[i], &al, PICKUP_FRAME_MAX);

    if (rc > 0) {
        if (ipc_proto_check(&al, PROTO_PICKUP, PROTO_PICKUP_VERSION, &err) < 0
            || attr_scan(&al, 0, spec, &err) < 0) {
            log_warn("bad wake-up frame: %s", err.s);
        } else if (strcmp(req, PROTO_REQ_SCAN) == 0) {
            p->want_scan = true;
            keep = true;
        } else if (strcmp(req, PROTO_REQ_FLUSH) == 0) {
            p->want_scan = true;
            (void)wakeup_send(PROTO_PATH_QMGR, PROTO_REQ_FLUSH);
            keep = true;
        } else {
            log_warn("bad wake-up frame: unknown request");
        }
    } else if (rc < 0) {
        log_warn("bad wake-up frame: %s", errno == EPROTO ? "malformed" : strerror(errno));
    }
    attr_free(&al);
    str_free(&err);
    return keep;
}

/* A client that has said nothing for PICKUP_CLIENT_TIMEOUT_MS gives its place up. */
static void clients_expire(struct pickup *p)
{
    long long now = clock_ms();

    for (size_t k = p->nclients; k-- > 0;)
        if (now - p->client_since[k] > PICKUP_CLIENT_TIMEOUT_MS)
            client_drop(p, k);
}

static void poll_once(struct pickup *p, int timeout_ms)
{
    struct pollfd pfd[1 + PICKUP_CLIENTS_MAX];
    size_t n = 0;

    if (p->listen_fd >= 0)
        pfd[n++] = (struct pollfd){ .fd = p->listen_fd, .events = POLLIN };
    for (size_t i = 0; i < p->nclients; i++) {
        if (stream_pending(p->clients[i]) > 0)
            timeout_ms = 0;
        pfd[n++] = (struct pollfd){ .fd = stream_fd(p->clients[i]), .events = POLLIN };
    }
    if (poll(pfd, n, timeout_ms) < 0) {
        if (errno != EINTR)
            log_warn("poll: %s", strerror(errno));
        return;
    }
    size_t base = p->listen_fd >= 0 ? 1 : 0;
    for (size_t k = p->nclients; k-- > 0;) {
        if (pfd[base + k].revents == 0 && stream_pending(p->clients[k]) == 0)
            continue;
        if (!client_read(p, k))
            client_drop(p, k);
        else
            p->client_since[k] = clock_ms();
    }
    if (base == 1 && pfd[0].revents != 0)
        clients_accept(p);
}

static int pickup_loop(struct server *srv)
{
    struct pickup *p = the_pickup;
    long long limit = conf_size(srv->conf, CONF_message_size_limit);

    p->conf = srv->conf;
    p->listen_fd = srv->nlisten > 0 ? srv->listen_fds[0] : -1;
    if (p->listen_fd >= 0)
        fd_nonblock(p->listen_fd, true);
    p->myorigin = conf_str(p->conf, CONF_myorigin);
    p->myhostname = conf_str(p->conf, CONF_myhostname);
    p->content_max = limit > 0 ? (size_t)limit : 0;
    p->want_scan = true;            /* what was dropped while the system was down */
    p->resolve = resolve_clnt_open(PROTO_PATH_RESOLVE,
                                   (int)conf_time_ms(p->conf, CONF_ipc_timeout));
    p->milters = pickup_milter_setup(p->conf);

    while (!server_stop && !server_reload && !server_orphaned()) {
        time_t now = time(NULL);
        if (p->want_scan || p->more || now >= p->next_scan) {
            p->want_scan = false;
            scan(p);
            p->next_scan = time(NULL) + PICKUP_SCAN_INTERVAL;
        }
        poll_once(p, p->more ? 0 : 1000);
        clients_expire(p);
    }
    while (p->nclients > 0)
        client_drop(p, p->nclients - 1);
    resolve_clnt_close(p->resolve);
    pickup_milter_free(p->milters);
    free(p->trusted);
    free(p);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .name = "pickup",
        .pre_jail = pickup_pre_jail,
        .loop = pickup_loop,
        .no_max_idle = true,
    };

    server_main(argc, argv, &opts);
}
