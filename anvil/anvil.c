/* anvil(8): the one counter of connections, connection rates and login failures of
 * every service.  One process serves every client at once with poll(2): each
 * connection is one calling process, and the connections it claimed are released
 * when it closes (or dies).  Nothing a peer sends is trusted: frames are bounded
 * and read without blocking, a malformed one closes that connection only, the
 * number of peers and the table are bounded (anvil_table.h).  A peer that came
 * through the socket in login/ (the unprivileged pre-auth processes) may only count
 * connections, and only a process running as root or as the user of a service that
 * calls anvil is heard there (SO_PEERCRED, peer_allow.h). */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "anvil_table.h"
#include "attr.h"
#include "attr_frame.h"
#include "attr_scan.h"
#include "clock.h"
#include "conf.h"
#include "fd.h"
#include "ipc_proto.h"
#include "log.h"
#include "master_conf.h"
#include "peer_allow.h"
#include "proto.h"
#include "server.h"
#include "str.h"
#include "xmalloc.h"

#define ANVIL_TABLE_MAX 100000      /* entries in the table */
#define ANVIL_PEERS_MAX 2048        /* connections served at once */
#define ANVIL_FRAME_MAX 4096        /* largest request frame */
#define ANVIL_OUT_MAX 65536         /* replies a peer may leave unread, bytes */
#define ANVIL_READ_CHUNK 4096
#define ANVIL_TICK_MS 1000
#define ANVIL_WARN_INTERVAL_MS 60000

struct peer {
    int fd;
    bool restricted;                /* came through login/: connection counts only */
    bool closing;                   /* write what is left, then close */
    struct str in, out;
    size_t out_off;                 /* bytes of out already written */
    struct anvil_owner *owner;
};

struct listener {
    int fd;
    bool restricted;
};

static struct anvil_table *table;
static struct peer **peers;
static size_t npeers;
static struct listener *listeners;
static size_t nlisteners;
static long long peers_full_warned = -1;

/* ---- requests ---- */

static int scan_conn(const struct attr_list *in, const char **service, const char **client,
                     struct str *err)
{
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_SERVICE, ATTR_NONEMPTY, service, ANVIL_KEY_MAX),
        ATTR_STR(PROTO_A_CLIENT, ATTR_NONEMPTY, client, ANVIL_KEY_MAX),
        ATTR_END,
    };

    return attr_scan(in, 0, spec, err);
}

static int scan_login(const struct attr_list *in, const char **client, const char **account,
                      struct str *err)
{
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_CLIENT, ATTR_NONEMPTY, client, ANVIL_KEY_MAX),
        ATTR_STR(PROTO_A_ACCOUNT, ATTR_NONEMPTY, account, ANVIL_KEY_MAX),
        ATTR_END,
    };

    return attr_scan(in, 0, spec, err);
}

/* Handles one request into out (which has its "proto"): 0, or -1 with err (the
 * connection ends without a reply). */
static int handle(struct peer *p, const char *req, const struct attr_list *in,
                  struct attr_list *out, struct str *err)
{
    const char *service = NULL, *client = NULL, *account = NULL;
    long long now = clock_ms();
    unsigned a = 0, b = 0;
    bool conn_req = strcmp(req, PROTO_REQ_CONNECT) == 0
                    || strcmp(req, PROTO_REQ_DISCONNECT) == 0
                    || strcmp(req, PROTO_REQ_LIMIT) == 0;
    bool login_req = strcmp(req, PROTO_REQ_LOGIN_QUERY) == 0
                     || strcmp(req, PROTO_REQ_LOGIN_FAIL) == 0
                     || strcmp(req, PROTO_REQ_LOGIN_OK) == 0;
    int rc = 0;

    if (!conn_req && !login_req) {
        str_printf(err, "unknown request \"%s\"",
                   attr_name_valid(req, strlen(req)) ? req : "?");
        return -1;
    }
    if (login_req && p->restricted) {
        str_printf(err, "request \"%s\" through %s: not allowed", req, PROTO_PATH_ANVIL_LOGIN);
        return -1;
    }
    if (conn_req ? scan_conn(in, &service, &client, err) < 0
                 : scan_login(in, &client, &account, err) < 0)
        return -1;

