/* Unit tests for lib/mail/store_*.c: UIDs for delivered files, new/ to cur/, flag
 * changes from outside and through the API (MODSEQ, UNCHANGEDSINCE), expunge seen
 * by another handle, VANISHED, keywords in Dovecot's file, append, copy and move. */
#include "unit.h"
#include "store_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "maildir.h"
#include "store.h"
#include "store_watch.h"
#include "str.h"

static bool exists(const char *dir, const char *rel)
{
    char path[1024];

    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return access(path, F_OK) == 0;
}

TEST(uids_for_deliveries_and_moves)
{
    char dir[600];
    struct store_box *b = NULL, *b2 = NULL;
    struct str err = STR_INIT;
    struct store_changes ch;
    uint32_t uv;

    folder(dir, sizeof(dir), "a");
    put(dir, "new/200.M1P1.h,S=5,W=6", "a\nb\n");
    put(dir, "new/100.M1P1.h,S=5,W=6", "a\nb\n");
    put(dir, "cur/150.M1P1.h:2,SR", "x\n");
    put(dir, "new/.hidden", "x\n");
    CHECK(store_open(dir, 0, 0, &b, &err) == 0);
    if (b == NULL)
        return;
    uv = store_uidvalidity(b);
    CHECK(uv != 0);
    CHECK(store_count(b) == 3 && store_uidnext(b) == 4);
    /* Delivery order: by the time at the start of the name. */
    CHECK_STR(store_msg(b, 0)->file, "cur/100.M1P1.h,S=5,W=6:2,");
    CHECK_STR(store_msg(b, 1)->file, "cur/150.M1P1.h:2,SR");  /* as found */
    CHECK(store_msg(b, 1)->flags == (STORE_F_SEEN | STORE_F_ANSWERED) && store_recent(b, 2));
    CHECK(store_msg(b, 0)->size == 6);
    CHECK(exists(dir, "cur/200.M1P1.h,S=5,W=6:2,") && !exists(dir, "new/200.M1P1.h,S=5,W=6"));

    /* A second handle sees the same UIDs, none of them \Recent. */
    CHECK(store_open(dir, 0, 0, &b2, &err) == 0);
    CHECK(b2 != NULL && store_count(b2) == 3 && store_uidvalidity(b2) == uv);
    CHECK(b2 != NULL && !store_recent(b2, 1) && !store_recent(b2, 2) && !store_recent(b2, 3));

    /* Outside changes: a delivery, a flag rename (mutt), an unlink (POP3). */
    put(dir, "new/300.M1P1.h", "new\n");
    {
        char a[800], c[800];
        snprintf(a, sizeof(a), "%s/cur/150.M1P1.h:2,SR", dir);
        snprintf(c, sizeof(c), "%s/cur/150.M1P1.h:2,FRS", dir);
        CHECK(rename(a, c) == 0);
        snprintf(a, sizeof(a), "%s/cur/100.M1P1.h,S=5,W=6:2,", dir);
        CHECK(unlink(a) == 0);
    }
    uint64_t ms = store_highestmodseq(b);
    CHECK(store_sync(b, &ch, &err) == 0);
    CHECK(ch.n_added == 1 && ch.added[0] == 4);
    CHECK(ch.n_expunged == 1 && ch.expunged[0] == 1);
    CHECK(ch.n_changed == 1 && ch.changed[0] == 2);
    CHECK(!ch.uidvalidity_changed);
    store_changes_free(&ch);
    CHECK(store_find(b, 2) == 0 && store_msg(b, 0)->modseq > ms);
    CHECK(store_msg(b, 0)->flags & STORE_F_FLAGGED);
    /* The other handle gets the same news; the new message is recent only in b. */
    if (b2 != NULL) {
        CHECK(store_sync(b2, &ch, &err) == 0);
        CHECK(ch.n_added == 1 && ch.n_expunged == 1 && ch.n_changed == 1);
        store_changes_free(&ch);
        CHECK(store_find(b2, 4) == 2 && !store_recent(b2, 4));
    }
    CHECK(store_recent(b, 4));
    /* Nothing new: no changes. */
    CHECK(store_sync(b, &ch, &err) == 0);
    CHECK(ch.n_added == 0 && ch.n_expunged == 0 && ch.n_changed == 0);
    store_changes_free(&ch);

    /* VANISHED (EARLIER): uid 1 went at a modseq above ms. */
    size_t nv;
    bool complete;
    struct store_range *v = store_vanished(b, ms, &nv, &complete);
    CHECK(nv == 1 && v[0].lo == 1 && v[0].hi == 1 && complete);
    free(v);
    v = store_vanished(b, store_highestmodseq(b), &nv, &complete);
    CHECK(nv == 0);
    free(v);
    store_close(b);
    store_close(b2);
    str_free(&err);
}

