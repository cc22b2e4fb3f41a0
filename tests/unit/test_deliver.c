/* Unit tests for lib/mail/deliver.c (requests and replies round trip over a socket pair,
 * malformed frames from a peer are refused, the optional "dead" and "notified"
 * attributes).  The notices of lib/mail/bounce.c are tested in test_bounce.c. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attr.h"
#include "deliver.h"
#include "ipc_proto.h"
#include "proto.h"
#include "str.h"
#include "stream.h"
#include "unit.h"

static void pair(struct stream **a, struct stream **b)
{
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        perror("socketpair");
        _exit(2);
    }
    *a = stream_fdopen(sv[0]);
    *b = stream_fdopen(sv[1]);
    stream_set_timeout(*a, 2000);
    stream_set_timeout(*b, 2000);
}

static void raw(struct stream *st, const char *bytes)
{
    stream_write(st, bytes, strlen(bytes));
    stream_flush(st);
}

/* qmgr's side: the request frame of dr. */
static int request_write(struct stream *st, const struct deliver_request *dr)
{
    struct attr_list al = ATTR_LIST_INIT;
    int rc;

    deliver_request_frame(dr, &al);
    rc = attr_write(st, &al);
    attr_free(&al);
    return rc;
}

/* The agent's side: 1, 0 at EOF, -1 for a bad frame or request. */
static int request_read(struct stream *st, struct deliver_request *dr, struct str *err)
{
    struct attr_list al = ATTR_LIST_INIT;
    int rc = attr_read(st, &al, 0);

    if (rc == 1 && deliver_request_scan(&al, dr, err) < 0)
        rc = -1;
    attr_free(&al);
    return rc;
}

static int reply_write(struct stream *st, const struct deliver_request *dr)
{
    struct attr_list al = ATTR_LIST_INIT;
    int rc;

    ipc_frame_start(&al, PROTO_DELIVER, PROTO_DELIVER_VERSION);
    deliver_reply_add(dr, &al);
    rc = attr_write(st, &al);
    attr_free(&al);
    return rc;
}

static int reply_read(struct stream *st, struct deliver_request *dr, struct str *err)
{
    struct attr_list al = ATTR_LIST_INIT;
    int rc = attr_read(st, &al, 0);

    if (rc == 1 && (ipc_reply_check(&al, PROTO_DELIVER, PROTO_DELIVER_VERSION, err) < 0
                    || deliver_reply_scan(&al, dr, err) < 0))
        rc = -1;
    attr_free(&al);
    return rc;
}

TEST(round_trip)
{
    struct stream *q, *agent;
    struct deliver_request out, in;
    struct str err = STR_INIT;

    pair(&q, &agent);
    deliver_request_init(&out);
    deliver_request_init(&in);
    queue_id_new(out.id);
    str_sets(&out.transport, "local");
    str_sets(&out.nexthop, "example.org");
    deliver_request_add(&out, 0, "a@example.org");
    deliver_request_add(&out, 3, "b@example.org");
    deliver_request_add(&out, 7, "c@example.org");
    CHECK(request_write(q, &out) == 0);
    CHECK(request_read(agent, &in, &err) == 1);
    CHECK_STR(in.id, out.id);
    CHECK_STR(in.queue, "active");
    CHECK_STR(in.transport.s, "local");
    CHECK_STR(in.nexthop.s, "example.org");
    CHECK(in.nrcpt == 3);
    CHECK(in.rcpt[1].index == 3);
    CHECK_STR(in.rcpt[2].addr, "c@example.org");

    deliver_result(&in, 0, DELIVER_OK, "2.0.0", "delivered to maildir");
    deliver_result(&in, 1, DELIVER_BOUNCE, "5.1.1", "no such user %s", "b");
    deliver_result(&in, 2, DELIVER_DEFER, "5.2.2", "mailbox full");    /* wrong class */
    CHECK(reply_write(agent, &in) == 0);
    CHECK(reply_read(q, &out, &err) == 1);
    CHECK(out.rcpt[0].status == DELIVER_OK);
    CHECK_STR(out.rcpt[0].text.s, "delivered to maildir");
    CHECK(out.rcpt[1].status == DELIVER_BOUNCE);
    CHECK_STR(out.rcpt[1].dsn, "5.1.1");
    CHECK_STR(out.rcpt[1].text.s, "no such user b");
    CHECK(out.rcpt[2].status == DELIVER_DEFER);
    CHECK_STR(out.rcpt[2].dsn, "4.0.0");
    CHECK_STR(deliver_status_name(DELIVER_BOUNCE), "bounce");

    /* EOF */
    stream_close(agent);
    CHECK(request_read(q, &in, &err) == 0);
    stream_close(q);
    deliver_request_free(&out);
    deliver_request_free(&in);
    str_free(&err);
}

