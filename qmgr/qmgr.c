/* qmgr(8): the queue manager.  One process, chrooted to the queue, running its own
 * poll() loop over the wake-up socket (private/qmgr), the clients connected to it,
 * the delivery agents' connections and the scan timers.  Wake-up frames come from
 * other daemons and are checked (protocol "qmgr", proto.h); anything but req=wakeup
 * or req=flush of the right version drops the client. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qmgr.h"
#include "attr.h"
#include "attr_scan.h"
#include "conf.h"
#include "fd.h"
#include "ipc_proto.h"
#include "log.h"
#include "priv.h"
#include "proto.h"
#include "resolve_clnt.h"
#include "server.h"
#include "stream.h"
#include "xmalloc.h"

#define QMGR_WAKEUP_FRAME_MAX 1024

static void client_drop(struct qmgr *q, size_t i)
{
    stream_close(q->clients[i].st);
    q->clients[i] = q->clients[--q->nclients];
}

static void clients_accept(struct qmgr *q)
{
    for (;;) {
        int fd = accept(q->listen_fd, NULL, NULL);

        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
                && errno != ECONNABORTED)
                log_warn("accept: %s", strerror(errno));
            return;
        }
        if (q->nclients == QMGR_CLIENTS_MAX) {
            log_warn("too many wake-up clients: dropping one");
            close(fd);
            continue;
        }
        fd_nonblock(fd, false);
        fd_cloexec(fd, true);
        q->clients[q->nclients].st = stream_fdopen(fd);
        stream_set_timeout(q->clients[q->nclients].st, q->ipc_timeout_ms);
        q->nclients++;
    }
}

/* One wake-up frame: its version and request name checked.  0, or -1 with err. */
static int wakeup_scan(struct qmgr *q, const struct attr_list *al, struct str *err)
{
    const char *req = NULL;
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_REQ, 0, &req, 0),
        ATTR_END,
    };

    if (ipc_proto_check(al, PROTO_QMGR, PROTO_QMGR_VERSION, err) < 0
        || attr_scan(al, 0, spec, err) < 0)
        return -1;
    if (strcmp(req, PROTO_REQ_WAKEUP) == 0) {
        q->want_incoming = true;
    } else if (strcmp(req, PROTO_REQ_FLUSH) == 0) {
        q->want_flush = true;
        q->want_incoming = true;
    } else {
        str_sets(err, "unknown wake-up request");
        return -1;
    }
    return 0;
}

/* Reads the frames client i has sent: false when it must be dropped. */
static bool client_read(struct qmgr *q, size_t i)
{
    struct attr_list al = ATTR_LIST_INIT;
    struct str err = STR_INIT;
    bool keep = true;

    do {
        int rc = attr_read(q->clients[i].st, &al, QMGR_WAKEUP_FRAME_MAX);

        if (rc == 0) {
            keep = false;
            break;
        }
        if (rc < 0) {
            log_warn("bad wake-up frame: %s", errno == EPROTO ? "malformed" : strerror(errno));
            keep = false;
            break;
        }
        if (wakeup_scan(q, &al, &err) < 0) {
            log_warn("bad wake-up frame: %s", err.s);
            keep = false;
            break;
        }
    } while (stream_pending(q->clients[i].st) > 0);
    attr_free(&al);
    str_free(&err);
    return keep;
}

static void timers(struct qmgr *q)
{
    time_t now = time(NULL);

    if (q->stopping)
        return;
    if (q->want_flush) {
        q->want_flush = false;
        qmgr_dests_revive(q);
        qmgr_scan_deferred(q, true);
        q->next_deferred = now + conf_time_ms(q->conf, CONF_queue_run_delay) / 1000;
        q->next_tmp = 0;
    } else if (now >= q->next_deferred) {
        qmgr_scan_deferred(q, false);
        q->next_deferred = now + conf_time_ms(q->conf, CONF_queue_run_delay) / 1000;
    }
    if (q->want_incoming || now >= q->next_incoming) {
        q->want_incoming = false;
        qmgr_scan_incoming(q);
        q->next_incoming = now + QMGR_INCOMING_SCAN;
    }
    if (now >= q->next_tmp) {
        qmgr_scan_tmp(q);
        q->next_tmp = now + QMGR_TMP_SCAN;
    }
}

static void start_messages(struct qmgr *q)
{
    struct qmsg *v[QMGR_START_BATCH];
    size_t n = 0;

    while (n < QMGR_START_BATCH && q->ready_head != NULL) {
        struct qmsg *m = q->ready_head;

        q->ready_head = m->next_ready;
        if (q->ready_head == NULL)
            q->ready_tail = NULL;
        m->next_ready = NULL;
        v[n++] = m;
    }
    if (n > 0)
        qmgr_msg_start(q, v, n);
}