    if (strcmp(req, PROTO_REQ_CONNECT) == 0) {
        rc = anvil_table_connect(table, p->owner, service, client, now, &a, &b);
        if (rc < 0 && errno == EMFILE) {
            str_printf(err, "more than %d open connections claimed", ANVIL_OWNER_SLOTS);
            return -1;
        }
        if (rc < 0 && errno == ENOSPC) {
            /* Every entry holds open connections: count nothing new, let it in. */
            anvil_table_conn_query(table, service, client, now, &a, &b);
            rc = 0;
        }
        attr_add(out, PROTO_A_STATUS, PROTO_OK);
        attr_add_int(out, PROTO_A_CONNS, a);
        attr_add_int(out, PROTO_A_RATE, b);
    } else if (strcmp(req, PROTO_REQ_DISCONNECT) == 0) {
        /* One that this peer does not hold (claimed on a connection that broke
         * since) changes nothing. */
        (void)anvil_table_disconnect(table, p->owner, service, client);
        attr_add(out, PROTO_A_STATUS, PROTO_OK);
    } else if (strcmp(req, PROTO_REQ_LIMIT) == 0) {
        rc = anvil_table_limit(table, service, client, now);
        attr_add(out, PROTO_A_STATUS, PROTO_OK);
        attr_add(out, PROTO_A_LOG, rc != 0 ? PROTO_YES : PROTO_NO);
        rc = 0;
    } else if (strcmp(req, PROTO_REQ_LOGIN_OK) == 0) {
        rc = anvil_table_login_ok(table, client, account, now);
        attr_add(out, PROTO_A_STATUS, PROTO_OK);
    } else {
        if (strcmp(req, PROTO_REQ_LOGIN_FAIL) == 0) {
            rc = anvil_table_login_fail(table, client, account, now, &a, &b);
            if (rc < 0 && errno == ENOSPC)
                rc = anvil_table_login_query(table, client, account, now, &a, &b);
        } else {
            rc = anvil_table_login_query(table, client, account, now, &a, &b);
        }
        attr_add(out, PROTO_A_STATUS, PROTO_OK);
        attr_add_int(out, PROTO_A_CLIENT_FAILS, a);
        attr_add_int(out, PROTO_A_ACCOUNT_FAILS, b);
    }
    if (rc < 0) {
        str_printf(err, "bad %s request", req);
        return -1;
    }
    return 0;
}

/* One frame of frame_len bytes at the start of p->in: its reply appended to p->out.
 * false when the connection is to end (after what is in p->out). */
static bool serve_frame(struct peer *p, size_t frame_len)
{
    struct attr_list in = ATTR_LIST_INIT, out = ATTR_LIST_INIT;
    struct str err = STR_INIT;
    const char *req = NULL;
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_REQ, ATTR_NONEMPTY, &req, 32),
        ATTR_END,
    };
    bool ok = false;

    if (attr_decode(p->in.s, frame_len, &in, ANVIL_FRAME_MAX) < 0) {
        log_warn("bad %s request frame: malformed", PROTO_ANVIL);
    } else if (ipc_proto_check(&in, PROTO_ANVIL, PROTO_ANVIL_VERSION, &err) < 0) {
        log_warn("%s", err.s);
        ipc_error_reply(&out, PROTO_ANVIL, PROTO_ANVIL_VERSION, err.s);
        attr_encode(&out, &p->out);
    } else if (attr_scan(&in, 0, spec, &err) < 0) {
        log_warn("malformed %s request: %s", PROTO_ANVIL, err.s);
    } else {
        ipc_frame_start(&out, PROTO_ANVIL, PROTO_ANVIL_VERSION);
        str_clear(&err);
        if (handle(p, req, &in, &out, &err) < 0) {
            log_warn("malformed %s request: %s", PROTO_ANVIL, err.s);
        } else {
            attr_encode(&out, &p->out);
            ok = true;
        }
    }
    attr_free(&in);
    attr_free(&out);
    str_free(&err);
    return ok;
}

