/* Unit tests for the IPC layer: the envelope (lib/mail/ipc_proto.c: versions and
 * error replies), the request loop (lib/mail/ipc_serve.c, over a socket pair) and the
 * reconnecting client (lib/util/ipc_clnt.c, against small servers in child
 * processes: lazy connection, reconnection, the deadline, pipelining). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attr.h"
#include "attr_scan.h"
#include "clock.h"
#include "ipc_clnt.h"
#include "ipc_proto.h"
#include "ipc_serve.h"
#include "proto.h"
#include "server_wait.h"
#include "sock.h"
#include "str.h"
#include "stream.h"
#include "unit.h"

#define T_PROTO "test"
#define T_VERSION 2

/* ---- the envelope ---- */

static int check_proto(const char *value, struct str *err)
{
    struct attr_list al = ATTR_LIST_INIT;
    int rc;

    if (value != NULL)
        attr_add(&al, PROTO_A_PROTO, value);
    attr_add(&al, PROTO_A_REQ, "x");
    rc = ipc_proto_check(&al, T_PROTO, T_VERSION, err);
    attr_free(&al);
    return rc;
}

TEST(proto_check)
{
    struct str err = STR_INIT;
    struct attr_list al = ATTR_LIST_INIT;

    CHECK(check_proto("test/2", &err) == 0);
    CHECK(check_proto(NULL, &err) == -1);
    CHECK_STR(err.s, "protocol test version 1 (no \"proto\" attribute), expected 2");
    CHECK(check_proto("test/3", &err) == -1);
    CHECK_STR(err.s, "protocol test version 3, expected 2");
    CHECK(check_proto("test/1", &err) == -1);
    CHECK_STR(err.s, "protocol test version 1, expected 2");
    CHECK(check_proto("other/2", &err) == -1);
    CHECK_STR(err.s, "protocol other version 2, expected test version 2");
    static const char *const bad[] = {
        "test", "test/", "/2", "test/x", "test/0", "test/1234567", "Test/2", "te st/2",
        "test/2/", "test/-2",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(check_proto(bad[i], &err) == -1);
        CHECK(strncmp(err.s, "malformed", 9) == 0);
    }
    /* given twice */
    attr_add(&al, PROTO_A_PROTO, "test/2");
    attr_add(&al, PROTO_A_PROTO, "test/2");
    CHECK(ipc_proto_check(&al, T_PROTO, T_VERSION, &err) == -1);
    attr_free(&al);
    str_free(&err);
}

TEST(error_reply)
{
    struct str err = STR_INIT;
    struct attr_list al = ATTR_LIST_INIT;

    ipc_frame_start(&al, T_PROTO, T_VERSION);
    CHECK(ipc_reply_check(&al, T_PROTO, T_VERSION, &err) == 0);
    ipc_error_reply(&al, T_PROTO, T_VERSION, "no\nway");
    CHECK(al.n == 2);
    CHECK(ipc_reply_check(&al, T_PROTO, T_VERSION, &err) == -1);
    CHECK_STR(err.s, "refused: no?way");
    /* a reply without a version: an older peer */
    attr_clear(&al);
    attr_add(&al, PROTO_A_STATUS, PROTO_OK);
    CHECK(ipc_reply_check(&al, T_PROTO, T_VERSION, &err) == -1);
    attr_free(&al);
    str_free(&err);
}

/* ---- the request loop ---- */

static int echo(void *ctx, const struct attr_list *in, struct attr_list *out, struct str *err)
{
    const char *text = NULL;
    const struct attr_spec spec[] = { ATTR_STR(PROTO_A_TEXT, 0, &text, 0), ATTR_END };

    (*(int *)ctx)++;
    if (attr_scan(in, 0, spec, err) < 0)
        return -1;
    attr_add(out, PROTO_A_TEXT, text);
    return 0;
}

static const struct ipc_handler echo_handlers[] = {
    { "echo", echo },
    { NULL, NULL },
};