static int read_raw_request(const char *bytes)
{
    struct stream *a, *b;
    struct deliver_request dr;
    struct str err = STR_INIT;
    int rc;

    pair(&a, &b);
    deliver_request_init(&dr);
    raw(a, bytes);
    rc = request_read(b, &dr, &err);
    deliver_request_free(&dr);
    str_free(&err);
    stream_close(a);
    stream_close(b);
    return rc;
}

TEST(bad_requests)
{
    char id[QUEUE_ID_SIZE];
    char buf[512];

    queue_id_new(id);
    /* well formed, for reference */
    snprintf(buf, sizeof(buf), "11:req=deliver,%zu:id=%s,12:queue=active,15:transport=local,"
             "8:nexthop=,6:rcpt=0,8:addr=a@b,0:,", strlen(id) + 3, id);
    CHECK(read_raw_request(buf) == 1);
    /* a queue name that would leave the queue */
    snprintf(buf, sizeof(buf), "11:req=deliver,%zu:id=%s,10:queue=../x,15:transport=local,"
             "8:nexthop=,6:rcpt=0,8:addr=a@b,0:,", strlen(id) + 3, id);
    CHECK(read_raw_request(buf) == -1);
    /* bad id */
    CHECK(read_raw_request("11:req=deliver,12:id=../../etc,12:queue=active,15:transport=local,"
                           "8:nexthop=,6:rcpt=0,8:addr=a@b,0:,") == -1);
    /* no recipients, index out of range, duplicate index */
    snprintf(buf, sizeof(buf), "11:req=deliver,%zu:id=%s,12:queue=active,15:transport=local,"
             "8:nexthop=,0:,", strlen(id) + 3, id);
    CHECK(read_raw_request(buf) == -1);
    snprintf(buf, sizeof(buf), "11:req=deliver,%zu:id=%s,12:queue=active,15:transport=local,"
             "8:nexthop=,16:rcpt=99999999999,8:addr=a@b,0:,", strlen(id) + 3, id);
    CHECK(read_raw_request(buf) == -1);
    snprintf(buf, sizeof(buf), "11:req=deliver,%zu:id=%s,12:queue=active,15:transport=local,"
             "8:nexthop=,6:rcpt=1,8:addr=a@b,6:rcpt=1,8:addr=c@d,0:,", strlen(id) + 3, id);
    CHECK(read_raw_request(buf) == -1);
    /* an attribute a request does not have: strict */
    snprintf(buf, sizeof(buf), "11:req=deliver,%zu:id=%s,12:queue=active,15:transport=local,"
             "8:nexthop=,6:rcpt=0,8:addr=a@b,7:other=1,0:,", strlen(id) + 3, id);
    CHECK(read_raw_request(buf) == -1);
    /* an index without its address */
    snprintf(buf, sizeof(buf), "11:req=deliver,%zu:id=%s,12:queue=active,15:transport=local,"
             "8:nexthop=,6:rcpt=0,8:addr=a@b,6:rcpt=1,0:,", strlen(id) + 3, id);
    CHECK(read_raw_request(buf) == -1);
    /* not even a frame */
    CHECK(read_raw_request("hello\r\n") == -1);
}

