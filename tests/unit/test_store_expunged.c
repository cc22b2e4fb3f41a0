/* Unit tests for the expunges the UID list remembers for QRESYNC (store_uidlist.c,
 * store_vanished): one record per run of UIDs expunged together, both forms of the
 * record read back, records out of place making the list rebuilt, and the bound on
 * their number raising the floor below which VANISHED is no longer exact. */
#include "unit.h"
#include "store_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "maildir.h"
#include "store.h"
#include "str.h"

/* The UID list's text into out (empty when unreadable). */
static void list_text(const char *dir, struct str *out)
{
    char path[1024], buf[4096];
    FILE *f;
    size_t n;

    str_clear(out);
    snprintf(path, sizeof(path), "%s/postern-uidlist", dir);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        str_append(out, buf, n);
    fclose(f);
}

static bool has_range(const struct store_range *v, size_t n, uint32_t lo, uint32_t hi)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].lo == lo && v[i].hi == hi)
            return true;
    return false;
}

TEST(one_record_per_run_of_expunges)
{
    char dir[600], name[64], line[128];
    struct store_box *b = NULL;
    struct str err = STR_INIT, text = STR_INIT;
    uint32_t del[] = { 2, 3, 4, 5, 8 }, later[] = { 6, 7 }, *failed = NULL, *done = NULL;
    size_t nf, nd, nv;
    bool complete;
    struct store_range *v;

    folder(dir, sizeof(dir), "runs");
    for (int i = 1; i <= 10; i++) {
        snprintf(name, sizeof(name), "new/%d.M%dP1.h", 100 + i, i);
        put(dir, name, "x\n");
    }
    CHECK(store_open(dir, 0, 0, &b, &err) == 0);
    if (b == NULL)
        return;
    CHECK(store_count(b) == 10);
    CHECK(store_set_flags(b, del, 5, '+', STORE_F_DELETED, 0, 0, &failed, &nf, &err) == 0);
    free(failed);
    uint64_t h = store_highestmodseq(b);
    CHECK(store_expunge(b, NULL, 0, &done, &nd, &err) == 0);
    CHECK(nd == 5);
    free(done);
    /* 2..5 went one after the other with nothing present between: one record. */
    list_text(dir, &text);
    snprintf(line, sizeof(line), "\nX 2:5 %llu\nX 8 %llu\n", (unsigned long long)(h + 4),
             (unsigned long long)(h + 5));
    CHECK(text.s != NULL && strstr(text.s, line) != NULL);
    v = store_vanished(b, h, &nv, &complete);
    CHECK(complete && nv == 2 && has_range(v, nv, 2, 5) && has_range(v, nv, 8, 8));
    free(v);
    v = store_vanished(b, h + 4, &nv, &complete);
    CHECK(complete && nv == 1 && has_range(v, nv, 8, 8));
    free(v);
    /* A record stands for its last expunge: asked from inside it, all of it is told. */
    v = store_vanished(b, h + 1, &nv, &complete);
    CHECK(nv == 2 && has_range(v, nv, 2, 5));
    free(v);
    /* 6 and 7 later: their own record; the answer joins the touching ranges. */
    CHECK(store_set_flags(b, later, 2, '+', STORE_F_DELETED, 0, 0, &failed, &nf, &err) == 0);
    free(failed);
    CHECK(store_expunge(b, later, 2, &done, &nd, &err) == 0);
    free(done);
    v = store_vanished(b, h, &nv, &complete);
    CHECK(complete && nv == 1 && has_range(v, nv, 2, 8));
    free(v);
    CHECK(store_count(b) == 3);
    store_close(b);
    /* Read back the same after a reopen. */
    CHECK(store_open(dir, 0, 0, &b, &err) == 0);
    if (b != NULL) {
        v = store_vanished(b, h, &nv, &complete);
        CHECK(complete && nv == 1 && has_range(v, nv, 2, 8));
        free(v);
        store_close(b);
    }
    str_free(&err);
    str_free(&text);
}

/* A list with two messages (UIDs 20 and 21, files present) and the given expunge
 * records; the folder opened, its UIDVALIDITY returned (0 when it failed). */
