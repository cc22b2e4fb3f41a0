/* Unit tests for lib/util/attr.c: round trips and malformed frames over a socketpair. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attr.h"
#include "stream.h"
#include "unit.h"

/* Writes raw bytes into one end, closes it, and reads one frame from the other. */
static int parse_raw(const char *data, size_t len, struct attr_list *al, size_t max, int *err)
{
    int sv[2];
    struct stream *st;
    int rc;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return -2;
    if (write(sv[0], data, len) != (ssize_t)len)
        return -2;
    close(sv[0]);
    st = stream_fdopen(sv[1]);
    stream_set_timeout(st, 2000);
    errno = 0;
    rc = attr_read(st, al, max);
    *err = errno;
    stream_close(st);
    return rc;
}

static int parse_str(const char *s, int *err)
{
    struct attr_list al = ATTR_LIST_INIT;
    int rc = parse_raw(s, strlen(s), &al, 0, err);
    attr_free(&al);
    return rc;
}

TEST(round_trip)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct stream *a = stream_fdopen(sv[0]), *b = stream_fdopen(sv[1]);
    stream_set_timeout(b, 2000);
    struct attr_list al = ATTR_LIST_INIT, in = ATTR_LIST_INIT;
    attr_add(&al, "req", "wakeup");
    attr_addn(&al, "bin", "a\0b=,\n", 6);
    attr_add(&al, "rcpt", "x@y");
    attr_add(&al, "rcpt", "z@w");
    attr_add(&al, "empty", "");
    attr_add_int(&al, "n", -12345);
    attr_addf(&al, "f", "%s-%d", "q", 7);
    CHECK(attr_write(a, &al) == 0);
    CHECK(attr_write(a, &al) == 0);
    for (int round = 0; round < 2; round++) {
        CHECK(attr_read(b, &in, ATTR_FRAME_MAX) == 1);
        CHECK(in.n == 7);
        CHECK_STR(attr_get(&in, "req"), "wakeup");
        CHECK(in.v[1].len == 6 && memcmp(in.v[1].value, "a\0b=,\n", 7) == 0);
        CHECK_STR(attr_get(&in, "rcpt"), "x@y");
        CHECK_STR(in.v[3].name, "rcpt");
        CHECK_STR(in.v[3].value, "z@w");
        CHECK_STR(attr_get(&in, "empty"), "");
        CHECK_STR(attr_get(&in, "f"), "q-7");
        long long n = 0;
        CHECK(attr_get_int(&in, "n", &n) == 0 && n == -12345);
        CHECK(attr_get_int(&in, "req", &n) == -1);
        CHECK(attr_get_int(&in, "none", &n) == -1);
        CHECK(attr_get(&in, "none") == NULL);
    }
    stream_close(a);
    CHECK(attr_read(b, &in, ATTR_FRAME_MAX) == 0);
    stream_close(b);
    attr_free(&al);
    attr_free(&in);
}

TEST(wire_format)
{
    int sv[2];
    char buf[64];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct stream *a = stream_fdopen(sv[0]);
    struct attr_list al = ATTR_LIST_INIT;
    attr_add(&al, "req", "wakeup");
    CHECK(attr_write(a, &al) == 0);
    ssize_t n = read(sv[1], buf, sizeof(buf) - 1);
    CHECK(n == 17);
    buf[n > 0 ? n : 0] = '\0';
    CHECK_STR(buf, "10:req=wakeup,0:,");
    stream_close(a);
    close(sv[1]);
    attr_free(&al);
}

TEST(get_int_limits)
{
    struct attr_list al = ATTR_LIST_INIT;
    long long v;
    attr_add(&al, "a", "9223372036854775807");
    attr_add(&al, "b", "9223372036854775808");
    attr_add(&al, "c", "-9223372036854775808");
    attr_add(&al, "d", "12x");
    attr_add(&al, "e", "-");
    attr_add(&al, "f", " 1");
    attr_addn(&al, "g", "1\0002", 3);
    CHECK(attr_get_int(&al, "a", &v) == 0 && v == 9223372036854775807LL);
    CHECK(attr_get_int(&al, "b", &v) == -1);
    CHECK(attr_get_int(&al, "c", &v) == 0 && v == (-9223372036854775807LL - 1));
    CHECK(attr_get_int(&al, "d", &v) == -1);
    CHECK(attr_get_int(&al, "e", &v) == -1);
    CHECK(attr_get_int(&al, "f", &v) == -1);
    CHECK(attr_get_int(&al, "g", &v) == -1);
    attr_free(&al);
}

TEST(good_frames)
{
    int err;
    CHECK(parse_str("0:,", &err) == 1);
    CHECK(parse_str("", &err) == 0);
    CHECK(parse_str("3:a=b,0:,", &err) == 1);
    CHECK(parse_str("4:a==b,0:,", &err) == 1);
}

TEST(malformed_frames)
{
    static const char *bad[] = {
        "x", "3", "3:", "3:a=b", "3:a=b,", "3:a=b;0:,", "03:a=b,0:,", "00:,",
        ":a=b,0:,", "3:ab,0:,", "3:=ab,0:,", "3:A=b,0:,", "4:a-b=,0:,",
        "3 :a=b,0:,", "-3:a=b,0:,", "+3:a=b,0:,", "99999999999:a,", "0:x",
        "0:", "2:a=b,0:,", "4:a=b,0:,", "3:a=b,0:", "\n0:,", "3:a\n=,0:,",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int err = 0;
        int rc = parse_str(bad[i], &err);
        if (rc != -1 || err != EPROTO)
            fprintf(stderr, "  frame \"%s\": rc %d errno %d\n", bad[i], rc, err);
        CHECK(rc == -1);
        CHECK(err == EPROTO);
    }
}

TEST(oversized)
{
    struct attr_list al = ATTR_LIST_INIT;
    int err;
    const char *f = "5:a=bcd,0:,";
    CHECK(parse_raw(f, strlen(f), &al, 11, &err) == 1);
    CHECK(parse_raw(f, strlen(f), &al, 10, &err) == -1 && err == EMSGSIZE);
    CHECK(parse_raw(f, strlen(f), &al, 5, &err) == -1 && err == EMSGSIZE);
    f = "4294967295:a=";
    CHECK(parse_raw(f, strlen(f), &al, 0, &err) == -1 && err == EMSGSIZE);
    CHECK(al.n == 0);
    attr_free(&al);
}

TEST(too_many)
{
    struct attr_list al = ATTR_LIST_INIT;
    size_t n = ATTR_COUNT_MAX + 1, len = n * 6 + 3;
    char *buf = malloc(len), *p = buf;
    for (size_t i = 0; i < n; i++, p += 6)
        memcpy(p, "3:a=b,", 6);
    memcpy(p, "0:,", 3);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    struct stream *w = stream_fdopen(sv[0]), *r = stream_fdopen(sv[1]);
    stream_set_timeout(r, 2000);
    pid_t pid = fork();
    if (pid == 0) {
        stream_write(w, buf, len);
        stream_flush(w);
        _exit(0);
    }
    stream_close(w);
    errno = 0;
    CHECK(attr_read(r, &al, 0) == -1);
    CHECK(errno == EMSGSIZE);
    stream_close(r);
    free(buf);
    attr_free(&al);
    int st;
    CHECK(waitpid(pid, &st, 0) == pid);
}
