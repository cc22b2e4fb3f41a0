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
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "conf.h"
#include "headers.h"
#include "log.h"
#include "proto.h"
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

static unsigned msg_hash(const char *id)
{
    unsigned h = 5381;

    for (; *id; id++)
        h = h * 33 + (unsigned char)*id;
    return h % QMGR_MSG_BUCKETS;
}

/* The message with this id held in active/, or NULL. */
struct qmsg *qmgr_msg_find(struct qmgr *q, const char *id)
{
    for (struct qmsg *m = q->msg_buckets[msg_hash(id)]; m != NULL; m = m->hnext)
        if (strcmp(m->id, id) == 0)
            return m;
    return NULL;
}

struct qmsg *qmgr_msg_add(struct qmgr *q, const char *id)
{
    struct qmsg *m = xcalloc(1, sizeof(*m));
    unsigned h;

    snprintf(m->id, sizeof(m->id), "%s", id);
    m->qf.fd = -1;
    m->next = q->msgs;
    if (q->msgs != NULL)
        q->msgs->prev = m;
    q->msgs = m;
    h = msg_hash(m->id);
    m->hnext = q->msg_buckets[h];
    q->msg_buckets[h] = m;
    q->nmsgs++;
    if (q->ready_tail != NULL)
        q->ready_tail->next_ready = m;
    else
        q->ready_head = m;
    q->ready_tail = m;
    return m;
}