/* A reply to a request for recipients 0 and 2, its version first (with_proto). */
static int read_raw_reply_v(const char *bytes, bool with_proto)
{
    struct stream *a, *b;
    struct deliver_request dr;
    struct str err = STR_INIT;
    int rc;

    pair(&a, &b);
    deliver_request_init(&dr);
    queue_id_new(dr.id);
    deliver_request_add(&dr, 0, "a@b");
    deliver_request_add(&dr, 2, "c@d");
    if (with_proto) {
        char head[64];
        const char *v = PROTO_A_PROTO "=" PROTO_DELIVER "/";

        snprintf(head, sizeof(head), "%zu:%s%d,", strlen(v) + 1, v, PROTO_DELIVER_VERSION);
        raw(a, head);
    }
    raw(a, bytes);
    rc = reply_read(b, &dr, &err);
    deliver_request_free(&dr);
    str_free(&err);
    stream_close(a);
    stream_close(b);
    return rc;
}

static int read_raw_reply(const char *bytes)
{
    return read_raw_reply_v(bytes, true);
}

TEST(bad_replies)
{
    /* without a version, or of another one */
    CHECK(read_raw_reply_v("6:rcpt=0,9:status=ok,9:dsn=2.0.0,7:text=ok,"
                           "6:rcpt=2,12:status=defer,9:dsn=4.2.0,7:text=no,0:,", false) == -1);
    CHECK(read_raw_reply_v("15:proto=deliver/9,6:rcpt=0,9:status=ok,9:dsn=2.0.0,7:text=ok,"
                           "6:rcpt=2,12:status=defer,9:dsn=4.2.0,7:text=no,0:,", false) == -1);
    /* an error reply */
    CHECK(read_raw_reply("10:error=why,0:,") == -1);
    CHECK(read_raw_reply("6:rcpt=0,9:status=ok,9:dsn=2.0.0,7:text=ok,"
                         "6:rcpt=2,12:status=defer,9:dsn=4.2.0,7:text=no,0:,") == 1);
    /* one missing */
    CHECK(read_raw_reply("6:rcpt=0,9:status=ok,9:dsn=2.0.0,7:text=ok,0:,") == -1);
    /* unknown index */
    CHECK(read_raw_reply("6:rcpt=0,9:status=ok,9:dsn=2.0.0,7:text=ok,"
                         "6:rcpt=5,9:status=ok,9:dsn=2.0.0,7:text=ok,0:,") == -1);
    /* twice the same */
    CHECK(read_raw_reply("6:rcpt=0,9:status=ok,9:dsn=2.0.0,7:text=ok,"
                         "6:rcpt=0,9:status=ok,9:dsn=2.0.0,7:text=ok,0:,") == -1);
    /* unknown status */
    CHECK(read_raw_reply("6:rcpt=0,10:status=wat,9:dsn=2.0.0,7:text=ok,"
                         "6:rcpt=2,9:status=ok,9:dsn=2.0.0,7:text=ok,0:,") == -1);
    /* truncated group */
    CHECK(read_raw_reply("6:rcpt=0,9:status=ok,0:,") == -1);
    /* the optional "dead" attribute: last, 0 or 1, after at least one recipient */
    CHECK(read_raw_reply("6:rcpt=0,12:status=defer,9:dsn=4.4.1,7:text=no,"
                         "6:rcpt=2,12:status=defer,9:dsn=4.4.1,7:text=no,6:dead=1,0:,") == 1);
    CHECK(read_raw_reply("6:rcpt=0,12:status=defer,9:dsn=4.4.1,7:text=no,"
                         "6:rcpt=2,12:status=defer,9:dsn=4.4.1,7:text=no,6:dead=x,0:,") == -1);
    CHECK(read_raw_reply("6:rcpt=0,12:status=defer,9:dsn=4.4.1,7:text=no,"
                         "6:rcpt=2,12:status=defer,9:dsn=4.4.1,7:text=no,6:dead=1,6:dead=1,0:,")
          == -1);
    /* the order of attributes does not matter, only that of the values of one name */
    CHECK(read_raw_reply("6:dead=1,6:rcpt=0,6:rcpt=2,12:status=defer,12:status=defer,"
                         "9:dsn=4.4.1,9:dsn=4.4.1,7:text=no,7:text=no,0:,") == 1);
    /* a recipient without its text */
    CHECK(read_raw_reply("6:rcpt=0,9:status=ok,9:dsn=2.0.0,7:text=ok,"
                         "6:rcpt=2,12:status=defer,9:dsn=4.4.1,0:,") == -1);
    /* "notified": only for delivered ones */
    CHECK(read_raw_reply("6:rcpt=0,9:status=ok,9:dsn=2.0.0,7:text=ok,"
                         "6:rcpt=2,12:status=defer,9:dsn=4.4.1,7:text=no,10:notified=0,0:,") == 1);
    CHECK(read_raw_reply("6:rcpt=0,9:status=ok,9:dsn=2.0.0,7:text=ok,"
                         "6:rcpt=2,12:status=defer,9:dsn=4.4.1,7:text=no,10:notified=2,0:,") == -1);
    CHECK(read_raw_reply("6:rcpt=0,9:status=ok,9:dsn=2.0.0,7:text=ok,"
                         "6:rcpt=2,12:status=defer,9:dsn=4.4.1,7:text=no,10:notified=7,0:,") == -1);
    CHECK(read_raw_reply("6:rcpt=0,9:status=ok,9:dsn=2.0.0,7:text=ok,"
                         "6:rcpt=2,12:status=defer,9:dsn=4.4.1,7:text=no,6:dead=0,"
                         "10:notified=0,0:,") == 1);
    /* an attribute the reply does not have: strict */
    CHECK(read_raw_reply("6:rcpt=0,9:status=ok,9:dsn=2.0.0,7:text=ok,"
                         "6:rcpt=2,12:status=defer,9:dsn=4.4.1,7:text=no,7:other=1,0:,") == -1);
}

