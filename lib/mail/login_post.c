/* The post-login service of pop3d and imapd (login_serve.h): accepts hand-offs from
 * pre-auth processes on login/pop3 or login/imap (from the users of the daemon's -l
 * services only: peer_allow.h), asks auth who the token
 * belongs to (a connection per question), and gives each client to a session process
 * running as the mailbox owner and chrooted into the user's Maildir (worker.c).
 * Virtual users share one uid, so a session process belongs to one user and one
 * Maildir, not merely to a uid: an idle one of the same user, uid, gid and Maildir
 * (the same directory still: device and inode) gets the client over its socket pair,
 * its listing perhaps still cached; only when none is idle is one forked (never
 * exec'd).  A system user's session gets a process of its own that ends with it.
 * A daemon whose session processes serve many connections at once (imapd:
 * login_service.session_limit) sends every client of a user, system users too, to
 * that user's process while it serves fewer than the limit, so one process holds
 * all of a user's connections; for that, this service runs as a single process
 * (postern init sets its process limit to 1 in master.conf).
 * This process stays root, runs no session code and keeps no client data: it
 * passes the descriptor on and closes it.  It trusts a hand-off only as far as auth
 * vouches for its token, and its session processes not at all: their only word is "I"
 * (idle), anything else ends them. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth_clnt.h"
#include "clock.h"
#include "conf.h"
#include "log.h"
#include "login.h"
#include "master_conf.h"
#include "peer_allow.h"
#include "login_serve.h"
#include "proto.h"
#include "server.h"
#include "xmalloc.h"

#define POSTLOGIN_SLICE_MS 1000
#define POSTLOGIN_IDLE_MAX 32           /* idle session processes kept */

struct worker {
    pid_t pid;
    int ctl;                    /* our end of its socket pair; -1: none, or retired */
    uid_t uid;
    gid_t gid;
    bool busy;                  /* as many sessions as it may serve, or retired */
    unsigned sessions;          /* sessions it serves now */
    long long idle_since;       /* ms */
    char *user;                 /* the one user it serves */
    char *maildir;              /* and that user's Maildir, */
    dev_t dev;                  /* which was this directory when it was forked */
    ino_t ino;
    bool id_pending;            /* none then: the process was to make it */
};

static volatile sig_atomic_t child_exited;
static struct worker *workers;
static size_t nworkers, workers_cap;
static struct auth_clnt *auth;
static struct peer_allow callers;
static const struct login_service *svc_of;      /* the daemon's description */

/* The services that hand clients over: the daemon's own with -l. */
static bool calls_postlogin(const struct master_service *svc)
{
    if (strcmp(svc->command, svc_of->command) != 0)
        return false;
    for (size_t i = 0; i < svc->nargs; i++)
        if (strcmp(svc->args[i], "-l") == 0 && (i == 0 || strcmp(svc->args[i - 1], "-o") != 0))
            return true;
    return false;
}

void login_post_setup(struct server *srv, const struct login_service *ls)
{
    struct str err = STR_INIT;

    svc_of = ls;
    if (peer_allow_load(srv->conf, calls_postlogin, &callers, &err) < 0)
        log_fatal("callers of %s: %s", svc_of->path, err.s);
    str_free(&err);
}

static void on_child(int sig)
{
    (void)sig;
    child_exited = 1;
}

/* Whether the daemon's session processes serve many connections at once. */
static bool muxed(void)
{
    return svc_of->mux != NULL;
}

static unsigned session_limit(void)
{
    return svc_of->session_limit > 1 ? svc_of->session_limit : 1;
}

/* Closes our end: the process ends when its session (if any) is over. */
static void worker_retire(struct worker *w)
{
    if (w->ctl >= 0)
        close(w->ctl);
    w->ctl = -1;
    w->busy = true;             /* never chosen again */
}

