/* The queue manager's shared state: messages in active/, delivery jobs, transports
 * and their agent connections, and the clients that send wake-ups. */
#ifndef POSTERN_QMGR_H
#define POSTERN_QMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "bounce.h"
#include "deliver.h"
#include "queue.h"

struct conf;
struct ipc_clnt;
struct resolve_clnt;
struct stream;

#define QMGR_INCOMING_SCAN 60       /* seconds between scans of incoming/ */
#define QMGR_TMP_SCAN 3600          /* seconds between looks for stale files in tmp/ */
#define QMGR_CLIENTS_MAX 1024       /* wake-up connections kept at once */
#define QMGR_START_BATCH 100        /* messages started per loop turn */
#define QMGR_ROUTE_BATCH 1000       /* most addresses in one route request */
#define QMGR_ROUTE_BYTES (256 * 1024) /* ... and about this many bytes of them */
#define QMGR_TRANSPORTS_MAX 16      /* distinct transports in use */
#define QMGR_AGENTS_MAX 1000        /* connections to one transport */
#define QMGR_LOCAL_DEPTH 8          /* requests at once on one local connection */
#define QMGR_HEADER_MAX (256 * 1024) /* header bytes read to count Received: */

enum qmsg_rstate {
    QR_PENDING,         /* not tried yet in this pass */
    QR_DONE,            /* delivered (or marked done earlier) */
    QR_BOUNCED,         /* failed for good: goes into the notice */
    QR_DEFERRED,        /* try again later */
};

/* The last result of one recipient in this pass. */
struct qmsg_result {
    char dsn[16];
    char *text;
    bool delivered;                 /* delivered in this pass (success notice) */
    bool relayed;                   /* ... by a transport other than local */
    bool notified;                  /* ... to a next hop that took NOTIFY over */
};

struct qmsg {
    char id[QUEUE_ID_SIZE];
    struct queue_file qf;
    bool open;
    bool started;                   /* routed and jobs made */
    size_t jobs_out;                /* jobs not finished yet */
    enum qmsg_rstate *rstate;       /* per recipient of qf */
    struct qmsg_result *res;        /* per recipient of qf */
    double arrival;                 /* with microseconds, from the id */
    struct qmsg *next, *prev;       /* every message held */
    struct qmsg *hnext;             /* id hash chain */
    struct qmsg *next_ready;         /* not started yet, in arrival order */
};

/* A connection to one agent process (a reconnecting client, ipc_clnt.h).  It may
 * carry several requests of one destination at once (the transport's depth): the
 * agent reads the next one as soon as it has answered the last, without waiting for
 * qmgr; replies come in order. */
struct qagent {
    struct ipc_clnt *clnt;          /* NULL: slot never used */
    struct qjob *job;               /* oldest request in flight, next reply; NULL: idle */
    struct qjob *last;              /* newest request in flight */
    size_t njobs;                   /* requests in flight */
    struct qdest *dest;             /* their destination */
    time_t deadline;                /* for the reply to job */
};

#define QMGR_DEST_BUCKETS 256
#define QMGR_MSG_BUCKETS 4096

/* One destination: a transport's next hop (local has one destination for all).
 * Concurrency is limited here; connection-level failures in a row make it dead for
 * a while. */
struct qdest {
    struct qtransport *tp;
    char *name;                     /* next hop; "" for local */
    size_t limit;                   /* most connections at once */
    size_t busy;                    /* requests in progress */
    size_t conns;                   /* connections carrying them */
    unsigned failures;              /* connection-level failures in a row */
    time_t dead_until;              /* 0: alive */
    char dead_dsn[16];
    char *dead_text;
    struct qjob *head, *tail;       /* waiting jobs */
    struct qdest *next;             /* all of the transport's destinations */
    struct qdest *hnext;            /* hash chain */
};

