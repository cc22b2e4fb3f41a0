/* "postern start | stop | reload | status": master's life cycle.  master holds an
 * fcntl lock on QUEUE/pid/master.pid while it runs; that lock, not the pid file's
 * presence, says whether it runs.  Both start and reload run "postern check" first
 * (check.c) and refuse a configuration with any error, before master sees it. */
#include <errno.h>
#include <fcntl.h>
#include <syslog.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log_conf.h"
#include "postern.h"
#include "str.h"
#include "xmalloc.h"

#define STOP_WAIT_SECONDS 30
#define RELOAD_WAIT_SECONDS 20

pid_t master_running(const char *qdir, struct str *err)
{
    struct str path = STR_INIT;
    struct flock fl;
    char buf[32];
    ssize_t n;
    pid_t pid = 0;
    int fd;

    str_init(&path);
    str_printf(&path, "%s/pid/master.pid", qdir);
    fd = open(path.s, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT) {
            str_free(&path);
            return 0;
        }
        str_printf(err, "%s: %s", path.s, strerror(errno));
        str_free(&path);
        return -1;
    }
    memset(&fl, 0, sizeof(fl));
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, F_GETLK, &fl) < 0) {
        str_printf(err, "%s: %s", path.s, strerror(errno));
        close(fd);
        str_free(&path);
        return -1;
    }
    if (fl.l_type == F_UNLCK) {
        close(fd);
        str_free(&path);
        return 0;       /* stale pid file */
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n > 0) {
        buf[n] = '\0';
        char *end;
        long v = strtol(buf, &end, 10);
        if (v > 1 && (*end == '\n' || *end == '\0'))
            pid = (pid_t)v;
    }
    if (pid <= 1)
        pid = fl.l_pid > 1 ? fl.l_pid : 0;
    if (pid <= 1) {
        str_printf(err, "%s: locked, but holds no usable process id", path.s);
        str_free(&path);
        return -1;
    }
    str_free(&path);
    return pid;
}

pid_t cmd_master_pid(const char *qdir)
{
    struct str err = STR_INIT;
    str_init(&err);
    pid_t pid = master_running(qdir, &err);
    if (pid < 0)
        cmd_fail("%s", err.s);
    str_free(&err);
    return pid;
}

int cmd_start(int argc, char **argv)
{
    bool foreground = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-f") == 0)
            foreground = true;
        else
            cmd_usage("start");
    }
    struct conf *c = cmd_conf();
    pid_t pid = cmd_master_pid(conf_str(c, CONF_queue_directory));
    if (pid > 0)
        cmd_fail("already running (pid %ld)", (long)pid);
    int n = check_run(c);
    if (n > 0)
        cmd_fail("%d error%s in the configuration: not started", n, n == 1 ? "" : "s");
    int fb = log_conf_prepare(c, foreground);
    if (fb < 0)
        cmd_fail("%s/log: %s", conf_dir(c), strerror(errno));
    if (fb > 0) {
        char *file = log_conf_fallback(c);
        cmd_warn("no syslog daemon listens on %s and maillog_file is not set: logging to %s",
                 _PATH_LOG, file);
        free(file);
    }
    char *dd = cmd_daemon_dir(c);
    struct str prog = STR_INIT;
    str_init(&prog);
    str_printf(&prog, "%s/master", dd);
    if (access(prog.s, X_OK) < 0)
        cmd_fail("%s: %s (set daemon_directory?)", prog.s, strerror(errno));
    char *args[] = { "master", "-c", (char *)conf_dir(c), foreground ? "-f" : NULL, NULL };
    fflush(NULL);
    execv(prog.s, args);
    cmd_fail("%s: %s", prog.s, strerror(errno));
}

int cmd_reload(int argc, char **argv)
{
    if (argc != 1)
        cmd_usage("reload");
    struct conf *c = cmd_conf();
    pid_t pid = cmd_master_pid(conf_str(c, CONF_queue_directory));
    if (pid == 0)
        cmd_fail("not running");
    int n = check_run(c);
    if (n > 0)
        cmd_fail("%d error%s in the configuration: not reloaded; the running system keeps "
                 "its settings", n, n == 1 ? "" : "s");
    const char *qdir = conf_str(c, CONF_queue_directory);
    unsigned long before = 0, now = 0;
    char why[256];
    int known = master_reload_state(qdir, pid, &before, why, sizeof(why));
    if (kill(pid, SIGHUP) < 0)
        cmd_fail("cannot signal master (pid %ld): %s", (long)pid, strerror(errno));
    if (!known) {
        printf("postern reloading (pid %ld)\n", (long)pid);
        conf_free(c);
        return 0;
    }
    /* master says in its status file when it has handled the signal, and how */
    struct timespec delay = { 0, 50 * 1000 * 1000 };
    for (int i = 0; i < RELOAD_WAIT_SECONDS * 20; i++) {
        nanosleep(&delay, NULL);
        if (master_reload_state(qdir, pid, &now, why, sizeof(why)) && now != before) {
            if (why[0] != '\0')
                cmd_fail("master refused the new configuration: %s; the running system "
                         "keeps its settings", why);
            printf("postern reloaded (pid %ld)\n", (long)pid);
            conf_free(c);
            return 0;
        }
    }
    cmd_fail("master (pid %ld) has not reloaded within %d seconds", (long)pid,
             RELOAD_WAIT_SECONDS);
}

/* Stopping never depends on postern.conf being right: only the queue directory
 * (where the pid file is) is needed. */
int cmd_stop(int argc, char **argv)
{
    if (argc != 1)
        cmd_usage("stop");
    char *qdir = cmd_queue_dir_lenient();
    pid_t pid = cmd_master_pid(qdir);
    if (pid == 0)
        cmd_fail("not running");
    if (kill(pid, SIGTERM) < 0)
        cmd_fail("cannot signal master (pid %ld): %s", (long)pid, strerror(errno));
    struct timespec delay = { 0, 100 * 1000 * 1000 };
    for (int i = 0; i < STOP_WAIT_SECONDS * 10; i++) {
        nanosleep(&delay, NULL);
        if (cmd_master_pid(qdir) == 0) {
            printf("postern stopped\n");
            free(qdir);
            return 0;
        }
    }
    cmd_fail("master (pid %ld) did not stop within %d seconds", (long)pid,
             STOP_WAIT_SECONDS);
}
