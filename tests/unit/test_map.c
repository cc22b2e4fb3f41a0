/* Unit tests for lib/mail/map.c and lib/mail/map_build.c: each map type, building, duplicate
 * keys, reopening after a rebuild, failed lookups. */
#include "unit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "map.h"
#include "str.h"

static const char *tmpfile_with(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", unit_tmpdir(), name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static int lookup(struct map *m, const char *key, struct str *v)
{
    struct str err = STR_INIT;
    int r = map_lookup(m, key, v, &err);
    if (r < 0)
        fprintf(stderr, "  lookup %s: %s\n", key, err.s ? err.s : "");
    str_free(&err);
    return r;
}

TEST(build_and_cdb_lookup)
{
    struct str err = STR_INIT, v = STR_INIT, spec = STR_INIT;
    const char *path = tmpfile_with("vmailbox",
        "# comment\n"
        "\n"
        "Alice@Example.COM   example.com/alice/\n"
        "bob@example.com\texample.com/bob/\n"
        "list@example.com a@example.com,\n"
        "    b@example.com\n"
        "\t# comment in between\n"
        "  c@example.com\n"
        "@example.org catchall@example.com\r\n");
    CHECK(map_build(path, &err) == 4);
    str_printf(&spec, "cdb:%s", path);
    struct map *m = map_open(spec.s, &err);
    CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "  %s\n", err.s);
        return;
    }
    CHECK(lookup(m, "alice@example.com", &v) == 1);
    CHECK_STR(v.s, "example.com/alice/");
    CHECK(lookup(m, "ALICE@example.com", &v) == 1);
    CHECK(lookup(m, "bob@example.com", &v) == 1);
    CHECK_STR(v.s, "example.com/bob/");
    CHECK(lookup(m, "list@example.com", &v) == 1);
    CHECK_STR(v.s, "a@example.com, b@example.com c@example.com");
    CHECK(lookup(m, "@example.org", &v) == 1);
    CHECK_STR(v.s, "catchall@example.com");
    CHECK(lookup(m, "nobody@example.com", &v) == 0);
    CHECK(lookup(m, "", &v) == 0);
    map_close(m);
    str_free(&err);
    str_free(&v);
    str_free(&spec);
}

static void expect_build_error(const char *text, const char *want)
{
    struct str err = STR_INIT;
    const char *path = tmpfile_with("bad", text);
    CHECK(map_build(path, &err) == -1);
    if (err.s == NULL || strstr(err.s, want) == NULL) {
        fprintf(stderr, "  error \"%s\" lacks \"%s\"\n", err.s ? err.s : "", want);
        unit_failures_in_test++;
    }
    str_free(&err);
}

TEST(build_errors)
{
    expect_build_error("a x\nb y\nA z\n", "bad:3: duplicate key \"a\"");
    expect_build_error("  x y\n", "bad:1: continuation");
    expect_build_error("a\n", "bad:1: expected");
    expect_build_error("a b\x01c\n", "bad:1: control character");
    expect_build_error("a b\nc d\x7f\n", "bad:2: control character");
    struct str err = STR_INIT;
    CHECK(map_build("/nonexistent/file", &err) == -1);
    CHECK(strstr(err.s, "/nonexistent/file") != NULL);
    /* A failed build leaves no temporary file behind and keeps the old table. */
    char path[512];
    snprintf(path, sizeof(path), "%s/bad.cdb", unit_tmpdir());
    CHECK(access(path, F_OK) != 0);
    str_free(&err);
}

TEST(empty_map)
{
    struct str err = STR_INIT, v = STR_INIT, spec = STR_INIT;
    const char *path = tmpfile_with("empty", "# nothing\n");
    CHECK(map_build(path, &err) == 0);
    str_printf(&spec, "cdb:%s", path);
    struct map *m = map_open(spec.s, &err);
    CHECK(m != NULL);
    if (m != NULL)
        CHECK(lookup(m, "x", &v) == 0);
    map_close(m);
    str_free(&err);
    str_free(&v);
    str_free(&spec);
}

TEST(reopen_after_rebuild)
{
    struct str err = STR_INIT, v = STR_INIT, spec = STR_INIT;
    const char *path = tmpfile_with("re", "k one\n");
    char p[512];
    snprintf(p, sizeof(p), "%s", path);
    CHECK(map_build(p, &err) == 1);
    str_printf(&spec, "cdb:%s", p);
    struct map *m = map_open(spec.s, &err);
    CHECK(m != NULL);
    if (m == NULL)
        return;
    CHECK(lookup(m, "k", &v) == 1);
    CHECK_STR(v.s, "one");
    tmpfile_with("re", "k two\nnew yes\n");
    CHECK(map_build(p, &err) == 2);
    sleep(1);           /* at most one stat a second */
    usleep(100000);
    CHECK(lookup(m, "k", &v) == 1);
    CHECK_STR(v.s, "two");
    CHECK(lookup(m, "new", &v) == 1);
    map_close(m);
    str_free(&err);
    str_free(&v);
    str_free(&spec);
}