struct qtransport {
    char name[32];
    char path[48];                  /* PROTO_PATH_AGENT "NAME" */
    size_t nagents;                 /* connection slots */
    size_t depth;                   /* most requests at once on one connection */
    struct qagent *agents;
    struct qdest *dests;
    struct qdest *buckets[QMGR_DEST_BUCKETS];
    size_t waiting;                 /* jobs queued over all destinations */
    time_t checked;                 /* when available was last looked at */
    bool available;                 /* master listens on path */
};

struct qjob {
    struct qmsg *msg;
    struct qtransport *tp;
    struct qdest *dest;
    struct deliver_request dr;
    struct qjob *next;
};

struct qclient {
    struct stream *st;
};

struct qmgr {
    const struct conf *conf;
    int listen_fd;
    struct qclient clients[QMGR_CLIENTS_MAX];
    size_t nclients;
    struct resolve_clnt *resolve;
    struct qmsg *msgs;              /* every message held in active/ */
    size_t nmsgs;
    struct qmsg *msg_buckets[QMGR_MSG_BUCKETS];   /* the same by id */
    struct qmsg *ready_head, *ready_tail;
    size_t active_limit;
    struct qtransport transports[QMGR_TRANSPORTS_MAX];
    size_t ntransports;
    int ipc_timeout_ms;
    int delivery_timeout;           /* seconds allowed for one delivery reply */
    bool want_incoming;
    bool want_flush;
    time_t next_incoming;
    time_t next_deferred;
    time_t next_tmp;                 /* next look for stale files in tmp/ */
    bool stopping;                  /* reload: no new work */
};

/* qmgr_scan.c */
void qmgr_scan_active(struct qmgr *q);
void qmgr_scan_incoming(struct qmgr *q);
void qmgr_scan_deferred(struct qmgr *q, bool all);
/* Removes regular files in tmp/ older than queue_tmp_lifetime (left there by a
 * writer that was killed), logging each. */
void qmgr_scan_tmp(struct qmgr *q);
int qmgr_queue_rename(const char *from, const char *to, const char *id);

/* qmgr_message.c */
struct qmsg *qmgr_msg_add(struct qmgr *q, const char *id);
struct qmsg *qmgr_msg_find(struct qmgr *q, const char *id);
void qmgr_msg_start(struct qmgr *q, struct qmsg **v, size_t n);
void qmgr_msg_finish(struct qmgr *q, struct qmsg *m);
void qmgr_msg_release(struct qmgr *q, struct qmsg *m);
/* The result of one recipient's attempt: logged (under the delivery agent's name
 * agent, a transport; NULL: qmgr decided it itself) and kept for the end of the
 * pass. */
void qmgr_rcpt_result(struct qmgr *q, struct qmsg *m, size_t index, const char *agent,
                      const char *relay, enum deliver_status st, const char *dsn,
                      const char *text);
bool qmgr_notify_wants(const char *notify, const char *what);
time_t qmgr_retry_time(long long minb, long long maxb, time_t arrival, time_t now);
double qmgr_now(void);

/* qmgr_agent.c */
struct qtransport *qmgr_transport(struct qmgr *q, const char *name);
struct qdest *qmgr_dest(struct qmgr *q, struct qtransport *tp, const char *nexthop);
void qmgr_dests_revive(struct qmgr *q);
bool qmgr_transport_available(struct qtransport *tp);
void qmgr_job_queue(struct qmgr *q, struct qjob *job);
void qmgr_job_fail(struct qmgr *q, struct qjob *job, const char *dsn, const char *text);
void qmgr_dispatch(struct qmgr *q);
void qmgr_agent_event(struct qmgr *q, struct qagent *a, struct qtransport *tp);
void qmgr_agent_timeouts(struct qmgr *q);
/* The connection of a, to poll, or NULL when it has none. */
struct stream *qmgr_agent_stream(const struct qagent *a);
size_t qmgr_agents_busy(const struct qmgr *q);
void qmgr_agents_close(struct qmgr *q);

#endif