TEST(store_flags_keywords_expunge)
{
    char dir[600], kw[700];
    struct store_box *b = NULL, *b2 = NULL;
    struct str err = STR_INIT;
    struct store_changes ch;
    uint32_t uids[] = { 1, 2, 3 }, *failed, *done;
    size_t nf, nd;
    int fd;
    ssize_t n;

    folder(dir, sizeof(dir), "b");
    put(dir, "new/1.M1P1.h", "1\n");
    put(dir, "new/2.M1P1.h", "2\n");
    put(dir, "new/3.M1P1.h", "3\n");
    CHECK(store_open(dir, 0, 0, &b, &err) == 0);
    CHECK(store_open(dir, 0, 0, &b2, &err) == 0);
    if (b == NULL || b2 == NULL)
        return;
    int junk = store_keyword_index(b, "$Junk", true);
    int fwd = store_keyword_index(b, "$Forwarded", true);
    CHECK(junk == 0 && fwd == 1);
    CHECK(store_keyword_index(b, "$junk", false) == 0);
    CHECK(store_keyword_index(b, "bad keyword", true) < 0);
    CHECK(store_keyword_index(b, "\\Seen", true) < 0);
    CHECK(store_keyword_index(b, "unknown", false) < 0);
    snprintf(kw, sizeof(kw), "%s/dovecot-keywords", dir);
    fd = open(kw, O_RDONLY);
    n = fd >= 0 ? read(fd, kw, sizeof(kw) - 1) : -1;
    if (fd >= 0)
        close(fd);
    kw[n > 0 ? n : 0] = '\0';
    CHECK_STR(kw, "0 $Junk\n1 $Forwarded\n");

    CHECK(store_set_flags(b, uids, 2, '+', STORE_F_SEEN | STORE_F_DELETED, 1u << fwd, 0,
                          &failed, &nf, &err) == 0);
    CHECK(nf == 0);
    free(failed);
    CHECK(exists(dir, "cur/1.M1P1.h:2,STb") && exists(dir, "cur/2.M1P1.h:2,STb"));
    uint64_t ms1 = store_msg(b, 0)->modseq;
    /* UNCHANGEDSINCE below the message's MODSEQ: refused for it, done for uid 3. */
    CHECK(store_set_flags(b, uids, 3, '=', STORE_F_FLAGGED, 0, ms1 - 1, &failed, &nf,
                          &err) == 0);
    CHECK(nf == 2 && failed[0] == 1 && failed[1] == 2);
    free(failed);
    CHECK(exists(dir, "cur/3.M1P1.h:2,F"));
    /* The other handle sees flags and keyword names. */
    CHECK(store_sync(b2, &ch, &err) == 0);
    CHECK(ch.n_changed == 3 && ch.keywords_changed);
    CHECK_STR(store_keyword(b2, 1), "$Forwarded");
    CHECK(store_msg(b2, 0)->keywords == (1u << fwd));
    store_changes_free(&ch);

    /* EXPUNGE takes the \Deleted ones; UID EXPUNGE only those among its UIDs. */
    uint32_t only2 = 2;
    CHECK(store_expunge(b, &only2, 1, &done, &nd, &err) == 0);
    CHECK(nd == 1 && done[0] == 2);
    free(done);
    CHECK(store_expunge(b, NULL, 0, &done, &nd, &err) == 0);
    CHECK(nd == 1 && done[0] == 1);
    free(done);
    CHECK(store_count(b) == 1 && !exists(dir, "cur/1.M1P1.h:2,STb"));
    CHECK(store_sync(b2, &ch, &err) == 0);
    CHECK(ch.n_expunged == 2 && ch.expunged[0] == 1 && ch.expunged[1] == 2);
    store_changes_free(&ch);

    /* Read-only handles change nothing. */
    struct store_box *ro = NULL;
    CHECK(store_open(dir, STORE_RDONLY, 0, &ro, &err) == 0);
    CHECK(ro != NULL && store_set_flags(ro, uids, 1, '+', STORE_F_SEEN, 0, 0, NULL, NULL,
                                        &err) < 0);
    store_close(ro);
    store_close(b);
    store_close(b2);
    str_free(&err);
}

