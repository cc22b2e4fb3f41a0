/* One message in active/: open it, route its pending recipients, make delivery jobs,
 * record each recipient's result, and when every job is back: send the notice for
 * failed recipients, then remove the file or move it to deferred/ with its next retry
 * time as mtime.  The queue file was written by smtpd or pickup and is parsed by
 * queue.h's reader; a file it rejects goes to corrupt/. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "qmgr.h"
#include "resolve_clnt.h"
#include "str.h"
#include "xmalloc.h"

double qmgr_now(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* The arrival time with the microseconds the queue id carries. */
static double arrival_time(const char *id, time_t arrival)
{
    unsigned long usec = 0;
    char buf[6];

    if (queue_id_valid(id) && queue_id_time(id) == arrival) {
        memcpy(buf, id + 9, 5);
        buf[5] = '\0';
        usec = strtoul(buf, NULL, 16);
        if (usec >= 1000000)
            usec = 0;
    }
    return (double)arrival + (double)usec / 1e6;
}

struct qmsg *qmgr_msg_add(struct qmgr *q, const char *id)
{
    struct qmsg *m = xcalloc(1, sizeof(*m));

    snprintf(m->id, sizeof(m->id), "%s", id);
    m->qf.fd = -1;
    m->next = q->msgs;
    q->msgs = m;
    q->nmsgs++;
    if (q->todo_tail != NULL)
        q->todo_tail->next_todo = m;
    else
        q->todo_head = m;
    q->todo_tail = m;
    return m;
}

void qmgr_msg_release(struct qmgr *q, struct qmsg *m)
{
    struct qmsg **pp;

    for (pp = &q->msgs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == m) {
            *pp = m->next;
            q->nmsgs--;
            break;
        }
    }
    if (m->open)
        queue_file_close(&m->qf);
    for (size_t i = 0; i < m->nbounces; i++)
        free(m->bounces[i].text);
    free(m->bounces);
    free(m->rstate);
    free(m);
}

static const char *status_word(enum deliver_status st)
{
    switch (st) {
    case DELIVER_OK:
        return "sent";
    case DELIVER_BOUNCE:
        return "bounced";
    case DELIVER_DEFER:
    default:
        return "deferred";
    }
}

static void log_rcpt(struct qmsg *m, size_t index, const char *relay, const char *status,
                     const char *dsn, const char *text)
{
    const struct queue_rcpt *r = &m->qf.rcpt[index];
    struct str orig = STR_INIT;
    double delay = qmgr_now() - m->arrival;

    if (delay < 0)
        delay = 0;
    if (r->orcpt != NULL && strcmp(r->orcpt, r->addr) != 0)
        str_printf(&orig, ", orig_to=<%s>", r->orcpt);
    log_info("%s: to=<%s>%s, relay=%s, delay=%.2f, dsn=%s, status=%s (%s)", m->id, r->addr,
             orig.s ? orig.s : "", relay, delay, dsn, status, text);
    str_free(&orig);
}

static void add_bounce(struct qmsg *m, size_t index, const char *dsn, const char *text)
{
    struct qmsg_bounce *b;

    m->bounces = xreallocarray(m->bounces, m->nbounces + 1, sizeof(*m->bounces));
    b = &m->bounces[m->nbounces++];
    b->index = index;
    snprintf(b->dsn, sizeof(b->dsn), "%s", dsn);
    b->text = xstrdup(text);
}

void qmgr_rcpt_result(struct qmgr *q, struct qmsg *m, size_t index, const char *relay,
                      enum deliver_status st, const char *dsn, const char *text)
{
    if (index >= m->qf.nrcpt || m->rstate[index] != QR_PENDING)
        return;
    log_rcpt(m, index, relay, status_word(st), dsn, text);
    switch (st) {
    case DELIVER_OK:
        if (queue_mark_done(&m->qf, index) < 0) {
            log_warn("%s: cannot mark recipient %zu done: %s", m->id, index, strerror(errno));
            m->rstate[index] = QR_DEFERRED;
        } else {
            m->rstate[index] = QR_DONE;
        }
        break;
    case DELIVER_BOUNCE:
        m->rstate[index] = QR_BOUNCED;
        add_bounce(m, index, dsn, text);
        break;
    case DELIVER_DEFER:
        m->rstate[index] = QR_DEFERRED;
        break;
    }
    (void)q;
}

