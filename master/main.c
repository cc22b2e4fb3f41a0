/* master(8): the supervisor.  Reads postern.conf and master.conf, binds every
 * service's listening sockets, starts daemons on demand (or keeps `limit` of them
 * running), restarts failed ones with backoff, reloads on SIGHUP and stops cleanly
 * on SIGTERM.  It reads no network input: only its configuration and the fixed-size
 * status records of its own children. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "conf.h"
#include "fd.h"
#include "log.h"
#include "log_conf.h"
#include "master.h"
#include "priv.h"
#include "proto.h"
#include "queue.h"
#include "str.h"
#include "xmalloc.h"

#define PID_FILE "pid/master.pid"

struct master master;

static int selfpipe[2] = { -1, -1 };
static volatile sig_atomic_t sig_hup, sig_term, sig_chld;
static int pid_fd = -1;
static int ready_fd = -1;

static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: master [-c config_dir] [-f] [-t]\n");
    exit(1);
}

/* ---- signals: handlers only set a flag and wake the loop ---- */

static void on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;

    if (sig == SIGHUP)
        sig_hup = 1;
    else if (sig == SIGCHLD)
        sig_chld = 1;
    else
        sig_term = sig;
    if (write(selfpipe[1], &c, 1) < 0) {
        /* full pipe: the loop is awake already */
    }
    errno = saved;
}

static void signals_init(void)
{
    struct sigaction sa;
    const int sigs[] = { SIGHUP, SIGTERM, SIGINT, SIGCHLD };

    if (pipe2(selfpipe, O_CLOEXEC | O_NONBLOCK) < 0)
        log_fatal("pipe: %s", strerror(errno));
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    sigaction(SIGPIPE, &sa, NULL);
}

static void selfpipe_drain(void)
{
    char buf[64];

    while (read(selfpipe[0], buf, sizeof(buf)) > 0)
        ;
}

/* ---- pid file: a write lock on queue_directory/pid/master.pid ---- */

static pid_t pid_file_holder(int fd)
{
    struct flock fl;

    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_GETLK, &fl) < 0 || fl.l_type == F_UNLCK)
        return 0;
    return fl.l_pid;
}

static int pid_file_open(void)
{
    int fd = open(PID_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);

    if (fd < 0)
        log_fatal("open %s/%s: %s", master.queue_dir, PID_FILE, strerror(errno));
    return fd;
}

/* Before going to the background, so the error reaches the caller. */
static void pid_file_check(void)
{
    int fd = pid_file_open();
    pid_t other = pid_file_holder(fd);

    close(fd);
    if (other > 0)
        log_fatal("another master is running (pid %ld)", (long)other);
}

static void pid_file_lock(void)
{
    struct flock fl;
    char buf[32];
    int n;

    pid_fd = pid_file_open();
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(pid_fd, F_SETLK, &fl) < 0) {
        if (errno == EAGAIN || errno == EACCES)
            log_fatal("another master is running (pid %ld)", (long)pid_file_holder(pid_fd));
        log_fatal("lock %s/%s: %s", master.queue_dir, PID_FILE, strerror(errno));
    }
    n = snprintf(buf, sizeof(buf), "%ld\n", (long)master.pid);
    if (ftruncate(pid_fd, 0) < 0 || pwrite(pid_fd, buf, (size_t)n, 0) != n)
        log_fatal("write %s/%s: %s", master.queue_dir, PID_FILE, strerror(errno));
}

static void pid_file_remove(void)
{
    if (pid_fd < 0 || getpid() != master.pid)
        return;
    unlink(PID_FILE);
    close(pid_fd);
    pid_fd = -1;
}

/* ---- start-up ---- */

/* fork, setsid, fork.  The first process waits until the daemon says it is ready
 * (sockets bound, pid file locked), so its exit status tells whether start-up
 * worked; errors until then still go to the caller's stderr. */
static void daemonize(void)
{
    int p[2], null;
    pid_t pid;

    if (pipe2(p, O_CLOEXEC) < 0)
        log_fatal("pipe: %s", strerror(errno));
    pid = fork();
    if (pid < 0)
        log_fatal("fork: %s", strerror(errno));
    if (pid > 0) {
        char c;
        ssize_t r;
        close(p[1]);
        do
            r = read(p[0], &c, 1);
        while (r < 0 && errno == EINTR);
        waitpid(pid, NULL, 0);
        _exit(r == 1 ? 0 : 1);
    }
    close(p[0]);
    if (setsid() < 0)
        log_fatal("setsid: %s", strerror(errno));
    pid = fork();
    if (pid < 0)
        log_fatal("fork: %s", strerror(errno));
    if (pid > 0)
        _exit(0);
    ready_fd = p[1];
    null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0)
        log_fatal("/dev/null: %s", strerror(errno));
    dup2(null, 0);
    dup2(null, 1);
    if (null > 2)
        close(null);
}