void qmgr_msg_release(struct qmgr *q, struct qmsg *m)
{
    struct qmsg **pp;

    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        q->msgs = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    for (pp = &q->msg_buckets[msg_hash(m->id)]; *pp != NULL; pp = &(*pp)->hnext) {
        if (*pp == m) {
            *pp = m->hnext;
            break;
        }
    }
    q->nmsgs--;
    if (m->open)
        queue_file_close(&m->qf);
    if (m->res != NULL)
        for (size_t i = 0; i < m->qf.nrcpt; i++)
            free(m->res[i].text);
    free(m->res);
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

static void log_rcpt(struct qmsg *m, size_t index, const char *agent, const char *relay,
                     const char *status, const char *dsn, const char *text)
{
    const struct queue_rcpt *r = &m->qf.rcpt[index];
    struct str orig = STR_INIT;
    double delay = qmgr_now() - m->arrival;

    if (delay < 0)
        delay = 0;
    if (r->orcpt != NULL && strcmp(r->orcpt, r->addr) != 0)
        str_printf(&orig, ", orig_to=<%s>", r->orcpt);
    /* The final status line of a delivery is the delivery agent's, as in Postfix,
     * where log readers (pflogsumm) look for it; what qmgr decides itself is its own. */
    if (agent != NULL)
        log_info_as(agent, "%s: to=<%s>%s, relay=%s, delay=%.2f, dsn=%s, status=%s (%s)",
                    m->id, r->addr, orig.s ? orig.s : "", relay, delay, dsn, status, text);
    else
        log_info("%s: to=<%s>%s, relay=%s, delay=%.2f, dsn=%s, status=%s (%s)", m->id,
                 r->addr, orig.s ? orig.s : "", relay, delay, dsn, status, text);
    str_free(&orig);
}

static void set_result(struct qmsg *m, size_t index, const char *relay, const char *dsn,
                       const char *text)
{
    struct qmsg_result *r = &m->res[index];

    snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
    free(r->text);
    r->text = xstrdup(text);
    r->relayed = strcmp(relay, "local") != 0;
}

void qmgr_rcpt_result(struct qmgr *q, struct qmsg *m, size_t index, const char *agent,
                      const char *relay, enum deliver_status st, const char *dsn,
                      const char *text)
{
    if (index >= m->qf.nrcpt || m->rstate[index] != QR_PENDING)
        return;
    log_rcpt(m, index, agent, relay, status_word(st), dsn, text);
    set_result(m, index, relay, dsn, text);
    switch (st) {
    case DELIVER_OK:
        if (queue_mark_done(&m->qf, index) < 0) {
            log_warn("%s: cannot mark recipient %zu done: %s", m->id, index, strerror(errno));
            m->rstate[index] = QR_DEFERRED;
        } else {
            m->rstate[index] = QR_DONE;
            m->res[index].delivered = true;
        }
        break;
    case DELIVER_BOUNCE:
        m->rstate[index] = QR_BOUNCED;
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

/* "transport:nexthop" (nexthop may be empty: the recipient's own route's) into its
 * parts; a value without ':' or with a bad transport name leaves tr empty. */
static void content_filter_split(const char *filter, struct str *tr, struct str *nh)
{
    const char *colon = strchr(filter, ':');

    str_clear(tr);
    str_clear(nh);
    if (colon == NULL)
        return;
    str_set(tr, filter, (size_t)(colon - filter));
    if (!transport_name_ok(tr->s)) {
        str_clear(tr);
        return;
    }
    str_sets(nh, colon + 1);
    for (size_t i = 0; i < nh->len; i++)
        if ((unsigned char)nh->s[i] <= 0x20 || nh->s[i] == 0x7f) {
            str_clear(tr);
            return;
        }
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

/* One pending recipient of a batch: its message, its index there, and its route. */
struct route_entry {
    struct qmsg *m;
    size_t index;
    struct str tr, nh;
    bool failed;                    /* the resolver did not answer */
};

/* Applies the routes of entries e[0..n), all of one message: results for the
 * recipients that cannot be delivered now, delivery jobs for the others. */
static void route_apply(struct qmgr *q, struct qmsg *m, struct route_entry *e, size_t n)
{
    struct qjob **jobs = xcalloc(n, sizeof(*jobs));
    size_t njobs = 0;
    /* An after-queue filter named when the message arrived replaces the route of
     * every deliverable recipient (those refused by the tables still fail here). */
    const char *filter = queue_file_attr(&m->qf, "content_filter");
    /* A message a filter refused after it was already taken from its sender (mail
     * from pickup, whose sendmail(1) has gone): every recipient bounces with the
     * filter's reason. */
    const char *refused = queue_file_attr(&m->qf, "reject");
    struct str ftr = STR_INIT, fnh = STR_INIT;

    if (filter != NULL && filter[0] == '\0')
        filter = NULL;
    if (filter != NULL)
        content_filter_split(filter, &ftr, &fnh);

    for (size_t k = 0; k < n; k++) {
        const char *t = e[k].tr.s ? e[k].tr.s : "", *h = e[k].nh.s ? e[k].nh.s : "";
        const char *addr = m->qf.rcpt[e[k].index].addr;
        char dsn[16];
        struct qtransport *tp;
        struct qjob *job;

        if (refused != NULL) {
            const char *text = split_dsn(refused, '5', dsn, "message content rejected");
            qmgr_rcpt_result(q, m, e[k].index, NULL, "none", DELIVER_BOUNCE, dsn, text);
            continue;
        }
        if (e[k].failed) {
            qmgr_rcpt_result(q, m, e[k].index, NULL, "none", DELIVER_DEFER, "4.3.0",
                             "address resolver unavailable");
            continue;
        }
        if (strcmp(t, "error") == 0) {
            const char *text = split_dsn(h, '5', dsn, "mail for this address is not accepted");
            qmgr_rcpt_result(q, m, e[k].index, NULL, "none", DELIVER_BOUNCE, dsn, text);
            continue;
        }
        if (strcmp(t, "defer") == 0) {
            const char *text = split_dsn(h, '4', dsn, "delivery is deferred by the transport table");
            qmgr_rcpt_result(q, m, e[k].index, NULL, "none", DELIVER_DEFER, dsn, text);
            continue;
        }
        if (strcmp(t, PROTO_TEMPFAIL) == 0) {
            struct str text = STR_INIT;

            str_printf(&text, "address resolver failure: %s", h);
            qmgr_rcpt_result(q, m, e[k].index, NULL, "none", DELIVER_DEFER, "4.3.0", text.s);
            str_free(&text);
            continue;
        }
        if (filter != NULL) {
            if (ftr.len == 0) {
                qmgr_rcpt_result(q, m, e[k].index, NULL, "none", DELIVER_DEFER, "4.3.5",
                                 "unusable content_filter in the queue file");
                continue;
            }
            t = ftr.s;
            if (fnh.len > 0)
                h = fnh.s;
        }
        if (!transport_name_ok(t) || (tp = qmgr_transport(q, t)) == NULL) {
            struct str text = STR_INIT;

            str_printf(&text, "unusable transport \"%s\" in the route", t);
            qmgr_rcpt_result(q, m, e[k].index, NULL, "none", DELIVER_DEFER, "4.3.5", text.s);
            str_free(&text);
            continue;
        }
        if (!qmgr_transport_available(tp)) {
            struct str text = STR_INIT;

            if (strcmp(t, "smtp") == 0)
                str_sets(&text, "delivery to remote domains is not available: no smtp service");
            else
                str_printf(&text, "delivery agent %s is not available", t);
            qmgr_rcpt_result(q, m, e[k].index, NULL, "none", DELIVER_DEFER, "4.3.5", text.s);
            str_free(&text);
            continue;
        }
        job = job_find(jobs, njobs, t, h);
        if (job == NULL) {
            job = xcalloc(1, sizeof(*job));
            job->msg = m;
            job->tp = tp;
            job->dest = qmgr_dest(q, tp, h);
            deliver_request_init(&job->dr);
            snprintf(job->dr.id, sizeof(job->dr.id), "%s", m->id);
            str_sets(&job->dr.transport, t);
            str_sets(&job->dr.nexthop, h);
            jobs[njobs++] = job;
        }
        deliver_request_add(&job->dr, e[k].index, addr);
    }
    for (size_t j = 0; j < njobs; j++) {
        m->jobs_out++;
        qmgr_job_queue(q, jobs[j]);
    }
    free(jobs);
    str_free(&ftr);
    str_free(&fnh);
}

/* Routes e[0..n) with as few requests to the resolver as its limits allow: one
 * round trip costs two context switches, which under load cost more than the
 * lookups themselves. */
static void route_lookup(struct qmgr *q, struct route_entry *e, size_t n)
{
    char **addrs = xcalloc(n < QMGR_ROUTE_BATCH ? n : QMGR_ROUTE_BATCH, sizeof(*addrs));
    struct str *tr = xcalloc(QMGR_ROUTE_BATCH, sizeof(*tr));
    struct str *nh = xcalloc(QMGR_ROUTE_BATCH, sizeof(*nh));

    for (size_t first = 0; first < n;) {
        size_t count = 0, bytes = 0;

        while (first + count < n && count < QMGR_ROUTE_BATCH) {
            const char *a = e[first + count].m->qf.rcpt[e[first + count].index].addr;
            size_t len = strlen(a) + 16;

            if (count > 0 && bytes + len > QMGR_ROUTE_BYTES)
                break;
            addrs[count++] = (char *)a;
            bytes += len;
        }
        if (resolve_route(q->resolve, addrs, count, tr, nh) < 0) {
            for (size_t k = 0; k < count; k++)
                e[first + k].failed = true;
        } else {
            for (size_t k = 0; k < count; k++) {
                e[first + k].tr = tr[k];
                e[first + k].nh = nh[k];
                tr[k] = (struct str)STR_INIT;
                nh[k] = (struct str)STR_INIT;
            }
        }
        for (size_t k = 0; k < count; k++) {
            str_free(&tr[k]);
            str_free(&nh[k]);
        }
        first += count;
    }
    free(addrs);
    free(tr);
    free(nh);
}

/* Routes the pending recipients of the messages v[0..n) and makes their jobs. */
static void route_batch(struct qmgr *q, struct qmsg **v, size_t n)
{
    struct route_entry *e;
    size_t total = 0, k = 0;

    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < v[i]->qf.nrcpt; r++)
            if (v[i]->rstate[r] == QR_PENDING)
                total++;
    if (total == 0)
        return;
    e = xcalloc(total, sizeof(*e));
    for (size_t i = 0; i < n; i++)
        for (size_t r = 0; r < v[i]->qf.nrcpt; r++)
            if (v[i]->rstate[r] == QR_PENDING)
                e[k++] = (struct route_entry){ .m = v[i], .index = r };
    route_lookup(q, e, total);
    for (size_t first = 0; first < total;) {
        size_t count = 1;

        while (first + count < total && e[first + count].m == e[first].m)
            count++;
        route_apply(q, e[first].m, e + first, count);
        first += count;
    }
    for (size_t i = 0; i < total; i++) {
        str_free(&e[i].tr);
        str_free(&e[i].nh);
    }
    free(e);
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
        tv[0].tv_sec = tv[1].tv_sec =
            time(NULL) + conf_time_ms(q->conf, CONF_minimal_backoff_time) / 1000;
        tv[0].tv_usec = tv[1].tv_usec = 0;
        if (utimes(path.s, tv) < 0 || qmgr_queue_rename("active", "deferred", m->id) < 0)
            log_warn("%s: cannot move to deferred/: %s", m->id, strerror(errno));
    }
    str_free(&path);
    qmgr_msg_release(q, m);
}

struct hop_count {
    struct str buf;
};

static int grab_header(void *arg, const char *data, size_t len)
{
    struct hop_count *h = arg;
    size_t room = QMGR_HEADER_MAX - h->buf.len;

    str_append(&h->buf, data, len < room ? len : room);
    if (h->buf.len >= QMGR_HEADER_MAX)
        return 1;
    /* stop at the end of the header section */
    return header_section_len(h->buf.s, h->buf.len) < h->buf.len ? 1 : 0;
}

/* More Received: fields than hopcount_limit: a mail loop.  Mail from smtpd was
 * checked at DATA; this catches what came in another way (pickup, aliases, relays). */
static bool too_many_hops(struct qmgr *q, struct qmsg *m, size_t *count)
{
    struct hop_count h = { STR_INIT };
    long long limit = conf_count(q->conf, CONF_hopcount_limit);

    *count = 0;
    if (limit <= 0)
        return false;
    if (queue_file_content(&m->qf, grab_header, &h) >= 0 && h.buf.len > 0)
        *count = header_count(h.buf.s, h.buf.len, "Received");
    str_free(&h.buf);
    return *count > (unsigned long long)limit;
}

/* Opens m and settles what needs no route.  true: m waits to be routed; false: m
 * is finished (and freed) or waits for nothing. */
static bool msg_prepare(struct qmgr *q, struct qmsg *m)
{
    struct str path = STR_INIT, err = STR_INIT;
    size_t pending = 0, hops;

    m->started = true;
    str_printf(&path, "active/%s", m->id);
    if (queue_file_open(path.s, O_RDWR, &m->qf, &err) < 0) {
        int e = errno;

        str_free(&path);
        msg_open_failed(q, m, e, err.s ? err.s : "unreadable");
        str_free(&err);
        return false;
    }
    str_free(&path);
    str_free(&err);
    m->open = true;
    m->arrival = arrival_time(m->id, m->qf.arrival);
    m->rstate = xcalloc(m->qf.nrcpt ? m->qf.nrcpt : 1, sizeof(*m->rstate));
    m->res = xcalloc(m->qf.nrcpt ? m->qf.nrcpt : 1, sizeof(*m->res));
    for (size_t i = 0; i < m->qf.nrcpt; i++) {
        m->rstate[i] = m->qf.rcpt[i].done ? QR_DONE : QR_PENDING;
        if (!m->qf.rcpt[i].done)
            pending++;
    }
    log_info("%s: from=<%s>, size=%zu, nrcpt=%zu (queue active)", m->id,
             m->qf.sender ? m->qf.sender : "", m->qf.content_size, m->qf.nrcpt);
    if (pending > 0 && too_many_hops(q, m, &hops)) {
        struct str text = STR_INIT;

        str_printf(&text, "message has too many Received: headers (%zu): mail forwarding loop",
                   hops);
        for (size_t i = 0; i < m->qf.nrcpt; i++)
            if (m->rstate[i] == QR_PENDING)
                qmgr_rcpt_result(q, m, i, NULL, "none", DELIVER_BOUNCE, "5.4.6", text.s);
        str_free(&text);
        pending = 0;
    }
    if (pending > 0)
        return true;
    qmgr_msg_finish(q, m);
    return false;
}

/* Opens and routes the messages v[0..n) with one resolver request (or a few) for
 * all of them; any of them may be finished (and freed) before this returns. */
void qmgr_msg_start(struct qmgr *q, struct qmsg **v, size_t n)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        if (msg_prepare(q, v[i]))
            v[k++] = v[i];
    route_batch(q, v, k);
    for (size_t i = 0; i < k; i++)
        if (v[i]->jobs_out == 0)
            qmgr_msg_finish(q, v[i]);
}

/* Retries come at fixed ages: minimal_backoff_time after arrival, then each interval
 * twice the one before, up to maximal_backoff_time (with the defaults 5, 10, 20,
 * 40 minutes, then every hour).  The next retry is the first of those ages still
 * ahead, so early or late queue runs do not shift the schedule. */
time_t qmgr_retry_time(long long minb, long long maxb, time_t arrival, time_t now)
{
    long long age = (long long)(now - arrival), at = 0, step;

    if (minb < 1)
        minb = 1;
    if (maxb < minb)
        maxb = minb;
    if (age < 0)
        age = 0;
    step = minb;
    while (at <= age) {
        if (step >= maxb) {
            /* from here on every maxb: jump straight to the right one */
            at += ((age - at) / maxb + 1) * maxb;
            break;
        }
        at += step;
        step *= 2;
    }
    return arrival + (time_t)at;
}

/* Recipients still pending past the queue lifetime fail with 5.4.7. */
static void expire(struct qmgr *q, struct qmsg *m, time_t now)
{
    bool null_sender = m->qf.sender == NULL || m->qf.sender[0] == '\0';
    long long life = conf_time_ms(q->conf, null_sender ? CONF_bounce_queue_lifetime
                                                       : CONF_maximal_queue_lifetime) / 1000;

    if ((long long)(now - m->qf.arrival) < life)
        return;
    for (size_t i = 0; i < m->qf.nrcpt; i++) {
        if (m->rstate[i] == QR_DEFERRED || m->rstate[i] == QR_PENDING) {
            struct str text = STR_INIT;

            str_printf(&text, "delivery time expired (message older than %llds)%s%s", life,
                       m->res[i].text != NULL ? "; last reason: " : "",
                       m->res[i].text != NULL ? m->res[i].text : "");
            m->rstate[i] = QR_PENDING;
            qmgr_rcpt_result(q, m, i, NULL, "none", DELIVER_BOUNCE, "5.4.7", text.s);
            str_free(&text);
        }
    }
}

/* NOTIFY (RFC 3461 4.1): absent means FAILURE,DELAY; NEVER means nothing. */
bool qmgr_notify_wants(const char *notify, const char *what)
{
    size_t n = strlen(what);

    if (notify == NULL || notify[0] == '\0')
        return strcasecmp(what, "FAILURE") == 0 || strcasecmp(what, "DELAY") == 0;
    for (const char *p = notify; *p != '\0';) {
        size_t len = strcspn(p, ",");

        if (len == n && strncasecmp(p, what, n) == 0)
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

static bool null_sender(const struct qmsg *m)
{
    return m->qf.sender == NULL || m->qf.sender[0] == '\0';
}

/* The envelope recipients of a notice to addr: addr after alias expansion (the
 * queue holds final recipients).  NULL when the resolver cannot answer now; an
 * address it refuses is kept as it is (its failure ends in a notice to the
 * postmaster). */
static char **notice_rcpts(struct qmgr *q, const char *addr, size_t *n)
{
    struct router_verdict v;
    char **out;

    router_verdict_init(&v);
    resolve_verify(q->resolve, addr, &v);
    if (v.status == ROUTER_TEMPFAIL) {
        router_verdict_free(&v);
        return NULL;
    }
    if (v.status == ROUTER_OK && v.nexpanded > 0) {
        out = v.expanded;
        *n = v.nexpanded;
        v.expanded = NULL;
    } else {
        out = xcalloc(2, sizeof(*out));
        out[0] = xstrdup(addr);
        *n = 1;
    }
    router_verdict_free(&v);
    return out;
}

/* Writes one notice about the recipients idx[0..n) of m.  0, or -1 (logged). */
static int notice_send(struct qmgr *q, struct qmsg *m, enum bounce_kind kind,
                       const char *sender, const char *to, bool full, bool postmaster,
                       const size_t *idx, size_t n)
{
    struct bounce_rcpt *br = xcalloc(n, sizeof(*br));
    struct bounce_notice bn = { .kind = kind, .sender = sender, .to = to, .full = full,
                                .postmaster = postmaster };
    struct str err = STR_INIT;
    char id[QUEUE_ID_SIZE];
    char **rcpts;
    size_t nrcpts = 0;
    int rc = -1;
    static const char *const what[] = { "non-delivery", "delay", "success" };

    rcpts = notice_rcpts(q, to, &nrcpts);
    if (rcpts == NULL) {
        log_warn("%s: cannot send the %s notification now: the address resolver is"
                 " unavailable", m->id, what[kind]);
        free(br);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct queue_rcpt *r = &m->qf.rcpt[idx[i]];
        const struct qmsg_result *res = &m->res[idx[i]];

        br[i].addr = r->addr;
        br[i].orcpt = r->orcpt;
        br[i].dsn = res->dsn[0] ? res->dsn : NULL;
        br[i].text = res->text ? res->text : "";
        if (kind == BOUNCE_DELIVERED && res->relayed)
            br[i].action = "relayed";
    }
    bn.rcpts = rcpts;
    bn.nrcpts = nrcpts;
    if (kind == BOUNCE_DELAYED)
        bn.retry_until = m->qf.arrival
                         + (time_t)(conf_time_ms(q->conf, CONF_maximal_queue_lifetime) / 1000);
    if (bounce_notice_create(".", &m->qf, &bn, br, n, q->conf, id, &err) == 0) {
        if (postmaster)
            log_info("%s: postmaster non-delivery notification: %s", m->id, id);
        else
            log_info("%s: sender %s notification: %s", m->id, what[kind], id);
        q->want_incoming = true;
        rc = 0;
    } else {
        log_warn("%s: cannot create the %s notification: %s", m->id, what[kind],
                 err.s ? err.s : "error");
    }
    strv_free(rcpts);
    str_free(&err);
    free(br);
    return rc;
}

/* The failed recipients: one notice to whoever bounce_route names (none for those
 * whose NOTIFY leaves out FAILURE), then they are marked done; if the notice cannot
 * be written they stay in the file for the next attempt. */
static void send_bounces(struct qmgr *q, struct qmsg *m)
{
    size_t *idx = xcalloc(m->qf.nrcpt + 1, sizeof(*idx)), n = 0, nbounced = 0;
    struct str sender = STR_INIT, to = STR_INIT;
    enum bounce_route rt;
    const char *ret;
    int rc = 0;

    for (size_t i = 0; i < m->qf.nrcpt; i++) {
        if (m->rstate[i] != QR_BOUNCED)
            continue;
        nbounced++;
        if (qmgr_notify_wants(m->qf.rcpt[i].notify, "FAILURE"))
            idx[n++] = i;
        else
            log_info("%s: to=<%s>, no non-delivery notification: NOTIFY=%s", m->id,
                     m->qf.rcpt[i].addr, m->qf.rcpt[i].notify ? m->qf.rcpt[i].notify : "");
    }
    if (nbounced == 0)
        goto out;
    rt = bounce_route(&m->qf, q->conf, &sender, &to);
    ret = queue_file_attr(&m->qf, "ret");
    if (n > 0 && rt == BOUNCE_DROP)
        log_warn("%s: undeliverable notification from <%s> dropped (%zu recipient%s)",
                 m->id, m->qf.sender ? m->qf.sender : "", n, n == 1 ? "" : "s");
    else if (n > 0)
        rc = notice_send(q, m, BOUNCE_FAILED, sender.s, to.s,
                         rt == BOUNCE_TO_POSTMASTER || (ret != NULL && strcasecmp(ret, "FULL") == 0),
                         rt == BOUNCE_TO_POSTMASTER, idx, n);
    for (size_t i = 0; i < m->qf.nrcpt; i++) {
        if (m->rstate[i] != QR_BOUNCED)
            continue;
        if (rc == 0 && queue_mark_done(&m->qf, i) == 0)
            m->rstate[i] = QR_DONE;
        else
            m->rstate[i] = QR_DEFERRED;
    }
out:
    str_free(&sender);
    str_free(&to);
    free(idx);
}

/* NOTIFY=SUCCESS: a notice about the recipients delivered in this pass.  A notice
 * that cannot be written is lost (the deliveries are already recorded). */
static void send_successes(struct qmgr *q, struct qmsg *m)
{
    size_t *idx, n = 0;

    if (null_sender(m))
        return;
    idx = xcalloc(m->qf.nrcpt + 1, sizeof(*idx));
    for (size_t i = 0; i < m->qf.nrcpt; i++)
        if (m->rstate[i] == QR_DONE && m->res[i].delivered && !m->res[i].notified
            && qmgr_notify_wants(m->qf.rcpt[i].notify, "SUCCESS"))
            idx[n++] = i;
    if (n > 0)
        notice_send(q, m, BOUNCE_DELIVERED, "", m->qf.sender, false, false, idx, n);
    free(idx);
}

/* Has the delay warning been sent?  Its durable mark is the owner execute bit of the
 * queue file (postern-queue(5)). */
static bool warned(const struct qmsg *m)
{
    struct stat sb;

    return fstat(m->qf.fd, &sb) == 0 && (sb.st_mode & S_IXUSR) != 0;
}

static void mark_warned(struct qmsg *m)
{
    struct stat sb;

    if (fstat(m->qf.fd, &sb) < 0 || fchmod(m->qf.fd, (sb.st_mode & 07777) | S_IXUSR) < 0)
        log_warn("%s: cannot mark the delay warning as sent: %s", m->id, strerror(errno));
}

/* After delay_warning_time (0: never), one notice per message about the recipients
 * still deferred whose NOTIFY asks for DELAY. */
static void send_delay_warning(struct qmgr *q, struct qmsg *m, time_t now)
{
    long long dwt = conf_time_ms(q->conf, CONF_delay_warning_time) / 1000;
    size_t *idx, n = 0;
    int rc = 0;

    if (dwt <= 0 || null_sender(m) || (long long)(now - m->qf.arrival) < dwt || warned(m))
        return;
    idx = xcalloc(m->qf.nrcpt + 1, sizeof(*idx));
    for (size_t i = 0; i < m->qf.nrcpt; i++)
        if (m->rstate[i] == QR_DEFERRED && qmgr_notify_wants(m->qf.rcpt[i].notify, "DELAY"))
            idx[n++] = i;
    if (n > 0)
        rc = notice_send(q, m, BOUNCE_DELAYED, "", m->qf.sender, false, false, idx, n);
    if (rc == 0)
        mark_warned(m);
    free(idx);
}

/* The defer record (postern-queue(5)): each recipient still deferred, the reason of
 * this attempt and the time of the next, for "postern queue list".  Written before
 * the message moves to deferred/; a failure loses only the explanation. */
static void defer_record(struct qmsg *m, time_t now, time_t next)
{
    struct queue_defer_rcpt *r = xcalloc(m->qf.nrcpt + 1, sizeof(*r));
    struct str err = STR_INIT;
    size_t n = 0;

    for (size_t i = 0; i < m->qf.nrcpt; i++) {
        if (m->rstate[i] == QR_DONE)
            continue;
        struct str why = STR_INIT;
        if (m->res[i].text != NULL)
            str_printf(&why, "%s%s%s", m->res[i].dsn, m->res[i].dsn[0] ? " " : "",
                       m->res[i].text);
        else
            str_sets(&why, "not tried yet");
        r[n].addr = m->qf.rcpt[i].addr;
        r[n].reason = str_detach(&why);
        r[n].attempt = now;
        r[n].next = next;
        n++;
    }
    if (queue_defer_write(".", m->id, r, n, &err) < 0)
        log_warn("%s: cannot write its defer record: %s", m->id, err.s);
    for (size_t i = 0; i < n; i++)
        free(r[i].reason);
    free(r);
    str_free(&err);
}

void qmgr_msg_finish(struct qmgr *q, struct qmsg *m)
{
    time_t now = time(NULL);
    bool all_done = true;
    struct str path = STR_INIT;

    expire(q, m, now);
    send_bounces(q, m);
    send_successes(q, m);
    for (size_t i = 0; i < m->qf.nrcpt; i++)
        if (m->rstate[i] != QR_DONE)
            all_done = false;
    str_printf(&path, "active/%s", m->id);
    if (all_done) {
        if (unlink(path.s) < 0 && errno != ENOENT) {
            log_warn("%s: cannot remove: %s", m->id, strerror(errno));
        } else {
            if (queue_defer_remove(".", m->id) < 0)
                log_warn("%s: cannot remove its defer record: %s", m->id, strerror(errno));
            log_info("%s: removed", m->id);
        }
    } else {
        struct timeval tv[2];

        send_delay_warning(q, m, now);
        if (queue_file_sync(&m->qf) < 0)
            log_warn("%s: cannot sync queue file: %s", m->id, strerror(errno));
        tv[0].tv_sec = tv[1].tv_sec =
            qmgr_retry_time(conf_time_ms(q->conf, CONF_minimal_backoff_time) / 1000,
                            conf_time_ms(q->conf, CONF_maximal_backoff_time) / 1000,
                            m->qf.arrival, now);
        tv[0].tv_usec = tv[1].tv_usec = 0;
        defer_record(m, now, tv[0].tv_sec);
        if (utimes(path.s, tv) < 0)
            log_warn("%s: cannot set the retry time: %s", m->id, strerror(errno));
        if (qmgr_queue_rename("active", "deferred", m->id) < 0)
            log_warn("%s: cannot move to deferred/: %s", m->id, strerror(errno));
    }
    str_free(&path);
    /* room again in active/: look for what the limit left in incoming/ */
    if (q->nmsgs >= q->active_limit)
        q->want_incoming = true;
    qmgr_msg_release(q, m);
}
