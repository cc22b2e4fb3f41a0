/* tlsproxy: the requests of the pre-auth processes on login/tlsproxy.  A caller
 * (only root or a user of an imapd -l or pop3d -l service: peer_allow.h) sends one
 * byte 'F' carrying its client's descriptor, then one attribute frame:
 *     "proto=tlsproxy/1" "service=imaps" "handshake=MS" "idle=MS"
 * and gets one byte back, 'F' carrying the plaintext end of a new socket pair, or 'N'
 * without one, then a frame: "proto=tlsproxy/1" "status=ok", or an error reply.  Then
 * the connection closes.  Requests are read without blocking and bounded in size,
 * number and time; a malformed one is logged and closed, nothing else. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attr.h"
#include "attr_frame.h"
#include "attr_scan.h"
#include "clock.h"
#include "fd.h"
#include "ipc_proto.h"
#include "log.h"
#include "proto.h"
#include "str.h"
#include "tlsproxy.h"
#include "xmalloc.h"

struct request {
    int fd;
    int client;                 /* the descriptor passed, -1 until it came */
    struct str in;
    long long deadline;
};

static struct request *reqs[TLSPROXY_REQUESTS_MAX];
static size_t nreqs;
static long long full_warned = -1;
static long long accept_paused_until;   /* out of descriptors: no accept before */
static long long nofile_warned = -1;

size_t request_count(void)
{
    return nreqs;
}

static void request_end(size_t i)
{
    struct request *q = reqs[i];

    close(q->fd);
    if (q->client >= 0)
        close(q->client);
    str_free(&q->in);
    free(q);
    reqs[i] = reqs[--nreqs];
}

void request_accept(int lfd)
{
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    struct request *q;

    if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            /* The caller stays in the backlog; polling the listener again at once
             * would spin until a descriptor is freed. */
            long long now = clock_ms();
            int e = errno;

            accept_paused_until = now + TLSPROXY_TICK_MS;
            if (nofile_warned < 0 || now - nofile_warned >= TLSPROXY_WARN_INTERVAL_MS) {
                nofile_warned = now;
                errno = e;
                log_warn("accept: %m: taking no request for a second");
            }
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
                   && errno != ECONNABORTED) {
            log_warn("accept: %m");
        }
        return;
    }
    if (nreqs >= TLSPROXY_REQUESTS_MAX) {
        long long now = clock_ms();
        if (full_warned < 0 || now - full_warned >= TLSPROXY_WARN_INTERVAL_MS) {
            full_warned = now;
            log_warn("%d requests being read: refusing more", TLSPROXY_REQUESTS_MAX);
        }
        close(fd);
        return;
    }
    if (!peer_allow_check(&tlsproxy_cf.callers, fd, PROTO_PATH_TLSPROXY)) {
        close(fd);
        return;
    }
    q = xcalloc(1, sizeof(*q));
    q->fd = fd;
    q->client = -1;
    str_init(&q->in);
    q->deadline = clock_ms() + tlsproxy_cf.ipc_timeout_ms;
    reqs[nreqs++] = q;
}

/* Sends the answer: the byte (with fd when >= 0), then the frame.  The socket is
 * fresh and the answer small, so it goes at once or not at all. */
static void request_answer(struct request *q, int fd, const struct attr_list *reply)
{
    struct str out = STR_INIT;

    if (fd >= 0 ? fd_send(q->fd, fd, "F", 1) < 0 : write(q->fd, "N", 1) != 1) {
        log_warn("%s: answering: %m", PROTO_PATH_TLSPROXY);
        return;
    }
    attr_encode(reply, &out);
    if (write(q->fd, out.s, out.len) != (ssize_t)out.len)
        log_warn("%s: answering: %m", PROTO_PATH_TLSPROXY);
    str_free(&out);
}

static void request_refuse(struct request *q, const char *why)
{
    struct attr_list reply = ATTR_LIST_INIT;

    ipc_error_reply(&reply, PROTO_TLSPROXY, PROTO_TLSPROXY_VERSION, why);
    request_answer(q, -1, &reply);
    attr_free(&reply);
}