TEST(io_error_is_not_not_found)
{
    struct str err = STR_INIT, v = STR_INIT, spec = STR_INIT;
    char p[512], cdb[600];
    snprintf(p, sizeof(p), "%s", tmpfile_with("gone", "k v\n"));
    snprintf(cdb, sizeof(cdb), "%s.cdb", p);
    CHECK(map_build(p, &err) == 1);
    str_printf(&spec, "cdb:%s", p);
    struct map *m = map_open(spec.s, &err);
    CHECK(m != NULL);
    if (m == NULL)
        return;
    /* The table disappears: lookups fail, they do not answer "not found". */
    CHECK(unlink(cdb) == 0);
    sleep(1);
    usleep(100000);
    str_clear(&err);
    CHECK(map_lookup(m, "nokey", &v, &err) == -1);
    CHECK(err.s != NULL && strstr(err.s, "gone.cdb") != NULL);
    CHECK(map_lookup(m, "k", &v, NULL) == -1);
    map_close(m);

    /* A file that is not a cdb table. */
    tmpfile_with("junk.cdb", "x");
    str_clear(&spec);
    str_printf(&spec, "cdb:%s/junk", unit_tmpdir());
    str_clear(&err);
    CHECK(map_open(spec.s, &err) == NULL);
    /* A missing table cannot be opened. */
    CHECK(map_open("cdb:/nonexistent/map", &err) == NULL);
    str_free(&err);
    str_free(&v);
    str_free(&spec);
}

TEST(static_and_inline)
{
    struct str err = STR_INIT, v = STR_INIT;
    struct map *m = map_open("static:some value", &err);
    CHECK(m != NULL);
    CHECK(lookup(m, "anything", &v) == 1);
    CHECK_STR(v.s, "some value");
    map_close(m);

    m = map_open("inline:{ A@x.test = a1 , b@x.test=b1,c=}", &err);
    CHECK(m != NULL);
    if (m != NULL) {
        CHECK(lookup(m, "a@X.test", &v) == 1);
        CHECK_STR(v.s, "a1");
        CHECK(lookup(m, "b@x.test", &v) == 1);
        CHECK_STR(v.s, "b1");
        CHECK(lookup(m, "c", &v) == 1);
        CHECK_STR(v.s, "");
        CHECK(lookup(m, "d", &v) == 0);
    }
    map_close(m);
    CHECK(map_open("inline:{a}", &err) == NULL);
    CHECK(map_open("inline:a=b", &err) == NULL);
    CHECK(map_open("nosuch:x", &err) == NULL);
    CHECK(map_open("plainpath", &err) == NULL);
    CHECK(map_open("unix:group", &err) == NULL);
    str_free(&err);
    str_free(&v);
}

TEST(unix_passwd)
{
    struct str err = STR_INIT, v = STR_INIT;
    struct map *m = map_open("unix:passwd", &err);
    CHECK(m != NULL);
    if (m == NULL)
        return;
    CHECK(lookup(m, "root", &v) == 1);
    CHECK(strncmp(v.s, "root:0:0:/", 10) == 0);
    CHECK(lookup(m, "no-such-user-here", &v) == 0);
    map_close(m);
    str_free(&err);
    str_free(&v);
}

TEST(pcre)
{
    struct str err = STR_INIT, v = STR_INIT, spec = STR_INIT;
    const char *path = tmpfile_with("re.pcre",
        "# patterns\n"
        "/^(.*)@old\\.example$/  $1@new.example\n"
        "/^Subject: .*viagra/   REJECT spam\n"
        "|^a/b$|i  slash ${0}\n"
        "/^exact$/i  casesensitive\n");
    str_printf(&spec, "pcre:%s", path);
    struct map *m = map_open(spec.s, &err);
    CHECK(m != NULL);
    if (m == NULL) {
        fprintf(stderr, "  %s\n", err.s);
        return;
    }
    CHECK(lookup(m, "joe@OLD.example", &v) == 1);
    CHECK_STR(v.s, "joe@new.example");
    CHECK(lookup(m, "subject: buy VIAGRA now", &v) == 1);
    CHECK_STR(v.s, "REJECT spam");
    CHECK(lookup(m, "a/b", &v) == 1);
    CHECK_STR(v.s, "slash a/b");
    CHECK(lookup(m, "EXACT", &v) == 0);
    CHECK(lookup(m, "exact", &v) == 1);
    map_close(m);

    /* negation, and a pattern that would backtrack for ever: a failed lookup
     * naming file:line, in bounded time */
    path = tmpfile_with("neg.pcre",
        "!/@example\\.org$/  OUTSIDE\n"
        "/^(a+)+$/  never\n");
    str_clear(&spec);
    str_printf(&spec, "pcre:%s", path);
    m = map_open(spec.s, &err);
    CHECK(m != NULL);
    if (m != NULL) {
        CHECK(lookup(m, "joe@example.com", &v) == 1);
        CHECK_STR(v.s, "OUTSIDE");
        CHECK(lookup(m, "x@example.org", &v) == 0);
        char subject[4096];
        memset(subject, 'a', sizeof(subject));
        memcpy(subject + sizeof(subject) - 13, "@example.org", 13);
        str_clear(&err);
        long long t0 = clock_ms();
        CHECK(map_lookup(m, subject, &v, &err) == -1);
        CHECK(clock_ms() - t0 < 5000);
        CHECK(err.s != NULL && strstr(err.s, "neg.pcre:2:") != NULL);
        map_close(m);
    }

    tmpfile_with("bad.pcre", "/(unclosed/ x\n");
    str_clear(&spec);
    str_printf(&spec, "pcre:%s/bad.pcre", unit_tmpdir());
    str_clear(&err);
    CHECK(map_open(spec.s, &err) == NULL);
    CHECK(strstr(err.s, "bad.pcre:1:") != NULL);
    str_free(&err);
    str_free(&v);
    str_free(&spec);
}

