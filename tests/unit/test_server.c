/* Unit tests for lib/mail/server.c: a tiny service runs through server_main() in a child
 * process, with the descriptors master would hand it (status pipe on 3, a listening
 * UNIX socket on 4), and the test plays master: it connects, reads the BUSY/IDLE
 * reports, and watches the child exit after max_use connections, on SIGTERM, or on a
 * bad command line.  Files live in a directory of our own: server_main() ends with
 * exit(), which must not remove the harness's temporary directory. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server.h"
#include "sock.h"
#include "str.h"
#include "unit.h"

static char dir[256];
static char queue[300];
static pid_t dir_owner;

static const char *tdir(void)
{
    if (dir[0] == '\0') {
        char conf[300], text[1024];
        int fd, n;

        snprintf(dir, sizeof(dir), "/tmp/postern-server-test.XXXXXX");
        if (mkdtemp(dir) == NULL) {
            perror("mkdtemp");
            exit(2);
        }
        dir_owner = getpid();
        snprintf(queue, sizeof(queue), "%s/queue", dir);
        if (mkdir(queue, 0755) < 0) {
            perror("mkdir");
            exit(2);
        }
        snprintf(conf, sizeof(conf), "%s/postern.conf", dir);
        n = snprintf(text, sizeof(text),
                     "queue_directory = %s\nmaillog_file = %s/server.log\n"
                     "max_use = 100\nmax_idle = 100s\n", queue, dir);
        fd = open(conf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || write(fd, text, (size_t)n) != n) {
            perror(conf);
            exit(2);
        }
        close(fd);
    }
    return dir;
}

__attribute__((destructor)) static void cleanup(void)
{
    if (dir[0] != '\0' && getpid() == dir_owner && getenv("KEEP") == NULL) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
        dir[0] = '\0';
    }
}

/* ---- the service the child runs ---- */

static bool pre_jail_ran, post_jail_ran;
static bool child_quiet;        /* the child's stderr to /dev/null (expected failures) */
static char post_jail_cwd[PATH_MAX];

static void t_pre_jail(struct server *srv)
{
    (void)srv;
    pre_jail_ran = true;
}

static void t_post_jail(struct server *srv)
{
    (void)srv;
    post_jail_ran = true;
    if (getcwd(post_jail_cwd, sizeof(post_jail_cwd)) == NULL)
        post_jail_cwd[0] = '\0';
}

/* Replies with what the test wants to know about the daemon's state. */
static void t_service(struct server *srv, int *fd)
{
    char line[PATH_MAX + 200];
    int n = snprintf(line, sizeof(line), "svc=%s pre=%d post=%d fd_above_2=%d cwd=%s\n",
                     srv->service, pre_jail_ran, post_jail_ran, *fd > 2, post_jail_cwd);
    if (write(*fd, line, (size_t)n) != n) {
        /* the test sees the short reply */
    }
}

static const struct server_opts t_opts = {
    .name = "testd",
    .pre_jail = t_pre_jail,
    .post_jail = t_post_jail,
    .service = t_service,
};

struct child {
    pid_t pid;
    int status_rd;              /* the status pipe's read end */
    char sock[400];
};

/* Starts the service: listen_env is $POSTERN_LISTEN_FDS; close_std closes 0, 1, 2
 * before server_main (the skeleton must reopen them).  extra: more arguments. */
static bool child_start(struct child *c, const char *listen_env, bool close_std,
                        const char *extra1, const char *extra2)
{
    struct str err = STR_INIT;
    int p[2], lfd;

    tdir();
    snprintf(c->sock, sizeof(c->sock), "%s/sock", queue);
    lfd = sock_listen_unix(c->sock, 0600, 8, &err);
    str_free(&err);
    if (lfd < 0 || pipe(p) < 0)
        return false;
    fflush(NULL);
    c->pid = fork();
    if (c->pid < 0)
        return false;
    if (c->pid == 0) {
        char *argv[] = { "testd", "-c", dir, "-s", "svc", "-f",
                         (char *)extra1, (char *)extra2, NULL };
        int hi_sock = fcntl(lfd, F_DUPFD, 20), hi_pipe = fcntl(p[1], F_DUPFD, 20);
        close(p[0]);
        dup2(hi_pipe, SERVER_STATUS_FD);
        dup2(hi_sock, SERVER_LISTEN_FD0);
        close(hi_pipe);
        close(hi_sock);
        if (p[1] != SERVER_STATUS_FD && p[1] != SERVER_LISTEN_FD0)
            close(p[1]);
        if (lfd != SERVER_STATUS_FD && lfd != SERVER_LISTEN_FD0)
            close(lfd);
        setenv("POSTERN_LISTEN_FDS", listen_env, 1);
        unsetenv("POSTERN_MASTER_PID");
        if (close_std) {
            close(0);
            close(1);
            close(2);
        } else if (child_quiet) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 2);
            close(null);
        }
        server_main(extra1 != NULL ? (extra2 != NULL ? 8 : 7) : 6, argv, &t_opts);
    }
    close(p[1]);
    close(lfd);
    c->status_rd = p[0];
    return true;
}