static void reap(void)
{
    pid_t pid;
    int status;

    child_exited = 0;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < nworkers; i++) {
            if (workers[i].pid == pid) {
                worker_retire(&workers[i]);
                free(workers[i].user);
                free(workers[i].maildir);
                workers[i] = workers[--nworkers];
                break;
            }
        }
        if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM)
            log_warn("session process %ld killed by signal %d", (long)pid, WTERMSIG(status));
    }
}

/* The Maildir's identity now (not following a symbolic link): true, or false when it
 * is not there (yet). */
static bool maildir_id(const char *maildir, dev_t *dev, ino_t *ino)
{
    struct stat sb;

    if (fstatat(AT_FDCWD, maildir, &sb, AT_SYMLINK_NOFOLLOW) < 0
        || !S_ISDIR(sb.st_mode))
        return false;
    *dev = sb.st_dev;
    *ino = sb.st_ino;
    return true;
}

/* What a session process said: "I" for each session it finished. */
static void worker_read(struct worker *w, long long now)
{
    char buf[16];
    ssize_t n = read(w->ctl, buf, sizeof(buf));

    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n <= 0) {
        worker_retire(w);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] != 'I' || w->sessions == 0) {
            log_warn("session process %ld: unexpected report, stopped", (long)w->pid);
            kill(w->pid, SIGKILL);
            worker_retire(w);
            return;
        }
        w->sessions--;
    }
    w->busy = false;
    if (w->sessions > 0)
        return;
    w->idle_since = now;
    /* Its first session made the Maildir: the directory it entered is this one. */
    if (w->id_pending && maildir_id(w->maildir, &w->dev, &w->ino))
        w->id_pending = false;
    else if (w->id_pending)
        worker_retire(w);
}

/* Ends idle processes past max_idle, and the longest idle ones beyond the limit. */
static void workers_trim(long long now, long long max_idle_ms)
{
    size_t idle = 0;

    for (size_t i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        if (w->ctl < 0 || w->busy || w->sessions > 0)
            continue;
        if (max_idle_ms > 0 && now - w->idle_since >= max_idle_ms)
            worker_retire(w);
        else
            idle++;
    }
    while (idle > POSTLOGIN_IDLE_MAX) {
        struct worker *oldest = NULL;
        for (size_t i = 0; i < nworkers; i++)
            if (workers[i].ctl >= 0 && !workers[i].busy && workers[i].sessions == 0
                && (oldest == NULL || workers[i].idle_since < oldest->idle_since))
                oldest = &workers[i];
        worker_retire(oldest);
        idle--;
    }
}

/* A process of who's own with room for one more session: same user, uid, gid and
 * Maildir, which is still the directory the process entered; NULL when none.  The
 * busiest such process is chosen, so that a user's sessions stay together. */
static struct worker *worker_find(const struct auth_result *who)
{
    struct worker *best = NULL;
    dev_t dev = 0;
    ino_t ino = 0;
    bool have = maildir_id(who->maildir.s, &dev, &ino);

    for (size_t i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        if (w->ctl < 0 || w->busy || w->uid != who->uid || w->gid != who->gid
            || strcmp(w->user, who->user.s) != 0 || strcmp(w->maildir, who->maildir.s) != 0)
            continue;
        /* A process whose first session is making the Maildir: once it is there,
         * it is the directory the process entered; until then the process is the
         * one that will have entered it. */
        if (w->id_pending && w->sessions > 0) {
            if (have) {
                w->dev = dev;
                w->ino = ino;
                w->id_pending = false;
            } else if (best == NULL || w->sessions > best->sessions) {
                best = w;
                continue;
            }
        }
        if (w->id_pending || !have)
            continue;
        if (w->dev == dev && w->ino == ino) {
            if (best == NULL || w->sessions > best->sessions)
                best = w;
            continue;
        }
        /* Its Maildir was removed or replaced: that process is of no more use. */
        worker_retire(w);
    }
    return best;
}