/* ---- peers ---- */

static void peer_free(struct peer *p)
{
    anvil_owner_free(p->owner);
    close(p->fd);
    str_free(&p->in);
    str_free(&p->out);
    free(p);
}

/* Serves the whole frames that have arrived. */
static void peer_frames(struct peer *p)
{
    size_t off = 0;

    while (!p->closing && off < p->in.len) {
        size_t n = 0;
        int rc = attr_frame_end(p->in.s + off, p->in.len - off, ANVIL_FRAME_MAX, &n);

        if (rc == 0)
            break;
        if (rc < 0) {
            log_warn("bad %s request frame: %s", PROTO_ANVIL,
                     errno == EMSGSIZE ? "too large" : "malformed");
            p->closing = true;
            break;
        }
        /* attr_decode reads from the start of in: move the frame there. */
        if (off > 0) {
            memmove(p->in.s, p->in.s + off, p->in.len - off);
            str_truncate(&p->in, p->in.len - off);
            off = 0;
        }
        if (!serve_frame(p, n))
            p->closing = true;
        off = n;
        if (p->out.len - p->out_off > ANVIL_OUT_MAX) {
            log_warn("%s client does not read its replies: closing", PROTO_ANVIL);
            p->closing = true;
            str_clear(&p->out);
            p->out_off = 0;
        }
    }
    if (off > 0) {
        memmove(p->in.s, p->in.s + off, p->in.len - off);
        str_truncate(&p->in, p->in.len - off);
    }
}

/* Reads what is there: false when the connection is over (EOF or error). */
static bool peer_read(struct peer *p)
{
    char buf[ANVIL_READ_CHUNK];
    ssize_t n = read(p->fd, buf, sizeof(buf));

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return true;
    if (n <= 0)
        return false;
    str_append(&p->in, buf, (size_t)n);
    peer_frames(p);
    return true;
}

/* Writes what is pending: false when the connection is over. */
static bool peer_write(struct peer *p)
{
    while (p->out_off < p->out.len) {
        ssize_t n = send(p->fd, p->out.s + p->out_off, p->out.len - p->out_off,
                         MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        if (n <= 0)
            return false;
        p->out_off += (size_t)n;
    }
    str_clear(&p->out);
    p->out_off = 0;
    return !p->closing;
}

/* Who may call login/anvil: root and the users of the services that count their
 * clients there (the pre-auth processes of pop3d and imapd, and smtpd). */
static struct peer_allow login_callers;

static bool calls_anvil(const struct master_service *svc)
{
    return strcmp(svc->command, "smtpd") == 0 || strcmp(svc->command, "pop3d") == 0
           || strcmp(svc->command, "imapd") == 0;
}

static void anvil_pre_jail(struct server *srv)
{
    struct str err = STR_INIT;

    if (peer_allow_load(srv->conf, calls_anvil, &login_callers, &err) < 0)
        log_fatal("callers of %s: %s", PROTO_PATH_ANVIL_LOGIN, err.s);
    str_free(&err);
}

static void peer_accept(const struct listener *l)
{
    int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    struct peer *p;

    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
            && errno != ECONNABORTED)
            log_warn("accept: %m");
        return;
    }
    if (npeers >= ANVIL_PEERS_MAX) {
        long long now = clock_ms();
        if (peers_full_warned < 0 || now - peers_full_warned >= ANVIL_WARN_INTERVAL_MS) {
            peers_full_warned = now;
            log_warn("%d clients connected: refusing more", ANVIL_PEERS_MAX);
        }
        close(fd);
        return;
    }
    if (l->restricted && !peer_allow_check(&login_callers, fd, PROTO_PATH_ANVIL_LOGIN)) {
        close(fd);
        return;
    }
    p = xcalloc(1, sizeof(*p));
    p->fd = fd;
    p->restricted = l->restricted;
    str_init(&p->in);
    str_init(&p->out);
    p->owner = anvil_owner_new(table);
    peers[npeers++] = p;
}

