/* Unit tests for maildrop files: what the writer makes the reader takes back; the
 * reader refuses truncated, oversized, reordered and crafted files. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dsn_notify.h"
#include "maildrop.h"
#include "str.h"

static char *path_of(const char *name)
{
    static char p[512];
    snprintf(p, sizeof(p), "%s/%s", unit_tmpdir(), name);
    return p;
}

static void write_raw(const char *name, const char *data, size_t len)
{
    int fd = open(path_of(name), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, data, len) == (ssize_t)len);
    close(fd);
}

struct got {
    int envelopes;
    struct str content;
};

static int on_env(void *arg, const struct maildrop_env *env)
{
    struct got *g = arg;
    (void)env;
    g->envelopes++;
    return 0;
}

static int on_content(void *arg, const char *data, size_t len)
{
    struct got *g = arg;
    str_append(&g->content, data, len);
    return 0;
}

/* Reads name: the reader's return, errno in *e, the reason in why. */
static int read_file(const char *name, size_t max, struct maildrop_env *env, struct got *g,
                     struct str *why, int *e)
{
    const struct maildrop_reader_ops ops = { on_env, on_content };
    int fd = open(path_of(name), O_RDONLY);
    int rc;

    str_clear(why);
    rc = maildrop_read(fd, max, &ops, g, env, why);
    *e = errno;
    close(fd);
    return rc;
}

