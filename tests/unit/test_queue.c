/* Unit tests for the queue: ids, the tree, the writer and the strict reader. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue.h"
#include "str.h"

static char qdir[512];

static const char *make_queue(void)
{
    static int n;
    struct str err = STR_INIT;

    snprintf(qdir, sizeof(qdir), "%s/q%d/queue", unit_tmpdir(), n++);
    if (queue_tree_create(qdir, &err) < 0)
        fprintf(stderr, "queue_tree_create: %s\n", err.s);
    str_free(&err);
    return qdir;
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, data, len) == (ssize_t)len);
    close(fd);
}

static char *read_whole(const char *path, size_t *len)
{
    struct stat st;
    char *buf;
    int fd = open(path, O_RDONLY);

    if (fd < 0 || fstat(fd, &st) < 0)
        return NULL;
    buf = malloc((size_t)st.st_size + 1);
    *len = (size_t)read(fd, buf, (size_t)st.st_size);
    close(fd);
    return buf;
}

TEST(id_unique_sorted)
{
    static char prev[QUEUE_ID_SIZE], id[QUEUE_ID_SIZE];
    int bad = 0;
    time_t now = time(NULL);

    queue_id_new(prev);
    CHECK(strlen(prev) == QUEUE_ID_LEN);
    CHECK(queue_id_valid(prev));
    CHECK(queue_id_time(prev) >= now - 1 && queue_id_time(prev) <= now + 1);
    for (int i = 0; i < 100000; i++) {
        queue_id_new(id);
        if (strcmp(prev, id) >= 0 || !queue_id_valid(id))
            bad++;
        memcpy(prev, id, sizeof(id));
    }
    CHECK(bad == 0);
}

TEST(id_valid)
{
    CHECK(queue_id_valid("0674A1B2C0F4230000A3F"));
    CHECK(!queue_id_valid("0674A1B2CF42400000A3F"));     /* usec 1000000 */
    CHECK(queue_id_valid("0674A1B2CF423F0000A3F"));
    CHECK(!queue_id_valid("0674A1B2C0F4230000A3"));
    CHECK(!queue_id_valid("0674A1B2C0F4230000A3FF"));
    CHECK(!queue_id_valid("0674a1B2C0F4230000A3F"));
    CHECK(!queue_id_valid("../4A1B2C0F4230000A3F"));
    CHECK(!queue_id_valid(""));
    CHECK(!queue_id_valid(NULL));
    CHECK(queue_id_time("0000000100000000000001") == (time_t)-1);
    CHECK(queue_id_time("000000010000000000001") == 16);
}

TEST(tree_modes)
{
    struct stat st;
    char p[600];
    struct str err = STR_INIT;

    make_queue();
    snprintf(p, sizeof(p), "%s/maildrop", qdir);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 01730);
    snprintf(p, sizeof(p), "%s/public", qdir);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0710);
    snprintf(p, sizeof(p), "%s/pid", qdir);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0755);
    snprintf(p, sizeof(p), "%s/incoming", qdir);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0700);
    /* A second call is harmless and repairs modes. */
    chmod(p, 0755);
    CHECK(queue_tree_create(qdir, &err) == 0);
    CHECK(stat(p, &st) == 0 && (st.st_mode & 07777) == 0700);
    str_free(&err);
}

struct collect {
    struct str data;
    size_t calls;
};

static int collect_fn(void *arg, const char *data, size_t len)
{
    struct collect *c = arg;
    CHECK(len <= 65536);
    str_append(&c->data, data, len);
    c->calls++;
    return 0;
}

static int stop_fn(void *arg, const char *data, size_t len)
{
    (void)arg;
    (void)data;
    (void)len;
    return 7;
}

