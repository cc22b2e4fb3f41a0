/* Crash safety of lib/mail/store_*.c: a child delivers, appends, syncs and changes
 * flags in a loop and is killed with SIGKILL at a random moment, again and again.
 * After each kill a fresh handle must find the same UIDVALIDITY, every UID the child
 * was told still naming the same message, no UID ever given to two messages, and
 * the next UID never going back. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "maildir.h"
#include "store.h"
#include "str.h"
#include "xmalloc.h"

#define ROUNDS 40
#define MAXUID 100000

static char *seen[MAXUID];              /* base name each UID was ever given to */

static void base_of(const char *file, char *out, size_t len)
{
    const char *b = strchr(file, '/');
    size_t n;

    b = b != NULL ? b + 1 : file;
    n = strcspn(b, ":");
    if (n >= len)
        n = len - 1;
    memcpy(out, b, n);
    out[n] = '\0';
}

static void child(const char *dir, int out)
{
    struct store_box *b = NULL;
    struct str err = STR_INIT;
    char line[400];
    unsigned i = 0;

    if (store_open(dir, 0, 0, &b, &err) < 0)
        _exit(2);
    for (;;) {
        struct store_append *a;
        uint32_t uid;
        char path[1200];
        FILE *f;

        if (store_append_begin(b, 0, &a, &err) == 0 &&
            store_append_write(a, "Subject: a\n\ny\n", 14, &err) == 0 &&
            store_append_commit(a, STORE_F_SEEN, 0, 0, &uid, &err) == 0) {
            long k = store_find(b, uid);
            char base[300] = "?";
            int n;

            if (k >= 0)
                base_of(store_msg(b, (size_t)k)->file, base, sizeof(base));
            n = snprintf(line, sizeof(line), "%u %s\n", uid, base);
            if (write(out, line, (size_t)n) != n)
                _exit(3);
        }
        /* A delivery as local(8) makes it, behind the store's back, dated so that it
         * sorts before the appended messages: a UID list not written before a UID
         * is told would give that UID to it at the next sync. */
        snprintf(path, sizeof(path), "%s/new/%ld.M%uP%ld.crash", dir, (long)time(NULL) - 1,
                 i++, (long)getpid());
        if ((f = fopen(path, "w")) != NULL) {
            fputs("Subject: d\n\nx\n", f);
            fclose(f);
        }
        if (store_sync(b, NULL, &err) == 0 && store_count(b) > 0) {
            uint32_t u = store_msg(b, store_count(b) - 1)->uid;
            store_set_flags(b, &u, 1, (i & 1) ? '+' : '-', STORE_F_FLAGGED, 0, 0, NULL, NULL,
                            &err);
        }
    }
}

TEST(kill9_never_reuses_a_uid)
{
    char dir[600];
    struct str err = STR_INIT;
    uint32_t uv = 0, next = 1;
    unsigned seed = (unsigned)getpid();
    size_t told_total = 0;

    snprintf(dir, sizeof(dir), "%s/crash", unit_tmpdir());
    CHECK(maildir_create(dir, 0700, &err) == 0);
    for (int round = 0; round < ROUNDS; round++) {
        int p[2];
        pid_t pid;
        struct timespec ts;
        char buf[65536];
        size_t have = 0;
        struct store_box *b = NULL;

        CHECK(pipe(p) == 0);
        pid = fork();
        if (pid == 0) {
            close(p[0]);
            child(dir, p[1]);
        }
        close(p[1]);
        /* Every other round, the kill comes only after the child was told a UID. */
        if (round % 2 == 0) {
            struct pollfd pfd = { p[0], POLLIN, 0 };
            poll(&pfd, 1, 10000);
        }
        seed = seed * 1103515245u + 12345u;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)((seed >> 8) % 30000) * 1000;     /* 0 to 30 ms */
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        for (;;) {
            ssize_t got = read(p[0], buf + have, sizeof(buf) - 1 - have);
            if (got <= 0)
                break;
            have += (size_t)got;
        }
        close(p[0]);
        buf[have] = '\0';

        CHECK(store_open(dir, 0, 0, &b, &err) == 0);
        if (b == NULL)
            break;
        if (uv == 0)
            uv = store_uidvalidity(b);
        CHECK(store_uidvalidity(b) == uv);
        CHECK(store_uidnext(b) >= next);
        next = store_uidnext(b);
        /* Every UID the child was told names the message it was told for. */
        for (char *s = buf, *nl; (nl = strchr(s, '\n')) != NULL; s = nl + 1) {
            char *sp;
            unsigned long u = strtoul(s, &sp, 10);
            long k = u > 0 && u < MAXUID ? store_find(b, (uint32_t)u) : -1;
            char base[300];

            *nl = '\0';
            CHECK(u > 0 && u < next && k >= 0 && *sp == ' ');
            if (k >= 0 && *sp == ' ') {
                base_of(store_msg(b, (size_t)k)->file, base, sizeof(base));
                CHECK_STR(base, sp + 1);
            }
            told_total++;
        }
        /* And no UID ever named two messages. */
        for (size_t i = 0; i < store_count(b); i++) {
            const struct store_msg *m = store_msg(b, i);
            char base[300];

            base_of(m->file, base, sizeof(base));
            if (m->uid >= MAXUID)
                continue;
            if (seen[m->uid] == NULL)
                seen[m->uid] = xstrdup(base);
            else if (strcmp(seen[m->uid], base) != 0) {
                fprintf(stderr, "  uid %u was %s, now %s\n", m->uid, seen[m->uid], base);
                CHECK(!"UID reused");
            }
        }
        store_close(b);
    }
    /* The loop did real work: UIDs were handed out and reported. */
    CHECK(next > 10);
    CHECK(told_total > 0);
    for (size_t i = 0; i < MAXUID; i++)
        free(seen[i]);
    str_free(&err);
}
