/* master: one service's life: binding its sockets, spawning children with the
 * descriptor layout of server.h, reading their BUSY/IDLE reports, reaping them and
 * throttling a service whose children fail.  The status pipe carries fixed-size
 * records from our own children; a record naming a pid that is not a child of the
 * service is ignored. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "conf.h"
#include "fd.h"
#include "log.h"
#include "master.h"
#include "sock.h"
#include "str.h"
#include "xmalloc.h"

static bool svc_bound(const struct service *s)
{
    return s->naddrs == 0 || s->fds != NULL;
}

int svc_bind(struct service *s, struct str *err)
{
    int *fds;
    size_t n = 0;

    if (svc_bound(s))
        return 0;
    fds = xcalloc(s->naddrs, sizeof(int));
    for (size_t i = 0; i < s->naddrs; i++) {
        struct str why = STR_INIT;
        const struct bind_addr *a = &s->addrs[i];
        int fd;

        if (s->type == MASTER_INET)
            fd = sock_listen_inet(a->host, s->port, LISTEN_BACKLOG, &why);
        else
            fd = sock_listen_unix(a->host, 0666, LISTEN_BACKLOG, &why);
        /* Whoever loses the race to accept (a child, or master answering for a
         * full service) must get EAGAIN, never block. */
        if (fd >= 0 && fd_nonblock(fd, true) < 0) {
            log_warn("service %s: %s: O_NONBLOCK: %s", s->name, a->host, strerror(errno));
        }
        if (fd >= 0) {
            fds[n++] = fd;
        } else if (a->optional) {
            log_warn("service %s: %s (skipped)", s->name, why.s ? why.s : a->host);
        } else {
            str_clear(err);
            str_printf(err, "service %s: %s", s->name, why.s ? why.s : a->host);
            str_free(&why);
            while (n > 0)
                close(fds[--n]);
            free(fds);
            return -1;
        }
        str_free(&why);
    }
    if (n == 0) {
        str_clear(err);
        str_printf(err, "service %s: no address could be bound", s->name);
        free(fds);
        return -1;
    }
    s->fds = fds;
    s->nfds = n;
    return 0;
}

void svc_unbind(struct service *s)
{
    for (size_t i = 0; i < s->nfds; i++)
        close(s->fds[i]);
    free(s->fds);
    s->fds = NULL;
    s->nfds = 0;
}

/* A failure: no spawn for backoff_s seconds, and the next pause twice as long.  A
 * child that had run long enough first resets the pause. */
static void svc_throttle(struct service *s, long long ran_ms)
{
    if (ran_ms >= THROTTLE_RESET_MS)
        s->backoff_s = THROTTLE_FIRST_S;
    if (s->state == SVC_THROTTLED || s->state == SVC_RETIRED)
        return;
    log_warn("service %s: throttling after failure", s->name);
    s->state = SVC_THROTTLED;
    s->deadline_ms = clock_ms() + (long long)s->backoff_s * 1000;
    s->backoff_s = s->backoff_s * 2 > THROTTLE_MAX_S ? THROTTLE_MAX_S : s->backoff_s * 2;
}

/* A retired service of the same name that still has processes. */
static bool svc_predecessor_running(const struct service *s)
{
    for (size_t i = 0; i < master.nsvc; i++) {
        const struct service *o = master.svc[i];
        if (o != s && o->state == SVC_RETIRED && o->nchild > 0
            && strcmp(o->name, s->name) == 0)
            return true;
    }
    return false;
}

