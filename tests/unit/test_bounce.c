/* Unit tests for lib/mail/bounce.c: who gets a notice, the RFC 3464 fields of the three
 * kinds, RET=FULL against headers only and bounce_size_limit, ENVID, and the notice
 * written as a queue file. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bounce.h"
#include "conf.h"
#include "str.h"
#include "unit.h"

static const char *msg = "From: a@far.test\nSubject: test\n\nthe body stays home\n";

static int collect(void *arg, const char *data, size_t len)
{
    str_append(arg, data, len);
    return 0;
}

static struct conf *test_conf(const char *dir)
{
    struct str err = STR_INIT;
    struct conf *conf = conf_load(dir, &err);

    CHECK(conf != NULL);
    if (conf != NULL) {
        CHECK(conf_set(conf, "myhostname", "mx.example.test", &err) == 0);
        CHECK(conf_set(conf, "myorigin", "example.test", &err) == 0);
    }
    str_free(&err);
    return conf;
}

/* A queue file in qdir/incoming with the given sender and attributes, opened. */
static int make_orig(const char *qdir, const char *sender, const char *ret, const char *envid,
                     struct queue_file *qf)
{
    char id[QUEUE_ID_SIZE], path[700];
    struct str err = STR_INIT;
    struct queue_writer *qw = qw_create(qdir, id, &err);
    int rc;

    if (qw == NULL)
        return -1;
    qw_sender(qw, sender);
    if (ret)
        qw_attr(qw, "ret", ret);
    if (envid)
        qw_attr(qw, "envid", envid);
    qw_recipient(qw, "x@bad.test", "X@bad.test", NULL);
    qw_recipient(qw, "y@bad.test", NULL, "SUCCESS");
    qw_content(qw, msg, strlen(msg));
    if (qw_commit(qw, "incoming", &err) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/incoming/%s", qdir, id);
    rc = queue_file_open(path, O_RDONLY, qf, &err);
    str_free(&err);
    return rc;
}

static void read_notice(const char *qdir, const char *id, struct queue_file *bq,
                        struct str *text)
{
    char path[700];
    struct str err = STR_INIT;