TEST(round_trip)
{
    char id[QUEUE_ID_SIZE], path[600];
    struct str err = STR_INIT;
    struct queue_writer *qw;
    struct queue_file qf;
    struct collect col = { STR_INIT, 0 };
    size_t big = 3u << 20;
    char *content = malloc(big);

    for (size_t i = 0; i < big; i++)
        content[i] = (char)(i * 7 + i / 1000);
    content[0] = '\0';
    make_queue();
    qw = qw_create(qdir, id, &err);
    CHECK(qw != NULL);
    if (qw == NULL)
        return;
    CHECK(queue_id_valid(id));
    CHECK(qw_sender(qw, "a@b.example") == 0);
    CHECK(qw_attr(qw, "client", "host[1.2.3.4]") == 0);
    CHECK(qw_attr(qw, "helo", "x\ny=z") == 0);
    CHECK(qw_recipient(qw, "one@c.example", NULL, NULL) == 0);
    CHECK(qw_recipient(qw, "two@c.example", "rfc822;Two@C.example", "SUCCESS,DELAY") == 0);
    CHECK(qw_recipient(qw, "three@c.example", NULL, "NEVER") == 0);
    /* Odd piece sizes to cross record boundaries. */
    for (size_t off = 0, step = 1; off < big; step = step * 3 + 1) {
        size_t n = step % 200000 + 1;
        if (n > big - off)
            n = big - off;
        CHECK(qw_content(qw, content + off, n) == 0);
        off += n;
    }
    CHECK(qw_content_size(qw) == big);
    snprintf(path, sizeof(path), "%s/tmp/%s", qdir, id);
    CHECK(access(path, F_OK) == 0);
    CHECK(qw_commit(qw, "incoming", &err) == 0);
    CHECK(access(path, F_OK) < 0);

    snprintf(path, sizeof(path), "%s/incoming/%s", qdir, id);
    CHECK(queue_file_open(path, O_RDWR, &qf, &err) == 0);
    CHECK_STR(qf.id, id);
    CHECK_STR(qf.sender, "a@b.example");
    CHECK(qf.arrival >= time(NULL) - 5);
    CHECK_STR(queue_file_attr(&qf, "client"), "host[1.2.3.4]");
    CHECK_STR(queue_file_attr(&qf, "helo"), "x\ny=z");
    CHECK(queue_file_attr(&qf, "none") == NULL);
    CHECK(qf.nrcpt == 3);
    if (qf.nrcpt == 3) {
        CHECK_STR(qf.rcpt[0].addr, "one@c.example");
        CHECK(qf.rcpt[0].orcpt == NULL && qf.rcpt[0].notify == NULL);
        CHECK_STR(qf.rcpt[1].addr, "two@c.example");
        CHECK_STR(qf.rcpt[1].orcpt, "rfc822;Two@C.example");
        CHECK_STR(qf.rcpt[1].notify, "SUCCESS,DELAY");
        CHECK(qf.rcpt[2].orcpt == NULL);
        CHECK_STR(qf.rcpt[2].notify, "NEVER");
        CHECK(!qf.rcpt[0].done && !qf.rcpt[1].done && !qf.rcpt[2].done);
    }
    CHECK(qf.content_size == big);
    CHECK(queue_file_content(&qf, collect_fn, &col) == 0);
    CHECK(col.data.len == big && memcmp(col.data.s, content, big) == 0);
    CHECK(queue_file_content(&qf, stop_fn, NULL) == 7);

    CHECK(queue_mark_done(&qf, 1) == 0);
    CHECK(queue_mark_done(&qf, 1) == 0);
    CHECK(queue_mark_done(&qf, 3) < 0 && errno == EINVAL);
    CHECK(queue_file_sync(&qf) == 0);
    queue_file_close(&qf);
    CHECK(qf.fd == -1);

    CHECK(queue_file_open(path, O_RDONLY, &qf, &err) == 0);
    CHECK(qf.nrcpt == 3 && !qf.rcpt[0].done && qf.rcpt[1].done && !qf.rcpt[2].done);
    queue_file_close(&qf);

    CHECK(queue_move(qdir, "incoming", "active", id) == 0);
    snprintf(path, sizeof(path), "%s/active/%s", qdir, id);
    CHECK(access(path, F_OK) == 0);
    CHECK(queue_move(qdir, "incoming", "active", id) < 0 && errno == ENOENT);
    CHECK(queue_move(qdir, "incoming", "active", "../x") < 0 && errno == EINVAL);
    {
        int dfd = open(qdir, O_RDONLY | O_DIRECTORY);
        char rel[64];
        snprintf(rel, sizeof(rel), "active/%s", id);
        CHECK(queue_file_openat(dfd, rel, O_RDONLY, &qf, &err) == 0);
        CHECK_STR(qf.id, id);
        queue_file_close(&qf);
        close(dfd);
    }
    CHECK(queue_file_open("/nonexistent-queue-file", O_RDONLY, &qf, &err) < 0 &&
          errno == ENOENT);
    str_free(&col.data);
    str_free(&err);
    free(content);
}

