/* Unit tests for lib/util/priv.c.  Privilege changes run in child processes so the test
 * program keeps its own identity whatever it started as. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "priv.h"
#include "str.h"
#include "unit.h"

TEST(lookup)
{
    struct str err = STR_INIT;
    uid_t uid;
    gid_t gid;
    CHECK(priv_lookup("root", &uid, &gid, &err) == 0 && uid == 0);
    CHECK(priv_lookup("no-such-user-postern", &uid, &gid, &err) == -1);
    CHECK(strstr(err.s, "no-such-user-postern") != NULL);
    str_free(&err);
}

/* Runs fn in a child; true when it exited 0. */
static bool in_child(int (*fn)(void))
{
    pid_t pid = fork();
    int status;
    if (pid == 0)
        _exit(fn());
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return false;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int child_unprivileged_chdir(void)
{
    struct str err = STR_INIT;
    char cwd[PATH_MAX], want[PATH_MAX];
    /* Become an ordinary user first when we are root. */
    if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
        return 10;
    if (priv_drop("no-such-user-postern", "/", &err) != 0)
        return 11;
    if (getcwd(cwd, sizeof(cwd)) == NULL || strcmp(cwd, "/") != 0)
        return 12;
    if (priv_drop("whoever", "/no/such/dir", &err) != -1 || err.len == 0)
        return 13;
    if (priv_drop(NULL, NULL, &err) != 0)
        return 14;
    if (getcwd(want, sizeof(want)) == NULL || strcmp(want, "/") != 0)
        return 15;
    if (priv_become(1, 1, &err) != 0 && priv_is_root())
        return 0;                   /* started as root: may fail once dropped */
    if (priv_restore(&err) != 0 && !priv_is_root())
        return 16;
    return 0;
}

TEST(drop_without_root_only_chdirs)
{
    CHECK(in_child(child_unprivileged_chdir));
}

static int child_root_drop(void)
{
    struct str err = STR_INIT;
    const char *dir = unit_tmpdir();
    if (chmod(dir, 0755) < 0)
        return 20;
    if (priv_drop("nobody", dir, &err) != 0) {
        fprintf(stderr, "  %s\n", err.s);
        return 21;
    }
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == NULL || strcmp(cwd, "/") != 0)
        return 22;
    if (getuid() == 0 || geteuid() == 0 || getgid() == 0)
        return 23;
    if (setuid(0) == 0)
        return 24;
    if (access("/etc/passwd", F_OK) == 0)
        return 25;                  /* we are inside the chroot */
    return 0;
}

static int child_root_become(void)
{
    struct str err = STR_INIT;
    if (priv_become(65534, 65534, &err) != 0)
        return 30;
    if (geteuid() != 65534 || getegid() != 65534 || getuid() != 0)
        return 31;
    if (priv_become(1, 1, &err) != 0 || geteuid() != 1)
        return 32;
    if (priv_restore(&err) != 0)
        return 33;
    if (geteuid() != 0 || getegid() != 0)
        return 34;
    return 0;
}

TEST(root_drop_and_become)
{
    if (!priv_is_root()) {
        fprintf(stderr, "  not root: skipped\n");
        return;
    }
    CHECK(in_child(child_root_drop));
    CHECK(in_child(child_root_become));
}
