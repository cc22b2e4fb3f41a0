/* master(8): the supervisor's private types.  master reads only its own
 * configuration and the fixed-size status reports of its children; it parses no
 * network input.
 *
 * Each service is a small state machine (svc_settle() decides the state after every
 * event):
 *
 *   UNBOUND    its listening socket could not be made; retried on a timer
 *   ARMED      on-demand service with no available child and room for one more: its
 *              listening sockets are polled, a connection spawns one child
 *   WAITING    a child is available, or the process limit is reached
 *   THROTTLED  a child failed; nothing is spawned until the deadline
 *   RETIRED    dropped or replaced by a reload; waits for its children to exit
 *
 * Events: a listening socket readable, BUSY/IDLE on the status pipe, a child's
 * exit (clean or failed), a timer, SIGHUP, SIGTERM. */
#ifndef POSTERN_MASTER_H
#define POSTERN_MASTER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "master_conf.h"
#include "server.h"

#ifndef POSTERN_VERSION
#define POSTERN_VERSION "0.1"
#endif

#define THROTTLE_FIRST_S 1          /* first pause after a failure */
#define THROTTLE_MAX_S 60           /* longest pause */
#define THROTTLE_RESET_MS 10000     /* a child that ran this long resets the pause */
#define BIND_RETRY_MS 5000          /* an unbound service tries again after this */
#define BIND_START_WAIT_MS 5000     /* at start, how long a busy port is retried */
#define STOP_WAIT_MS 10000          /* SIGTERM to SIGKILL */
#define LISTEN_BACKLOG 256
#define SPAWN_BURST_MAX 16          /* processes started at once for waiting clients */
#define BUSY_GRACE_MS 1000          /* a full service's clients wait this long in the
                                     * backlog before master answers them itself */
#define BUSY_ACCEPT_MAX 32          /* busy replies per readable socket per round */
#define BUSY_LOG_INTERVAL_MS 60000

enum svc_state {
    SVC_UNBOUND,
    SVC_ARMED,
    SVC_WAITING,
    SVC_THROTTLED,
    SVC_RETIRED,
};

/* What master tells a client of a full service (busy.c). */
enum busy_mode {
    BUSY_NONE,                  /* nothing: clients wait in the listen backlog */
    BUSY_CLOSE,                 /* accept and close (implicit TLS: no plain text) */
    BUSY_REPLY,                 /* accept, write busy_text, close */
};

struct child {
    pid_t pid;
    bool avail;                 /* counts as ready to accept a connection */
    long long start_ms;
};

/* One address to bind. */
struct bind_addr {
    char *host;                 /* inet: address literal; unix: socket path */
    bool optional;              /* implied IPv6 of "all"/"loopback-only": may fail */
};

struct service {
    char *name;
    enum master_type type;
    char *exe;                  /* DAEMONDIR/COMMAND */
    char **argv;                /* complete argument vector, NULL-terminated */
    int limit;
    unsigned line;              /* in master.conf */

    struct bind_addr *addrs;    /* what to bind (empty: no socket) */
    size_t naddrs;
    unsigned port;              /* inet */
    char *bindkey;              /* type and addresses: equal keys share sockets on reload */
    int *fds;                   /* bound sockets, nfds == naddrs when bound */
    size_t nfds;

    int status_rd, status_wr;   /* status pipe */
    unsigned char sbuf[sizeof(struct server_status_msg)];
    size_t slen;

    struct child *child;        /* capacity limit */
    size_t nchild;
    size_t navail;

    enum svc_state state;
    long long deadline_ms;      /* THROTTLED, UNBOUND */
    int backoff_s;              /* length of the next throttle */

    enum busy_mode busy;        /* at the process limit with no child available */
    const char *busy_text;      /* BUSY_REPLY: one line, CRLF included */
    long long full_since;       /* when it became full; < 0: it is not */
    unsigned long busy_count;   /* busy replies since the last log line */
    long long busy_logged;      /* last log line about them; < 0: none yet */
};

struct master {
    char *config_dir;           /* absolute */
    char *queue_dir;
    char *daemon_dir;
    bool foreground;
    bool root;
    pid_t pid;
    struct conf *conf;
    int conf_fd;                /* conf's text, sealed: what every child reads */
    struct service **svc;       /* live and retired services */
    size_t nsvc;
    bool stopping;
};

extern struct master master;

/* config.c: builds the service list from postern.conf and master.conf.  The
 * services are not bound yet.  0, or -1 with "file:line: message" in err. */
int master_config_load(const char *config_dir, struct conf **conf,
                       struct service ***svc, size_t *nsvc, struct str *err);
void service_free(struct service *s);
/* A sealed in-memory copy of the text conf was read from, for the children: they
 * read the settings master checked, not whatever the file holds by the time they
 * start.  The descriptor (close-on-exec), or -1 with err. */
int master_conf_snapshot(const struct conf *conf, struct str *err);

/* service.c */
int svc_bind(struct service *s, struct str *err);
void svc_unbind(struct service *s);
void svc_settle(struct service *s, long long now);
int svc_spawn(struct service *s);
/* An on-demand service's socket is readable: one process for each connection
 * waiting there, up to SPAWN_BURST_MAX and the process limit. */
void svc_spawn_pending(struct service *s, int listen_fd);
void svc_status_read(struct service *s);
void svc_signal(struct service *s, int sig);
bool master_child_exited(pid_t pid, int status);

/* busy.c */
void svc_busy_setup(struct service *s, const struct master_service *def,
                    const struct conf *conf);
bool svc_full(const struct service *s);
void svc_busy_accept(struct service *s, int listen_fd);

/* reload.c */
void master_reload(void);

#endif
