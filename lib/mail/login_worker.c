/* pop3d and imapd (post-login): the session process (login_serve.h).  Forked by the
 * post-login process as root, it opens the user's Maildir (no symbolic link, the user's own), chroots into it,
 * drops to the mailbox owner for good and serves its first session; a process for a
 * virtual user (virtual users share their uid, so the Maildir is what keeps them
 * apart) then stays and serves further sessions of the same user and Maildir only,
 * one at a time, that the post-login process passes over a private socket
 * pair: one datagram per session carrying the client's descriptor and one attribute
 * frame of protocol "session" (names in proto.h):
 *     "proto=session/2" "tls=yes|no" "user=U" "maildir=/abs/" "client=IP" "pending=BYTES"
 * read strictly (attr_scan.h).  It answers "I" (idle) after each session but its last
 * (max_use sessions).  A daemon whose session processes serve many connections at
 * once (imapd: login_service.mux) receives them while it serves the others, and
 * answers "I" as each ends; its process ends when the post-login process closes the
 * pair and its last connection is over.  The post-login process runs as root and is trusted here; what
 * the session reads from its client is not. */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "attr.h"
#include "attr_scan.h"
#include "auth_clnt.h"
#include "fd.h"
#include "ipc_proto.h"
#include "log.h"
#include "login.h"
#include "maildir.h"
#include "login_serve.h"
#include "priv.h"
#include "proto.h"
#include "sock.h"
#include "stream.h"
#include "xmalloc.h"

#define WORKER_TEXT_MAX 4096            /* user and Maildir (they fit in a token) */
#define WORKER_CLIENT_MAX 63            /* longest client address carried */
#define WORKER_MSG_MAX (2 * WORKER_TEXT_MAX + WORKER_CLIENT_MAX + LOGIN_PENDING_MAX + 512)

