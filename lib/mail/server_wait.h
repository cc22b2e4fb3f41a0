/* Waiting for the next request on a connection a daemon serves (resolve, smtp, ...):
 * between requests the daemon watches the stop and reload flags of the skeleton
 * (server.h), its idle limit, and may do housekeeping at each tick. */
#ifndef POSTERN_SERVER_WAIT_H
#define POSTERN_SERVER_WAIT_H

#include <stdbool.h>

struct stream;

struct server_wait {
    long long idle_ms;          /* end the wait after this long without a request; <= 0: never */
    bool reload_at_once;        /* a reload ends the wait even with a request waiting
                                 * (otherwise only once nothing is waiting) */
    bool watch_master;          /* end the wait when master has gone */
    /* When not NULL: called before every poll (housekeeping); returns the poll
     * interval in ms, 1..1000 (anything else means 1000). */
    int (*tick)(void *arg);
    void *arg;
    /* When not NULL: asked before a request is taken; true ends the wait and sets
     * server_reload (what the process holds is out of date: a map it pinned before
     * its chroot was rebuilt), so the client tries again on a new connection. */
    bool (*stale)(void *arg);
};

/* true when a request can be read from st; false when the connection should end:
 * server_stop, server_reload (as w says), idle past w->idle_ms, an error on the
 * descriptor, or (w->watch_master) master gone. */
bool server_wait_request(struct stream *st, const struct server_wait *w);

#endif