static const struct ipc_service echo_service = {
    .proto = T_PROTO,
    .version = T_VERSION,
    .handlers = echo_handlers,
};

static void request(struct attr_list *al, unsigned version, const char *req, const char *text)
{
    ipc_request_start(al, T_PROTO, version, req);
    if (text != NULL)
        attr_add(al, PROTO_A_TEXT, text);
}

/* Writes frames[0..n) into one end of a pair, closes it for writing, serves the
 * other end; returns the replies' frames (up to 4) as "text" values or "ERROR". */
static int serve_pair(struct attr_list *frames, size_t n, struct str *replies)
{
    int sv[2], calls = 0;
    struct server_wait w = { .idle_ms = 2000 };
    struct stream *a, *b;
    struct attr_list al = ATTR_LIST_INIT;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        _exit(2);
    a = stream_fdopen(sv[0]);
    b = stream_fdopen(sv[1]);
    stream_set_timeout(a, 2000);
    stream_set_timeout(b, 2000);
    for (size_t i = 0; i < n; i++)
        CHECK(attr_write(a, &frames[i]) == 0);
    CHECK(shutdown(sv[0], SHUT_WR) == 0);
    ipc_serve(b, &w, &echo_service, &calls);
    stream_close(b);
    str_clear(replies);
    while (attr_read(a, &al, 0) == 1) {
        struct str err = STR_INIT;

        if (ipc_reply_check(&al, T_PROTO, T_VERSION, &err) < 0)
            str_appends(replies, "ERROR;");
        else
            str_printf(replies, "%s;", attr_get(&al, PROTO_A_TEXT));
        str_free(&err);
    }
    stream_close(a);
    attr_free(&al);
    return calls;
}

TEST(serve_dispatch)
{
    struct attr_list f[3] = { ATTR_LIST_INIT, ATTR_LIST_INIT, ATTR_LIST_INIT };
    struct str r = STR_INIT;

    request(&f[0], T_VERSION, "echo", "one");
    request(&f[1], T_VERSION, "echo", "two");
    CHECK(serve_pair(f, 2, &r) == 2);
    CHECK_STR(r.s, "one;two;");
    /* an unknown request, a malformed one: the connection ends, unanswered */
    request(&f[1], T_VERSION, "nonsense", "two");
    request(&f[2], T_VERSION, "echo", "three");
    CHECK(serve_pair(f, 3, &r) == 1);
    CHECK_STR(r.s, "one;");
    request(&f[1], T_VERSION, "echo", NULL);
    CHECK(serve_pair(f, 3, &r) == 2);
    CHECK_STR(r.s, "one;");
    /* a request without a name */
    ipc_frame_start(&f[1], T_PROTO, T_VERSION);
    CHECK(serve_pair(f, 3, &r) == 1);
    CHECK_STR(r.s, "one;");
    for (int i = 0; i < 3; i++)
        attr_free(&f[i]);
    str_free(&r);
}

TEST(serve_other_version)
{
    struct attr_list f[2] = { ATTR_LIST_INIT, ATTR_LIST_INIT };
    struct str r = STR_INIT;

    /* answered with an error reply, then the connection ends */
    request(&f[0], T_VERSION + 1, "echo", "one");
    request(&f[1], T_VERSION, "echo", "two");
    CHECK(serve_pair(f, 2, &r) == 0);
    CHECK_STR(r.s, "ERROR;");
    attr_clear(&f[0]);
    attr_add(&f[0], PROTO_A_REQ, "echo");
    attr_add(&f[0], PROTO_A_TEXT, "unversioned");
    CHECK(serve_pair(f, 2, &r) == 0);
    CHECK_STR(r.s, "ERROR;");
    for (int i = 0; i < 2; i++)
        attr_free(&f[i]);
    str_free(&r);
}

/* ---- the client, against servers in child processes ---- */