TEST(round_trip)
{
    int fd = open(path_of("good"), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    struct maildrop_writer *w = mdw_open(fd);
    struct maildrop_env env;
    struct got g = { 0 };
    struct str why = STR_INIT;
    char big[70000];
    int e;

    memset(big, 'x', sizeof(big));
    CHECK(mdw_header(w, 1000, "alice", 1700000000) == 0);
    CHECK(mdw_sender(w, "boss@example.com") == 0);
    CHECK(mdw_attr(w, "ret", "HDRS") == 0);
    CHECK(mdw_attr(w, "envid", "abc+2B") == 0);
    CHECK(mdw_recipient(w, "bob@example.com", "SUCCESS,FAILURE") == 0);
    CHECK(mdw_recipient(w, "carol", NULL) == 0);
    CHECK(mdw_content(w, "Subject: x\n\n", 12) == 0);
    CHECK(mdw_content(w, big, sizeof(big)) == 0);
    CHECK(mdw_finish(w) == 0);

    CHECK(read_file("good", 0, &env, &g, &why, &e) == 0);
    CHECK(env.uid == 1000);
    CHECK_STR(env.login, "alice");
    CHECK(env.when == 1700000000);
    CHECK_STR(env.sender, "boss@example.com");
    CHECK_STR(env.ret, "HDRS");
    CHECK_STR(env.envid, "abc+2B");
    CHECK(env.nrcpt == 2);
    CHECK_STR(env.rcpt[0].addr, "bob@example.com");
    CHECK_STR(env.rcpt[0].notify, "SUCCESS,FAILURE");
    CHECK_STR(env.rcpt[1].addr, "carol");
    CHECK(env.rcpt[1].notify == NULL);
    CHECK(g.envelopes == 1);
    CHECK(g.content.len == 12 + sizeof(big));
    maildrop_env_free(&env);

    /* over the content bound */
    str_clear(&g.content);
    CHECK(read_file("good", 1000, &env, &g, &why, &e) == -1 && e == EFBIG);
    maildrop_env_free(&env);
    str_free(&g.content);
    str_free(&why);
}

TEST(writer_order)
{
    int fd = open(path_of("order"), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    struct maildrop_writer *w = mdw_open(fd);

    CHECK(mdw_recipient(w, "a@b", NULL) == -1);        /* before the header */
    CHECK(mdw_header(w, 1, "x", 1) == -1);             /* failed for good */
    mdw_abort(w);
}

TEST(truncated_everywhere)
{
    /* Every proper prefix of a good file is refused as malformed. */
    static const char good[] = "V1:1\nU4:1000\nL5:alice\nT1:5\nR3:a@b\nC2:x\n\nE0:\n";
    struct maildrop_env env;
    struct got g = { 0 };
    struct str why = STR_INIT;
    int e;

    for (size_t n = 0; n < sizeof(good) - 1; n++) {
        write_raw("cut", good, n);
        CHECK(read_file("cut", 0, &env, &g, &why, &e) == -1 && e == EINVAL);
        maildrop_env_free(&env);
    }
    write_raw("cut", good, sizeof(good) - 1);
    CHECK(read_file("cut", 0, &env, &g, &why, &e) == 0);
    maildrop_env_free(&env);
    str_free(&g.content);
    str_free(&why);
}

TEST(crafted)
{
    static const char *const bad[] = {
        "",                                                     /* empty */
        "V1:2\nU1:1\nL1:a\nT1:5\nR3:a@b\nE0:\n",                /* version */
        "U1:1\nV1:1\nL1:a\nT1:5\nR3:a@b\nE0:\n",                /* order */
        "V1:1\nU2:-1\nL1:a\nT1:5\nR3:a@b\nE0:\n",               /* uid */
        "V1:1\nU2:01\nL1:a\nT1:5\nR3:a@b\nE0:\n",               /* leading zero */
        "V1:1\nU1:1\nL2:../\nT1:5\nR3:a@b\nE0:\n",              /* login */
        "V1:1\nU1:1\nL1:a\nT1:5\nE0:\n",                        /* no recipient */
        "V1:1\nU1:1\nL1:a\nT1:5\nR3:a@b\nE0:\nC1:x\n",          /* after E */
        "V1:1\nU1:1\nL1:a\nT1:5\nR3:a\nb\nE0:\n",               /* newline in address */
        "V1:1\nU1:1\nL1:a\nT1:5\nR3:a@b\nN4:SOME\nE0:\n",       /* notify, no rcpt */
        "V1:1\nU1:1\nL1:a\nT1:5\nN5:NEVER\nN5:NEVER\nR3:a@b\nE0:\n",
        "V1:1\nU1:1\nL1:a\nT1:5\nA5:x=abc\nR3:a@b\nE0:\n",      /* unknown attribute */
        "V1:1\nU1:1\nL1:a\nT1:5\nR3:a@b\nF3:x@y\nE0:\n",        /* sender after rcpt */
        "V1:1\nU1:1\nL1:a\nT1:5\nR3:a@b\nC99999:x\n",           /* length past the end */
        "V1:1\nU1:1\nL1:a\nT1:5\nR3:a@b\nC9999999:x\n",         /* length too long */
        "V1:1\nU1:1\nL1:a\nT1:5\nR3:a@b\nc1:x\nE0:\n",          /* type */
        "V1:1\nU1:1\nL1:a\nT1:5\nR3:a@b\nC1:xE0:\n",            /* no newline */
        "V1:1\nU1:1\nL1:a\nT1:5\nR3:a@b\nE1:x\n",               /* E not empty */
        "V1:1\nU1:1\nL1:a\nT1:5\nR3:a@b\nZ0:\nE0:\n",           /* unknown record */
    };
    struct maildrop_env env;
    struct got g = { 0 };
    struct str why = STR_INIT;
    int e;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_raw("bad", bad[i], strlen(bad[i]));
        int rc = read_file("bad", 0, &env, &g, &why, &e);
        if (rc != -1 || e != EINVAL)
            fprintf(stderr, "  case %zu accepted\n", i);
        CHECK(rc == -1 && e == EINVAL);
        CHECK(why.len > 0);
        maildrop_env_free(&env);
    }
    str_free(&g.content);
    str_free(&why);
}

TEST(notify_and_login)
{
    struct str s = STR_INIT;

    CHECK(dsn_notify_parse("never", &s) == 0);
    CHECK_STR(s.s, "NEVER");
    CHECK(dsn_notify_parse("failure,delay", &s) == 0);
    CHECK_STR(s.s, "FAILURE,DELAY");
    CHECK(dsn_notify_parse("failure,failure", &s) == -1);
    CHECK(dsn_notify_parse("failure,", &s) == -1);
    CHECK(dsn_notify_parse("", &s) == -1);
    CHECK(dsn_notify_parse("never,success", &s) == -1);
    CHECK(maildrop_login_valid("alice.b-c_d"));
    CHECK(!maildrop_login_valid(""));
    CHECK(!maildrop_login_valid("-x"));
    CHECK(!maildrop_login_valid("a b"));
    CHECK(!maildrop_login_valid("a@b"));
    str_free(&s);
}

TEST(man_page_example)
{
    /* The example of postern-maildrop(5). */
    static const char ex[] = "V1:1\nU4:1000\nL5:alice\nT10:1767225600\nR15:bob@example.com\n"
                             "C40:Subject: hi\nFrom: alice@example.com\n\nhi\n\nE0:\n";
    struct maildrop_env env;
    struct got g = { 0 };
    struct str why = STR_INIT;
    int e;

    write_raw("example", ex, sizeof(ex) - 1);
    CHECK(read_file("example", 0, &env, &g, &why, &e) == 0);
    CHECK(g.content.len == 40);
    CHECK(env.nrcpt == 1 && strcmp(env.rcpt[0].addr, "bob@example.com") == 0);
    maildrop_env_free(&env);
    str_free(&g.content);
    str_free(&why);
}