TEST(maplist)
{
    struct str err = STR_INIT, v = STR_INIT, spec = STR_INIT;
    char p[512];
    snprintf(p, sizeof(p), "%s", tmpfile_with("l1", "a from-cdb\n"));
    CHECK(map_build(p, &err) == 1);
    str_printf(&spec, "inline:{b=from-inline, a=shadowed}, cdb:%s static:{last resort}", p);
    struct maplist *ml = maplist_open(spec.s, &err);
    CHECK(ml != NULL);
    if (ml == NULL) {
        fprintf(stderr, "  %s\n", err.s);
        return;
    }
    CHECK(maplist_count(ml) == 3);
    CHECK(maplist_lookup(ml, "a", &v, &err) == 1);
    CHECK_STR(v.s, "shadowed");
    CHECK(maplist_lookup(ml, "b", &v, &err) == 1);
    CHECK_STR(v.s, "from-inline");
    CHECK(maplist_lookup(ml, "zzz", &v, &err) == 1);
    CHECK_STR(v.s, "last resort");
    maplist_close(ml);

    ml = maplist_open("", &err);
    CHECK(ml != NULL && maplist_count(ml) == 0);
    if (ml != NULL)
        CHECK(maplist_lookup(ml, "x", &v, &err) == 0);
    maplist_close(ml);
    CHECK(maplist_open("inline:{a=b", &err) == NULL);
    CHECK(maplist_open("static:x, bogus", &err) == NULL);
    str_free(&err);
    str_free(&v);
    str_free(&spec);
}

/* A rebuilt table (renamed over the old file) is seen at once, without waiting for
 * the once-a-second stat; a pinned one keeps its file and says it changed. */
TEST(rebuild_seen_at_once_and_pinned)
{
    struct str err = STR_INIT, v = STR_INIT, spec = STR_INIT;
    const char *path = tmpfile_with("pin", "k one\n");
    char p[512];
    struct map *m, *pinned;

    snprintf(p, sizeof(p), "%s", path);
    CHECK(map_build(p, &err) == 1);
    str_printf(&spec, "cdb:%s", p);
    m = map_open(spec.s, &err);
    pinned = map_open(spec.s, &err);
    CHECK(m != NULL && pinned != NULL);
    if (m == NULL || pinned == NULL)
        return;
    map_pin(pinned);
    CHECK(lookup(m, "k", &v) == 1);
    CHECK(!map_changed(pinned) && !map_changed(m));
    tmpfile_with("pin", "k two\n");
    CHECK(map_build(p, &err) == 1);
    CHECK(lookup(m, "k", &v) == 1);
    CHECK_STR(v.s, "two");
    CHECK(map_changed(pinned));
    CHECK(lookup(pinned, "k", &v) == 1);
    CHECK_STR(v.s, "one");
    map_close(m);
    map_close(pinned);
    str_free(&err);
    str_free(&v);
    str_free(&spec);
}

/* Pinned, unix:passwd answers from a copy taken then: the same answers. */
TEST(unix_passwd_pinned)
{
    struct str err = STR_INIT, v = STR_INIT, w = STR_INIT;
    struct map *m = map_open("unix:passwd", &err), *live = map_open("unix:passwd", &err);

    CHECK(m != NULL && live != NULL);
    if (m == NULL || live == NULL)
        return;
    map_pin(m);
    CHECK(lookup(m, "root", &v) == 1);
    CHECK(lookup(live, "root", &w) == 1);
    CHECK_STR(v.s, w.s);
    CHECK(lookup(m, "no-such-user-here", &v) == 0);
    CHECK(lookup(m, "ROOT", &v) == 0);              /* names are case-sensitive */
    CHECK(!map_changed(m));
    map_close(m);
    map_close(live);
    str_free(&err);
    str_free(&v);
    str_free(&w);
}