TEST(append_copy_move)
{
    char src[600], dst[600];
    struct store_box *s = NULL, *d = NULL;
    struct str err = STR_INIT;
    struct store_append *a = NULL;
    uint32_t uid = 0, *su, *du;
    size_t n;
    struct stat st;

    folder(src, sizeof(src), "c");
    folder(dst, sizeof(dst), "d");
    CHECK(store_open(src, 0, 0, &s, &err) == 0);
    CHECK(store_open(dst, 0, 0, &d, &err) == 0);
    if (s == NULL || d == NULL)
        return;
    CHECK(store_append_begin(s, 100, &a, &err) == 0);
    CHECK(store_append_write(a, "Subject: x\n\n", 12, &err) == 0);
    CHECK(store_append_write(a, "body\r\n", 6, &err) == 0);
    CHECK(store_append_commit(a, STORE_F_SEEN, 0, 1000000000, &uid, &err) == 0);
    CHECK(uid == 1 && store_count(s) == 1);
    CHECK(store_msg(s, 0)->size == 20);
    CHECK(store_stat(s, 0) == 0 && store_msg(s, 0)->internaldate == 1000000000);
    {
        char p[1200];
        snprintf(p, sizeof(p), "%s/%s", src, store_msg(s, 0)->file);
        CHECK(strstr(p, ",S=18,W=20:2,S") != NULL);
        CHECK(stat(p, &st) == 0 && st.st_mtime == 1000000000);
    }
    /* Over the limit: refused, nothing left in tmp/. */
    CHECK(store_append_begin(s, 10, &a, &err) == 0);
    CHECK(store_append_write(a, "0123456789ab", 12, &err) < 0);
    CHECK(store_append_begin(s, 0, &a, &err) == 0);
    CHECK(store_append_write(a, "two\n", 4, &err) == 0);
    CHECK(store_append_commit(a, 0, 0, 0, &uid, &err) == 0 && uid == 2);

    int k = store_keyword_index(s, "work", true);
    uint32_t both[] = { 2, 1 };
    CHECK(store_set_flags(s, both, 1, '+', 0, 1u << k, 0, NULL, NULL, &err) == 0);
    store_keyword_index(d, "other", true);      /* so "work" gets another letter there */
    CHECK(store_copy(s, both, 2, d, false, &su, &du, &n, &err) == 0);
    CHECK(n == 2 && su[0] == 2 && du[0] == 1 && su[1] == 1 && du[1] == 2);
    free(su);
    free(du);
    CHECK(store_count(d) == 2 && store_count(s) == 2);
    CHECK(store_keyword_index(d, "work", false) == 1);
    CHECK(store_msg(d, 0)->keywords == 2u && store_msg(d, 1)->flags & STORE_F_SEEN);
    /* MOVE: copied, then gone from the source. */
    CHECK(store_copy(s, both, 2, d, true, &su, &du, &n, &err) == 0);
    CHECK(n == 2 && du[0] == 3 && du[1] == 4);
    free(su);
    free(du);
    CHECK(store_count(s) == 0 && store_count(d) == 4);
    int fd = store_open_msg(d, 3);
    char buf[32] = "";
    CHECK(fd >= 0 && read(fd, buf, sizeof(buf)) == 18 && strncmp(buf, "Subject: x", 10) == 0);
    if (fd >= 0)
        close(fd);
    store_close(s);
    store_close(d);
    str_free(&err);
}

