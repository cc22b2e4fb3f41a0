/* The daemon skeleton (see server.h): command line from master, config, log, privilege
 * drop and chroot, then an accept loop bounded by max_use and max_idle.  Trusts its
 * command line and environment only as far as master builds them: numbers are parsed
 * strictly and descriptors are checked before use. */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "conf.h"
#include "fd.h"
#include "log.h"
#include "log_conf.h"
#include "priv.h"
#include "str.h"
#include "xmalloc.h"

#define SERVER_MAX_LISTEN 256
#define SERVER_POLL_SLICE_MS 5000   /* how often an idle loop looks for orphaning */

volatile sig_atomic_t server_stop;
volatile sig_atomic_t server_reload;

static bool server_status_ok;       /* fd 3 is master's status pipe */
static pid_t server_parent;         /* master's pid, or our parent at start */

static void server_on_stop(int sig)
{
    (void)sig;
    server_stop = 1;
}

static void server_on_reload(int sig)
{
    (void)sig;
    server_reload = 1;
}

static void server_status(int status)
{
    struct server_status_msg msg;
    ssize_t n;

    if (!server_status_ok)
        return;
    memset(&msg, 0, sizeof(msg));
    msg.pid = (int)getpid();
    msg.status = status;
    do
        n = write(SERVER_STATUS_FD, &msg, sizeof(msg));
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EPIPE)
        server_status_ok = false;   /* master has gone; the loop will notice */
}

void server_busy(void)
{
    server_status(SERVER_STATUS_BUSY);
}

void server_idle(void)
{
    server_status(SERVER_STATUS_IDLE);
}

bool server_orphaned(void)
{
    return server_parent > 1 && getppid() != server_parent;
}

/* A non-negative decimal number no larger than max, or -1. */
static long long server_number(const char *s, long long max)
{
    long long v = 0;

    if (s == NULL || *s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        if (v > (max - (*s - '0')) / 10)
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

static _Noreturn void server_usage(const char *name)
{
    log_fatal("usage: %s -c DIR -s SERVICE [-u USER] [-j] [-f] [-o key=value]...", name);
}

static void server_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_flags = 0;                /* no SA_RESTART: poll() must see EINTR */
    sa.sa_handler = server_on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = server_on_reload;
    sigaction(SIGHUP, &sa, NULL);
}

static void server_listen_fds(struct server *srv)
{
    const char *env = getenv("POSTERN_LISTEN_FDS");
    long long n = 0;

    if (env != NULL && *env != '\0') {
        n = server_number(env, SERVER_MAX_LISTEN);
        if (n < 0)
            log_fatal("bad POSTERN_LISTEN_FDS \"%s\"", env);
    }
    srv->nlisten = (size_t)n;
    srv->listen_fds = xcalloc(srv->nlisten + 1, sizeof(int));
    for (size_t i = 0; i < srv->nlisten; i++) {
        int fd = SERVER_LISTEN_FD0 + (int)i;
        struct stat sb;
        if (fstat(fd, &sb) < 0 || !S_ISSOCK(sb.st_mode))
            log_fatal("listening descriptor %d is not a socket", fd);
        /* Several processes poll the same socket: whoever loses the race to accept
         * must get EAGAIN, not block. */
        if (fd_nonblock(fd, true) < 0 || fd_cloexec(fd, true) < 0)
            log_fatal("descriptor %d: %m", fd);
        srv->listen_fds[i] = fd;
    }
}

static int server_accept_loop(struct server *srv, const struct server_opts *opts)
{
    long long max_use = conf_count(srv->conf, CONF_max_use);
    long long max_idle_ms = conf_time_ms(srv->conf, CONF_max_idle);
    long long idle_since = clock_ms();
    long long served = 0;
    struct pollfd *pfd = xcalloc(srv->nlisten + 1, sizeof(*pfd));
    size_t next = 0;

    if (opts->service == NULL)
        log_panic("no service function");
    if (srv->nlisten == 0)
        log_warn("no listening sockets");
    for (;;) {
        long long wait_ms = SERVER_POLL_SLICE_MS;
        int n;

        if (server_stop || server_reload || server_orphaned())
            break;
        if (max_use > 0 && served >= max_use)
            break;
        if (!opts->no_max_idle && max_idle_ms > 0) {
            long long left = idle_since + max_idle_ms - clock_ms();
            if (left <= 0)
                break;
            if (left < wait_ms)
                wait_ms = left;
        }
        for (size_t i = 0; i < srv->nlisten; i++) {
            pfd[i].fd = srv->listen_fds[i];
            pfd[i].events = POLLIN;
            pfd[i].revents = 0;
        }
        n = poll(pfd, srv->nlisten, (int)wait_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_fatal("poll: %m");
        }
        if (n == 0)
            continue;
        if (opts->stale != NULL && opts->stale(srv)) {
            log_info("tables changed, exiting for a new process to read them");
            break;
        }
        /* Take one connection, starting after the socket served last. */
        for (size_t k = 0; k < srv->nlisten; k++) {
            size_t i = (next + k) % srv->nlisten;
            int fd;

            if (!(pfd[i].revents & (POLLIN | POLLERR | POLLHUP)))
                continue;
            next = i + 1;
            static const int one = 1;
            fd = accept4(pfd[i].fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR
                    || errno == ECONNABORTED || errno == EPROTO)
                    break;
                log_warn("accept: %m");
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS
                    || errno == ENOMEM)
                    sleep(1);
                break;
            }
            /* Replies are buffered and flushed at protocol boundaries, so Nagle's
             * delay only holds back the tail of a reply (fails harmlessly on UNIX
             * sockets). */
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            server_busy();
            opts->service(srv, &fd);
            if (fd >= 0)
                close(fd);
            server_idle();
            served++;
            idle_since = clock_ms();
            break;
        }
    }
    free(pfd);
    return 0;
}