/* Forks a session process for h (reusable: with a socket pair).  0, or -1. */
static int worker_fork(struct server *srv, struct login_handoff *h, struct auth_result *who,
                       bool reusable)
{
    long long max_use = conf_count(srv->conf, CONF_max_use);
    int sv[2] = { -1, -1 };
    pid_t pid, parent = getpid();
    struct worker *w;

    if (reusable && socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        log_warn("socketpair: %m");
        reusable = false;
    }
    pid = fork();
    if (pid < 0) {
        log_warn("fork: %m");
        if (sv[0] >= 0) {
            close(sv[0]);
            close(sv[1]);
        }
        return -1;
    }
    if (pid == 0) {
        /* Nothing of the other sessions, of master or of auth stays with the child. */
        for (size_t i = 0; i < srv->nlisten; i++)
            close(srv->listen_fds[i]);
        close(SERVER_STATUS_FD);
        for (size_t i = 0; i < nworkers; i++) {
            if (workers[i].ctl >= 0)
                close(workers[i].ctl);
            free(workers[i].user);
            free(workers[i].maildir);
        }
        free(workers);
        auth_clnt_close(auth);
        if (sv[0] >= 0)
            close(sv[0]);
        login_worker_main(svc_of, sv[1], h, who, parent,
                          muxed() ? 0 : reusable ? max_use : 1);
    }
    /* After the fork: the child may have just made the Maildir.  Read again at the
     * next hand-off; a process whose Maildir it no longer matches is retired then. */
    if (sv[1] >= 0) {
        close(sv[1]);
        (void)fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    }
    if (nworkers == workers_cap) {
        workers_cap = workers_cap ? workers_cap * 2 : 16;
        workers = xreallocarray(workers, workers_cap, sizeof(*workers));
    }
    w = &workers[nworkers++];
    memset(w, 0, sizeof(*w));
    w->pid = pid;
    w->ctl = sv[0];
    w->uid = who->uid;
    w->gid = who->gid;
    w->user = xstrdup(who->user.s);
    w->maildir = xstrdup(who->maildir.s);
    w->sessions = 1;
    w->busy = session_limit() <= 1;
    w->id_pending = !maildir_id(w->maildir, &w->dev, &w->ino);
    return 0;
}

/* Gives the client to a session process.  Virtual users (names with '@', from the
 * password map) share their uid: their processes are reused. */
static void dispatch(struct server *srv, struct login_handoff *h, struct auth_result *who)
{
    bool reusable = strchr(who->user.s, '@') != NULL || muxed();
    struct worker *w;

    while (reusable && (w = worker_find(who)) != NULL) {
        if (login_worker_send(w->ctl, h, who) == 0) {
            w->sessions++;
            w->busy = w->sessions >= session_limit();
            return;
        }
        log_warn("session process %ld: hand-off failed: %m", (long)w->pid);
        worker_retire(w);
    }
    if (worker_fork(srv, h, who, reusable) < 0)
        login_refuse(h, svc_of->refusal(LOGIN_REFUSE_BUSY));
}

/* One hand-off: receive, look up, dispatch. */
static void postlogin_accept(struct server *srv, int conn)
{
    struct login_handoff h;
    struct auth_result who;
    struct str err = STR_INIT;
    enum auth_status s;

    login_handoff_init(&h);
    auth_result_init(&who);
    if (!peer_allow_check(&callers, conn, svc_of->path)) {
        close(conn);
        goto done;
    }
    if (login_receive(conn, &h, svc_of->ipc_timeout_ms, &err) < 0) {
        log_warn("%s", err.s);
        goto done;
    }
    if (auth == NULL)
        auth = auth_clnt_open(PROTO_PATH_AUTH, svc_of->ipc_timeout_ms);
    s = auth_lookup(auth, h.token.s, &who);
    if (s != AUTH_OK) {
        log_warn("client=[%s], user=<%s>: token lookup failed: %s", h.client.s, h.user.s,
                 who.text.s ? who.text.s : "auth unavailable");
        login_refuse(&h, svc_of->refusal(s == AUTH_FAIL ? LOGIN_REFUSE_EXPIRED
                                                        : LOGIN_REFUSE_AUTH_TEMP));
        goto done;
    }
    if (who.maildir.len == 0 || who.maildir.s[0] != '/') {
        log_warn("user=<%s>: no usable Maildir path", who.user.s);
        login_refuse(&h, svc_of->refusal(LOGIN_REFUSE_NO_MAILBOX));
        goto done;
    }
    dispatch(srv, &h, &who);
done:
    login_handoff_free(&h);
    auth_result_free(&who);
    str_free(&err);
}

