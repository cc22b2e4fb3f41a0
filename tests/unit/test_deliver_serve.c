/* Unit tests for deliver_serve: a delivery agent's request loop, driven over a
 * socket pair from the qmgr side: requests one at a time and in batches, a
 * malformed request, a request of another protocol version. */
#include "unit.h"

#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attr.h"
#include "deliver.h"
#include "deliver_serve.h"
#include "ipc_proto.h"
#include "proto.h"
#include "queue.h"
#include "server_wait.h"
#include "str.h"
#include "stream.h"

static int calls, flushes;

static void deliver_all(void *ctx, struct deliver_request *dr)
{
    CHECK(ctx == &calls);
    calls++;
    for (size_t i = 0; i < dr->nrcpt; i++)
        deliver_result(dr, i, DELIVER_DEFER, "4.0.0", "not yet %zu", i);
}

static void deliver_now(void *ctx, struct deliver_request *dr)
{
    deliver_all(ctx, dr);
    for (size_t i = 0; i < dr->nrcpt; i++)
        deliver_result(dr, i, i == 0 ? DELIVER_OK : DELIVER_DEFER, i == 0 ? "2.0.0" : "4.0.0",
                       "done %zu", i);
}

/* The results only become final here (local's fsync). */
static void flush_all(void *ctx)
{
    (void)ctx;
    flushes++;
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

static void request(struct stream *q, struct deliver_request *dr)
{
    struct attr_list al = ATTR_LIST_INIT;

    queue_id_new(dr->id);
    str_sets(&dr->transport, "smtp");
    str_sets(&dr->nexthop, "example.org");
    deliver_request_add(dr, 0, "a@example.org");
    deliver_request_add(dr, 4, "b@example.org");
    deliver_request_frame(dr, &al);
    CHECK(attr_write(q, &al) == 0);
    CHECK(attr_write(q, &al) == 0);
    CHECK(shutdown(stream_fd(q), SHUT_WR) == 0);
    attr_free(&al);
}

static int reply(struct stream *q, struct deliver_request *dr)
{
    struct attr_list al = ATTR_LIST_INIT;
    struct str err = STR_INIT;
    int rc = attr_read(q, &al, 0);

    if (rc == 1 && (ipc_reply_check(&al, PROTO_DELIVER, PROTO_DELIVER_VERSION, &err) < 0
                    || deliver_reply_scan(&al, dr, &err) < 0)) {
        fprintf(stderr, "  reply: %s\n", err.s);
        rc = -1;
    }
    attr_free(&al);
    str_free(&err);
    return rc;
}

TEST(two_requests_then_close)
{
    struct stream *q, *agent;
    struct deliver_request dr;
    struct server_wait w = { .idle_ms = 2000 };
    const struct deliver_agent a = { .deliver = deliver_now, .ctx = &calls };

    pair(&q, &agent);
    deliver_request_init(&dr);
    request(q, &dr);
    calls = 0;
    deliver_serve(agent, &w, &a);
    CHECK(calls == 2);
    for (int k = 0; k < 2; k++) {
        CHECK(reply(q, &dr) == 1);
        CHECK(dr.rcpt[0].status == DELIVER_OK);
        CHECK(dr.rcpt[1].status == DELIVER_DEFER);
        CHECK_STR(dr.rcpt[1].text.s, "done 1");
    }
    deliver_request_free(&dr);
    stream_close(q);
    stream_close(agent);
}

/* Final results after the flush of a batch, which delivers both requests at once. */
static void flush_results(void *ctx);
static struct deliver_request *batch_seen[4];
static size_t nbatch;

static void deliver_batch(void *ctx, struct deliver_request *dr)
{
    deliver_all(ctx, dr);
    if (nbatch < 4)
        batch_seen[nbatch++] = dr;
}

static void flush_results(void *ctx)
{
    flush_all(ctx);
    for (size_t k = 0; k < nbatch; k++)
        deliver_result(batch_seen[k], 0, DELIVER_OK, "2.0.0", "durable, batch of %zu", nbatch);
    nbatch = 0;
}

TEST(batch_with_flush)
{
    struct stream *q, *agent;
    struct deliver_request dr;
    struct server_wait w = { .idle_ms = 2000 };
    const struct deliver_agent a = {
        .deliver = deliver_batch, .flush = flush_results, .batch = 16, .ctx = &calls,
    };

    pair(&q, &agent);
    deliver_request_init(&dr);
    request(q, &dr);
    calls = flushes = 0;
    deliver_serve(agent, &w, &a);
    CHECK(calls == 2);
    CHECK(flushes == 1);
    for (int k = 0; k < 2; k++) {
        CHECK(reply(q, &dr) == 1);
        CHECK(dr.rcpt[0].status == DELIVER_OK);
        CHECK_STR(dr.rcpt[0].text.s, "durable, batch of 2");
        CHECK(dr.rcpt[1].status == DELIVER_DEFER);
    }
    deliver_request_free(&dr);
    stream_close(q);
    stream_close(agent);
}

TEST(malformed_request_ends)
{
    struct stream *q, *agent;
    struct server_wait w = { .idle_ms = 2000 };
    const struct deliver_agent a = { .deliver = deliver_now, .ctx = &calls };
    char c;

    pair(&q, &agent);
    stream_write(q, "req=nonsense\n\n", 14);
    stream_flush(q);
    calls = 0;
    deliver_serve(agent, &w, &a);
    CHECK(calls == 0);
    stream_close(agent);
    CHECK(read(stream_fd(q), &c, 1) == 0);  /* nothing was answered */
    stream_close(q);
}

TEST(other_version_is_answered_then_ends)
{
    struct stream *q, *agent;
    struct server_wait w = { .idle_ms = 2000 };
    const struct deliver_agent a = { .deliver = deliver_now, .ctx = &calls };
    struct attr_list al = ATTR_LIST_INIT;
    struct str err = STR_INIT;
    char want[128];

    pair(&q, &agent);
    ipc_request_start(&al, PROTO_DELIVER, PROTO_DELIVER_VERSION + 1, PROTO_REQ_DELIVER);
    CHECK(attr_write(q, &al) == 0);
    calls = 0;
    deliver_serve(agent, &w, &a);
    CHECK(calls == 0);
    stream_close(agent);
    CHECK(attr_read(q, &al, 0) == 1);
    CHECK(ipc_reply_check(&al, PROTO_DELIVER, PROTO_DELIVER_VERSION, &err) == -1);
    snprintf(want, sizeof(want), "refused: protocol %s version %d, expected %d", PROTO_DELIVER,
             PROTO_DELIVER_VERSION + 1, PROTO_DELIVER_VERSION);
    CHECK(strstr(err.s, want) != NULL);
    CHECK(attr_read(q, &al, 0) == 0);       /* then closed */
    attr_free(&al);
    str_free(&err);
    stream_close(q);
}