int login_worker_send(int ctl, const struct login_handoff *h, const struct auth_result *who)
{
    struct attr_list al = ATTR_LIST_INIT;
    struct str msg = STR_INIT;
    size_t clen = h->client.s != NULL ? strnlen(h->client.s, h->client.len) : 0;
    int rc;

    if (who->user.len > WORKER_TEXT_MAX || who->maildir.len > WORKER_TEXT_MAX
        || memchr(who->user.s, '\0', who->user.len) != NULL
        || memchr(who->maildir.s, '\0', who->maildir.len) != NULL
        || h->pending.len > LOGIN_PENDING_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    if (clen > WORKER_CLIENT_MAX)
        clen = WORKER_CLIENT_MAX;
    ipc_frame_start(&al, PROTO_SESSION, PROTO_SESSION_VERSION);
    attr_add(&al, PROTO_A_TLS, h->tls ? PROTO_YES : PROTO_NO);
    attr_add(&al, PROTO_A_USER, who->user.s);
    attr_add(&al, PROTO_A_MAILDIR, who->maildir.s);
    attr_addn(&al, PROTO_A_CLIENT, clen > 0 ? h->client.s : "", clen);
    attr_addn(&al, PROTO_A_PENDING, h->pending.s ? h->pending.s : "", h->pending.len);
    attr_encode(&al, &msg);
    rc = fd_send(ctl, h->fd, msg.s, msg.len);
    attr_free(&al);
    str_free(&msg);
    return rc;
}

/* Reads one session frame into h and who: 0, or -1 with err. */
static int worker_scan(const struct attr_list *al, struct login_handoff *h,
                       struct auth_result *who, struct str *err)
{
    const char *tls = NULL, *user = NULL, *maildir = NULL, *client = NULL;
    struct attr_data pending = { "", 0 };
    const struct attr_spec spec[] = {
        ATTR_IGNORE(PROTO_A_PROTO),
        ATTR_STR(PROTO_A_TLS, 0, &tls, 3),
        ATTR_STR(PROTO_A_USER, ATTR_NONEMPTY, &user, WORKER_TEXT_MAX),
        ATTR_STR(PROTO_A_MAILDIR, ATTR_NONEMPTY, &maildir, WORKER_TEXT_MAX),
        ATTR_STR(PROTO_A_CLIENT, 0, &client, WORKER_CLIENT_MAX),
        ATTR_DATA(PROTO_A_PENDING, 0, &pending, LOGIN_PENDING_MAX),
        ATTR_END,
    };

    if (ipc_proto_check(al, PROTO_SESSION, PROTO_SESSION_VERSION, err) < 0
        || attr_scan(al, ATTR_SCAN_STRICT, spec, err) < 0)
        return -1;
    if (maildir[0] != '/') {
        str_sets(err, "Maildir not an absolute path");
        return -1;
    }
    h->tls = strcmp(tls, PROTO_YES) == 0;
    str_sets(&h->user, user);
    str_sets(&h->client, client);
    str_set(&h->pending, pending.s, pending.len);
    str_sets(&who->user, user);
    str_sets(&who->maildir, maildir);
    return 0;
}

/* Reads the next session, ctl being readable: 1 (h and who filled), 0 when told to go
 * (EOF: the post-login process alone decides when an idle process ends, so that no
 * session is ever sent to one that is leaving), -1 on a malformed message (logged). */
static int worker_receive_now(int ctl, char *buf, struct login_handoff *h,
                              struct auth_result *who)
{
    struct attr_list al = ATTR_LIST_INIT;
    struct str err = STR_INIT;
    int fd = -1, r;
    ssize_t n;

    n = fd_recv(ctl, &fd, buf, WORKER_MSG_MAX + 1);
    if (n <= 0)
        return 0;
    if (fd < 0 || n > WORKER_MSG_MAX) {
        str_sets(&err, fd < 0 ? "no descriptor" : "too large");
        r = -1;
    } else if (attr_decode(buf, (size_t)n, &al, WORKER_MSG_MAX) < 0) {
        str_sets(&err, "malformed frame");
        r = -1;
    } else {
        r = worker_scan(&al, h, who, &err) < 0 ? -1 : 1;
    }
    if (r < 0) {
        log_error("malformed session hand-off from the post-login process: %s", err.s);
        if (fd >= 0)
            close(fd);
    } else {
        h->fd = fd;
    }
    attr_free(&al);
    str_free(&err);
    return r;
}

/* Waits for the next session: as worker_receive_now. */
static int worker_receive(int ctl, char *buf, struct login_handoff *h,
                          struct auth_result *who)
{
    struct pollfd pfd = { .fd = ctl, .events = POLLIN, .revents = 0 };
    int r;

    do
        r = poll(&pfd, 1, -1);
    while (r < 0 && errno == EINTR);
    if (r <= 0)
        return 0;
    return worker_receive_now(ctl, buf, h, who);
}

/* Makes the Maildir this process's working directory and, when root, its root
 * directory: the Maildir and its tmp/, new/, cur/ are opened without following a
 * symbolic link and must belong to the user (maildir_dirs_open); a missing one is
 * made first with the user's ids.  From then on the session sees that Maildir and
 * nothing else of the file system.  0, or -1 (logged). */
static int enter_maildir(const struct auth_result *who)
{
    struct str err = STR_INIT;
    uid_t owner = priv_is_root() ? who->uid : geteuid();
    int fds[MAILDIR_NFD], rc = -1;

    if (maildir_dirs_open(who->maildir.s, owner, fds, &err) < 0) {
        if (errno != ENOENT)
            goto fail;
        str_clear(&err);
        if (priv_become(who->uid, who->gid, &err) < 0) {
            struct str rerr = STR_INIT;
            if (priv_restore(&rerr) < 0)
                log_error("cannot restore privileges: %s", rerr.s);
            str_free(&rerr);
            goto fail;
        }
        rc = maildir_create(who->maildir.s, 0700, &err);
        if (priv_restore(NULL) < 0) {
            str_sets(&err, "cannot restore privileges");
            rc = -1;
        }
        if (rc < 0)
            goto fail;
        rc = -1;
        if (maildir_dirs_open(who->maildir.s, owner, fds, &err) < 0)
            goto fail;
    }
    if (fchdir(fds[MAILDIR_FD_TOP]) < 0) {
        str_printf(&err, "fchdir %s: %s", who->maildir.s, strerror(errno));
    } else if (priv_is_root() && (chroot(".") < 0 || chdir("/") < 0)) {
        str_printf(&err, "chroot %s: %s", who->maildir.s, strerror(errno));
    } else {
        rc = 0;
    }
    maildir_dirs_close(fds);
    if (rc == 0) {
        str_free(&err);
        return 0;
    }
fail:
    log_warn("user=<%s>: cannot open the mailbox: %s", who->user.s,
             err.len ? err.s : strerror(errno));
    str_free(&err);
    return -1;
}

/* Drops to the mailbox owner for good.  0, or -1 (logged). */
static int become_user(const struct auth_result *who)
{
    if (!priv_is_root())
        return 0;
    if (who->uid == 0) {
        log_error("user=<%s>: refusing a session as root", who->user.s);
        return -1;
    }
    if (setgroups(1, &who->gid) < 0 || setgid(who->gid) < 0 || setuid(who->uid) < 0) {
        log_error("user=<%s>: dropping to uid %ld: %m", who->user.s, (long)who->uid);
        return -1;
    }
    if (setuid(0) == 0 || seteuid(0) == 0 || getuid() != who->uid || geteuid() != who->uid
        || getgid() != who->gid || getegid() != who->gid) {
        log_error("user=<%s>: privileges not dropped", who->user.s);
        return -1;
    }
    return 0;
}

/* Tells the client why it cannot have its mailbox, and drops it. */
void login_refuse(struct login_handoff *h, const char *line)
{
    struct stream *st = login_stream(h);

    stream_set_timeout(st, 10000);
    stream_puts(st, line);
    stream_flush(st);
    stream_close(st);
}

/* One session in the Maildir, which the process entered (enter_maildir) for the
 * user and the Maildir of its first session: it serves no other. */
static int worker_session(const struct login_service *ls, struct login_handoff *h,
                          const struct auth_result *who,
                          const char *user, const char *maildir)
{
    if (strcmp(who->user.s, user) != 0 || strcmp(who->maildir.s, maildir) != 0) {
        log_error("user=<%s>: session sent to the process of user=<%s>", who->user.s, user);
        login_refuse(h, ls->refusal(LOGIN_REFUSE_MAILBOX_TEMP));
        return -1;
    }
    return ls->session(h, who);
}

/* The process's own: its user and Maildir, and the uid and gid (for the mux). */
static const struct login_service *w_ls;
static char *w_user, *w_maildir;
static uid_t w_uid;
static gid_t w_gid;
static char *w_buf;

int login_worker_next(int ctl, struct login_handoff *h, struct auth_result *who)
{
    int r;

    if (w_buf == NULL)
        w_buf = xmalloc(WORKER_MSG_MAX + 1);
    auth_result_init(who);
    who->uid = w_uid;
    who->gid = w_gid;
    r = worker_receive_now(ctl, w_buf, h, who);
    if (r == 1 && (strcmp(who->user.s, w_user) != 0 || strcmp(who->maildir.s, w_maildir) != 0)) {
        log_error("user=<%s>: session sent to the process of user=<%s>", who->user.s, w_user);
        login_refuse(h, w_ls->refusal(LOGIN_REFUSE_MAILBOX_TEMP));
        login_worker_done(ctl);
        return -1;
    }
    return r;
}

void login_worker_done(int ctl)
{
    if (ctl >= 0 && write(ctl, "I", 1) != 1)
        log_warn("telling the post-login process: %m");
}

_Noreturn void login_worker_main(const struct login_service *ls, int ctl,
                                 struct login_handoff *h, struct auth_result *who,
                                 pid_t parent, long long max_use)
{
    struct sigaction sa;
    char *buf;
    long long served = 0;
    uid_t uid = who->uid;
    gid_t gid = who->gid;
    char *user, *maildir;
    int rc;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    /* The session needs no token (the post-login process checked it). */
    if (h->token.s != NULL)
        explicit_bzero(h->token.s, h->token.len);
    str_free(&h->token);
    if (enter_maildir(who) < 0 || become_user(who) < 0) {
        login_refuse(h, ls->refusal(LOGIN_REFUSE_MAILBOX_TEMP));
        _exit(1);
    }
    /* After the drop: changing credentials clears the parent-death signal. */
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(0);
    user = xstrdup(who->user.s);
    maildir = xstrdup(who->maildir.s);
    if (ls->mux != NULL) {
        w_ls = ls;
        w_user = user;
        w_maildir = maildir;
        w_uid = uid;
        w_gid = gid;
        ls->mux(ctl, h, who);
        _exit(0);
    }
    rc = worker_session(ls, h, who, user, maildir);
    if (ctl < 0 || rc < 0)
        _exit(rc != 0);
    buf = xmalloc(WORKER_MSG_MAX + 1);
    for (served = 1; max_use <= 0 || served < max_use; served++) {
        int r;

        login_handoff_free(h);
        auth_result_free(who);
        auth_result_init(who);
        who->uid = uid;
        who->gid = gid;
        if (write(ctl, "I", 1) != 1)
            break;
        r = worker_receive(ctl, buf, h, who);
        if (r <= 0)
            break;
        if (worker_session(ls, h, who, user, maildir) < 0)
            break;
    }
    _exit(0);
}