static uint32_t open_with(const char *dir, const char *records, struct store_box **b)
{
    struct str text = STR_INIT, err = STR_INIT;

    str_sets(&text, "postern-uidlist 1\nV 777 N 22 M 50 E 2\n");
    str_appends(&text, records);
    str_appends(&text, "20 40 - 1.M1P1.h\n21 41 - 2.M2P1.h\n");
    put(dir, "postern-uidlist", text.s);
    put(dir, "cur/1.M1P1.h:2,", "a\n");
    put(dir, "cur/2.M2P1.h:2,", "b\n");
    *b = NULL;
    if (store_open(dir, 0, 0, b, &err) < 0)
        *b = NULL;
    str_free(&text);
    str_free(&err);
    return *b != NULL ? store_uidvalidity(*b) : 0;
}

TEST(records_read_strictly)
{
    char dir[600];
    struct store_box *b;
    struct store_range *v;
    size_t nv;
    bool complete;
    static const char *const bad[] = {
        "X 6:4 7\n", "X 0:3 7\n", "X 3:22 7\n", "X 3: 7\n", "X 3:4:5 7\n",
        "X 3 7\nX 5 6\n", "X 3 2\n", "X 3 51\n", "X 3:4\n", "X 3 7 \n",
    };

    folder(dir, sizeof(dir), "parse");
    /* Both forms, in MODSEQ order: kept as written; asked from 0 it is not exact (E 2). */
    CHECK(open_with(dir, "X 3 5\nX 4:6 7\nX 9:12 30\n", &b) == 777);
    if (b != NULL) {
        v = store_vanished(b, 0, &nv, &complete);
        CHECK(!complete && nv == 2 && has_range(v, nv, 3, 6) && has_range(v, nv, 9, 12));
        free(v);
        v = store_vanished(b, 7, &nv, &complete);
        CHECK(complete && nv == 1 && has_range(v, nv, 9, 12));
        free(v);
        store_close(b);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint32_t uv = open_with(dir, bad[i], &b);
        if (uv == 777)
            fprintf(stderr, "  accepted: %s", bad[i]);
        CHECK(uv != 0 && uv != 777);            /* rebuilt, never fatal */
        store_close(b);
    }
}

TEST(bounded_records_raise_the_floor)
{
    char dir[600];
    struct str text = STR_INIT, err = STR_INIT;
    struct store_box *b = NULL;
    uint32_t *done = NULL;
    size_t nd, nv;
    bool complete;
    struct store_range *v;

    folder(dir, sizeof(dir), "bound");
    /* STORE_EXPUNGED_KEEP records of single UIDs 1, 3, 5, ... at MODSEQs 1, 2, 3, ... */
    str_sets(&text, "postern-uidlist 1\nV 900 N 30000 M 20005 E 0\n");
    for (unsigned i = 0; i < STORE_EXPUNGED_KEEP; i++)
        str_printf(&text, "X %u %u\n", 2 * i + 1, i + 1);
    str_appends(&text, "29998 20004 T 2.M2P1.h\n29999 20005 - 1.M1P1.h\n");
    put(dir, "postern-uidlist", text.s);
    put(dir, "cur/1.M1P1.h:2,", "a\n");
    put(dir, "cur/2.M2P1.h:2,T", "b\n");
    CHECK(store_open(dir, 0, 0, &b, &err) == 0);
    if (b == NULL)
        goto out;
    CHECK(store_uidvalidity(b) == 900);
    v = store_vanished(b, 0, &nv, &complete);
    CHECK(complete && nv == STORE_EXPUNGED_KEEP);
    free(v);
    /* One more: the oldest record is forgotten and VANISHED from before it is not exact. */
    CHECK(store_expunge(b, NULL, 0, &done, &nd, &err) == 0);
    CHECK(nd == 1 && done[0] == 29998);
    free(done);
    v = store_vanished(b, 0, &nv, &complete);
    CHECK(!complete);
    free(v);
    v = store_vanished(b, 1, &nv, &complete);
    CHECK(complete && nv == STORE_EXPUNGED_KEEP && has_range(v, nv, 29998, 29998)
          && !has_range(v, nv, 1, 1));
    free(v);
    list_text(dir, &text);
    CHECK(text.s != NULL && strstr(text.s, " E 1\n") != NULL
          && strstr(text.s, "\nX 1 1\n") == NULL);
    store_close(b);
out:
    str_free(&text);
    str_free(&err);
}
