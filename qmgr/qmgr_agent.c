/* Delivery agents (local, smtp, ...) as seen from qmgr: per transport a bounded set of
 * connections to private/NAME, reused while they stay open.  A request is written
 * whole; the reply is read only once the connection is readable, so one slow agent
 * never holds up the loop.  Replies are checked by deliver.h's reader; a bad one, a
 * lost connection or a timeout defers the job's recipients. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf.h"
#include "log.h"
#include "qmgr.h"
#include "sock.h"
#include "stream.h"
#include "xmalloc.h"

struct qtransport *qmgr_transport(struct qmgr *q, const char *name)
{
    struct qtransport *tp;
    long long limit;

    for (size_t i = 0; i < q->ntransports; i++)
        if (strcmp(q->transports[i].name, name) == 0)
            return &q->transports[i];
    if (q->ntransports == QMGR_TRANSPORTS_MAX || strlen(name) >= sizeof(tp->name))
        return NULL;
    tp = &q->transports[q->ntransports++];
    memset(tp, 0, sizeof(*tp));
    snprintf(tp->name, sizeof(tp->name), "%s", name);
    snprintf(tp->path, sizeof(tp->path), "private/%s", name);
    limit = conf_int(q->conf, strcmp(name, "local") == 0
                                  ? "local_destination_concurrency_limit"
                                  : "default_destination_concurrency_limit");
    tp->limit = limit < 1 ? 1 : limit > 1000 ? 1000 : (size_t)limit;
    tp->agents = xcalloc(tp->limit, sizeof(*tp->agents));
    return tp;
}

/* A transport is there when master listens on its socket. */
bool qmgr_transport_available(const struct qtransport *tp)
{
    struct stat sb;

    return stat(tp->path, &sb) == 0 && S_ISSOCK(sb.st_mode);
}

void qmgr_job_queue(struct qmgr *q, struct qjob *job)
{
    struct qtransport *tp = job->tp;

    (void)q;
    job->next = NULL;
    if (tp->tail != NULL)
        tp->tail->next = job;
    else
        tp->head = job;
    tp->tail = job;
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
        qmgr_rcpt_result(q, job->msg, job->dr.rcpt[i].index, "none", DELIVER_DEFER, dsn, text);
    job_done(q, job);
}

static void agent_close(struct qagent *a)
{
    if (a->st != NULL)
        stream_close(a->st);
    a->st = NULL;
    a->job = NULL;
}

/* An idle connection the agent closed (or wrote to unasked) is no longer usable. */
static bool agent_usable(struct qagent *a)
{
    struct pollfd p = { .fd = stream_fd(a->st), .events = POLLIN };

    return stream_pending(a->st) == 0 && poll(&p, 1, 0) == 0;
}

static int agent_connect(struct qmgr *q, struct qtransport *tp, struct qagent *a)
{
    int fd = sock_connect_unix(tp->path, q->ipc_timeout * 1000);

    if (fd < 0)
        return -1;
    a->st = stream_fdopen(fd);
    stream_set_timeout(a->st, q->ipc_timeout * 1000);
    return 0;
}

/* Sends job on a free slot of its transport: 1 sent, 0 no free slot, -1 failed
 * (job already disposed of). */
static int agent_send(struct qmgr *q, struct qtransport *tp, struct qjob *job)
{
    struct qagent *a = NULL;
    bool fresh = false;

    for (size_t i = 0; i < tp->limit && a == NULL; i++) {
        struct qagent *c = &tp->agents[i];

        if (c->st != NULL && c->job == NULL) {
            if (agent_usable(c))
                a = c;
            else
                agent_close(c);
        }
    }
    for (size_t i = 0; i < tp->limit && a == NULL; i++)
        if (tp->agents[i].st == NULL)
            a = &tp->agents[i];
    if (a == NULL)
        return 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (a->st == NULL) {
            if (agent_connect(q, tp, a) < 0) {
                struct str text = STR_INIT;

                str_printf(&text, "delivery agent %s unavailable: %s", tp->name,
                           strerror(errno));
                qmgr_job_fail(q, job, "4.3.0", text.s);
                str_free(&text);
                return -1;
            }
            fresh = true;
        }
        if (deliver_request_write(a->st, &job->dr) == 0) {
            a->job = job;
            a->deadline = time(NULL) + q->delivery_timeout;
            return 1;
        }
        agent_close(a);
        if (fresh)
            break;
    }
    {
        struct str text = STR_INIT;

        str_printf(&text, "cannot send the request to delivery agent %s", tp->name);
        qmgr_job_fail(q, job, "4.3.0", text.s);
        str_free(&text);
    }
    return -1;
}