void svc_settle(struct service *s, long long now)
{
    struct str err = STR_INIT;

    if (s->state == SVC_RETIRED || master.stopping)
        return;
    if (s->state == SVC_THROTTLED) {
        if (now < s->deadline_ms)
            return;
        s->state = SVC_WAITING;
    }
    if (!svc_bound(s)) {
        if (s->state == SVC_UNBOUND && now < s->deadline_ms)
            return;
        if (svc_bind(s, &err) < 0) {
            log_error("%s; trying again in %d s", err.s, BIND_RETRY_MS / 1000);
            str_free(&err);
            s->state = SVC_UNBOUND;
            s->deadline_ms = now + BIND_RETRY_MS;
            return;
        }
    }
    if (s->type == MASTER_DAEMON) {
        s->state = SVC_WAITING;
        /* After a reload, the old processes of a daemon service finish their work
         * before new ones start: two qmgrs at once would both claim active/. */
        if (svc_predecessor_running(s))
            return;
        while (s->nchild < (size_t)s->limit && s->state != SVC_THROTTLED)
            if (svc_spawn(s) < 0)
                break;
        return;
    }
    s->state = s->navail == 0 && s->nchild < (size_t)s->limit ? SVC_ARMED : SVC_WAITING;
}

/* In the child: status pipe to fd 3, sockets to 4.., then the configuration
 * snapshot, close-on-exec cleared on exactly those, clean signal state, then exec.
 * Does not return. */
static _Noreturn void child_exec(const struct service *s)
{
    size_t n = 2 + s->nfds;
    int *src = xcalloc(n, sizeof(int)), *tmp = xcalloc(n, sizeof(int));
    int high = SERVER_STATUS_FD + (int)n + 64;
    sigset_t none;
    char buf[32];

    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* First move everything above the target range, so that no dup2() below can
     * overwrite a descriptor that is still to be moved. */
    src[0] = s->status_wr;
    for (size_t i = 0; i < s->nfds; i++)
        src[1 + i] = s->fds[i];
    src[n - 1] = master.conf_fd;
    for (size_t i = 0; i < n; i++)
        if ((tmp[i] = fcntl(src[i], F_DUPFD_CLOEXEC, high)) < 0) {
            log_error("service %s: dup: %s", s->name, strerror(errno));
            _exit(127);
        }
    for (size_t i = 0; i < n; i++)
        if (dup2(tmp[i], SERVER_STATUS_FD + (int)i) < 0) {   /* clears close-on-exec */
            log_error("service %s: dup2: %s", s->name, strerror(errno));
            _exit(127);
        }
    for (size_t i = 0; i < n; i++)
        close(tmp[i]);

    snprintf(buf, sizeof(buf), "%zu", s->nfds);
    setenv("POSTERN_LISTEN_FDS", buf, 1);
    snprintf(buf, sizeof(buf), "%ld", (long)master.pid);
    setenv("POSTERN_MASTER_PID", buf, 1);
    setenv("POSTERN_CONFIG_DIR", master.config_dir, 1);
    snprintf(buf, sizeof(buf), "%d", SERVER_STATUS_FD + (int)n - 1);
    setenv(CONF_SNAPSHOT_ENV, buf, 1);
    execv(s->exe, s->argv);
    log_error("service %s: exec %s: %s", s->name, s->exe, strerror(errno));
    _exit(127);
}

static int status_pipe_open(struct service *s)
{
    int p[2];

    if (pipe2(p, O_CLOEXEC) < 0)
        return -1;
    if (fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK) < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    s->status_rd = p[0];
    s->status_wr = p[1];
    return 0;
}

int svc_spawn(struct service *s)
{
    sigset_t all, old;
    pid_t pid;

    if (s->nchild >= (size_t)s->limit)
        return -1;
    if (s->status_rd < 0 && status_pipe_open(s) < 0) {
        log_warn("service %s: pipe: %s", s->name, strerror(errno));
        svc_throttle(s, 0);
        return -1;
    }
    /* Signals stay blocked across fork(), so none reaches the child while it still
     * has master's handlers; child_exec() resets them, then unblocks. */
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid = fork();
    if (pid == 0)
        child_exec(s);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        log_warn("service %s: fork: %s", s->name, strerror(errno));
        svc_throttle(s, 0);
        return -1;
    }
    s->child[s->nchild].pid = pid;
    s->child[s->nchild].avail = true;
    s->child[s->nchild].start_ms = clock_ms();
    s->nchild++;
    s->navail++;
    if (s->type != MASTER_DAEMON)
        s->state = SVC_WAITING;
    return 0;
}