static void daemon_ready(void)
{
    int null;

    if (ready_fd < 0)
        return;
    if (write(ready_fd, "1", 1) != 1)
        log_warn("start-up notification: %s", strerror(errno));
    close(ready_fd);
    ready_fd = -1;
    null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 2);
        if (null > 2)
            close(null);
    }
}

/* Started as root: the queue belongs to mail_owner (maildrop/ and public/ to the
 * setgid_group when that group exists), pid/ stays root's. */
static void queue_chown(const struct conf *conf)
{
    static const char *const dirs[] = { QUEUE_DIRS, PROTO_PRIVATE_DIR, "public" };
    const struct passwd *pw = getpwnam(conf_str(conf, CONF_mail_owner));
    const struct group *gr = getgrnam(conf_str(conf, CONF_setgid_group));
    uid_t uid;
    gid_t gid, drop_gid;

    if (pw == NULL)
        log_fatal("mail_owner: unknown user \"%s\"", conf_str(conf, CONF_mail_owner));
    uid = pw->pw_uid;
    gid = pw->pw_gid;
    drop_gid = gr != NULL ? gr->gr_gid : gid;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        bool drop = strcmp(dirs[i], "maildrop") == 0 || strcmp(dirs[i], "public") == 0;
        if (lchown(dirs[i], uid, drop ? drop_gid : gid) < 0)
            log_fatal("chown %s/%s: %s", master.queue_dir, dirs[i], strerror(errno));
    }
}

/* Binds every service; a port still held (say, by the children of a master that
 * was killed) is retried for a few seconds. */
static void services_bind(void)
{
    long long deadline = clock_ms() + BIND_START_WAIT_MS;
    struct str err = STR_INIT;

    for (size_t i = 0; i < master.nsvc; i++) {
        struct service *s = master.svc[i];
        while (svc_bind(s, &err) < 0) {
            if (clock_ms() >= deadline)
                log_fatal("%s", err.s);
            usleep(250 * 1000);
        }
        s->state = SVC_WAITING;
    }
    str_free(&err);
}

/* ---- the loop ---- */

static size_t children_count(void)
{
    size_t n = 0;

    for (size_t i = 0; i < master.nsvc; i++)
        n += master.svc[i]->nchild;
    return n;
}

static void reap(void)
{
    pid_t pid;
    int status;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        master_child_exited(pid, status);
}

static _Noreturn void master_stop(int sig)
{
    long long deadline;

    log_info("terminating on signal %d", sig);
    master.stopping = true;
    for (size_t i = 0; i < master.nsvc; i++) {
        svc_unbind(master.svc[i]);
        svc_signal(master.svc[i], SIGTERM);
    }
    deadline = clock_ms() + STOP_WAIT_MS;
    reap();
    while (children_count() > 0 && clock_ms() < deadline) {
        struct pollfd p = { selfpipe[0], POLLIN, 0 };
        poll(&p, 1, 100);
        selfpipe_drain();
        reap();
    }
    if (children_count() > 0) {
        log_warn("%zu processes still running after %d s: killing them",
                 children_count(), STOP_WAIT_MS / 1000);
        for (size_t i = 0; i < master.nsvc; i++)
            svc_signal(master.svc[i], SIGKILL);
        while (children_count() > 0) {
            int status;
            pid_t pid = waitpid(-1, &status, 0);
            if (pid < 0 && errno == EINTR)
                continue;
            if (pid < 0)
                break;
            master_child_exited(pid, status);
        }
    }
    pid_file_remove();
    exit(0);
}

/* Services settle into their states; retired ones without children go. */
static void services_settle(long long now)
{
    size_t k = 0;

    /* First drop the finished ones, so that settling (which looks at the other
     * services) never sees a freed one. */
    for (size_t i = 0; i < master.nsvc; i++) {
        struct service *s = master.svc[i];
        if (s->state == SVC_RETIRED && s->nchild == 0) {
            service_free(s);
            continue;
        }
        master.svc[k++] = s;
    }
    master.nsvc = k;
    for (size_t i = 0; i < master.nsvc; i++)
        svc_settle(master.svc[i], now);
}

struct poll_ref {
    struct service *svc;
    bool status;                /* status pipe, else a listening socket */
};

static struct pollfd *pfd;
static struct poll_ref *ref;
static size_t pfd_cap;

