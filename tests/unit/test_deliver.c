/* Unit tests for lib/deliver.c (requests and replies round trip over a socket pair,
 * malformed frames from a peer are refused) and lib/bounce.c (the notice). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bounce.h"
#include "conf.h"
#include "deliver.h"
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
    CHECK(deliver_request_write(q, &out) == 0);
    CHECK(deliver_request_read(agent, &in, &err) == 1);
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
    CHECK(deliver_reply_write(agent, &in) == 0);
    CHECK(deliver_reply_read(q, &out, &err) == 1);
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
    CHECK(deliver_request_read(q, &in, &err) == 0);
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
    rc = deliver_request_read(b, &dr, &err);
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
    /* not even a frame */
    CHECK(read_raw_request("hello\r\n") == -1);
}

static int read_raw_reply(const char *bytes)
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
    raw(a, bytes);
    rc = deliver_reply_read(b, &dr, &err);
    deliver_request_free(&dr);
    str_free(&err);
    stream_close(a);
    stream_close(b);
    return rc;
}

TEST(bad_replies)
{
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
}

/* ---- bounce.c: the notice is built from a queue file and written as a new one ---- */

static int collect(void *arg, const char *data, size_t len)
{
    str_append(arg, data, len);
    return 0;
}

TEST(bounce_notice)
{
    const char *dir = unit_tmpdir();
    char qdir[600], id[QUEUE_ID_SIZE], bid[QUEUE_ID_SIZE], path[700];
    struct str err = STR_INIT, text = STR_INIT;
    struct queue_writer *qw;
    struct queue_file qf, bq;
    struct conf *conf;
    const char *msg = "From: a@far.test\nSubject: test\n\nthe body stays home\n";
    struct bounce_rcpt br[2] = {
        { "x@bad.test", "X@bad.test", "5.1.1", "no such user\r\nInjected: yes" },
        { "y@bad.test", NULL, "5.7.1", "refused" },
    };

    snprintf(qdir, sizeof(qdir), "%s/queue", dir);
    CHECK(queue_tree_create(qdir, &err) == 0);
    conf = conf_load(dir, &err);
    CHECK(conf != NULL);
    if (conf == NULL)
        return;
    CHECK(conf_set(conf, "myhostname", "mx.example.test", &err) == 0);
    qw = qw_create(qdir, id, &err);
    CHECK(qw != NULL);
    if (qw == NULL)
        return;
    qw_sender(qw, "sender@far.test");
    qw_recipient(qw, "x@bad.test", "X@bad.test", NULL);
    qw_recipient(qw, "y@bad.test", NULL, NULL);
    qw_content(qw, msg, strlen(msg));
    CHECK(qw_commit(qw, "incoming", &err) == 0);
    snprintf(path, sizeof(path), "%s/incoming/%s", qdir, id);
    CHECK(queue_file_open(path, O_RDONLY, &qf, &err) == 0);

    CHECK(bounce_create(qdir, &qf, br, 2, conf, bid, &err) == 0);
    snprintf(path, sizeof(path), "%s/incoming/%s", qdir, bid);
    CHECK(queue_file_open(path, O_RDONLY, &bq, &err) == 0);
    CHECK_STR(bq.sender, "");
    CHECK(bq.nrcpt == 1);
    CHECK_STR(bq.rcpt[0].addr, "sender@far.test");
    str_set(&text, "", 0);
    CHECK(queue_file_content(&bq, collect, &text) == 0);
    CHECK(strstr(text.s, "report-type=delivery-status") != NULL);
    CHECK(strstr(text.s, "Reporting-MTA: dns; mx.example.test\n") != NULL);
    CHECK(strstr(text.s, "Final-Recipient: rfc822; x@bad.test\n"
                         "Original-Recipient: rfc822; X@bad.test\n"
                         "Action: failed\nStatus: 5.1.1\n") != NULL);
    CHECK(strstr(text.s, "Final-Recipient: rfc822; y@bad.test\nAction: failed\n") != NULL);
    CHECK(strstr(text.s, "\nInjected: yes") == NULL);
    CHECK(strstr(text.s, "Content-Type: text/rfc822-headers\n\nFrom: a@far.test\n"
                         "Subject: test\n\n--") != NULL);
    CHECK(strstr(text.s, "the body stays home") == NULL);
    CHECK(strstr(text.s, "To: <sender@far.test>\n") != NULL);
    queue_file_close(&bq);

    /* never a bounce of a bounce */
    free(qf.sender);
    qf.sender = strdup("");
    CHECK(bounce_create(qdir, &qf, br, 1, conf, bid, &err) == 1);
    queue_file_close(&qf);
    conf_free(conf);
    str_free(&err);
    str_free(&text);
}
