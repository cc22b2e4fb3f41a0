/* Unit tests for lib/mail/imap_index.c: round trip, keys, and every truncation and
 * many corruptions of a saved file ignored (an empty index, a reason), never a crash. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imap_index.h"
#include "str.h"
#include "unit.h"

static void entry(struct imap_index_entry *e, uint32_t uid, const char *base)
{
    static char env[64], bs[64];

    snprintf(env, sizeof(env), "(NIL \"subject %u\" NIL NIL NIL NIL NIL NIL NIL NIL)", uid);
    snprintf(bs, sizeof(bs), "(\"text\" \"plain\" NIL NIL NIL \"7bit\" %u 1)", uid);
    memset(e, 0, sizeof(*e));
    e->uid = uid;
    e->size = 1000 + uid;
    e->base = base;
    e->envelope = env;
    e->envelope_len = strlen(env);
    e->body = bs;
    e->body_len = strlen(bs);
    e->bodystructure = bs;
    e->bodystructure_len = strlen(bs);
}

static void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, data, len) == (ssize_t)len);
    close(fd);
}

static void read_file(const char *path, struct str *out)
{
    char buf[4096];
    int fd = open(path, O_RDONLY);
    ssize_t n;

    str_clear(out);
    while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
        str_append(out, buf, (size_t)n);
    if (fd >= 0)
        close(fd);
}

static bool keep_odd(void *arg, uint32_t uid, const char *base)
{
    (void)arg;
    (void)base;
    return uid % 2 == 1;
}

TEST(round_trip_and_keys)
{
    const char *dir = unit_tmpdir();
    struct str why = STR_INIT, err = STR_INIT;
    struct imap_index *ix = imap_index_open(dir, 42, 1 << 20, &why);
    struct imap_index_entry e;
    const struct imap_index_entry *g;
    char base[32];

    CHECK_STR(why.s, "");
    CHECK(imap_index_count(ix) == 0);
    for (uint32_t u = 1; u <= 300; u++) {
        snprintf(base, sizeof(base), "170000%u.M1P2.host", u);
        entry(&e, u, base);
        CHECK(imap_index_put(ix, &e));
    }
    entry(&e, 5, "bad/name");
    CHECK(!imap_index_put(ix, &e));
    entry(&e, 5, "with:colon");
    CHECK(!imap_index_put(ix, &e));
    CHECK(imap_index_save(ix, NULL, NULL, &err) == 0);
    imap_index_close(ix);

    ix = imap_index_open(dir, 42, 1 << 20, &why);
    CHECK_STR(why.s, "");
    CHECK(imap_index_count(ix) == 300);
    g = imap_index_get(ix, 7, "1700007.M1P2.host", 17);
    CHECK(g != NULL && g->size == 1007);
    CHECK(g != NULL && strstr(g->envelope, "subject 7") != NULL);
    CHECK(g != NULL && g->bodystructure_len == strlen(g->bodystructure));
    CHECK(imap_index_get(ix, 7, "1700008.M1P2.host", 17) == NULL);   /* another file */
    CHECK(imap_index_get(ix, 301, "1700301.M1P2.host", 17) == NULL);
    /* the keep filter drops entries on save */
    entry(&e, 7, "1700007.M1P2.host");
    CHECK(imap_index_put(ix, &e));
    CHECK(imap_index_save(ix, keep_odd, NULL, &err) == 0);
    imap_index_close(ix);
    ix = imap_index_open(dir, 42, 1 << 20, &why);
    CHECK(imap_index_count(ix) == 150);
    imap_index_close(ix);
    /* another UIDVALIDITY: not used */
    ix = imap_index_open(dir, 43, 1 << 20, &why);
    CHECK(imap_index_count(ix) == 0);
    CHECK_STR(why.s, "of another UIDVALIDITY");
    imap_index_close(ix);
    str_free(&why);
    str_free(&err);
}