TEST(empty_content_and_null_sender)
{
    char id[QUEUE_ID_SIZE], path[600];
    struct str err = STR_INIT;
    struct queue_writer *qw;
    struct queue_file qf;
    struct collect col = { STR_INIT, 0 };

    make_queue();
    qw = qw_create(qdir, id, &err);
    CHECK(qw_sender(qw, "") == 0);
    CHECK(qw_recipient(qw, "x@y", NULL, NULL) == 0);
    CHECK(qw_commit(qw, "incoming", &err) == 0);
    snprintf(path, sizeof(path), "%s/incoming/%s", qdir, id);
    CHECK(queue_file_open(path, O_RDONLY, &qf, &err) == 0);
    CHECK_STR(qf.sender, "");
    CHECK(qf.content_size == 0);
    CHECK(queue_file_content(&qf, collect_fn, &col) == 0 && col.calls == 0);
    queue_file_close(&qf);
    str_free(&err);
}

TEST(writer_order)
{
    char id[QUEUE_ID_SIZE], path[600];
    struct str err = STR_INIT;
    struct queue_writer *qw;
    int fd;

    make_queue();
    qw = qw_create(qdir, id, &err);
    CHECK(qw_recipient(qw, "x@y", NULL, NULL) < 0);   /* before the sender */
    CHECK(qw_sender(qw, "a@b") < 0);                  /* failed writers stay failed */
    CHECK(qw_commit(qw, "incoming", &err) < 0);
    snprintf(path, sizeof(path), "%s/tmp/%s", qdir, id);
    CHECK(access(path, F_OK) < 0);
    snprintf(path, sizeof(path), "%s/incoming/%s", qdir, id);
    CHECK(access(path, F_OK) < 0);

    qw = qw_create(qdir, id, &err);
    CHECK(qw_sender(qw, "a@b") == 0);
    CHECK(qw_content(qw, "x", 1) < 0);                 /* no recipient yet */
    qw_abort(qw);

    qw = qw_create(qdir, id, &err);
    CHECK(qw_sender(qw, "a@b") == 0);
    CHECK(qw_recipient(qw, "x@y", NULL, NULL) == 0);
    CHECK(qw_attr(qw, "late", "1") < 0);                /* after recipients */
    qw_abort(qw);

    qw = qw_create(qdir, id, &err);
    CHECK(qw_sender(qw, "a@b") == 0);
    CHECK(qw_attr(qw, "Bad-Name", "1") < 0);
    qw_abort(qw);

    qw = qw_create(qdir, id, &err);
    CHECK(qw_sender(qw, "a@b") == 0);
    CHECK(qw_sender(qw, "a@b") < 0);                    /* twice */
    qw_abort(qw);

    /* Never overwrite: a file already there under the same name stays. */
    qw = qw_create(qdir, id, &err);
    CHECK(qw_sender(qw, "a@b") == 0);
    CHECK(qw_recipient(qw, "x@y", NULL, NULL) == 0);
    snprintf(path, sizeof(path), "%s/incoming/%s", qdir, id);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    CHECK(write(fd, "keep", 4) == 4);
    close(fd);
    str_clear(&err);
    CHECK(qw_commit(qw, "incoming", &err) < 0 && errno == EEXIST);
    CHECK(err.len > 0);
    {
        size_t len = 0;
        char *s = read_whole(path, &len);
        CHECK(s != NULL && len == 4 && memcmp(s, "keep", 4) == 0);
        free(s);
    }
    snprintf(path, sizeof(path), "%s/tmp/%s", qdir, id);
    CHECK(access(path, F_OK) < 0);
    str_free(&err);
}

/* Opens bytes as a queue file: 0 or errno. */
static int try_bytes(const void *data, size_t len)
{
    char path[600];
    struct queue_file qf;
    struct str err = STR_INIT;
    int rc;

    snprintf(path, sizeof(path), "%s/try", unit_tmpdir());
    write_file(path, data, len);
    rc = queue_file_open(path, O_RDONLY, &qf, &err);
    if (rc == 0) {
        queue_file_close(&qf);
    } else {
        rc = errno;
        if (rc == EINVAL)
            CHECK(err.len > 0);
    }
    str_free(&err);
    return rc;
}

