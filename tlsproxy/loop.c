/* tlsproxy: the one poll() loop over the listening sockets, the requests being read
 * and the relayed connections.  When its connection limit is reached the process
 * tells master it is busy (another may be started, up to the service's process
 * limit) and refuses requests at once, so that their callers do TLS themselves
 * rather than wait; on a reload it takes no more requests and ends when its
 * last connection has; with nothing to do for max_idle it exits. */
#include <errno.h>
#include <stdlib.h>

#include "clock.h"
#include "log.h"
#include "server.h"
#include "tlsproxy.h"
#include "xmalloc.h"

int tlsproxy_loop(struct server *srv)
{
    struct pollfd *pfd = NULL;
    size_t pfd_cap = 0;
    long long idle_since = clock_ms();
    bool busy = false, draining = false;

    for (;;) {
        size_t nl, nr, nc, n = 0;
        long long now;
        bool full;
        int r;

        if (server_stop || server_orphaned())
            break;
        now = clock_ms();
        if (relay_count() > 0 || request_count() > 0)
            idle_since = now;
        if (!draining && (server_reload || now - idle_since >= tlsproxy_cf.max_idle_ms)) {
            /* Take no more requests; master starts another process when needed. */
            draining = true;
            if (!busy)
                server_busy();
            busy = true;
        }
        if (draining && relay_count() == 0 && request_count() == 0)
            break;
        full = relay_count() >= tlsproxy_cf.conn_limit;
        if (!draining && full != busy) {
            if (full) {
                log_warn("%zu connections: refusing more until some end", relay_count());
                server_busy();
            } else {
                server_idle();
            }
            busy = full;
        }
        nl = draining || !request_accepting(now) ? 0 : srv->nlisten;
        if (pfd_cap < nl + TLSPROXY_REQUESTS_MAX + 2 * relay_count()) {
            pfd_cap = nl + TLSPROXY_REQUESTS_MAX + 2 * relay_count() + 64;
            pfd = xreallocarray(pfd, pfd_cap, sizeof(*pfd));
        }
        nc = relay_poll_fill(pfd);
        n = nc;
        nr = request_poll_fill(pfd + n);
        n += nr;
        for (size_t i = 0; i < nl; i++) {
            pfd[n].fd = srv->listen_fds[i];
            pfd[n].events = POLLIN;
            pfd[n++].revents = 0;
        }
        r = poll(pfd, (nfds_t)n, relay_more() ? 0 : TLSPROXY_TICK_MS);
        if (r < 0 && errno != EINTR)
            log_fatal("poll: %m");
        now = clock_ms();
        if (r < 0)
            for (size_t i = 0; i < n; i++)
                pfd[i].revents = 0;
        /* Connections first, then requests (which may add connections), then new
         * callers: each looks only at the slots it filled. */
        relay_poll_done(pfd, now);
        request_poll_done(pfd + nc, now);
        for (size_t i = 0; i < nl; i++)
            if (pfd[nc + nr + i].revents & POLLIN)
                request_accept(pfd[nc + nr + i].fd);
    }
    request_close_all();
    relay_close_all();
    free(pfd);
    return 0;
}