/* A whole frame of len bytes is in q->in: serves it. */
static void request_serve(struct request *q, size_t len)
{
    struct attr_list al = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    struct str err = STR_INIT;
    const char *service = NULL;
    long long handshake = 0, idle = 0;
    const struct attr_spec spec[] = {
        ATTR_IGNORE(PROTO_A_PROTO),
        ATTR_STR(PROTO_A_SERVICE, ATTR_NONEMPTY, &service, TLSPROXY_SERVICE_MAX),
        ATTR_INT(PROTO_A_HANDSHAKE, 0, &handshake, 1, TLSPROXY_HANDSHAKE_MAX_MS),
        ATTR_INT(PROTO_A_IDLE, 0, &idle, 1, TLSPROXY_IDLE_MAX_MS),
        ATTR_END,
    };
    int pair[2];

    if (attr_decode(q->in.s, len, &al, TLSPROXY_FRAME_MAX) < 0) {
        log_warn("bad %s request frame: malformed", PROTO_TLSPROXY);
    } else if (ipc_proto_check(&al, PROTO_TLSPROXY, PROTO_TLSPROXY_VERSION, &err) < 0) {
        log_warn("%s", err.s);
        request_refuse(q, err.s);
    } else if (attr_scan(&al, 0, spec, &err) < 0) {
        log_warn("malformed %s request: %s", PROTO_TLSPROXY, err.s);
    } else if (tlsproxy_cf.tls == NULL) {
        log_warn("%s request refused: no certificate (smtpd_tls_cert_file)", PROTO_TLSPROXY);
        request_refuse(q, "no certificate");
    } else if (relay_count() >= tlsproxy_cf.conn_limit) {
        request_refuse(q, "too many connections");
    } else if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
        log_warn("socketpair: %m");
        request_refuse(q, "no socket pair");
    } else if (relay_add(q->client, pair[0], service, handshake, idle) < 0) {
        q->client = -1;         /* relay_add closed it */
        close(pair[1]);
        request_refuse(q, "cannot relay");
    } else {
        q->client = -1;
        ipc_frame_start(&reply, PROTO_TLSPROXY, PROTO_TLSPROXY_VERSION);
        attr_add(&reply, PROTO_A_STATUS, PROTO_OK);
        request_answer(q, pair[1], &reply);
        close(pair[1]);
    }
    attr_free(&al);
    attr_free(&reply);
    str_free(&err);
}

/* Reads what is there: false when the request is over (served or failed). */
static bool request_read(struct request *q)
{
    char buf[512];
    ssize_t n;
    size_t len = 0;
    int rc;

    if (q->client < 0) {
        n = fd_recv(q->fd, &q->client, buf, 1);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n != 1 || q->client < 0 || buf[0] != 'F') {
            if (n != 0)
                log_warn("bad %s request: no descriptor", PROTO_TLSPROXY);
            return false;
        }
        return true;
    }
    n = read(q->fd, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return true;
    if (n <= 0) {
        log_warn("bad %s request: %s before its end", PROTO_TLSPROXY,
                 n == 0 ? "EOF" : "read error");
        return false;
    }
    str_append(&q->in, buf, (size_t)n);
    rc = attr_frame_end(q->in.s, q->in.len, TLSPROXY_FRAME_MAX, &len);
    if (rc == 0)
        return true;
    if (rc < 0) {
        log_warn("bad %s request frame: %s", PROTO_TLSPROXY,
                 errno == EMSGSIZE ? "too large" : "malformed");
        return false;
    }
    request_serve(q, len);
    return false;
}

bool request_accepting(long long now)
{
    return now >= accept_paused_until;
}

size_t request_poll_fill(struct pollfd *pfd)
{
    for (size_t i = 0; i < nreqs; i++) {
        pfd[i].fd = reqs[i]->fd;
        pfd[i].events = POLLIN;
        pfd[i].revents = 0;
    }
    return nreqs;
}

void request_poll_done(const struct pollfd *pfd, long long now)
{
    for (size_t i = nreqs; i-- > 0;) {
        if (pfd[i].revents != 0 && !request_read(reqs[i])) {
            request_end(i);
            continue;
        }
        if (now >= reqs[i]->deadline) {
            log_warn("%s request: timed out", PROTO_TLSPROXY);
            request_end(i);
        }
    }
}

void request_close_all(void)
{
    while (nreqs > 0)
        request_end(nreqs - 1);
}