#define GOOD_HEAD "V1:1\nT10:1700000000\nS3:a@b\n"

TEST(truncation_everywhere)
{
    char id[QUEUE_ID_SIZE], path[600];
    struct str err = STR_INIT;
    struct queue_writer *qw;
    char *data;
    size_t len = 0;
    int bad = 0;

    make_queue();
    qw = qw_create(qdir, id, &err);
    qw_sender(qw, "s@x");
    qw_attr(qw, "k", "v");
    qw_recipient(qw, "r@x", "rfc822;r@x", "NEVER");
    qw_recipient(qw, "q@x", NULL, NULL);
    qw_content(qw, "hello\0world\n", 12);
    CHECK(qw_commit(qw, "incoming", &err) == 0);
    snprintf(path, sizeof(path), "%s/incoming/%s", qdir, id);
    data = read_whole(path, &len);
    CHECK(data != NULL && len > 50);
    CHECK(try_bytes(data, len) == 0);
    for (size_t i = 0; i < len; i++)
        if (try_bytes(data, i) != EINVAL)
            bad++;
    CHECK(bad == 0);
    /* Each single byte changed to junk is never accepted silently as the same
     * envelope; mostly it is corrupt.  At least it must never crash. */
    for (size_t i = 0; i < len; i++) {
        char save = data[i];
        data[i] = '\377';
        (void)try_bytes(data, len);
        data[i] = save;
    }
    free(data);
    str_free(&err);
}

TEST(corrupt_files)
{
    static const char *bad[] = {
        "",
        "V1:2\n" "T10:1700000000\nS3:a@b\nR3:x@y\nE0:\n",             /* version */
        "V2:10\nT10:1700000000\nS3:a@b\nR3:x@y\nE0:\n",
        "T10:1700000000\nV1:1\nS3:a@b\nR3:x@y\nE0:\n",                /* V not first */
        GOOD_HEAD "R+3:x@y\nE0:\n",
        GOOD_HEAD "R-3:x@y\nE0:\n",
        GOOD_HEAD "R 3:x@y\nE0:\n",
        GOOD_HEAD "R03:x@y\nE0:\n",
        GOOD_HEAD "R:x@y\nE0:\n",
        GOOD_HEAD "R4:x@y\nE0:\n",                                    /* length too long */
        GOOD_HEAD "R2:x@y\nE0:\n",                                    /* too short */
        GOOD_HEAD "R99999999:x@y\nE0:\n",
        GOOD_HEAD "R1048577:x@y\nE0:\n",
        GOOD_HEAD "R18446744073709551619:x@y\nE0:\n",
        GOOD_HEAD "R3:x@y\nE0:\nX",                                   /* after E */
        GOOD_HEAD "R3:x@y\nE0:\n\n",
        GOOD_HEAD "R3:x@y\nE1:x\n",
        GOOD_HEAD "R3:x@y\n",                                         /* no E */
        GOOD_HEAD "R3:x@y\nC1:a\nX1:a\nE0:\n",                        /* unknown in content */
        GOOD_HEAD "R3:x@y\nC1:a\nR3:x@y\nE0:\n",
        GOOD_HEAD "E0:\n",                                            /* no recipient */
        "V1:1\nT10:1700000000\nR3:x@y\nE0:\n",                        /* no sender */
        "V1:1\nS3:a@b\nR3:x@y\nE0:\n",                                /* no time */
        "V1:1\nT2:-1\nS3:a@b\nR3:x@y\nE0:\n",
        GOOD_HEAD "O3:x@y\nE0:\n",                                    /* dangling ORCPT */
        GOOD_HEAD "O3:x@y\nO3:x@y\nR3:x@y\nE0:\n",
        GOOD_HEAD "R3:x@y\nA3:k=v\nE0:\n",                            /* attr late */
        GOOD_HEAD "A3:=kv\nR3:x@y\nE0:\n",
        GOOD_HEAD "A2:kv\nR3:x@y\nE0:\n",
        GOOD_HEAD "A3:K=v\nR3:x@y\nE0:\n",                            /* bad name */
        GOOD_HEAD "A5:a-b=v\nR3:x@y\nE0:\n",
        GOOD_HEAD "S3:a@b\nR3:x@y\nE0:\n",                            /* two senders */
        GOOD_HEAD "R0:\nE0:\n",
        GOOD_HEAD "3:x@y\nE0:\n",
        GOOD_HEAD "\001:x@y\nE0:\n",
        GOOD_HEAD "R3:x@yE0:\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = try_bytes(bad[i], strlen(bad[i]));
        if (rc != EINVAL)
            fprintf(stderr, "  case %zu accepted (%d)\n", i, rc);
        CHECK(rc == EINVAL);
    }
    /* NUL inside a recipient. */
    {
        static const char nul[] = GOOD_HEAD "R3:x\0y\nE0:\n";
        CHECK(try_bytes(nul, sizeof(nul) - 1) == EINVAL);
    }
}