/* One poll over every descriptor; dispatches the events. */
static void poll_once(struct qmgr *q, int timeout_ms)
{
    size_t nfds = 0, max = 1 + q->nclients;
    struct pollfd *pfd;
    struct { int kind; size_t a, b; } *who;

    for (size_t t = 0; t < q->ntransports; t++)
        max += q->transports[t].nagents;
    pfd = xcalloc(max, sizeof(*pfd));
    who = xcalloc(max, sizeof(*who));
    if (q->listen_fd >= 0 && !q->stopping) {
        pfd[nfds] = (struct pollfd){ .fd = q->listen_fd, .events = POLLIN };
        who[nfds].kind = 0;
        nfds++;
    }
    for (size_t i = 0; i < q->nclients; i++) {
        if (stream_pending(q->clients[i].st) > 0)
            timeout_ms = 0;
        pfd[nfds] = (struct pollfd){ .fd = stream_fd(q->clients[i].st), .events = POLLIN };
        who[nfds].kind = 1;
        who[nfds].a = i;
        nfds++;
    }
    for (size_t t = 0; t < q->ntransports; t++) {
        for (size_t i = 0; i < q->transports[t].nagents; i++) {
            struct stream *st = qmgr_agent_stream(&q->transports[t].agents[i]);

            if (st == NULL)
                continue;
            if (stream_pending(st) > 0)
                timeout_ms = 0;
            pfd[nfds] = (struct pollfd){ .fd = stream_fd(st), .events = POLLIN };
            who[nfds].kind = 2;
            who[nfds].a = t;
            who[nfds].b = i;
            nfds++;
        }
    }
    if (poll(pfd, nfds, timeout_ms) < 0 && errno != EINTR)
        log_warn("poll: %s", strerror(errno));
    /* clients are handled from the last, so dropping one (swap with the last)
     * leaves the indexes still to visit intact */
    for (size_t k = nfds; k-- > 0;) {
        bool ready = pfd[k].revents != 0;

        if (who[k].kind == 1 && !ready && stream_pending(q->clients[who[k].a].st) > 0)
            ready = true;
        if (!ready)
            continue;
        if (who[k].kind == 1) {
            if (!client_read(q, who[k].a))
                client_drop(q, who[k].a);
        }
    }
    for (size_t k = 0; k < nfds; k++) {
        struct qtransport *tp;
        struct qagent *a;
        struct stream *st;

        if (who[k].kind == 0 && pfd[k].revents != 0) {
            clients_accept(q);
            continue;
        }
        if (who[k].kind != 2)
            continue;
        tp = &q->transports[who[k].a];
        a = &tp->agents[who[k].b];
        st = qmgr_agent_stream(a);
        if (st != NULL && (pfd[k].revents != 0 || stream_pending(st) > 0))
            qmgr_agent_event(q, a, tp);
    }
    free(pfd);
    free(who);
}

static int next_timeout(const struct qmgr *q)
{
    time_t now = time(NULL), next = q->next_incoming;

    if (q->ready_head != NULL && !q->stopping)
        return 0;
    if (q->next_deferred < next)
        next = q->next_deferred;
    if (next <= now)
        return 0;
    return next - now > 1 ? 1000 : (int)(next - now) * 1000;
}

/* At exit every message stays in active/ for the next qmgr; on reload the done marks
 * made so far are made durable first (on SIGTERM there is no time for that). */
static void qmgr_shutdown(struct qmgr *q, bool sync)
{
    while (q->msgs != NULL) {
        struct qmsg *m = q->msgs;

        if (sync && m->open && queue_file_sync(&m->qf) < 0)
            log_warn("%s: cannot sync queue file: %s", m->id, strerror(errno));
        qmgr_msg_release(q, m);
    }
}

static int qmgr_loop(struct server *srv)
{
    struct qmgr *q = xcalloc(1, sizeof(*q));
    time_t stop_deadline = 0;
    q->conf = srv->conf;
    q->listen_fd = srv->nlisten > 0 ? srv->listen_fds[0] : -1;
    if (q->listen_fd >= 0)
        fd_nonblock(q->listen_fd, true);
    q->ipc_timeout_ms = (int)conf_time_ms(q->conf, CONF_ipc_timeout);
    q->delivery_timeout = (q->ipc_timeout_ms + 999) / 1000 * 10;
    q->active_limit = (size_t)conf_count(q->conf, CONF_qmgr_message_active_limit);
    q->resolve = resolve_clnt_open(PROTO_PATH_RESOLVE, q->ipc_timeout_ms);
    q->next_incoming = 0;
    q->next_deferred = 0;

    qmgr_scan_active(q);
    for (;;) {
        if (server_stop || server_orphaned())
            break;
        if (server_reload && !q->stopping) {
            q->stopping = true;
            stop_deadline = time(NULL) + (q->ipc_timeout_ms + 999) / 1000;
            log_info("reload: finishing %zu delivery request%s in progress",
                     qmgr_agents_busy(q), qmgr_agents_busy(q) == 1 ? "" : "s");
        }
        if (q->stopping && (qmgr_agents_busy(q) == 0 || time(NULL) >= stop_deadline))
            break;
        timers(q);
        if (!q->stopping) {
            start_messages(q);
            qmgr_dispatch(q);
        }
        qmgr_agent_timeouts(q);
        poll_once(q, q->stopping ? 1000 : next_timeout(q));
    }
    qmgr_agents_close(q);
    qmgr_shutdown(q, !server_stop);
    for (size_t i = q->nclients; i-- > 0;)
        client_drop(q, i);
    resolve_clnt_close(q->resolve);
    free(q);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .name = "qmgr",
        .loop = qmgr_loop,
        .no_max_idle = true,
    };

    server_main(argc, argv, &opts);
}