    snprintf(path, sizeof(path), "%s/incoming/%s", qdir, id);
    CHECK(queue_file_open(path, O_RDONLY, bq, &err) == 0);
    str_clear(text);
    CHECK(queue_file_content(bq, collect, text) == 0);
    str_free(&err);
}

/* A failure notice to orig's sender, as qmgr writes one for an ordinary sender. */
static int failure_notice(const char *qdir, struct queue_file *orig,
                          const struct bounce_rcpt *r, size_t n, const struct conf *conf,
                          char id_out[QUEUE_ID_SIZE], struct str *err)
{
    const char *ret = queue_file_attr(orig, "ret");
    char *to[1] = { orig->sender };
    struct bounce_notice bn = { .kind = BOUNCE_FAILED, .sender = "", .to = orig->sender,
                                .rcpts = to, .nrcpts = 1,
                                .full = ret != NULL && strcasecmp(ret, "FULL") == 0 };

    return bounce_notice_create(qdir, orig, &bn, r, n, conf, id_out, err);
}

TEST(failure_notice)
{
    const char *dir = unit_tmpdir();
    char qdir[600], bid[QUEUE_ID_SIZE];
    struct str err = STR_INIT, text = STR_INIT;
    struct queue_file qf, bq;
    struct conf *conf = test_conf(dir);
    struct bounce_rcpt br[2] = {
        { "x@bad.test", "X@bad.test", "5.1.1", "no such user\r\nInjected: yes", NULL },
        { "y@bad.test", NULL, "5.7.1", "refused", NULL },
    };

    if (conf == NULL)
        return;
    snprintf(qdir, sizeof(qdir), "%s/queue", dir);
    CHECK(queue_tree_create(qdir, &err) == 0);
    CHECK(make_orig(qdir, "sender@far.test", NULL, NULL, &qf) == 0);

    CHECK(failure_notice(qdir, &qf, br, 2, conf, bid, &err) == 0);
    read_notice(qdir, bid, &bq, &text);
    CHECK_STR(bq.sender, "");
    CHECK(bq.nrcpt == 1);
    CHECK_STR(bq.rcpt[0].addr, "sender@far.test");
    CHECK(strstr(text.s, "report-type=delivery-status") != NULL);
    CHECK(strstr(text.s, "Subject: Undelivered Mail Returned to Sender\n") != NULL);
    CHECK(strstr(text.s, "Reporting-MTA: dns; mx.example.test\n") != NULL);
    CHECK(strstr(text.s, "Final-Recipient: rfc822; x@bad.test\n"
                         "Original-Recipient: rfc822; X@bad.test\n"
                         "Action: failed\nStatus: 5.1.1\n") != NULL);
    CHECK(strstr(text.s, "Final-Recipient: rfc822; y@bad.test\nAction: failed\n") != NULL);
    CHECK(strstr(text.s, "\nInjected: yes") == NULL);
    CHECK(strstr(text.s, "Original-Envelope-Id") == NULL);
    CHECK(strstr(text.s, "Content-Type: text/rfc822-headers\n\nFrom: a@far.test\n"
                         "Subject: test\n\n--") != NULL);
    CHECK(strstr(text.s, "the body stays home") == NULL);
    CHECK(strstr(text.s, "To: <sender@far.test>\n") != NULL);
    queue_file_close(&bq);

    queue_file_close(&qf);
    conf_free(conf);
    str_free(&err);
    str_free(&text);
}

TEST(ret_full_and_envid)
{
    const char *dir = unit_tmpdir();
    char qdir[600], bid[QUEUE_ID_SIZE];
    struct str err = STR_INIT, text = STR_INIT;
    struct queue_file qf, bq;
    struct conf *conf = test_conf(dir);
    struct bounce_rcpt br[1] = { { "x@bad.test", "X@bad.test", "5.1.1", "no such user", NULL } };

    if (conf == NULL)
        return;
    snprintf(qdir, sizeof(qdir), "%s/queue", dir);
    CHECK(queue_tree_create(qdir, &err) == 0);
    CHECK(make_orig(qdir, "sender@far.test", "FULL", "abc+2Bdef", &qf) == 0);
    CHECK(failure_notice(qdir, &qf, br, 1, conf, bid, &err) == 0);
    read_notice(qdir, bid, &bq, &text);
    CHECK(strstr(text.s, "Original-Envelope-Id: abc+def\n") != NULL);
    CHECK(strstr(text.s, "Content-Type: message/rfc822\n\nFrom: a@far.test\n") != NULL);
    CHECK(strstr(text.s, "the body stays home\n") != NULL);
    queue_file_close(&bq);

    /* larger than bounce_size_limit: headers only, and said so */
    CHECK(conf_set(conf, "bounce_size_limit", "20", &err) == 0);
    CHECK(failure_notice(qdir, &qf, br, 1, conf, bid, &err) == 0);
    read_notice(qdir, bid, &bq, &text);
    CHECK(strstr(text.s, "the body stays home") == NULL);
    CHECK(strstr(text.s, "too large to be returned in full") != NULL);
    CHECK(strstr(text.s, "Content-Type: text/rfc822-headers\n") != NULL);
    CHECK(strstr(text.s, "message/rfc822") == NULL);
    queue_file_close(&bq);
    queue_file_close(&qf);
    conf_free(conf);
    str_free(&err);
    str_free(&text);
}

TEST(routes)
{
    const char *dir = unit_tmpdir();
    char qdir[600];
    struct str err = STR_INIT, sender = STR_INIT, to = STR_INIT;
    struct queue_file qf;
    struct conf *conf = test_conf(dir);

    if (conf == NULL)
        return;
    snprintf(qdir, sizeof(qdir), "%s/queue", dir);
    CHECK(queue_tree_create(qdir, &err) == 0);
    CHECK(make_orig(qdir, "sender@far.test", NULL, NULL, &qf) == 0);
    CHECK(bounce_route(&qf, conf, &sender, &to) == BOUNCE_TO_SENDER);
    CHECK_STR(sender.s, "");
    CHECK_STR(to.s, "sender@far.test");
    /* a failed bounce goes to the postmaster from the double-bounce sender */
    free(qf.sender);
    qf.sender = strdup("");
    CHECK(bounce_route(&qf, conf, &sender, &to) == BOUNCE_TO_POSTMASTER);
    CHECK_STR(sender.s, "double-bounce@example.test");
    CHECK_STR(to.s, "postmaster");
    /* and a failed double bounce goes nowhere */
    free(qf.sender);
    qf.sender = strdup("Double-Bounce@example.test");
    CHECK(bounce_route(&qf, conf, &sender, &to) == BOUNCE_DROP);
    queue_file_close(&qf);
    conf_free(conf);
    str_free(&err);
    str_free(&sender);
    str_free(&to);
}

TEST(delay_and_success_formats)
{
    struct queue_file qf;
    struct conf *conf = test_conf(unit_tmpdir());
    struct str out = STR_INIT;
    char *rcpts[1] = { "sender@far.test" };
    struct bounce_rcpt dr[1] = { { "x@slow.test", "x@slow.test", "4.4.1", "connection refused",
                                   NULL } };
    struct bounce_rcpt sr[2] = { { "y@example.test", NULL, "2.0.0", "delivered to maildir", NULL },
                                 { "z@far.test", NULL, "2.0.0", "250 ok", "relayed" } };
    struct bounce_notice bn = { .kind = BOUNCE_DELAYED, .sender = "", .to = "sender@far.test",
                                .rcpts = rcpts, .nrcpts = 1, .retry_until = 86400 * 365 };
    const char *hdr = "Subject: hello\n";

    if (conf == NULL)
        return;
    memset(&qf, 0, sizeof(qf));
    qf.fd = -1;
    snprintf(qf.id, sizeof(qf.id), "0674A1B2C0F4240000A3K");
    qf.sender = "sender@far.test";
    qf.arrival = 86400 * 300;
    bounce_format(&out, "0674A1B2C0F4240000B00", &qf, &bn, dr, 1, conf, hdr, strlen(hdr), false,
                  86400 * 301);
    CHECK(strstr(out.s, "Subject: Delayed Mail (still being retried)\n") != NULL);
    CHECK(strstr(out.s, "Action: delayed\nStatus: 4.4.1\n") != NULL);
    CHECK(strstr(out.s, "Will-Retry-Until: ") != NULL);
    CHECK(strstr(out.s, "only a warning") != NULL);
    CHECK(strstr(out.s, "Content-Type: text/rfc822-headers\n\nSubject: hello\n") != NULL);

    str_clear(&out);
    bn.kind = BOUNCE_DELIVERED;
    bn.retry_until = 0;
    bounce_format(&out, "0674A1B2C0F4240000B01", &qf, &bn, sr, 2, conf, hdr, strlen(hdr), false,
                  86400 * 301);
    CHECK(strstr(out.s, "Subject: Successful Mail Delivery Report\n") != NULL);
    CHECK(strstr(out.s, "Final-Recipient: rfc822; y@example.test\n"
                        "Action: delivered\nStatus: 2.0.0\n") != NULL);
    CHECK(strstr(out.s, "Final-Recipient: rfc822; z@far.test\n"
                        "Action: relayed\nStatus: 2.0.0\n") != NULL);
    CHECK(strstr(out.s, "Will-Retry-Until") == NULL);
    str_free(&out);
    conf_free(conf);
}