TEST(forward_compatible)
{
    struct queue_file qf;
    struct str err = STR_INIT;
    char path[600];
    static const char ok[] = GOOD_HEAD "Z5:later\nA3:k=v\nR3:x@y\nq0:\nC2:hi\nC0:\nE0:\n";

    CHECK(try_bytes(ok, sizeof(ok) - 1) == 0);
    snprintf(path, sizeof(path), "%s/try", unit_tmpdir());
    CHECK(queue_file_open(path, O_RDWR, &qf, &err) == 0);
    CHECK(qf.nrcpt == 1 && qf.content_size == 2);
    CHECK_STR(queue_file_attr(&qf, "k"), "v");
    /* mark_done refuses when the byte is not R or D. */
    qf.rcpt[0].type_offset = 0;
    CHECK(queue_mark_done(&qf, 0) < 0 && errno == EINVAL);
    queue_file_close(&qf);
    str_free(&err);
}

/* Regression: a symbolic link in place of a queue subdirectory was followed by the
 * stat and chmod (master runs queue_tree_create as root). */
TEST(tree_refuses_symlinked_subdir)
{
    struct stat st;
    char p[600], target[600];
    struct str err = STR_INIT;

    make_queue();
    snprintf(target, sizeof(target), "%s/elsewhere", unit_tmpdir());
    CHECK(mkdir(target, 0777) == 0 || errno == EEXIST);
    CHECK(chmod(target, 0777) == 0);
    snprintf(p, sizeof(p), "%s/hold", qdir);
    CHECK(rmdir(p) == 0);
    CHECK(symlink(target, p) == 0);
    CHECK(queue_tree_create(qdir, &err) == -1);
    CHECK(err.s != NULL && strstr(err.s, "not a directory") != NULL);
    CHECK(stat(target, &st) == 0 && (st.st_mode & 07777) == 0777);
    str_free(&err);
}

/* Regression: a FIFO in a queue directory made the reader block in open(2) (and
 * maildrop/ is writable by a group); now it is refused at once as corrupt. */
TEST(reader_refuses_fifo)
{
    struct queue_file qf;
    struct str err = STR_INIT;
    char p[600];

    make_queue();
    snprintf(p, sizeof(p), "%s/maildrop/0674A1B2C0F4240000A3K9", qdir);
    CHECK(mkfifo(p, 0600) == 0);
    alarm(10);                      /* a hang fails the program, not the machine */
    CHECK(queue_file_open(p, O_RDONLY, &qf, &err) == -1);
    CHECK(errno == EINVAL);
    CHECK(err.s != NULL && strstr(err.s, "not a regular file") != NULL);
    alarm(0);
    snprintf(p, sizeof(p), "%s/maildrop", qdir);
    CHECK(queue_file_open(p, O_RDONLY, &qf, &err) == -1);   /* a directory */
    str_free(&err);
}