/* Splits "5.1.2 text" (an error: or defer: nexthop) into dsn and text. */
static const char *split_dsn(const char *s, char cls, char dsn[16], const char *fallback)
{
    size_t n = strcspn(s, " \t");

    snprintf(dsn, 16, "%c.0.0", cls);
    if (n >= 5 && n < 16 && s[0] == cls && s[1] == '.'
        && strspn(s, "0123456789.") == n) {
        memcpy(dsn, s, n);
        dsn[n] = '\0';
        s += n;
        s += strspn(s, " \t");
    }
    return s[0] != '\0' ? s : fallback;
}

/* Safe transport names become "private/NAME". */
static bool transport_name_ok(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n < 32 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static struct qjob *job_find(struct qjob **jobs, size_t njobs, const char *transport,
                             const char *nexthop)
{
    for (size_t i = 0; i < njobs; i++)
        if (strcmp(jobs[i]->dr.transport.s, transport) == 0
            && (strcmp(transport, "local") == 0 || strcmp(jobs[i]->dr.nexthop.s, nexthop) == 0))
            return jobs[i];
    return NULL;
}

static void route_all(struct qmgr *q, struct qmsg *m)
{
    size_t n = 0, njobs = 0;
    char **addrs = xcalloc(m->qf.nrcpt + 1, sizeof(*addrs));
    size_t *idx = xcalloc(m->qf.nrcpt + 1, sizeof(*idx));
    struct str *tr, *nh;
    struct qjob **jobs;

    for (size_t i = 0; i < m->qf.nrcpt; i++) {
        if (m->rstate[i] == QR_PENDING) {
            addrs[n] = m->qf.rcpt[i].addr;
            idx[n++] = i;
        }
    }
    if (n == 0) {
        free(addrs);
        free(idx);
        return;
    }
    tr = xcalloc(n, sizeof(*tr));
    nh = xcalloc(n, sizeof(*nh));
    jobs = xcalloc(n, sizeof(*jobs));
    if (resolve_route(q->resolve, addrs, n, tr, nh) < 0) {
        for (size_t k = 0; k < n; k++)
            qmgr_rcpt_result(q, m, idx[k], "none", DELIVER_DEFER, "4.3.0",
                             "address resolver unavailable");
        goto out;
    }
    for (size_t k = 0; k < n; k++) {
        const char *t = tr[k].s, *h = nh[k].s ? nh[k].s : "";
        char dsn[16];
        struct qtransport *tp;
        struct qjob *job;

        if (strcmp(t, "error") == 0) {
            const char *text = split_dsn(h, '5', dsn, "mail for this address is not accepted");
            qmgr_rcpt_result(q, m, idx[k], "none", DELIVER_BOUNCE, dsn, text);
            continue;
        }
        if (strcmp(t, "defer") == 0) {
            const char *text = split_dsn(h, '4', dsn, "delivery is deferred by the transport table");
            qmgr_rcpt_result(q, m, idx[k], "none", DELIVER_DEFER, dsn, text);
            continue;
        }
        if (strcmp(t, "tempfail") == 0) {
            struct str text = STR_INIT;

            str_printf(&text, "address resolver failure: %s", h);
            qmgr_rcpt_result(q, m, idx[k], "none", DELIVER_DEFER, "4.3.0", text.s);
            str_free(&text);
            continue;
        }
        if (!transport_name_ok(t) || (tp = qmgr_transport(q, t)) == NULL) {
            struct str text = STR_INIT;

            str_printf(&text, "unusable transport \"%s\" in the route", t);
            qmgr_rcpt_result(q, m, idx[k], "none", DELIVER_DEFER, "4.3.5", text.s);
            str_free(&text);
            continue;
        }
        if (!qmgr_transport_available(tp)) {
            struct str text = STR_INIT;

            if (strcmp(t, "smtp") == 0)
                str_sets(&text, "delivery to remote domains is not available: no smtp service");
            else
                str_printf(&text, "delivery agent %s is not available", t);
            qmgr_rcpt_result(q, m, idx[k], "none", DELIVER_DEFER, "4.3.5", text.s);
            str_free(&text);
            continue;
        }
        job = job_find(jobs, njobs, t, h);
        if (job == NULL) {
            job = xcalloc(1, sizeof(*job));
            job->msg = m;
            job->tp = tp;
            deliver_request_init(&job->dr);
            snprintf(job->dr.id, sizeof(job->dr.id), "%s", m->id);
            str_sets(&job->dr.transport, t);
            str_sets(&job->dr.nexthop, h);
            jobs[njobs++] = job;
        }
        deliver_request_add(&job->dr, idx[k], addrs[k]);
    }
    for (size_t j = 0; j < njobs; j++) {
        m->jobs_out++;
        qmgr_job_queue(q, jobs[j]);
    }
out:
    for (size_t k = 0; k < n; k++) {
        str_free(&tr[k]);
        str_free(&nh[k]);
    }
    free(tr);
    free(nh);
    free(jobs);
    free(addrs);
    free(idx);
}

/* Moves active/ID aside after a failure to open it: corrupt/ for a bad file, else
 * deferred/ with a short delay. */
static void msg_open_failed(struct qmgr *q, struct qmsg *m, int err, const char *why)
{
    struct str path = STR_INIT;

    if (err == ENOENT) {
        log_warn("%s: gone from active/", m->id);
    } else if (err == EINVAL) {
        const char *p = strstr(why, "corrupt queue file: ");

        log_warn("%s: corrupt queue file: %s", m->id, p ? p + 20 : why);
        if (queue_move(".", "active", "corrupt", m->id) < 0)
            log_warn("%s: cannot move to corrupt/: %s", m->id, strerror(errno));
    } else {
        struct timeval tv[2];

        log_warn("%s: cannot open queue file: %s", m->id, strerror(err));
        str_printf(&path, "active/%s", m->id);
        tv[0].tv_sec = tv[1].tv_sec = time(NULL) + conf_time(q->conf, "minimal_backoff_time");
        tv[0].tv_usec = tv[1].tv_usec = 0;
        if (utimes(path.s, tv) < 0 || queue_move(".", "active", "deferred", m->id) < 0)
            log_warn("%s: cannot move to deferred/: %s", m->id, strerror(errno));
    }
    str_free(&path);
    qmgr_msg_release(q, m);
}

/* Opens and routes m; m may be finished (and freed) before this returns. */
void qmgr_msg_start(struct qmgr *q, struct qmsg *m)
{
    struct str path = STR_INIT, err = STR_INIT;
    size_t pending = 0;

    m->started = true;
    str_printf(&path, "active/%s", m->id);
    if (queue_file_open(path.s, O_RDWR, &m->qf, &err) < 0) {
        int e = errno;

        str_free(&path);
        msg_open_failed(q, m, e, err.s ? err.s : "unreadable");
        str_free(&err);
        return;
    }
    str_free(&path);
    str_free(&err);
    m->open = true;
    m->arrival = arrival_time(m->id, m->qf.arrival);
    m->rstate = xcalloc(m->qf.nrcpt ? m->qf.nrcpt : 1, sizeof(*m->rstate));
    for (size_t i = 0; i < m->qf.nrcpt; i++) {
        m->rstate[i] = m->qf.rcpt[i].done ? QR_DONE : QR_PENDING;
        if (!m->qf.rcpt[i].done)
            pending++;
    }
    log_info("%s: from=<%s>, size=%zu, nrcpt=%zu (queue active)", m->id,
             m->qf.sender ? m->qf.sender : "", m->qf.content_size, m->qf.nrcpt);
    if (pending > 0)
        route_all(q, m);
    if (m->jobs_out == 0)
        qmgr_msg_finish(q, m);
}

/* The next retry: now plus the message's age, within the backoff limits. */
static time_t retry_time(const struct qmgr *q, const struct qmsg *m, time_t now)
{
    long long minb = conf_time(q->conf, "minimal_backoff_time");
    long long maxb = conf_time(q->conf, "maximal_backoff_time");
    long long age = (long long)(now - m->qf.arrival);

    if (maxb < minb)
        maxb = minb;
    if (age < minb)
        age = minb;
    if (age > maxb)
        age = maxb;
    return now + (time_t)age;
}

/* Recipients still pending past the queue lifetime fail with 5.4.7. */
static void expire(struct qmgr *q, struct qmsg *m, time_t now)
{
    bool null_sender = m->qf.sender == NULL || m->qf.sender[0] == '\0';
    long long life = conf_time(q->conf, null_sender ? "bounce_queue_lifetime"
                                                    : "maximal_queue_lifetime");

    if ((long long)(now - m->qf.arrival) <= life)
        return;
    for (size_t i = 0; i < m->qf.nrcpt; i++) {
        if (m->rstate[i] == QR_DEFERRED || m->rstate[i] == QR_PENDING) {
            m->rstate[i] = QR_PENDING;
            qmgr_rcpt_result(q, m, i, "none", DELIVER_BOUNCE, "5.4.7",
                             "delivery time expired");
        }
    }
}

/* Writes the notice for the bounced recipients and marks them done; on failure they
 * stay in the file for the next attempt. */
static void send_bounces(struct qmgr *q, struct qmsg *m)
{
    struct bounce_rcpt *br;
    char id[QUEUE_ID_SIZE];
    struct str err = STR_INIT;
    int rc;

    if (m->nbounces == 0)
        return;
    br = xcalloc(m->nbounces, sizeof(*br));
    for (size_t i = 0; i < m->nbounces; i++) {
        const struct queue_rcpt *r = &m->qf.rcpt[m->bounces[i].index];

        br[i].addr = r->addr;
        br[i].orcpt = r->orcpt;
        br[i].dsn = m->bounces[i].dsn;
        br[i].text = m->bounces[i].text;
    }
    rc = bounce_create(".", &m->qf, br, m->nbounces, q->conf, id, &err);
    if (rc == 0) {
        log_info("%s: sender non-delivery notification: %s", m->id, id);
        q->want_incoming = true;
    }
    for (size_t i = 0; i < m->nbounces; i++) {
        size_t index = m->bounces[i].index;

        if (rc >= 0 && queue_mark_done(&m->qf, index) == 0)
            m->rstate[index] = QR_DONE;
        else
            m->rstate[index] = QR_DEFERRED;
    }
    if (rc < 0)
        log_warn("%s: cannot create the non-delivery notification: %s", m->id,
                 err.s ? err.s : "error");
    str_free(&err);
    free(br);
}

void qmgr_msg_finish(struct qmgr *q, struct qmsg *m)
{
    time_t now = time(NULL);
    bool all_done = true;
    struct str path = STR_INIT;

    expire(q, m, now);
    send_bounces(q, m);
    for (size_t i = 0; i < m->qf.nrcpt; i++)
        if (m->rstate[i] != QR_DONE)
            all_done = false;
    str_printf(&path, "active/%s", m->id);
    if (all_done) {
        if (unlink(path.s) < 0 && errno != ENOENT)
            log_warn("%s: cannot remove: %s", m->id, strerror(errno));
        else
            log_info("%s: removed", m->id);
    } else {
        struct timeval tv[2];

        if (queue_file_sync(&m->qf) < 0)
            log_warn("%s: cannot sync queue file: %s", m->id, strerror(errno));
        tv[0].tv_sec = tv[1].tv_sec = retry_time(q, m, now);
        tv[0].tv_usec = tv[1].tv_usec = 0;
        if (utimes(path.s, tv) < 0)
            log_warn("%s: cannot set the retry time: %s", m->id, strerror(errno));
        if (queue_move(".", "active", "deferred", m->id) < 0)
            log_warn("%s: cannot move to deferred/: %s", m->id, strerror(errno));
    }
    str_free(&path);
    /* room again in active/: look for what the limit left in incoming/ */
    if (q->nmsgs >= q->active_limit)
        q->want_incoming = true;
    qmgr_msg_release(q, m);
}