TEST(corrupt_or_missing_list_rebuilt)
{
    char dir[600], p[800];
    struct store_box *b = NULL;
    struct str err = STR_INIT;
    struct store_changes ch;
    uint32_t uv;
    static const char *const garbage[] = {
        "", "junk", "postern-uidlist 1\nV 0 N 1 M 1 E 0\n",
        "postern-uidlist 1\nV 5 N 2 M 9 E 0\n7 3 S x\n",           /* uid >= next */
        "postern-uidlist 1\nV 5 N 9 M 9 E 0\n2 3 S x\n1 3 S y\n",  /* out of order */
        "postern-uidlist 1\nV 5 N 9 M 9 E 0\n1 3 S ../x\n",
        "postern-uidlist 1\nV 5 N 99999999999 M 9 E 0\n",
    };

    folder(dir, sizeof(dir), "e");
    put(dir, "new/1.M1P1.h", "1\n");
    put(dir, "new/2.M1P1.h", "2\n");
    CHECK(store_open(dir, 0, 0, &b, &err) == 0);
    if (b == NULL)
        return;
    uv = store_uidvalidity(b);
    snprintf(p, sizeof(p), "%s/postern-uidlist", dir);
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        put(dir, "postern-uidlist", garbage[i]);
        CHECK(store_sync(b, &ch, &err) == 0);
        CHECK(ch.uidvalidity_changed);
        CHECK(store_uidvalidity(b) > uv);
        CHECK(store_count(b) == 2 && store_msg(b, 0)->uid == 1 && store_msg(b, 1)->uid == 2);
        uv = store_uidvalidity(b);
        store_changes_free(&ch);
    }
    unlink(p);
    CHECK(store_sync(b, &ch, &err) == 0 && ch.uidvalidity_changed && store_uidvalidity(b) > uv);
    store_changes_free(&ch);
    store_close(b);
    str_free(&err);
}

TEST(watch_sees_delivery_and_unlink)
{
    char dir[600], p[800];
    struct store_watch *w;
    struct pollfd pfd;

    folder(dir, sizeof(dir), "w");
    w = store_watch_open(dir);
    CHECK(w != NULL);
    if (w == NULL)
        return;
    CHECK(!store_watch_drain(w));
    /* Our own temporary names (leading dot) do not count. */
    put(dir, "new/.tmpfile", "x");
    CHECK(!store_watch_drain(w));
    put(dir, "new/1.M1P1.h", "x\n");
    pfd.fd = store_watch_fd(w);
    pfd.events = POLLIN;
    CHECK(poll(&pfd, 1, 1000) == 1);
    CHECK(store_watch_drain(w));
    CHECK(!store_watch_drain(w));
    snprintf(p, sizeof(p), "%s/new/1.M1P1.h", dir);
    unlink(p);
    CHECK(poll(&pfd, 1, 1000) == 1 && store_watch_drain(w));
    store_watch_close(w);
    snprintf(p, sizeof(p), "%s/nope", dir);
    CHECK(store_watch_open(p) == NULL);
}

/* Sets the modification time of dir/sub an hour back. */
static void age(const char *dir, const char *sub)
{
    char p[800];
    struct timespec ts[2] = { { time(NULL) - 3600, 0 }, { time(NULL) - 3600, 0 } };

    snprintf(p, sizeof(p), "%s/%s", dir, sub);
    utimensat(AT_FDCWD, p, ts, 0);
}

TEST(quick_check_still_sees_changes)
{
    char dir[600], p[800];
    struct store_box *b = NULL;
    struct str err = STR_INIT;
    struct store_changes ch;

    folder(dir, sizeof(dir), "q");
    put(dir, "new/1.M1P1.h", "1\n");
    age(dir, "new");
    age(dir, "cur");
    CHECK(store_open(dir, 0, 0, &b, &err) == 0);
    if (b == NULL)
        return;
    age(dir, "new");
    age(dir, "cur");
    CHECK(store_sync(b, &ch, &err) == 0);       /* stamps old now: trusted */
    store_changes_free(&ch);
    CHECK(store_sync(b, &ch, &err) == 0 && ch.n_added == 0);
    store_changes_free(&ch);
    put(dir, "new/2.M1P1.h", "2\n");            /* new/ changes: seen */
    CHECK(store_sync(b, &ch, &err) == 0 && ch.n_added == 1);
    store_changes_free(&ch);
    age(dir, "new");
    age(dir, "cur");
    CHECK(store_sync(b, &ch, &err) == 0);
    store_changes_free(&ch);
    snprintf(p, sizeof(p), "%s/cur/1.M1P1.h:2,", dir);
    CHECK(unlink(p) == 0);                      /* cur/ changes: seen */
    CHECK(store_sync(b, &ch, &err) == 0 && ch.n_expunged == 1 && ch.expunged[0] == 1);
    store_changes_free(&ch);
    store_close(b);
    str_free(&err);
}

