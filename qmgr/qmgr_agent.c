/* Delivery agents (local, smtp, ...) as seen from qmgr: per transport a bounded set of
 * connections (reconnecting clients, ipc_clnt.h) to private/NAME, shared by the transport's
 * destinations (next hops), each of which has its own concurrency limit and its own
 * queue of jobs.  A destination whose replies say "dead" too many times in a row is
 * paused: its jobs are deferred without an attempt until the pause ends.  A request
 * is written whole; the reply is read only once the connection is readable, so one
 * slow agent never holds up the loop.  Replies are checked for their version
 * (ipc_proto.h), then by deliver.h's reader; a bad one, a lost connection or a
 * timeout defers the job's recipients. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "attr.h"
#include "conf.h"
#include "ipc_clnt.h"
#include "ipc_proto.h"
#include "log.h"
#include "proto.h"
#include "qmgr.h"
#include "stream.h"
#include "xmalloc.h"

struct qtransport *qmgr_transport(struct qmgr *q, const char *name)
{
    struct qtransport *tp;
    long long n;

    for (size_t i = 0; i < q->ntransports; i++)
        if (strcmp(q->transports[i].name, name) == 0)
            return &q->transports[i];
    if (q->ntransports == QMGR_TRANSPORTS_MAX || strlen(name) >= sizeof(tp->name))
        return NULL;
    tp = &q->transports[q->ntransports++];
    memset(tp, 0, sizeof(*tp));
    snprintf(tp->name, sizeof(tp->name), "%s", name);
    snprintf(tp->path, sizeof(tp->path), "%s%s", PROTO_PATH_AGENT, name);
    /* never more connections than master runs agents: an extra one would wait */
    n = conf_count(q->conf, CONF_default_process_limit);
    tp->nagents = n < 1 ? 1 : n > QMGR_AGENTS_MAX ? QMGR_AGENTS_MAX : (size_t)n;
    tp->agents = xcalloc(tp->nagents, sizeof(*tp->agents));
    /* local deliveries are short and all of one destination: a local process
     * finds its next request waiting as soon as it has answered one */
    tp->depth = strcmp(name, "local") == 0 ? QMGR_LOCAL_DEPTH : 1;
    return tp;
}

/* A transport is there when master listens on its socket.  Looked at once a
 * second at most: not once per recipient. */
bool qmgr_transport_available(struct qtransport *tp)
{
    time_t now = time(NULL);
    struct stat sb;

    if (tp->checked != now) {
        tp->available = stat(tp->path, &sb) == 0 && S_ISSOCK(sb.st_mode);
        tp->checked = now;
    }
    return tp->available;
}

