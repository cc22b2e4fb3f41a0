/* Unit tests for deliver_serve: a delivery agent's request loop, driven over a
 * socket pair from the qmgr side. */
#include "unit.h"

#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "deliver.h"
#include "deliver_serve.h"
#include "queue.h"
#include "server_wait.h"
#include "str.h"
#include "stream.h"

static int calls;

static void deliver_all(void *ctx, struct deliver_request *dr)
{
    CHECK(ctx == &calls);
    calls++;
    for (size_t i = 0; i < dr->nrcpt; i++)
        deliver_result(dr, i, i == 0 ? DELIVER_OK : DELIVER_DEFER, i == 0 ? "2.0.0" : "4.0.0",
                       "done %zu", i);
}

static void pair(struct stream **q, struct stream **agent)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        perror("socketpair");
        _exit(2);
    }
    *q = stream_fdopen(sv[0]);
    *agent = stream_fdopen(sv[1]);
    stream_set_timeout(*q, 2000);
    stream_set_timeout(*agent, 2000);
}

TEST(two_requests_then_close)
{
    struct stream *q, *agent;
    struct deliver_request dr;
    struct str err = STR_INIT;
    struct server_wait w = { .idle_ms = 2000 };

    pair(&q, &agent);
    deliver_request_init(&dr);
    queue_id_new(dr.id);
    str_sets(&dr.transport, "smtp");
    str_sets(&dr.nexthop, "example.org");
    deliver_request_add(&dr, 0, "a@example.org");
    deliver_request_add(&dr, 4, "b@example.org");
    CHECK(deliver_request_write(q, &dr) == 0);
    CHECK(deliver_request_write(q, &dr) == 0);
    CHECK(shutdown(stream_fd(q), SHUT_WR) == 0);

    calls = 0;
    deliver_serve(agent, &w, deliver_all, &calls);
    CHECK(calls == 2);
    for (int k = 0; k < 2; k++) {
        CHECK(deliver_reply_read(q, &dr, &err) == 1);
        CHECK(dr.rcpt[0].status == DELIVER_OK);
        CHECK(dr.rcpt[1].status == DELIVER_DEFER);
        CHECK_STR(dr.rcpt[1].text.s, "done 1");
    }
    deliver_request_free(&dr);
    str_free(&err);
    stream_close(q);
    stream_close(agent);
}

TEST(malformed_request_ends)
{
    struct stream *q, *agent;
    struct server_wait w = { .idle_ms = 2000 };
    char c;

    pair(&q, &agent);
    stream_write(q, "req=nonsense\n\n", 14);
    stream_flush(q);
    calls = 0;
    deliver_serve(agent, &w, deliver_all, &calls);
    CHECK(calls == 0);
    stream_close(agent);
    CHECK(read(stream_fd(q), &c, 1) == 0);  /* nothing was answered */
    stream_close(q);
}