enum mode {
    ECHO,           /* answers every request on a connection */
    ONCE,           /* answers one request, then closes the connection */
    SILENT,         /* reads requests, never answers */
    TRICKLE,        /* answers a byte every 60 ms */
    OLD,            /* answers without a version */
};

static void server_child(int lfd, enum mode mode)
{
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        struct stream *st;
        struct attr_list in = ATTR_LIST_INIT, out = ATTR_LIST_INIT;

        if (fd < 0)
            _exit(0);
        st = stream_fdopen(fd);
        stream_set_timeout(st, 5000);
        while (attr_read(st, &in, 0) == 1) {
            const char *text = attr_get(&in, PROTO_A_TEXT);

            if (mode == SILENT)
                continue;
            if (mode == OLD)
                attr_clear(&out);
            else
                ipc_frame_start(&out, T_PROTO, T_VERSION);
            attr_add(&out, PROTO_A_TEXT, text != NULL ? text : "");
            if (mode == TRICKLE) {
                struct str buf = STR_INIT;

                attr_encode(&out, &buf);
                for (size_t i = 0; i < buf.len; i++) {
                    usleep(60000);
                    if (write(fd, buf.s + i, 1) != 1)
                        break;
                }
                str_free(&buf);
                continue;
            }
            attr_write(st, &out);
            if (mode == ONCE)
                break;
        }
        attr_free(&in);
        attr_free(&out);
        stream_close(st);
    }
}

static pid_t server_start(const char *path, enum mode mode)
{
    struct str err = STR_INIT;
    int lfd = sock_listen_unix(path, 0600, 16, &err);
    pid_t pid;

    if (lfd < 0) {
        fprintf(stderr, "listen %s: %s\n", path, err.s);
        _exit(2);
    }
    pid = fork();
    if (pid == 0)
        server_child(lfd, mode);
    close(lfd);
    str_free(&err);
    return pid;
}

static void server_stop(pid_t pid)
{
    int st;

    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}

/* A socket path in the test's directory (kept for the life of the test). */
static const char *sock_path(const char *name)
{
    static struct str paths[8];
    static size_t n;
    struct str *p = &paths[n++ % 8];

    str_clear(p);
    str_printf(p, "%s/%s", unit_tmpdir(), name);
    return p->s;
}

/* One call: the reply's text, or NULL (errno). */
static const char *call(struct ipc_clnt *c, const char *text, struct attr_list *reply)
{
    struct attr_list req = ATTR_LIST_INIT;
    int rc;

    request(&req, T_VERSION, "echo", text);
    rc = ipc_clnt_call(c, &req, reply);
    attr_free(&req);
    return rc == 0 ? attr_get(reply, PROTO_A_TEXT) : NULL;
}

TEST(clnt_lazy_and_kept)
{
    const char *path = sock_path("echo");
    struct ipc_clnt *c = ipc_clnt_open(path, 2000, 0);
    struct attr_list reply = ATTR_LIST_INIT;
    struct stream *first;
    pid_t pid;

    /* nothing is connected before the first request; no service is an error */
    CHECK(ipc_clnt_stream(c) == NULL);
    errno = 0;
    CHECK(call(c, "x", &reply) == NULL);
    CHECK(errno == ENOENT || errno == ECONNREFUSED);
    pid = server_start(path, ECHO);
    CHECK_STR(call(c, "one", &reply), "one");
    first = ipc_clnt_stream(c);
    CHECK(first != NULL);
    CHECK_STR(call(c, "two", &reply), "two");
    CHECK(ipc_clnt_stream(c) == first);         /* the same connection */
    server_stop(pid);
    ipc_clnt_close(c);
    attr_free(&reply);
}