TEST(defer_record)
{
    const char *q = make_queue();
    struct str err = STR_INIT;
    struct queue_defer d;
    char id[QUEUE_ID_SIZE], path[700];
    struct queue_defer_rcpt in[2] = {
        { "a@x.test", "4.4.1 connect to x.test: refused\n(second line)", 100, 400 },
        { "b@x.test", "", 100, 400 },
    };

    queue_id_new(id);
    CHECK(queue_defer_read(q, id, &d, &err) == -1 && errno == ENOENT);
    CHECK(queue_defer_write(q, id, in, 2, &err) == 0);
    CHECK(queue_defer_read(q, id, &d, &err) == 0);
    CHECK(d.n == 2);
    if (d.n == 2) {
        CHECK_STR(d.r[0].addr, "a@x.test");
        CHECK_STR(d.r[0].reason, "4.4.1 connect to x.test: refused\n(second line)");
        CHECK(d.r[0].attempt == 100 && d.r[0].next == 400);
        CHECK_STR(d.r[1].reason, "");
        CHECK(queue_defer_find(&d, "b@x.test") == &d.r[1]);
        CHECK(queue_defer_find(&d, "c@x.test") == NULL);
    }
    queue_defer_free(&d);
    /* replaced whole */
    CHECK(queue_defer_write(q, id, in + 1, 1, &err) == 0);
    CHECK(queue_defer_read(q, id, &d, &err) == 0 && d.n == 1);
    queue_defer_free(&d);

    /* hostile files: truncated, bad lengths, no version, trailing bytes */
    snprintf(path, sizeof(path), "%s/%s/%s", q, QUEUE_DEFER_DIR, id);
    static const char *const bad[] = {
        "V1:1\nR3:a@b\n",                   /* no E */
        "V1:1\nR99:a@b\nE0:\n",             /* length past the end */
        "R3:a@b\nE0:\n",                    /* no version */
        "V1:2\nE0:\n",                      /* unknown version */
        "V1:1\nW1:x\nE0:\n",                /* reason before any recipient */
        "V1:1\nR3:a@b\nA2:-1\nE0:\n",       /* negative time */
        "V1:1\nE0:\nextra",                 /* bytes after E */
        "V1:1\nR18446744073709551617:x\n",  /* length overflow */
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(path, bad[i], strlen(bad[i]));
        CHECK(queue_defer_read(q, id, &d, &err) == -1 && errno == EINVAL);
        CHECK(d.n == 0 && d.r == NULL);
    }
    /* unknown record types of a later version are skipped */
    write_file(path, "V1:1\nR3:a@b\nZ2:zz\nE0:\n", 22);
    CHECK(queue_defer_read(q, id, &d, &err) == 0 && d.n == 1);
    queue_defer_free(&d);
    /* never through a symbolic link, never outside the queue */
    unlink(path);
    CHECK(symlink("/etc/passwd", path) == 0);
    CHECK(queue_defer_read(q, id, &d, &err) == -1);
    CHECK(queue_defer_read(q, "../../etc/passwd", &d, &err) == -1 && errno == EINVAL);
    CHECK(queue_defer_write(q, "../x", in, 1, &err) == -1);
    CHECK(queue_defer_remove(q, id) == 0);
    CHECK(queue_defer_remove(q, id) == 0);      /* already gone: fine */
    str_free(&err);
}