TEST(size_bound)
{
    const char *dir = unit_tmpdir();
    struct str why = STR_INIT, err = STR_INIT, data = STR_INIT, path = STR_INIT;
    struct imap_index *ix = imap_index_open(dir, 1, 4096, &why);
    struct imap_index_entry e;
    char base[32];

    for (uint32_t u = 1; u <= 200; u++) {
        snprintf(base, sizeof(base), "b%u", u);
        entry(&e, u, base);
        CHECK(imap_index_put(ix, &e));
    }
    CHECK(imap_index_save(ix, NULL, NULL, &err) == 0);
    imap_index_close(ix);
    str_printf(&path, "%s/%s", dir, IMAP_INDEX_FILE);
    read_file(path.s, &data);
    CHECK(data.len <= 4096 && data.len > 1000);
    ix = imap_index_open(dir, 1, 4096, &why);
    CHECK_STR(why.s, "");
    CHECK(imap_index_count(ix) > 5 && imap_index_count(ix) < 200);
    CHECK(imap_index_get(ix, 1, "b1", 2) != NULL);
    imap_index_close(ix);
    /* a file over the bound of the reader is ignored */
    ix = imap_index_open(dir, 1, 1024, &why);
    CHECK(imap_index_count(ix) == 0);
    CHECK(why.len > 0);
    imap_index_close(ix);
    str_free(&why);
    str_free(&err);
    str_free(&data);
    str_free(&path);
}

TEST(truncated_and_corrupt_are_ignored)
{
    const char *dir = unit_tmpdir();
    struct str why = STR_INIT, err = STR_INIT, good = STR_INIT, path = STR_INIT;
    struct imap_index *ix = imap_index_open(dir, 9, 1 << 20, &why);
    struct imap_index_entry e;
    char base[32];

    for (uint32_t u = 1; u <= 20; u++) {
        snprintf(base, sizeof(base), "m%u", u);
        entry(&e, u, base);
        CHECK(imap_index_put(ix, &e));
    }
    CHECK(imap_index_save(ix, NULL, NULL, &err) == 0);
    imap_index_close(ix);
    str_printf(&path, "%s/%s", dir, IMAP_INDEX_FILE);
    read_file(path.s, &good);
    /* every truncation */
    for (size_t len = 0; len < good.len; len++) {
        write_file(path.s, good.s, len);
        ix = imap_index_open(dir, 9, 1 << 20, &why);
        CHECK(imap_index_count(ix) == 0);
        CHECK(why.len > 0 || len == 0);
        imap_index_close(ix);
    }
    /* every byte changed */
    for (size_t i = 0; i < good.len; i++) {
        struct str bad = STR_INIT;
        str_set(&bad, good.s, good.len);
        bad.s[i] ^= (char)(1 + i % 7);
        write_file(path.s, bad.s, bad.len);
        ix = imap_index_open(dir, 9, 1 << 20, &why);
        CHECK(imap_index_count(ix) == 0);
        CHECK(why.len > 0);
        imap_index_close(ix);
        str_free(&bad);
    }
    /* garbage, and a file that is not there */
    write_file(path.s, "postern-imap-index 1 9\n1 2 3 4\nend 1 0\n", 38);
    ix = imap_index_open(dir, 9, 1 << 20, &why);
    CHECK(imap_index_count(ix) == 0);
    imap_index_close(ix);
    unlink(path.s);
    ix = imap_index_open(dir, 9, 1 << 20, &why);
    CHECK(imap_index_count(ix) == 0);
    CHECK_STR(why.s, "");
    /* rebuilt: a put and a save write a good file again */
    entry(&e, 3, "m3");
    CHECK(imap_index_put(ix, &e));
    CHECK(imap_index_save(ix, NULL, NULL, &err) == 0);
    imap_index_close(ix);
    ix = imap_index_open(dir, 9, 1 << 20, &why);
    CHECK(imap_index_count(ix) == 1);
    imap_index_close(ix);
    str_free(&why);
    str_free(&err);
    str_free(&good);
    str_free(&path);
}

TEST(base_name)
{
    const char *b;
    size_t n;

    imap_index_base("cur/123.M4P5.host,S=10:2,FS", &b, &n);
    CHECK(n == 18 && memcmp(b, "123.M4P5.host,S=10", 18) == 0);
    imap_index_base("new/123.host", &b, &n);
    CHECK(n == 8 && memcmp(b, "123.host", 8) == 0);
}