TEST(read_only_sees_new_mail_without_recent)
{
    char dir[600];
    struct store_box *ro = NULL;
    struct str err = STR_INIT;
    struct store_changes ch;

    folder(dir, sizeof(dir), "r");
    CHECK(store_open(dir, STORE_RDONLY, 0, &ro, &err) == 0);
    if (ro == NULL)
        return;
    put(dir, "new/5.M1P1.h", "x\n");
    CHECK(store_sync(ro, &ch, &err) == 0 && ch.n_added == 1);
    store_changes_free(&ch);
    CHECK(store_count(ro) == 1 && !store_recent(ro, store_msg(ro, 0)->uid));
    CHECK(exists(dir, "cur/5.M1P1.h:2,"));
    store_close(ro);
    str_free(&err);
}

TEST(hostile_files_in_the_folder)
{
    char dir[600], p[800], t[800];
    struct store_box *b = NULL;
    struct str err = STR_INIT;

    folder(dir, sizeof(dir), "h");
    /* Keyword lines out of range, overlong, with spaces or control bytes: skipped. */
    put(dir, "dovecot-keywords", "0 good\n26 toofar\n-1 neg\n1 has space\n2 \x01x\nxx\n3\n"
                                 "4 $Fine\n");
    put(dir, "cur/1.M1P1.h:2,Sae", "x\n");
    put(dir, "new/..", "x\n");
    /* A symbolic link planted as the UID list: never followed, the list rebuilt. */
    snprintf(p, sizeof(p), "%s/postern-uidlist", dir);
    CHECK(symlink("/etc/passwd", p) == 0);
    CHECK(store_open(dir, 0, 0, &b, &err) == 0);
    if (b != NULL) {
        CHECK_STR(store_keyword(b, 0), "good");
        CHECK(store_keyword(b, 1) == NULL && store_keyword(b, 2) == NULL);
        CHECK_STR(store_keyword(b, 4), "$Fine");
        CHECK(store_count(b) == 1 && store_msg(b, 0)->keywords == ((1u << 0) | (1u << 4)));
        store_close(b);
    }
    struct stat st;
    CHECK(lstat(p, &st) == 0 && S_ISREG(st.st_mode));
    /* A folder that is a link elsewhere is refused. */
    snprintf(t, sizeof(t), "%s/link", unit_tmpdir());
    CHECK(symlink(dir, t) == 0);
    b = NULL;
    CHECK(store_open(t, 0, 0, &b, &err) < 0 && b == NULL);
    snprintf(p, sizeof(p), "%s/nope", unit_tmpdir());
    CHECK(store_open(p, 0, 0, &b, &err) < 0 && errno == ENOENT);
    str_free(&err);
}

TEST(watch_shared_by_holders)
{
    char dir[600], other[600];
    struct store_watch *a, *b, *c;
    struct pollfd pfd;

    folder(dir, sizeof(dir), "ws");
    folder(other, sizeof(other), "wo");
    a = store_watch_open(dir);
    b = store_watch_open(dir);
    c = store_watch_open(other);
    CHECK(a != NULL && b != NULL && c != NULL);
    if (a == NULL || b == NULL || c == NULL)
        return;
    CHECK(store_watch_fd(a) == store_watch_fd(c) && store_watches_fd() == store_watch_fd(a));
    put(dir, "new/2.M2P2.h", "x\n");
    pfd.fd = store_watches_fd();
    pfd.events = POLLIN;
    CHECK(poll(&pfd, 1, 1000) == 1);
    store_watches_drain();
    CHECK(store_watch_changed(a));
    CHECK(!store_watch_changed(a));
    CHECK(store_watch_changed(b));
    CHECK(!store_watch_changed(c));
    /* One holder gone, the other still hears. */
    store_watch_close(a);
    put(dir, "new/3.M3P3.h", "x\n");
    CHECK(poll(&pfd, 1, 1000) == 1 && store_watch_drain(b));
    CHECK(!store_watch_changed(c));
    store_watch_close(b);
    store_watch_close(c);
}