void qmgr_dispatch(struct qmgr *q)
{
    for (size_t t = 0; t < q->ntransports; t++) {
        struct qtransport *tp = &q->transports[t];

        while (tp->head != NULL) {
            struct qjob *job = tp->head;

            tp->head = job->next;
            if (tp->head == NULL)
                tp->tail = NULL;
            if (agent_send(q, tp, job) == 0) {
                /* no free slot: put it back in front */
                job->next = tp->head;
                tp->head = job;
                if (tp->tail == NULL)
                    tp->tail = job;
                break;
            }
        }
    }
}

static const char *relay_name(const struct qjob *job)
{
    if (strcmp(job->tp->name, "local") == 0 || job->dr.nexthop.len == 0)
        return job->tp->name;
    return job->dr.nexthop.s;
}

void qmgr_agent_event(struct qmgr *q, struct qagent *a, struct qtransport *tp)
{
    struct qjob *job = a->job;
    struct str err = STR_INIT;
    int rc;

    if (job == NULL) {
        /* idle connection: the agent went away (or misbehaves) */
        agent_close(a);
        return;
    }
    rc = deliver_reply_read(a->st, &job->dr, &err);
    a->job = NULL;
    if (rc != 1) {
        struct str text = STR_INIT;

        if (rc < 0)
            log_warn("%s: delivery agent %s: %s", job->msg->id, tp->name,
                     err.s ? err.s : "error");
        str_printf(&text, "lost connection with delivery agent %s", tp->name);
        agent_close(a);
        qmgr_job_fail(q, job, "4.4.2", text.s);
        str_free(&text);
        str_free(&err);
        return;
    }
    for (size_t i = 0; i < job->dr.nrcpt; i++) {
        const struct deliver_rcpt *r = &job->dr.rcpt[i];

        qmgr_rcpt_result(q, job->msg, r->index, relay_name(job), r->status, r->dsn,
                         r->text.s ? r->text.s : "");
    }
    str_free(&err);
    job_done(q, job);
}

void qmgr_agent_timeouts(struct qmgr *q)
{
    time_t now = time(NULL);

    for (size_t t = 0; t < q->ntransports; t++) {
        struct qtransport *tp = &q->transports[t];

        for (size_t i = 0; i < tp->limit; i++) {
            struct qagent *a = &tp->agents[i];
            struct qjob *job = a->job;

            if (job == NULL || now < a->deadline)
                continue;
            log_warn("%s: delivery agent %s did not answer in time", job->msg->id, tp->name);
            agent_close(a);
            qmgr_job_fail(q, job, "4.4.1", "timed out waiting for the delivery agent");
        }
    }
}

size_t qmgr_agents_busy(const struct qmgr *q)
{
    size_t n = 0;

    for (size_t t = 0; t < q->ntransports; t++)
        for (size_t i = 0; i < q->transports[t].limit; i++)
            if (q->transports[t].agents[i].job != NULL)
                n++;
    return n;
}

/* At exit: closes every connection and forgets every job (their messages stay in
 * active/ for the next qmgr). */
void qmgr_agents_close(struct qmgr *q)
{
    for (size_t t = 0; t < q->ntransports; t++) {
        struct qtransport *tp = &q->transports[t];

        for (size_t i = 0; i < tp->limit; i++) {
            if (tp->agents[i].job != NULL)
                job_free(tp->agents[i].job);
            agent_close(&tp->agents[i]);
        }
        while (tp->head != NULL) {
            struct qjob *job = tp->head;

            tp->head = job->next;
            job_free(job);
        }
        tp->tail = NULL;
        free(tp->agents);
        tp->agents = NULL;
        tp->limit = 0;
    }
    q->ntransports = 0;
}
