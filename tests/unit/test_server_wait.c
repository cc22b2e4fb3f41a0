/* Unit tests for server_wait: the wait between requests on a served connection. */
#include "unit.h"

#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server.h"
#include "server_wait.h"
#include "stream.h"

static int ticks;

static int fast_tick(void *arg)
{
    (void)arg;
    ticks++;
    return 20;
}

static struct stream *pair(int *other)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return NULL;
    *other = sv[1];
    return stream_fdopen(sv[0]);
}

TEST(request_waiting)
{
    int peer = -1;
    struct stream *st = pair(&peer);
    struct server_wait w = { .idle_ms = 5000 };

    CHECK(st != NULL);
    CHECK(write(peer, "x", 1) == 1);
    CHECK(server_wait_request(st, &w));
    stream_close(st);
    close(peer);
}

TEST(idle_ends_the_wait)
{
    int peer = -1;
    struct stream *st = pair(&peer);
    struct server_wait w = { .idle_ms = 60, .tick = fast_tick };
    struct timespec a, b;

    ticks = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK(!server_wait_request(st, &w));
    clock_gettime(CLOCK_MONOTONIC, &b);
    CHECK(ticks >= 3);
    CHECK(b.tv_sec - a.tv_sec < 2);
    stream_close(st);
    close(peer);
}

TEST(peer_gone_is_readable)
{
    int peer = -1;
    struct stream *st = pair(&peer);
    struct server_wait w = { .idle_ms = 5000 };

    close(peer);
    CHECK(server_wait_request(st, &w));   /* the read then sees the end */
    stream_close(st);
}

TEST(stop_and_reload)
{
    int peer = -1;
    struct stream *st = pair(&peer);
    struct server_wait w = { .idle_ms = 5000, .tick = fast_tick };

    server_stop = 1;
    CHECK(!server_wait_request(st, &w));
    server_stop = 0;

    /* reload: a waiting request is still served unless reload_at_once */
    server_reload = 1;
    CHECK(write(peer, "x", 1) == 1);
    CHECK(server_wait_request(st, &w));
    w.reload_at_once = true;
    CHECK(!server_wait_request(st, &w));
    w.reload_at_once = false;
    {
        char c;
        CHECK(read(stream_fd(st), &c, 1) == 1);
    }
    CHECK(!server_wait_request(st, &w));  /* nothing waiting */
    server_reload = 0;
    stream_close(st);
    close(peer);
}