/* Connections waiting to be accepted on a listening socket: for TCP, Linux reports
 * the accept queue's length in TCP_INFO; otherwise (or when it says none, the
 * socket being readable) 1. */
static unsigned listen_pending(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 || ti.tcpi_state != TCP_LISTEN
        || ti.tcpi_unacked == 0)
        return 1;
    return ti.tcpi_unacked;
}

void svc_spawn_pending(struct service *s, int listen_fd)
{
    unsigned want = listen_pending(listen_fd);

    if (want > SPAWN_BURST_MAX)
        want = SPAWN_BURST_MAX;
    for (unsigned i = 0; i < want && s->nchild < (size_t)s->limit; i++)
        if (svc_spawn(s) < 0 || s->state == SVC_THROTTLED)
            break;
}

static struct child *child_find(struct service *s, pid_t pid)
{
    for (size_t i = 0; i < s->nchild; i++)
        if (s->child[i].pid == pid)
            return &s->child[i];
    return NULL;
}

static void status_apply(struct service *s, const struct server_status_msg *m)
{
    struct child *c = child_find(s, (pid_t)m->pid);

    if (c == NULL || m->pid <= 0)
        return;
    if (m->status == SERVER_STATUS_BUSY && c->avail) {
        c->avail = false;
        s->navail--;
    } else if (m->status == SERVER_STATUS_IDLE && !c->avail) {
        c->avail = true;
        s->navail++;
    }
}

void svc_status_read(struct service *s)
{
    unsigned char buf[64 * sizeof(struct server_status_msg)];

    for (;;) {
        ssize_t r = read(s->status_rd, buf, sizeof(buf));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r < 0 && errno != EAGAIN)
                log_warn("service %s: status pipe: %s", s->name, strerror(errno));
            return;
        }
        for (ssize_t i = 0; i < r; i++) {
            s->sbuf[s->slen++] = buf[i];
            if (s->slen == sizeof(s->sbuf)) {
                struct server_status_msg m;
                memcpy(&m, s->sbuf, sizeof(m));
                s->slen = 0;
                status_apply(s, &m);
            }
        }
    }
}

void svc_signal(struct service *s, int sig)
{
    for (size_t i = 0; i < s->nchild; i++)
        kill(s->child[i].pid, sig);
}

static void child_gone(struct service *s, size_t i, int status)
{
    struct child c = s->child[i];
    long long ran = clock_ms() - c.start_ms;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;

    s->child[i] = s->child[--s->nchild];
    if (c.avail)
        s->navail--;
    if (master.stopping)
        return;
    /* A child of a retired service may die of the reload's SIGHUP before it has
     * set its handler: that is no failure. */
    if (s->state == SVC_RETIRED && WIFSIGNALED(status) && WTERMSIG(status) == SIGHUP)
        return;
    if (ok) {
        if (ran >= THROTTLE_RESET_MS)
            s->backoff_s = THROTTLE_FIRST_S;
        return;
    }
    if (WIFSIGNALED(status))
        log_warn("process %s pid %ld killed by signal %d", s->exe, (long)c.pid,
                 WTERMSIG(status));
    else
        log_warn("process %s pid %ld exit status %d", s->exe, (long)c.pid,
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    svc_throttle(s, ran);
}

bool master_child_exited(pid_t pid, int status)
{
    for (size_t k = 0; k < master.nsvc; k++) {
        struct service *s = master.svc[k];
        for (size_t i = 0; i < s->nchild; i++)
            if (s->child[i].pid == pid) {
                child_gone(s, i, status);
                return true;
            }
    }
    return false;
}