TEST(notified_round_trip)
{
    struct stream *q, *agent;
    struct deliver_request dr;
    struct str err = STR_INIT;

    pair(&q, &agent);
    deliver_request_init(&dr);
    queue_id_new(dr.id);
    deliver_request_add(&dr, 3, "a@far.test");
    deliver_request_add(&dr, 5, "b@far.test");
    deliver_result(&dr, 0, DELIVER_OK, "2.0.0", "delivered");
    deliver_result(&dr, 1, DELIVER_OK, "2.0.0", "delivered");
    dr.rcpt[1].notified = true;
    CHECK(reply_write(agent, &dr) == 0);
    dr.rcpt[0].notified = true;
    dr.rcpt[1].notified = false;
    CHECK(reply_read(q, &dr, &err) == 1);
    CHECK(!dr.rcpt[0].notified);
    CHECK(dr.rcpt[1].notified);
    deliver_request_free(&dr);
    str_free(&err);
    stream_close(q);
    stream_close(agent);
}

TEST(dead_round_trip)
{
    struct stream *q, *agent;
    struct deliver_request dr;
    struct str err = STR_INIT;

    pair(&q, &agent);
    deliver_request_init(&dr);
    queue_id_new(dr.id);
    deliver_request_add(&dr, 0, "a@far.test");
    deliver_result(&dr, 0, DELIVER_DEFER, "4.4.1", "connection refused");
    dr.dead = true;
    CHECK(reply_write(agent, &dr) == 0);
    dr.dead = false;
    CHECK(reply_read(q, &dr, &err) == 1);
    CHECK(dr.dead);
    /* a reply without it resets it */
    CHECK(reply_write(agent, &dr) == 0);
    dr.dead = false;
    deliver_result(&dr, 0, DELIVER_OK, "2.0.0", "ok");
    CHECK(reply_write(agent, &dr) == 0);
    CHECK(reply_read(q, &dr, &err) == 1);
    CHECK(dr.dead);
    CHECK(reply_read(q, &dr, &err) == 1);
    CHECK(!dr.dead);
    CHECK(dr.rcpt[0].status == DELIVER_OK);
    deliver_request_free(&dr);
    str_free(&err);
    stream_close(q);
    stream_close(agent);
}