/* ---- the loop ---- */

/* A listening socket bound in login/ serves the pre-auth processes. */
static bool listener_restricted(int fd)
{
    struct sockaddr_un sun;
    socklen_t len = sizeof(sun);
    static const char prefix[] = PROTO_LOGIN_DIR "/";

    memset(&sun, 0, sizeof(sun));
    if (getsockname(fd, (struct sockaddr *)&sun, &len) < 0 || sun.sun_family != AF_UNIX)
        return false;
    sun.sun_path[sizeof(sun.sun_path) - 1] = '\0';
    return strncmp(sun.sun_path, prefix, sizeof(prefix) - 1) == 0;
}

static int anvil_loop(struct server *srv)
{
    long long reload_deadline = -1;
    long long max_idle_ms = conf_time_ms(srv->conf, CONF_max_idle);
    struct pollfd *pfd = xcalloc(ANVIL_PEERS_MAX + srv->nlisten + 1, sizeof(*pfd));

    table = anvil_table_new(ANVIL_TABLE_MAX, conf_time_ms(srv->conf, CONF_anvil_rate_time_unit));
    peers = xcalloc(ANVIL_PEERS_MAX, sizeof(*peers));
    listeners = xcalloc(srv->nlisten + 1, sizeof(*listeners));
    for (size_t i = 0; i < srv->nlisten; i++) {
        listeners[i].fd = srv->listen_fds[i];
        listeners[i].restricted = listener_restricted(srv->listen_fds[i]);
    }
    nlisteners = srv->nlisten;

    for (;;) {
        size_t n = 0, nl;
        int r;

        if (server_stop || server_orphaned())
            break;
        /* A reload: the new anvil takes new clients; this one serves its own until
         * they have gone (their processes are finishing too), at most max_idle. */
        if (server_reload && reload_deadline < 0)
            reload_deadline = clock_ms() + max_idle_ms;
        if (reload_deadline >= 0 && (npeers == 0 || clock_ms() >= reload_deadline))
            break;
        nl = reload_deadline >= 0 ? 0 : nlisteners;
        for (size_t i = 0; i < nl; i++) {
            pfd[n].fd = listeners[i].fd;
            pfd[n].events = POLLIN;
            pfd[n++].revents = 0;
        }
        for (size_t i = 0; i < npeers; i++) {
            pfd[n].fd = peers[i]->fd;
            pfd[n].events = (short)(peers[i]->out.len > peers[i]->out_off ? POLLOUT
                                    : POLLIN);
            pfd[n++].revents = 0;
        }
        r = poll(pfd, n, ANVIL_TICK_MS);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            log_fatal("poll: %m");
        }
        if (r == 0)
            continue;
        /* Peers first (their slots in pfd follow the listeners'), then new ones. */
        for (size_t i = npeers; i-- > 0;) {
            struct peer *p = peers[i];
            short ev = pfd[nl + i].revents;
            bool live = true;

            if (ev == 0)
                continue;
            if (ev & POLLOUT)
                live = peer_write(p);
            else if (ev & (POLLIN | POLLHUP | POLLERR))
                live = peer_read(p);
            if (live && p->out.len > p->out_off)
                live = peer_write(p);
            if (!live || (p->closing && p->out.len == p->out_off)) {
                peer_free(p);
                peers[i] = peers[--npeers];
            }
        }
        for (size_t i = 0; i < nl; i++)
            if (pfd[i].revents & POLLIN)
                peer_accept(&listeners[i]);
    }
    for (size_t i = 0; i < npeers; i++)
        peer_free(peers[i]);
    npeers = 0;
    anvil_table_free(table);
    free(peers);
    free(listeners);
    free(pfd);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct server_opts opts = {
        .name = "anvil",
        .pre_jail = anvil_pre_jail,
        .loop = anvil_loop,
        .no_max_idle = true,
    };

    server_main(argc, argv, &opts);
}