static _Noreturn void main_loop(void)
{

    for (;;) {
        long long now;
        size_t n = 1, need = 1;
        int timeout = -1, r;

        if (sig_term)
            master_stop(sig_term);
        if (sig_chld) {
            sig_chld = 0;
            reap();
        }
        if (sig_hup) {
            sig_hup = 0;
            master_reload();
        }
        now = clock_ms();
        services_settle(now);

        for (size_t i = 0; i < master.nsvc; i++)
            need += 1 + master.svc[i]->nfds;
        if (need > pfd_cap) {
            pfd_cap = need;
            pfd = xreallocarray(pfd, pfd_cap, sizeof(*pfd));
            ref = xreallocarray(ref, pfd_cap, sizeof(*ref));
        }
        pfd[0].fd = selfpipe[0];
        pfd[0].events = POLLIN;
        for (size_t i = 0; i < master.nsvc; i++) {
            struct service *s = master.svc[i];
            if (s->status_rd >= 0) {
                pfd[n].fd = s->status_rd;
                pfd[n].events = POLLIN;
                ref[n].svc = s;
                ref[n++].status = true;
            }
            /* A full service's sockets are watched after a grace time, so that
             * master answers its waiting clients itself (busy.c). */
            bool busy_watch = false;
            if (svc_full(s)) {
                if (s->full_since < 0)
                    s->full_since = now;
                if (now - s->full_since >= BUSY_GRACE_MS) {
                    busy_watch = true;
                } else {
                    long long wait = s->full_since + BUSY_GRACE_MS - now;
                    if (timeout < 0 || wait < timeout)
                        timeout = (int)wait;
                }
            } else {
                s->full_since = -1;
            }
            if (s->state == SVC_ARMED || busy_watch)
                for (size_t k = 0; k < s->nfds; k++) {
                    pfd[n].fd = s->fds[k];
                    pfd[n].events = POLLIN;
                    ref[n].svc = s;
                    ref[n++].status = false;
                }
            if (s->state == SVC_THROTTLED || s->state == SVC_UNBOUND) {
                long long wait = s->deadline_ms - now;
                if (wait < 0)
                    wait = 0;
                if (wait > INT_MAX)
                    wait = INT_MAX;
                if (timeout < 0 || wait < timeout)
                    timeout = (int)wait;
            }
        }
        for (size_t i = 0; i < n; i++)
            pfd[i].revents = 0;

        r = poll(pfd, n, timeout);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            log_fatal("poll: %s", strerror(errno));
        }
        if (pfd[0].revents)
            selfpipe_drain();
        for (size_t i = 1; i < n; i++) {
            if (pfd[i].revents == 0)
                continue;
            if (ref[i].status)
                svc_status_read(ref[i].svc);
            else if (ref[i].svc->state == SVC_ARMED)
                svc_spawn_pending(ref[i].svc, pfd[i].fd);   /* it leaves ARMED */
            else if (svc_full(ref[i].svc))  /* still full after the status reports */
                svc_busy_accept(ref[i].svc, pfd[i].fd);
        }
    }
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    bool check_only = false;
    char real[PATH_MAX];
    struct str err = STR_INIT;
    int c;

    closefrom(3);               /* nothing inherited may leak into the daemons */
    /* A closed 0, 1 or 2 would be taken by the next file opened (a socket, the pid
     * file) and handed to every daemon as its stdin, stdout or stderr. */
    if (fd_std_ensure() < 0)
        exit(1);
    log_open("master", LOG_DEST_STDERR, NULL);
    while ((c = getopt(argc, argv, "c:ft")) != -1) {
        switch (c) {
        case 'c': dir = optarg; break;
        case 'f': master.foreground = true; break;
        case 't': check_only = true; break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    if (dir == NULL)
        dir = conf_default_dir();
    if (realpath(dir, real) == NULL)
        log_fatal("%s: %s", dir, strerror(errno));
    umask(022);
    master.config_dir = xstrdup(real);
    master.root = geteuid() == 0;
    master.pid = getpid();

    if (master_config_load(master.config_dir, &master.conf, &master.svc, &master.nsvc,
                           &err) < 0) {
        if (check_only) {           /* for "postern reload": one line, no log prefix */
            fprintf(stderr, "master: %s\n", err.s);
            exit(1);
        }
        log_fatal("%s", err.s);
    }
    str_free(&err);
    if (check_only)
        exit(0);
    master.conf_fd = master_conf_snapshot(master.conf, &err);
    if (master.conf_fd < 0)
        log_fatal("%s", err.s);

    master.queue_dir = xstrdup(conf_str(master.conf, CONF_queue_directory));
    if (queue_tree_create(master.queue_dir, &err) < 0)
        log_fatal("%s", err.s);
    if (chdir(master.queue_dir) < 0)
        log_fatal("chdir %s: %s", master.queue_dir, strerror(errno));
    if (master.root)
        queue_chown(master.conf);
    pid_file_check();
    if (!master.foreground)
        daemonize();
    master.pid = getpid();
    pid_file_lock();
    atexit(pid_file_remove);
    signals_init();
    services_bind();
    daemon_ready();
    log_open_conf("master", master.conf, master.foreground);
    log_info("daemon started -- version %s, configuration %s", POSTERN_VERSION,
             master.config_dir);
    main_loop();
}
