/* tlsproxy(8), the parts of the one process: its settings (main.c), the requests of
 * the pre-auth processes on login/tlsproxy (request.c), the table of relayed TLS
 * connections (relay.c) and the poll loop over both (loop.c). */
#ifndef POSTERN_TLSPROXY_H
#define POSTERN_TLSPROXY_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>

#include "peer_allow.h"

struct server;
struct tls_ctx;

#define TLSPROXY_REQUESTS_MAX 64        /* requests being read at once */
#define TLSPROXY_FRAME_MAX 1024         /* largest request frame */
#define TLSPROXY_SERVICE_MAX 32         /* longest service name carried */
#define TLSPROXY_ADDR_MAX 64
#define TLSPROXY_HANDSHAKE_MAX_MS 3600000LL     /* bounds on what a request asks */
#define TLSPROXY_IDLE_MAX_MS (2 * 86400000LL)
#define TLSPROXY_TICK_MS 1000
#define TLSPROXY_WARN_INTERVAL_MS 60000

struct tlsproxy_conf {
    struct tls_ctx *tls;            /* NULL: no certificate, every request refused */
    size_t conn_limit;              /* connections relayed at once */
    size_t buf_size;                /* each direction's buffer */
    int ipc_timeout_ms;             /* for a request, from accept to reply */
    long long max_idle_ms;          /* no connection this long: the process exits */
    struct peer_allow callers;      /* who may call login/tlsproxy */
};

extern struct tlsproxy_conf tlsproxy_cf;

/* ---- relay.c: the relayed connections ---- */
/* Starts relaying the TLS client on net to plain (both owned from now on): 0, or -1
 * (logged; both closed). */
int relay_add(int net, int plain, const char *service, long long handshake_ms,
              long long idle_ms);
size_t relay_count(void);
/* Adds each connection's descriptors to pfd (room for 2 * relay_count()); returns
 * how many were added. */
size_t relay_poll_fill(struct pollfd *pfd);
/* After poll: runs the connections whose descriptors (from pfd, as filled) showed
 * events, and ends those over, failed or past a deadline (at most once a tick for
 * the deadlines). */
void relay_poll_done(const struct pollfd *pfd, long long now);
/* Whether a connection has more to move at once (tls_relay_more): poll must not wait. */
bool relay_more(void);
/* Ends every connection (stop). */
void relay_close_all(void);

/* ---- request.c: the pre-auth processes' requests ---- */
size_t request_count(void);
/* Accepts a caller on the listening socket fd. */
void request_accept(int fd);
/* Whether to poll the listeners now: false for a tick after accept ran out of
 * descriptors (logged at most once a minute). */
bool request_accepting(long long now);
size_t request_poll_fill(struct pollfd *pfd);
void request_poll_done(const struct pollfd *pfd, long long now);
void request_close_all(void);

/* ---- loop.c ---- */
int tlsproxy_loop(struct server *srv);

#endif