/* Waits up to ms for the child's exit: its exit status, or -1 (killed on timeout). */
static int child_wait(struct child *c, int ms)
{
    int status;

    for (int waited = 0; waited < ms; waited += 10) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid) {
            close(c->status_rd);
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        usleep(10 * 1000);
    }
    kill(c->pid, SIGKILL);
    waitpid(c->pid, &status, 0);
    close(c->status_rd);
    return -1;
}

/* Reads one status report within ms: 1, or 0. */
static int status_read(struct child *c, struct server_status_msg *m, int ms)
{
    struct pollfd pfd = { c->status_rd, POLLIN, 0 };
    if (poll(&pfd, 1, ms) != 1)
        return 0;
    return read(c->status_rd, m, sizeof(*m)) == (ssize_t)sizeof(*m);
}

/* Connects and reads the service's one-line reply into buf. */
static bool ask(struct child *c, char *buf, size_t size)
{
    int fd = sock_connect_unix(c->sock, 2000);
    size_t got = 0;

    if (fd < 0)
        return false;
    for (;;) {
        struct pollfd pfd = { fd, POLLIN, 0 };
        ssize_t n;
        if (poll(&pfd, 1, 3000) != 1 || got + 1 >= size)
            break;
        n = read(fd, buf + got, size - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    return got > 0;
}

TEST(serves_and_reports_until_max_use)
{
    struct child c;
    struct server_status_msg m;
    char reply[PATH_MAX + 200], want[PATH_MAX + 100], real[PATH_MAX];

    /* -o overrides postern.conf's max_use = 100. */
    CHECK(child_start(&c, "1", false, "-o", "max_use=2"));
    CHECK(realpath(queue, real) != NULL);
    for (int i = 0; i < 2; i++) {
        CHECK(ask(&c, reply, sizeof(reply)));
        snprintf(want, sizeof(want), "svc=svc pre=1 post=1 fd_above_2=1 cwd=%s\n", real);
        CHECK_STR(reply, want);
        CHECK(status_read(&c, &m, 2000) == 1);
        CHECK(m.pid == c.pid && m.status == SERVER_STATUS_BUSY);
        CHECK(status_read(&c, &m, 2000) == 1);
        CHECK(m.pid == c.pid && m.status == SERVER_STATUS_IDLE);
    }
    CHECK(child_wait(&c, 5000) == 0);
}

TEST(sigterm_stops_an_idle_daemon)
{
    struct child c;
    char reply[PATH_MAX + 200];

    CHECK(child_start(&c, "1", false, NULL, NULL));
    CHECK(ask(&c, reply, sizeof(reply)));           /* it is up and serving */
    kill(c.pid, SIGTERM);
    CHECK(child_wait(&c, 3000) == 0);
}

TEST(sighup_lets_an_idle_daemon_exit)
{
    struct child c;
    char reply[PATH_MAX + 200];

    CHECK(child_start(&c, "1", false, NULL, NULL));
    CHECK(ask(&c, reply, sizeof(reply)));
    kill(c.pid, SIGHUP);
    CHECK(child_wait(&c, 3000) == 0);
}

/* Regression: with 0, 1 and 2 closed, files the daemon opened (the config, the log)
 * and then its connections took those numbers: a connection became its stderr. */
TEST(closed_std_descriptors_are_reopened)
{
    struct child c;
    char reply[PATH_MAX + 200];

    CHECK(child_start(&c, "1", true, "-o", "max_use=1"));
    CHECK(ask(&c, reply, sizeof(reply)));
    CHECK(strstr(reply, " fd_above_2=1 ") != NULL);
    CHECK(child_wait(&c, 5000) == 0);
}

TEST(bad_listen_count_is_fatal)
{
    struct child c;

    child_quiet = true;
    CHECK(child_start(&c, "x1", false, NULL, NULL));
    CHECK(child_wait(&c, 3000) == 1);
    CHECK(child_start(&c, "3", false, NULL, NULL));  /* fds 5 and 6 are no sockets */
    CHECK(child_wait(&c, 3000) == 1);
    CHECK(child_start(&c, "1", false, "-o", "no_such_key=1"));
    CHECK(child_wait(&c, 3000) == 1);
    child_quiet = false;
}

TEST(status_helpers_without_master)
{
    /* Not started by master (no status pipe on 3 in this process as far as the
     * skeleton knows): the reports are no-ops and do not crash. */
    server_busy();
    server_idle();
    CHECK(!server_orphaned());
}
