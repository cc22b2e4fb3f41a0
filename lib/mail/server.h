/* The daemon skeleton every service's main() calls, in the manner of Postfix's
 * single_server: it reads the command line master built (see master(8)), loads the
 * config, opens the log, lets the daemon open what it needs while still privileged,
 * chroots and drops privileges, then accepts connections on the listening sockets
 * master handed over and serves them one at a time, telling master over the status
 * pipe when it is busy and idle.  It exits after max_use connections, after max_idle
 * seconds without one, on SIGTERM, or (SIGHUP: reload) when idle.
 *
 * Command line from master:  NAME -c DIR -s SERVICE [-u USER] [-j] [-f] [-o key=value]...
 *   -u USER  drop to USER (only when started as root)     -j  chroot to queue_directory
 *   -f       foreground: log to stderr unless maillog_file is set
 * Descriptors from master: 3 = status pipe (write end), 4 .. 4+N-1 = listening sockets,
 * N in $POSTERN_LISTEN_FDS.  $POSTERN_MASTER_PID: the daemon exits if master goes.
 *
 * The skeleton always chdir()s to queue_directory (and chroots there with -j), so
 * daemons name queue paths relatively: "incoming/ID", "private/qmgr".
 *
 * Status pipe: each report is one struct server_status_msg written with a single
 * write(2) (atomic, < PIPE_BUF).  master counts a child as available from its spawn
 * until it reports BUSY, and again after IDLE. */
#ifndef POSTERN_SERVER_H
#define POSTERN_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

struct conf;

#define SERVER_STATUS_FD 3
#define SERVER_LISTEN_FD0 4

#define SERVER_STATUS_IDLE 0
#define SERVER_STATUS_BUSY 1

struct server_status_msg {
    int pid;
    int status;                 /* SERVER_STATUS_IDLE or SERVER_STATUS_BUSY */
};

struct server {
    const char *name;           /* program name, e.g. "smtpd" */
    const char *service;        /* master.conf service name, e.g. "submission" */
    struct conf *conf;
    bool foreground;
    int *listen_fds;
    size_t nlisten;
    void *ctx;                  /* for the daemon's own use */
};

struct server_opts {
    const char *name;
    /* Before chroot and privilege drop: open maps, keys, log files.  May be NULL. */
    void (*pre_jail)(struct server *srv);
    /* After the drop, before the first connection.  May be NULL. */
    void (*post_jail)(struct server *srv);
    /* Serves one accepted connection; fd is closed by the skeleton afterwards
     * unless the service took it over (set *fd = -1). */
    void (*service)(struct server *srv, int *fd);
    /* Instead of the accept loop: the daemon runs its own event loop (qmgr).  The
     * skeleton still does everything up to post_jail.  Returns the exit status. */
    int (*loop)(struct server *srv);
    bool no_max_idle;           /* never exit for idleness */
    /* When not NULL: a directory under queue_directory that replaces it as the
     * chroot (with -j) and as the working directory (pop3d -l: "login"). */
    const char *jail_subdir;
    /* When not NULL: asked before each connection is accepted; true ends the
     * process instead (what it opened before its chroot is out of date), and the
     * connection is left for a new process. */
    bool (*stale)(struct server *srv);
};

/* Does not return: exits with 0 when done, 1 on a fatal error. */
_Noreturn void server_main(int argc, char **argv, const struct server_opts *opts);

/* Set by signal handlers; the daemon's own loops should watch them. */
extern volatile sig_atomic_t server_stop;      /* SIGTERM/SIGINT: stop now */
extern volatile sig_atomic_t server_reload;    /* SIGHUP: finish, then exit */

/* Status reports to master (done by the accept loop; own-loop daemons may use them). */
void server_busy(void);
void server_idle(void);
/* True when master has gone (ppid changed). */
bool server_orphaned(void);

#endif