static void stop_all(void)
{
    for (size_t i = 0; i < nworkers; i++)
        kill(workers[i].pid, SIGTERM);
    /* Reap them, briefly, rather than leave zombies behind. */
    for (int k = 0; k < 20 && nworkers > 0; k++) {
        (void)poll(NULL, 0, 50);
        reap();
    }
}

int login_post_loop(struct server *srv)
{
    long long max_idle_ms = conf_time_ms(srv->conf, CONF_max_idle);
    long long idle_since = clock_ms();
    struct pollfd *pfd = NULL;
    size_t pfd_cap = 0;
    struct sigaction sa;
    bool draining = false;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_child;
    sa.sa_flags = SA_NOCLDSTOP;             /* no SA_RESTART: poll must wake */
    sigaction(SIGCHLD, &sa, NULL);

    for (;;) {
        long long now;
        size_t np = 0, nl;
        int n;

        reap();
        if (server_stop || server_orphaned()) {
            stop_all();
            break;
        }
        now = clock_ms();
        workers_trim(now, max_idle_ms);
        if (nworkers > 0)
            idle_since = now;
        /* max_use does not end this process: it holds no client data, and its idle
         * session processes (and their cached listings) would go with it. */
        if (!draining && (server_reload
                          || (max_idle_ms > 0 && now - idle_since >= max_idle_ms))) {
            /* Take no more clients; master starts another process when needed. */
            draining = true;
            server_busy();
        }
        if (draining) {
            for (size_t i = 0; i < nworkers; i++)
                worker_retire(&workers[i]);
            if (nworkers == 0)
                break;
            (void)poll(NULL, 0, POSTLOGIN_SLICE_MS);
            continue;
        }
        if (pfd_cap < srv->nlisten + nworkers) {
            pfd_cap = srv->nlisten + nworkers + 16;
            pfd = xreallocarray(pfd, pfd_cap, sizeof(*pfd));
        }
        for (size_t i = 0; i < srv->nlisten; i++) {
            pfd[np].fd = srv->listen_fds[i];
            pfd[np].events = POLLIN;
            pfd[np++].revents = 0;
        }
        nl = np;
        for (size_t i = 0; i < nworkers; i++) {
            pfd[np].fd = workers[i].ctl;    /* poll ignores -1 */
            pfd[np].events = POLLIN;
            pfd[np++].revents = 0;
        }
        n = poll(pfd, (nfds_t)np, POSTLOGIN_SLICE_MS);
        if (n <= 0)
            continue;
        /* Reports first: a process that just finished can take the next client.  The
         * table does not change here (reaping waits for the next round). */
        now = clock_ms();
        for (size_t i = 0; i < nworkers && nl + i < np; i++)
            if (workers[i].ctl >= 0 && (pfd[nl + i].revents & (POLLIN | POLLERR | POLLHUP)))
                worker_read(&workers[i], now);
        for (size_t i = 0; i < nl; i++) {
            int conn;
            if (!(pfd[i].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            conn = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
            if (conn < 0)
                continue;
            server_busy();
            postlogin_accept(srv, conn);
            server_idle();
            idle_since = clock_ms();
        }
    }
    free(pfd);
    for (size_t i = 0; i < nworkers; i++) {
        if (workers[i].ctl >= 0)
            close(workers[i].ctl);
        free(workers[i].user);
        free(workers[i].maildir);
    }
    free(workers);
    auth_clnt_close(auth);
    return 0;
}