_Noreturn void server_main(int argc, char **argv, const struct server_opts *opts)
{
    struct server srv;
    struct str err = STR_INIT, jail_dir = STR_INIT;
    const char *config_dir = NULL, *user = NULL, *service = NULL;
    const char *queue_dir, *env;
    char **overrides = xcalloc((size_t)argc + 1, sizeof(char *));
    size_t noverrides = 0;
    bool jail = false, foreground = false;
    struct stat sb;
    int c, status;

    /* Before anything opens a file that could land on descriptor 3. */
    server_status_ok = fstat(SERVER_STATUS_FD, &sb) == 0 && S_ISFIFO(sb.st_mode);
    if (server_status_ok)
        (void)fd_cloexec(SERVER_STATUS_FD, true);
    /* Nor may a file opened later become our stderr and receive log lines. */
    if (fd_std_ensure() < 0)
        exit(1);

    log_open(opts->name, LOG_DEST_STDERR, NULL);
    while ((c = getopt(argc, argv, "c:s:u:jfo:")) != -1) {
        switch (c) {
        case 'c': config_dir = optarg; break;
        case 's': service = optarg; break;
        case 'u': user = optarg; break;
        case 'j': jail = true; break;
        case 'f': foreground = true; break;
        case 'o': overrides[noverrides++] = optarg; break;
        default: server_usage(opts->name);
        }
    }
    if (optind < argc)
        log_warn("ignoring extra argument \"%s\"", argv[optind]);
    if (!foreground)
        log_open(opts->name, LOG_DEST_SYSLOG, NULL);
    if (config_dir == NULL)
        config_dir = conf_default_dir();

    memset(&srv, 0, sizeof(srv));
    srv.name = opts->name;
    srv.service = service != NULL ? service : opts->name;
    srv.foreground = foreground;
    /* Started by master: the settings master checked, from its snapshot. */
    env = getenv(CONF_SNAPSHOT_ENV);
    if (env != NULL && *env != '\0') {
        long long fd = server_number(env, INT_MAX);
        if (fd < 0)
            log_fatal("bad %s \"%s\"", CONF_SNAPSHOT_ENV, env);
        srv.conf = conf_load_fd(config_dir, (int)fd, &err);
        close((int)fd);
        unsetenv(CONF_SNAPSHOT_ENV);
    } else {
        srv.conf = conf_load(config_dir, &err);
    }
    if (srv.conf == NULL)
        log_fatal("%s", err.s);
    for (size_t i = 0; i < noverrides; i++) {
        const char *eq = strchr(overrides[i], '=');
        char *key;
        if (eq == NULL)
            log_fatal("-o %s: expected key=value", overrides[i]);
        key = xstrndup(overrides[i], (size_t)(eq - overrides[i]));
        if (conf_set(srv.conf, key, eq + 1, &err) < 0)
            log_fatal("-o %s", err.s);
        free(key);
    }
    free(overrides);
    log_open_conf(opts->name, srv.conf, foreground);

    server_parent = getppid();
    env = getenv("POSTERN_MASTER_PID");
    if (env != NULL && *env != '\0') {
        long long pid = server_number(env, INT_MAX);
        if (pid <= 0)
            log_fatal("bad POSTERN_MASTER_PID \"%s\"", env);
        server_parent = (pid_t)pid;
    }
    server_listen_fds(&srv);
    server_signals();
    /* master sets it for its children; a daemon started any other way sets it here. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        log_fatal("prctl PR_SET_NO_NEW_PRIVS: %m");

    if (opts->pre_jail != NULL)
        opts->pre_jail(&srv);

    queue_dir = conf_str(srv.conf, CONF_queue_directory);
    if (chdir(queue_dir) < 0)
        log_fatal("chdir %s: %m", queue_dir);
    if (opts->jail_subdir != NULL) {
        str_printf(&jail_dir, "%s/%s", queue_dir, opts->jail_subdir);
        queue_dir = jail_dir.s;
    }
    if ((user != NULL || jail) && priv_drop(user, jail ? queue_dir : NULL, &err) < 0)
        log_fatal("%s", err.s);
    if (opts->jail_subdir != NULL && !jail && chdir(opts->jail_subdir) < 0)
        log_fatal("chdir %s: %m", queue_dir);
    /* Set after the drop: changing credentials clears the parent-death signal. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
        log_warn("prctl PR_SET_PDEATHSIG: %m");
    if (server_orphaned()) {
        log_info("master has gone, exiting");
        exit(0);
    }

    if (opts->post_jail != NULL)
        opts->post_jail(&srv);

    if (opts->loop != NULL)
        status = opts->loop(&srv);
    else
        status = server_accept_loop(&srv, opts);
    str_free(&err);
    str_free(&jail_dir);
    exit(status);
}