TEST(clnt_reconnects_once)
{
    const char *path = sock_path("once");
    pid_t pid = server_start(path, ONCE);
    struct ipc_clnt *c = ipc_clnt_open(path, 2000, 0);
    struct attr_list reply = ATTR_LIST_INIT;

    /* the service closes each connection after one request: every later call
     * notices it and makes a new one */
    CHECK_STR(call(c, "one", &reply), "one");
    usleep(50000);
    CHECK_STR(call(c, "two", &reply), "two");
    CHECK_STR(call(c, "three", &reply), "three");
    /* a service restarted meanwhile */
    server_stop(pid);
    unlink(path);
    pid = server_start(path, ECHO);
    CHECK_STR(call(c, "four", &reply), "four");
    server_stop(pid);
    ipc_clnt_close(c);
    attr_free(&reply);
}

TEST(clnt_deadline)
{
    const char *silent = sock_path("silent"), *trickle = sock_path("trickle");
    pid_t p1 = server_start(silent, SILENT), p2 = server_start(trickle, TRICKLE);
    struct ipc_clnt *c = ipc_clnt_open(silent, 300, 0);
    struct attr_list reply = ATTR_LIST_INIT;
    long long t0 = clock_ms();

    errno = 0;
    CHECK(call(c, "x", &reply) == NULL);
    CHECK(errno == ETIMEDOUT);
    CHECK(clock_ms() - t0 >= 250 && clock_ms() - t0 < 1500);    /* no second try */
    CHECK(ipc_clnt_stream(c) == NULL);
    ipc_clnt_close(c);
    /* a reply that keeps coming, too slowly: the deadline is for the whole of it */
    c = ipc_clnt_open(trickle, 400, 0);
    t0 = clock_ms();
    errno = 0;
    CHECK(call(c, "a reply of some bytes", &reply) == NULL);
    CHECK(errno == ETIMEDOUT);
    CHECK(clock_ms() - t0 < 1500);
    ipc_clnt_close(c);
    server_stop(p1);
    server_stop(p2);
    attr_free(&reply);
}

TEST(clnt_pipelining)
{
    const char *path = sock_path("pipe");
    pid_t pid = server_start(path, ECHO);
    struct ipc_clnt *c = ipc_clnt_open(path, 2000, 0);
    struct attr_list req = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    static const char *const texts[] = { "a", "b", "c" };

    for (int i = 0; i < 3; i++) {
        request(&req, T_VERSION, "echo", texts[i]);
        CHECK(ipc_clnt_send(c, &req) == 0);
    }
    CHECK(ipc_clnt_pending(c) == 3);
    for (int i = 0; i < 3; i++) {
        CHECK(ipc_clnt_recv(c, &reply) == 1);
        CHECK_STR(attr_get(&reply, PROTO_A_TEXT), texts[i]);
    }
    CHECK(ipc_clnt_pending(c) == 0);
    /* a reply to nothing sent */
    CHECK(ipc_clnt_recv(c, &reply) == -1);
    server_stop(pid);
    /* the service is gone: nothing to connect to */
    CHECK(ipc_clnt_send(c, &req) == -1);
    CHECK(ipc_clnt_stream(c) == NULL);
    ipc_clnt_close(c);
    attr_free(&req);
    attr_free(&reply);
}

TEST(call_checks_the_version)
{
    const char *path = sock_path("old");
    pid_t pid = server_start(path, OLD);
    struct ipc_clnt *c = ipc_clnt_open(path, 2000, 0);
    struct attr_list req = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    struct str err = STR_INIT, want = STR_INIT;

    request(&req, T_VERSION, "echo", "x");
    CHECK(ipc_call(c, T_PROTO, T_VERSION, &req, &reply, &err) == -1);
    str_printf(&want, "%s: protocol test version 1 (no \"proto\" attribute), expected 2", path);
    CHECK_STR(err.s, want.s);
    CHECK(ipc_clnt_stream(c) == NULL);          /* not to be used again */
    server_stop(pid);
    ipc_clnt_close(c);
    attr_free(&req);
    attr_free(&reply);
    str_free(&err);
    str_free(&want);
}