/* Envelope edits before the content: the file holds the edited envelope only. */
TEST(envelope_edits)
{
    char id[QUEUE_ID_SIZE], path[600];
    struct str err = STR_INIT;
    struct queue_writer *qw;
    struct queue_file qf;

    make_queue();
    qw = qw_create(qdir, id, &err);
    CHECK(qw != NULL);
    if (qw == NULL)
        return;
    CHECK(qw_sender(qw, "old@b.example") == 0);
    CHECK(qw_attr(qw, "protocol", "ESMTP") == 0);
    CHECK(qw_recipient(qw, "one@c.example", "rfc822;One@c.example", NULL) == 0);
    CHECK(qw_recipient(qw, "two@c.example", NULL, "NEVER") == 0);
    CHECK(qw_rcpt_count(qw) == 2);
    CHECK_STR(qw_rcpt_orcpt(qw, 0), "rfc822;One@c.example");
    CHECK(qw_rcpt_addr(qw, 2) == NULL);
    CHECK(qw_edit_sender(qw, "new@b.example") == 0);
    CHECK_STR(qw_envelope_sender(qw), "new@b.example");
    CHECK(qw_edit_attr(qw, "protocol", "ESMTPS") == 0);
    CHECK(qw_edit_attr(qw, "content_filter", "smtp:[127.0.0.1]:10024") == 0);
    CHECK(qw_edit_attr(qw, "bad name", "x") < 0);
    qw_abort(qw);

    qw = qw_create(qdir, id, &err);
    CHECK(qw != NULL);
    if (qw == NULL)
        return;
    CHECK(qw_sender(qw, "old@b.example") == 0);
    CHECK(qw_attr(qw, "protocol", "ESMTP") == 0);
    CHECK(qw_recipient(qw, "one@c.example", "rfc822;One@c.example", NULL) == 0);
    CHECK(qw_recipient(qw, "two@c.example", NULL, "NEVER") == 0);
    CHECK(qw_edit_sender(qw, "new@b.example") == 0);
    CHECK(qw_edit_attr(qw, "protocol", "ESMTPS") == 0);
    CHECK(qw_edit_attr(qw, "content_filter", "smtp:[127.0.0.1]:10024") == 0);
    CHECK(qw_edit_del_rcpt(qw, 0) == 0);
    CHECK(qw_recipient(qw, "three@c.example", NULL, NULL) == 0);
    CHECK(qw_rcpt_count(qw) == 2);
    CHECK(qw_content(qw, "Subject: x\n\nbody\n", 17) == 0);
    /* no edit once the content has begun */
    CHECK(qw_edit_sender(qw, "late@b.example") < 0);
    CHECK(qw_commit(qw, "incoming", &err) < 0);

    qw = qw_create(qdir, id, &err);
    CHECK(qw != NULL);
    if (qw == NULL)
        return;
    CHECK(qw_sender(qw, "old@b.example") == 0);
    CHECK(qw_attr(qw, "protocol", "ESMTP") == 0);
    CHECK(qw_recipient(qw, "one@c.example", "rfc822;One@c.example", NULL) == 0);
    CHECK(qw_recipient(qw, "two@c.example", NULL, "NEVER") == 0);
    CHECK(qw_edit_sender(qw, "new@b.example") == 0);
    CHECK(qw_edit_attr(qw, "protocol", "ESMTPS") == 0);
    CHECK(qw_edit_attr(qw, "content_filter", "smtp:[127.0.0.1]:10024") == 0);
    CHECK(qw_edit_del_rcpt(qw, 0) == 0);
    CHECK(qw_edit_del_rcpt(qw, 5) < 0);
    qw_abort(qw);

    /* the whole sequence, committed */
    qw = qw_create(qdir, id, &err);
    CHECK(qw != NULL);
    if (qw == NULL)
        return;
    CHECK(qw_sender(qw, "old@b.example") == 0);
    CHECK(qw_attr(qw, "protocol", "ESMTP") == 0);
    CHECK(qw_recipient(qw, "one@c.example", "rfc822;One@c.example", NULL) == 0);
    CHECK(qw_recipient(qw, "two@c.example", NULL, "NEVER") == 0);
    CHECK(qw_edit_sender(qw, "new@b.example") == 0);
    CHECK(qw_edit_attr(qw, "protocol", "ESMTPS") == 0);
    CHECK(qw_edit_attr(qw, "content_filter", "smtp:[127.0.0.1]:10024") == 0);
    CHECK(qw_edit_del_rcpt(qw, 0) == 0);
    CHECK(qw_recipient(qw, "three@c.example", NULL, NULL) == 0);
    CHECK(qw_content(qw, "Subject: x\n\nbody\n", 17) == 0);
    CHECK(qw_commit(qw, "incoming", &err) == 0);
    snprintf(path, sizeof(path), "%s/incoming/%s", qdir, id);
    CHECK(queue_file_open(path, O_RDONLY, &qf, &err) == 0);
    CHECK_STR(qf.sender, "new@b.example");
    CHECK_STR(queue_file_attr(&qf, "protocol"), "ESMTPS");
    CHECK_STR(queue_file_attr(&qf, "content_filter"), "smtp:[127.0.0.1]:10024");
    CHECK(qf.nrcpt == 2);
    if (qf.nrcpt == 2) {
        CHECK_STR(qf.rcpt[0].addr, "two@c.example");
        CHECK_STR(qf.rcpt[0].notify, "NEVER");
        CHECK_STR(qf.rcpt[1].addr, "three@c.example");
    }
    CHECK(qf.content_size == 17);
    queue_file_close(&qf);

    /* every recipient removed: never committed */
    qw = qw_create(qdir, id, &err);
    CHECK(qw != NULL);
    if (qw == NULL)
        return;
    CHECK(qw_sender(qw, "") == 0);
    CHECK(qw_recipient(qw, "one@c.example", NULL, NULL) == 0);
    CHECK(qw_edit_del_rcpt(qw, 0) == 0);
    CHECK(qw_commit(qw, "incoming", &err) < 0);
    snprintf(path, sizeof(path), "%s/incoming/%s", qdir, id);
    CHECK(access(path, F_OK) < 0);
    str_free(&err);
}
