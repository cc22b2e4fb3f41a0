/* Dovecot reading a Maildir that lib/mail/store_*.c wrote: doveadm must list the
 * same folders (modified UTF-7 names included) and subscriptions and fetch the same
 * flags and keywords; and what Dovecot changes, the store reads back.  Runs doveadm
 * with a minimal configuration in the test's directory; without doveadm the test
 * says so and fails, since the check is the point of this file. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "maildir.h"
#include "store.h"
#include "store_folder.h"
#include "str.h"

#define DOVEADM "/usr/bin/doveadm"

static char conf[700], home[700];
static uid_t mail_uid;

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return lchown(path, mail_uid, mail_uid) < 0 ? -1 : 0;
}

/* Runs doveadm with args (no shell); its stdout into out.  Exit status. */
static int doveadm(struct str *out, const char *const *args)
{
    int p[2];
    pid_t pid;
    int status = -1;
    char buf[4096];
    const char *argv[20];
    size_t n = 0;

    argv[n++] = DOVEADM;
    argv[n++] = "-c";
    argv[n++] = conf;
    for (size_t i = 0; args[i] != NULL && n < 19; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    if (pipe(p) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        static char user[] = "USER=postern-test", h[800];
        char *envp[] = { user, h, NULL };

        snprintf(h, sizeof(h), "HOME=%s", home);
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execve(DOVEADM, (char *const *)argv, envp);
        _exit(127);
    }
    close(p[1]);
    str_clear(out);
    for (;;) {
        ssize_t got = read(p[0], buf, sizeof(buf));
        if (got <= 0)
            break;
        str_append(out, buf, (size_t)got);
    }
    close(p[0]);
    waitpid(pid, &status, 0);
    if (out->s == NULL)
        str_sets(out, "");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool has_line(const struct str *out, const char *line)
{
    size_t len = strlen(line);

    for (const char *p = out->s; p != NULL && *p != '\0';) {
        const char *nl = strchr(p, '\n');
        size_t l = nl != NULL ? (size_t)(nl - p) : strlen(p);

        if (l == len && memcmp(p, line, len) == 0)
            return true;
        p = nl != NULL ? nl + 1 : p + l;
    }
    return false;
}

TEST(dovecot_sees_our_folders_and_flags)
{
    char md[600];
    struct str err = STR_INIT, out = STR_INIT, path = STR_INIT;
    struct store_box *b = NULL;
    struct store_append *a;
    uint32_t uid1 = 0, uid2 = 0;
    FILE *f;

    if (access(DOVEADM, X_OK) != 0) {
        fprintf(stderr, "  %s is missing (Debian package dovecot-core)\n", DOVEADM);
        CHECK(!"doveadm installed");
        return;
    }
    mail_uid = geteuid() == 0 ? 65534 : geteuid();  /* Dovecot refuses root */
    snprintf(md, sizeof(md), "%s/dv/Maildir", unit_tmpdir());
    snprintf(home, sizeof(home), "%s/dv/home", unit_tmpdir());
    snprintf(conf, sizeof(conf), "%s/dv/dovecot.conf", unit_tmpdir());
    CHECK(store_folders_init(md, &err) == 0);
    mkdir(home, 0700);
    CHECK(store_folder_create(md, "Lists.postern", &err) == 0);
    CHECK(store_folder_create(md, "Entw&APw-rfe", &err) == 0);  /* "Entwürfe" */
    CHECK(store_subscribe(md, "Lists.postern", true, &err) == 0);

    CHECK(store_open(md, 0, 0, &b, &err) == 0);
    if (b == NULL)
        return;
    int junk = store_keyword_index(b, "$Junk", true);
    int work = store_keyword_index(b, "work", true);
    CHECK(junk >= 0 && work >= 0);
    CHECK(store_append_begin(b, 0, &a, &err) == 0);
    CHECK(store_append_write(a, "Subject: one\n\nbody\n", 19, &err) == 0);
    CHECK(store_append_commit(a, STORE_F_SEEN | STORE_F_ANSWERED, 1u << work, 0, &uid1,
                              &err) == 0);
    CHECK(store_append_begin(b, 0, &a, &err) == 0);
    CHECK(store_append_write(a, "Subject: two\n\nbody\n", 19, &err) == 0);
    CHECK(store_append_commit(a, STORE_F_DRAFT, 0, 0, &uid2, &err) == 0);
    CHECK(store_set_flags(b, &uid2, 1, '+', STORE_F_FLAGGED | STORE_F_DELETED,
                          1u << junk, 0, NULL, NULL, &err) == 0);
    store_close(b);
    b = NULL;

    str_printf(&path, "%s/dv", unit_tmpdir());
    f = fopen(conf, "w");
    if (f == NULL)
        return;
    fprintf(f, "base_dir = %s/run\nstate_dir = %s/state\nlog_path = %s/log\nssl = no\n"
               "mail_location = maildir:%s\nmail_uid = %u\nmail_gid = %u\n"
               "first_valid_uid = 0\nfirst_valid_gid = 0\n",
            path.s, path.s, path.s, md, (unsigned)mail_uid, (unsigned)mail_uid);
    fclose(f);
    if (geteuid() == 0) {
        CHECK(chmod(unit_tmpdir(), 0711) == 0);         /* nobody may pass through */
        CHECK(nftw(path.s, chown_one, 16, FTW_PHYS) == 0);
    }

    /* Folders (doveadm prints UTF-8) and subscriptions. */
    CHECK(doveadm(&out, (const char *const[]){ "mailbox", "list", NULL }) == 0);
    CHECK(has_line(&out, "INBOX") && has_line(&out, "Sent") && has_line(&out, "Drafts") &&
          has_line(&out, "Trash") && has_line(&out, "Junk") && has_line(&out, "Archive"));
    CHECK(has_line(&out, "Lists") && has_line(&out, "Lists.postern"));
    CHECK(has_line(&out, "Entw\xc3\xbcrfe"));
    if (!has_line(&out, "Lists.postern"))
        fprintf(stderr, "  doveadm mailbox list said:\n%s", out.s);
    CHECK(doveadm(&out, (const char *const[]){ "mailbox", "list", "-s", NULL }) == 0);
    CHECK(has_line(&out, "Lists.postern") && has_line(&out, "Sent") &&
          !has_line(&out, "Entw\xc3\xbcrfe"));

    /* Flags and keywords, by message. */
    CHECK(doveadm(&out, (const char *const[]){ "fetch", "hdr.subject flags", "mailbox",
                                               "INBOX", "all", NULL }) == 0);
    CHECK(strstr(out.s, "hdr.subject: one") != NULL);
    {
        const char *one = strstr(out.s, "hdr.subject: one"), *two = strstr(out.s, "hdr.subject: two");
        char fl1[200] = "", fl2[200] = "";
        const char *p;

        if (one != NULL && (p = strstr(one, "flags: ")) != NULL)
            sscanf(p, "flags: %199[^\n]", fl1);
        if (two != NULL && (p = strstr(two, "flags: ")) != NULL)
            sscanf(p, "flags: %199[^\n]", fl2);
        CHECK(strstr(fl1, "\\Seen") && strstr(fl1, "\\Answered") && strstr(fl1, "work") &&
              !strstr(fl1, "\\Draft") && !strstr(fl1, "$Junk"));
        CHECK(strstr(fl2, "\\Draft") && strstr(fl2, "\\Flagged") && strstr(fl2, "\\Deleted") &&
              strstr(fl2, "$Junk") && !strstr(fl2, "\\Seen") && !strstr(fl2, "work"));
        if (strstr(fl2, "$Junk") == NULL)
            fprintf(stderr, "  doveadm fetch said:\n%s", out.s);
    }

    /* The other way: Dovecot sets a flag and a new keyword; the store reads both. */
    CHECK(doveadm(&out, (const char *const[]){ "flags", "add", "\\Flagged $Label1",
                                               "mailbox", "INBOX", "subject", "one",
                                               NULL }) == 0);
    /* Dovecot writes flags to file names when it syncs the folder. */
    CHECK(doveadm(&out, (const char *const[]){ "force-resync", "INBOX", NULL }) == 0);
    CHECK(store_open(md, 0, 0, &b, &err) == 0);
    if (b != NULL) {
        long i = store_find(b, uid1);
        int l1 = store_keyword_index(b, "$Label1", false);

        CHECK(i >= 0 && l1 >= 0);
        if (i >= 0 && l1 >= 0) {
            const struct store_msg *m = store_msg(b, (size_t)i);
            CHECK(m->flags & STORE_F_FLAGGED);
            CHECK(m->flags & STORE_F_SEEN);
            CHECK(m->keywords & (1u << l1));
            CHECK(m->keywords & (1u << work));
        }
        store_close(b);
    }
    str_free(&err);
    str_free(&out);
    str_free(&path);
}
