/* pop3d (post-login): accepts hand-offs from pre-auth processes on login/pop3, asks
 * auth who the token belongs to, and forks one session per client; the child drops to
 * the mailbox owner's uid and gid and never execs.  The parent keeps no client data:
 * it closes the client's descriptor right after the fork, reaps its children, and stays
 * until they are gone (a SIGTERM is passed on to them).  It trusts a hand-off only as
 * far as auth vouches for its token. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth_clnt.h"
#include "conf.h"
#include "log.h"
#include "login.h"
#include "maildir.h"
#include "pop3d.h"
#include "priv.h"
#include "server.h"
#include "stream.h"
#include "xmalloc.h"

#define POSTLOGIN_SLICE_MS 1000

static volatile sig_atomic_t child_exited;
static pid_t *kids;
static size_t nkids, kids_cap;

static void on_child(int sig)
{
    (void)sig;
    child_exited = 1;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reap(void)
{
    pid_t pid;
    int status;

    child_exited = 0;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < nkids; i++) {
            if (kids[i] == pid) {
                kids[i] = kids[--nkids];
                break;
            }
        }
        if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM)
            log_warn("session %ld killed by signal %d", (long)pid, WTERMSIG(status));
    }
}

/* Tells the client why it cannot have its mailbox, and drops it. */
static void refuse(struct login_handoff *h, const char *text)
{
    struct stream *st = login_stream(h);
    stream_set_timeout(st, 10000);
    stream_printf(st, "-ERR %s\r\n", text);
    stream_flush(st);
    stream_close(st);
}

/* In the child: become the mailbox owner for good.  0, or -1 (logged). */
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

static _Noreturn void child_main(struct server *srv, struct login_handoff *h,
                                 const struct auth_result *who, pid_t parent)
{
    struct sigaction sa;
    struct str err = STR_INIT;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    for (size_t i = 0; i < srv->nlisten; i++)
        close(srv->listen_fds[i]);
    close(SERVER_STATUS_FD);
    free(kids);
    if (become_user(who) < 0) {
        refuse(h, "[SYS/TEMP] cannot open the mailbox");
        _exit(1);
    }
    /* After the drop: changing credentials clears the parent-death signal. */
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(0);
    /* No mail delivered yet: an empty Maildir, made as the user. */
    if (chdir(who->maildir.s) < 0
        && (errno != ENOENT || maildir_create(who->maildir.s, 0700, &err) < 0
            || chdir(who->maildir.s) < 0)) {
        log_warn("user=<%s>: chdir %s: %m", who->user.s, who->maildir.s);
        refuse(h, "[SYS/TEMP] cannot open the mailbox");
        _exit(1);
    }
    _exit(pop3_session(h, who));
}

/* One hand-off: receive, look up, fork. */
static void postlogin_accept(struct server *srv, int conn)
{
    struct login_handoff h;
    struct auth_result who;
    struct auth_clnt *ac;
    struct str err = STR_INIT;
    enum auth_status s = AUTH_TEMPFAIL;
    pid_t pid;

    login_handoff_init(&h);
    auth_result_init(&who);
    if (login_receive(conn, &h, pop3_cf.ipc_timeout_ms, &err) < 0) {
        log_warn("%s", err.s);
        goto done;
    }
    ac = auth_clnt_open(AUTH_SOCKET, pop3_cf.ipc_timeout_ms);
    if (ac == NULL) {
        log_warn("connect to auth: %m");
    } else {
        s = auth_lookup(ac, h.token.s, &who);
        auth_clnt_close(ac);
    }
    if (s != AUTH_OK) {
        log_warn("client=[%s], user=<%s>: token lookup failed: %s", h.client.s, h.user.s,
                 who.text.s ? who.text.s : "auth unavailable");
        refuse(&h, s == AUTH_FAIL ? "[AUTH] login expired, try again"
                                  : "[SYS/TEMP] authentication unavailable, try again later");
        goto done;
    }
    if (who.maildir.len == 0 || who.maildir.s[0] != '/') {
        log_warn("user=<%s>: no usable Maildir path", who.user.s);
        refuse(&h, "[SYS/PERM] no mailbox");
        goto done;
    }
    pid = fork();
    if (pid < 0) {
        log_warn("fork: %m");
        refuse(&h, "[SYS/TEMP] server busy, try again later");
        goto done;
    }
    if (pid == 0)
        child_main(srv, &h, &who, getppid());
    if (nkids == kids_cap) {
        kids_cap = kids_cap ? kids_cap * 2 : 16;
        kids = xreallocarray(kids, kids_cap, sizeof(*kids));
    }
    kids[nkids++] = pid;
done:
    login_handoff_free(&h);
    auth_result_free(&who);
    str_free(&err);
}

int pop3_postlogin_loop(struct server *srv)
{
    long long max_use = conf_int(srv->conf, "max_use");
    long long max_idle_ms = conf_time(srv->conf, "max_idle") * 1000;
    long long idle_since = now_ms(), served = 0;
    struct pollfd *pfd = xcalloc(srv->nlisten + 1, sizeof(*pfd));
    struct sigaction sa;
    bool draining = false;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_child;
    sa.sa_flags = SA_NOCLDSTOP;             /* no SA_RESTART: poll must wake */
    sigaction(SIGCHLD, &sa, NULL);

    for (;;) {
        int n;

        reap();
        if (server_stop || server_orphaned()) {
            for (size_t i = 0; i < nkids; i++)
                kill(kids[i], SIGTERM);
            /* Reap them, briefly, rather than leave zombies behind. */
            for (int k = 0; k < 20 && nkids > 0; k++) {
                (void)poll(NULL, 0, 50);
                reap();
            }
            break;
        }
        if (nkids > 0)
            idle_since = now_ms();
        if (!draining && (server_reload || (max_use > 0 && served >= max_use)
                          || (max_idle_ms > 0 && now_ms() - idle_since >= max_idle_ms))) {
            /* Take no more clients; master starts another process when needed. */
            draining = true;
            server_busy();
        }
        if (draining) {
            if (nkids == 0)
                break;
            (void)poll(NULL, 0, POSTLOGIN_SLICE_MS);
            continue;
        }
        for (size_t i = 0; i < srv->nlisten; i++) {
            pfd[i].fd = srv->listen_fds[i];
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
        }
        n = poll(pfd, srv->nlisten, POSTLOGIN_SLICE_MS);
        if (n <= 0)
            continue;
        for (size_t i = 0; i < srv->nlisten; i++) {
            int conn;
            if (!(pfd[i].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            conn = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
            if (conn < 0)
                continue;
            server_busy();
            postlogin_accept(srv, conn);
            server_idle();
            served++;
            idle_since = now_ms();
        }
    }
    free(pfd);
    free(kids);
    return 0;
}
