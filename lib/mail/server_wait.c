/* The wait between requests on a served connection (see server_wait.h).  Reads
 * nothing itself: it only polls the descriptor and the stream's buffer. */
#include "server_wait.h"

#include <errno.h>
#include <poll.h>
#include <time.h>

#include "clock.h"
#include "server.h"
#include "stream.h"

static bool server_wait_stale(const struct server_wait *w)
{
    if (w->stale == NULL || !w->stale(w->arg))
        return false;
    server_reload = 1;
    return true;
}

bool server_wait_request(struct stream *st, const struct server_wait *w)
{
    long long start = clock_ms();

    while (!server_stop && !(w->reload_at_once && server_reload)) {
        struct pollfd pfd = { .fd = stream_fd(st), .events = POLLIN };
        int ms, n;

        if (stream_pending(st) > 0)
            return !server_wait_stale(w);
        ms = w->tick != NULL ? w->tick(w->arg) : 1000;
        if (ms <= 0 || ms > 1000)
            ms = 1000;
        n = poll(&pfd, 1, ms);
        if (n > 0)
            return !server_wait_stale(w);
        if (n < 0 && errno != EINTR)
            return false;
        if (server_reload || (w->watch_master && server_orphaned()))
            return false;
        if (w->idle_ms > 0 && clock_ms() - start >= w->idle_ms)
            return false;
    }
    return false;
}