static unsigned dest_hash(const char *s)
{
    unsigned h = 5381;

    for (; *s; s++)
        h = h * 33 + (unsigned char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
    return h % QMGR_DEST_BUCKETS;
}

/* The destination of nexthop on tp (local: one for all), made on first use. */
struct qdest *qmgr_dest(struct qmgr *q, struct qtransport *tp, const char *nexthop)
{
    bool local = strcmp(tp->name, "local") == 0;
    const char *name = local ? "" : nexthop;
    unsigned h = dest_hash(name);
    struct qdest *d;
    long long limit;

    for (d = tp->buckets[h]; d != NULL; d = d->hnext)
        if (strcasecmp(d->name, name) == 0)
            return d;
    d = xcalloc(1, sizeof(*d));
    d->tp = tp;
    d->name = xstrdup(name);
    limit = conf_count(q->conf, local ? CONF_local_destination_concurrency_limit
                                      : CONF_default_destination_concurrency_limit);
    d->limit = limit < 1 ? 1 : limit > QMGR_AGENTS_MAX ? QMGR_AGENTS_MAX : (size_t)limit;
    d->hnext = tp->buckets[h];
    tp->buckets[h] = d;
    d->next = tp->dests;
    tp->dests = d;
    return d;
}

static void dest_free(struct qtransport *tp, struct qdest *d)
{
    struct qdest **pp;

    for (pp = &tp->buckets[dest_hash(d->name)]; *pp != NULL; pp = &(*pp)->hnext) {
        if (*pp == d) {
            *pp = d->hnext;
            break;
        }
    }
    for (pp = &tp->dests; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    }
    free(d->name);
    free(d->dead_text);
    free(d);
}

/* A destination with no work and nothing to remember is forgotten. */
static bool dest_idle(const struct qdest *d)
{
    return d->head == NULL && d->busy == 0 && d->failures == 0 && d->dead_until == 0;
}

static const char *dest_label(const struct qdest *d)
{
    return d->name[0] != '\0' ? d->name : d->tp->name;
}

/* After a reply that says "dead" (or not): counts failures in a row and pauses the
 * destination when they reach default_destination_failure_limit (0: never). */
static void dest_result(struct qmgr *q, struct qdest *d, bool dead, const char *dsn,
                        const char *text)
{
    long long limit = conf_count(q->conf, CONF_default_destination_failure_limit);
    long long pause = conf_time_ms(q->conf, CONF_minimal_backoff_time) / 1000;

    if (!dead) {
        if (d->failures > 0 || d->dead_until != 0)
            log_info("%s: destination %s is reachable again", d->tp->name, dest_label(d));
        d->failures = 0;
        d->dead_until = 0;
        return;
    }
    if (d->failures < 1000000)
        d->failures++;
    if (limit <= 0 || d->failures < (unsigned long long)limit || d->dead_until != 0)
        return;
    if (pause < 1)
        pause = 1;
    d->dead_until = time(NULL) + (time_t)pause;
    snprintf(d->dead_dsn, sizeof(d->dead_dsn), "%s", dsn != NULL && dsn[0] == '4' ? dsn : "4.4.1");
    free(d->dead_text);
    d->dead_text = xstrdup(text != NULL ? text : "");
    log_warn("%s: destination %s is dead after %u connection failures in a row:"
             " no attempts for %llds (%s)", d->tp->name, dest_label(d), d->failures,
             pause, d->dead_text);
}

/* Flush: every paused destination gets its next chance now. */
void qmgr_dests_revive(struct qmgr *q)
{
    for (size_t t = 0; t < q->ntransports; t++)
        for (struct qdest *d = q->transports[t].dests; d != NULL; d = d->next)
            if (d->dead_until != 0)
                d->dead_until = 1;
}

void qmgr_job_queue(struct qmgr *q, struct qjob *job)
{
    struct qdest *d = job->dest;

    (void)q;
    job->next = NULL;
    if (d->tail != NULL)
        d->tail->next = job;
    else
        d->head = job;
    d->tail = job;
    job->tp->waiting++;
}

static struct qjob *dest_pop(struct qdest *d)
{
    struct qjob *job = d->head;

    if (job == NULL)
        return NULL;
    d->head = job->next;
    if (d->head == NULL)
        d->tail = NULL;
    job->next = NULL;
    d->tp->waiting--;
    return job;
}

static void job_free(struct qjob *job)
{
    deliver_request_free(&job->dr);
    free(job);
}

/* The job is over: its message may be finished. */
static void job_done(struct qmgr *q, struct qjob *job)
{
    struct qmsg *m = job->msg;

    job_free(job);
    if (m->jobs_out > 0)
        m->jobs_out--;
    if (m->jobs_out == 0)
        qmgr_msg_finish(q, m);
}

void qmgr_job_fail(struct qmgr *q, struct qjob *job, const char *dsn, const char *text)
{
    for (size_t i = 0; i < job->dr.nrcpt; i++)
        qmgr_rcpt_result(q, job->msg, job->dr.rcpt[i].index, NULL, "none", DELIVER_DEFER, dsn, text);
    job_done(q, job);
}

/* A request is over (answered or not): the destination has room again. */
static void dest_release(struct qdest *d)
{
    if (d->busy > 0)
        d->busy--;
}

/* Takes the oldest request off a's list; the connection is idle after its last. */
static struct qjob *agent_pop(struct qagent *a)
{
    struct qjob *job = a->job;

    a->job = job->next;
    job->next = NULL;
    a->njobs--;
    dest_release(job->dest);
    if (a->job == NULL) {
        if (a->dest != NULL && a->dest->conns > 0)
            a->dest->conns--;
        a->dest = NULL;
        a->last = NULL;
        a->njobs = 0;
    }
    return job;
}

static void agent_close(struct qagent *a)
{
    if (a->clnt != NULL)
        ipc_clnt_disconnect(a->clnt);
}

struct stream *qmgr_agent_stream(const struct qagent *a)
{
    return a->clnt != NULL ? ipc_clnt_stream(a->clnt) : NULL;
}

/* Closes a and defers every request it carried. */
static void agent_fail_all(struct qmgr *q, struct qagent *a, const char *dsn, const char *text)
{
    agent_close(a);
    while (a->job != NULL)
        qmgr_job_fail(q, agent_pop(a), dsn, text);
}

/* An idle connection (the client checks that the agent has not closed it before
 * using it again), or else a slot without one: NULL when every slot is busy. */
static struct qagent *agent_free_slot(struct qtransport *tp)
{
    for (size_t i = 0; i < tp->nagents; i++)
        if (qmgr_agent_stream(&tp->agents[i]) != NULL && tp->agents[i].job == NULL)
            return &tp->agents[i];
    for (size_t i = 0; i < tp->nagents; i++)
        if (qmgr_agent_stream(&tp->agents[i]) == NULL)
            return &tp->agents[i];
    return NULL;
}

/* The connection already working for d with the fewest requests, when it has room
 * for one more: NULL when none has. */
static struct qagent *agent_pipeline_slot(struct qtransport *tp, const struct qdest *d)
{
    struct qagent *a = NULL;

    for (size_t i = 0; i < tp->nagents; i++) {
        struct qagent *c = &tp->agents[i];

        if (qmgr_agent_stream(c) != NULL && c->dest == d && c->njobs < tp->depth
            && (a == NULL || c->njobs < a->njobs))
            a = c;
    }
    return a;
}

/* Sends job on a (a free slot, or a connection working for the job's destination):
 * 1 sent, -1 failed (job already disposed of). */
static int agent_send(struct qmgr *q, struct qtransport *tp, struct qagent *a,
                      struct qjob *job)
{
    struct attr_list al = ATTR_LIST_INIT;
    struct str text = STR_INIT;
    int rc;

    if (a->clnt == NULL)
        a->clnt = ipc_clnt_open(tp->path, q->ipc_timeout_ms, ATTR_FRAME_MAX);
    deliver_request_frame(&job->dr, &al);
    rc = ipc_clnt_send(a->clnt, &al);
    attr_free(&al);
    if (rc == 0) {
        job->next = NULL;
        if (a->job == NULL) {
            a->job = job;
            a->dest = job->dest;
            job->dest->conns++;
            a->deadline = time(NULL) + q->delivery_timeout;
        } else {
            a->last->next = job;
        }
        a->last = job;
        a->njobs++;
        job->dest->busy++;
        return 1;
    }
    if (a->job != NULL) {
        /* the requests already sent on it are lost with it */
        str_printf(&text, "lost connection with delivery agent %s", tp->name);
        agent_fail_all(q, a, "4.4.2", text.s);
        qmgr_job_fail(q, job, "4.4.2", text.s);
    } else {
        str_printf(&text, "delivery agent %s unavailable: %s", tp->name, strerror(errno));
        qmgr_job_fail(q, job, "4.3.0", text.s);
    }
    str_free(&text);
    return -1;
}

/* Defers every waiting job of a paused destination, without an attempt. */
static void dest_suspend_jobs(struct qmgr *q, struct qdest *d)
{
    struct str text = STR_INIT;
    struct qjob *job;

    str_printf(&text, "delivery temporarily suspended: %s", d->dead_text ? d->dead_text : "");
    while ((job = dest_pop(d)) != NULL)
        qmgr_job_fail(q, job, d->dead_dsn[0] ? d->dead_dsn : "4.4.1", text.s);
    str_free(&text);
}

/* Sends at most one job of d: 1 sent (or disposed of), 0 nothing to do, -1 no free
 * connection slot on the transport. */
static int dest_send_one(struct qmgr *q, struct qdest *d, time_t now)
{
    size_t limit = d->failures > 0 ? 1 : d->limit;   /* probing after a failure */
    struct qagent *a;
    struct qjob *job;

    if (d->dead_until != 0) {
        if (now < d->dead_until) {
            dest_suspend_jobs(q, d);
            return 0;
        }
        d->dead_until = 0;          /* the pause is over: try again, one at a time */
        log_info("%s: destination %s: pause over, trying again", d->tp->name, dest_label(d));
    }
    if (d->head == NULL)
        return 0;
    /* Where connections carry several requests (local), one more request on a
     * connection already working for the destination while one has room: the
     * agent then finds several waiting and makes them durable together.  Else a
     * connection of its own while the destination may have one more. */
    a = NULL;
    if (d->failures == 0 && d->tp->depth > 1)
        a = agent_pipeline_slot(d->tp, d);
    if (a == NULL && d->conns < limit)
        a = agent_free_slot(d->tp);
    if (a == NULL)
        return d->conns < limit ? -1 : 0;
    job = dest_pop(d);
    agent_send(q, d->tp, a, job);
    return 1;
}

/* Round robin over the destinations, one job each per round, so that no destination
 * takes every connection. */
void qmgr_dispatch(struct qmgr *q)
{
    time_t now = time(NULL);

    for (size_t t = 0; t < q->ntransports; t++) {
        struct qtransport *tp = &q->transports[t];
        bool progress = true, full = false;

        while (progress && !full && tp->waiting > 0) {
            progress = false;
            for (struct qdest *d = tp->dests; d != NULL && !full; d = d->next) {
                int rc = dest_send_one(q, d, now);

                if (rc > 0)
                    progress = true;
                else if (rc < 0)
                    full = true;
            }
        }
        for (struct qdest *d = tp->dests, *next; d != NULL; d = next) {
            next = d->next;
            if (dest_idle(d))
                dest_free(tp, d);
        }
    }
}

static const char *relay_name(const struct qjob *job)
{
    if (strcmp(job->tp->name, "local") == 0 || job->dr.nexthop.len == 0)
        return job->tp->name;
    return job->dr.nexthop.s;
}

/* Reads the replies a has ready, in the order of its requests. */
void qmgr_agent_event(struct qmgr *q, struct qagent *a, struct qtransport *tp)
{
    struct attr_list al = ATTR_LIST_INIT;
    struct str err = STR_INIT;
    struct stream *conn;

    if (a->job == NULL) {
        /* idle connection: the agent went away (or misbehaves) */
        agent_close(a);
        return;
    }
    do {
        struct qjob *job = a->job;
        int rc = ipc_clnt_recv(a->clnt, &al);

        str_clear(&err);
        if (rc < 0)
            str_printf(&err, "reading the reply: %s",
                       errno == EPROTO ? "malformed frame" : strerror(errno));
        else if (rc == 1 && (ipc_reply_check(&al, PROTO_DELIVER, PROTO_DELIVER_VERSION, &err) < 0
                             || deliver_reply_scan(&al, &job->dr, &err) < 0))
            rc = -1;
        if (rc != 1) {
            struct str text = STR_INIT;

            if (rc < 0)
                log_warn("%s: delivery agent %s: %s", job->msg->id, tp->name,
                         err.len > 0 ? err.s : "error");
            str_printf(&text, "lost connection with delivery agent %s", tp->name);
            agent_fail_all(q, a, "4.4.2", text.s);
            str_free(&text);
            break;
        }
        agent_pop(a);
        if (a->job != NULL)
            a->deadline = time(NULL) + q->delivery_timeout;
        dest_result(q, job->dest, job->dr.dead, job->dr.rcpt[0].dsn,
                    job->dr.rcpt[0].text.s ? job->dr.rcpt[0].text.s : "");
        for (size_t i = 0; i < job->dr.nrcpt; i++) {
            const struct deliver_rcpt *r = &job->dr.rcpt[i];
            enum deliver_status st = r->status;

            /* a dead next hop cannot have taken anyone */
            if (job->dr.dead && st != DELIVER_DEFER)
                st = DELIVER_DEFER;
            qmgr_rcpt_result(q, job->msg, r->index, tp->name, relay_name(job), st,
                             st == r->status ? r->dsn : "4.4.1", r->text.s ? r->text.s : "");
            if (st == DELIVER_OK && r->notified && r->index < job->msg->qf.nrcpt)
                job->msg->res[r->index].notified = true;
        }
        job_done(q, job);
    } while (a->job != NULL && (conn = qmgr_agent_stream(a)) != NULL
             && stream_pending(conn) > 0);
    attr_free(&al);
    str_free(&err);
}

void qmgr_agent_timeouts(struct qmgr *q)
{
    time_t now = time(NULL);

    for (size_t t = 0; t < q->ntransports; t++) {
        struct qtransport *tp = &q->transports[t];

        for (size_t i = 0; i < tp->nagents; i++) {
            struct qagent *a = &tp->agents[i];

            if (a->job == NULL || now < a->deadline)
                continue;
            log_warn("%s: delivery agent %s did not answer in time", a->job->msg->id,
                     tp->name);
            agent_fail_all(q, a, "4.4.1", "timed out waiting for the delivery agent");
        }
    }
}

size_t qmgr_agents_busy(const struct qmgr *q)
{
    size_t n = 0;

    for (size_t t = 0; t < q->ntransports; t++)
        for (size_t i = 0; i < q->transports[t].nagents; i++)
            n += q->transports[t].agents[i].njobs;
    return n;
}

/* At exit: closes every connection and forgets every job (their messages stay in
 * active/ for the next qmgr). */
void qmgr_agents_close(struct qmgr *q)
{
    for (size_t t = 0; t < q->ntransports; t++) {
        struct qtransport *tp = &q->transports[t];

        for (size_t i = 0; i < tp->nagents; i++) {
            struct qagent *a = &tp->agents[i];

            while (a->job != NULL)
                job_free(agent_pop(a));
            ipc_clnt_close(a->clnt);
            a->clnt = NULL;
        }
        while (tp->dests != NULL) {
            struct qdest *d = tp->dests;
            struct qjob *job;

            while ((job = dest_pop(d)) != NULL)
                job_free(job);
            dest_free(tp, d);
        }
        free(tp->agents);
        tp->agents = NULL;
        tp->nagents = 0;
    }
    q->ntransports = 0;
}
