/* Unit tests for lib/util/log.c: the line format, sanitising of control characters, the
 * length cap, the file destination (append, mode, no symbolic links), errno kept,
 * log_open_conf's choices.  Whatever exits (log_fatal) runs in a child process; the
 * files live in a directory of our own (a child's exit must not remove the harness's
 * temporary directory). */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "log_conf.h"
#include "str.h"
#include "unit.h"

static char dir[256];
static pid_t dir_owner;         /* only this process removes dir (children exit too) */

static const char *tdir(void)
{
    if (dir[0] == '\0') {
        snprintf(dir, sizeof(dir), "/tmp/postern-log-test.XXXXXX");
        if (mkdtemp(dir) == NULL) {
            perror("mkdtemp");
            exit(2);
        }
        dir_owner = getpid();
    }
    return dir;
}

static void path_in(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", tdir(), name);
}

/* The whole file, NUL-terminated (into sb). */
static void slurp(const char *path, struct str *sb)
{
    char chunk[4096];
    int fd = open(path, O_RDONLY);
    ssize_t n;

    str_clear(sb);
    if (fd < 0)
        return;
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        str_append(sb, chunk, (size_t)n);
    close(fd);
}

static size_t count_lines(const struct str *sb)
{
    size_t n = 0;
    for (size_t i = 0; i < sb->len; i++)
        n += sb->s[i] == '\n';
    return n;
}

static bool matches(const char *text, const char *pattern)
{
    regex_t re;
    bool ok;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
        return false;
    ok = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

TEST(line_format)
{
    char path[300], want[200];
    struct str got = STR_INIT;

    path_in(path, sizeof(path), "format.log");
    log_open("tester", LOG_DEST_FILE, path);
    log_info("%s: from=<%s>, size=%d", "0674A1B2C0F4240000A3K9", "a@b", 123);
    log_warn("something %s", "odd");
    log_error("broken");
    slurp(path, &got);
    CHECK(count_lines(&got) == 3);
    snprintf(want, sizeof(want),
             "^[A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [^ ]+ "
             "postern/tester\\[%ld\\]: 0674A1B2C0F4240000A3K9: from=<a@b>, size=123\n",
             (long)getpid());
    CHECK(matches(got.s, want));
    CHECK(strstr(got.s, "]: warning: something odd\n") != NULL);
    CHECK(strstr(got.s, "]: error: broken\n") != NULL);
    str_free(&got);
}

TEST(sanitise)
{
    char path[300];
    struct str got = STR_INIT;

    path_in(path, sizeof(path), "sanitise.log");
    log_open("tester", LOG_DEST_FILE, path);
    /* A CR LF in network text must not start a forged line; ESC and DEL go too;
     * bytes of UTF-8 stay. */
    log_info("helo=<%s>", "evil\r\nJan  1 00:00:00 host postern/smtpd[1]: fake\x1b[2J\x7f\xc3\xa9");
    slurp(path, &got);
    CHECK(count_lines(&got) == 1);
    CHECK(strstr(got.s, "helo=<evil??Jan  1 00:00:00 host postern/smtpd[1]: fake?[2J?\xc3\xa9>\n")
          != NULL);
    for (size_t i = 0; i + 1 < got.len; i++)
        CHECK((unsigned char)got.s[i] >= 0x20 && got.s[i] != 0x7f);
    str_free(&got);
}

TEST(cap)
{
    char path[300];
    struct str got = STR_INIT, big = STR_INIT;

    path_in(path, sizeof(path), "cap.log");
    log_open("tester", LOG_DEST_FILE, path);
    for (int i = 0; i < 5000; i++)
        str_appendc(&big, (char)('a' + i % 26));
    log_info("long: %s", big.s);
    log_info("next");
    slurp(path, &got);
    CHECK(count_lines(&got) == 2);
    {
        const char *nl = strchr(got.s, '\n');
        CHECK(nl != NULL && (size_t)(nl - got.s) + 1 == 2048);   /* newline included */
        CHECK(nl != NULL && strstr(nl + 1, "]: next\n") != NULL);
    }
    str_free(&got);
    str_free(&big);
}

TEST(file_append_and_mode)
{
    char path[300];
    struct str got = STR_INIT;
    struct stat sb;
    int fd;

    path_in(path, sizeof(path), "append.log");
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, "old line\n", 9) == 9);
    close(fd);
    log_open("tester", LOG_DEST_FILE, path);
    log_info("new line");
    slurp(path, &got);
    CHECK(strncmp(got.s, "old line\n", 9) == 0);
    CHECK(strstr(got.s, "]: new line\n") != NULL);

    path_in(path, sizeof(path), "fresh.log");
    mode_t old = umask(0);
    log_open("tester", LOG_DEST_FILE, path);
    umask(old);
    log_info("x");
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0640);
    str_free(&got);
}

TEST(errno_kept_and_percent_m)
{
    char path[300];
    struct str got = STR_INIT;

    path_in(path, sizeof(path), "errno.log");
    log_open("tester", LOG_DEST_FILE, path);
    errno = ENOENT;
    log_warn("open x: %m");
    CHECK(errno == ENOENT);
    slurp(path, &got);
    CHECK(strstr(got.s, "warning: open x: No such file or directory\n") != NULL);
    str_free(&got);
}

/* Runs fn in a child; its exit status, or -1. */
static int in_child(void (*fn)(void))
{
    pid_t pid;
    int status;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        fn();
        _exit(0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

static void child_fatal(void)
{
    char path[300];
    path_in(path, sizeof(path), "fatal.log");
    log_open("tester", LOG_DEST_FILE, path);
    log_fatal("cannot go on: %d", 42);
}

TEST(fatal_exits_1)
{
    char path[300];
    struct str got = STR_INIT;

    CHECK(in_child(child_fatal) == 1);
    path_in(path, sizeof(path), "fatal.log");
    slurp(path, &got);
    CHECK(strstr(got.s, "]: fatal: cannot go on: 42\n") != NULL);
    str_free(&got);
}

static void child_panic(void)
{
    char path[300];
    path_in(path, sizeof(path), "panic.log");
    log_open("tester", LOG_DEST_FILE, path);
    log_panic("broken invariant: %d", 7);
}

TEST(panic_aborts)
{
    char path[300];
    struct str got = STR_INIT;
    pid_t pid;
    int status = 0;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        signal(SIGABRT, SIG_DFL);
        child_panic();
        _exit(0);
    }
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    path_in(path, sizeof(path), "panic.log");
    slurp(path, &got);
    CHECK(strstr(got.s, "]: panic: broken invariant: 7\n") != NULL);
    str_free(&got);
}

static void child_symlink(void)
{
    char path[300];
    path_in(path, sizeof(path), "link.log");
    /* stderr to /dev/null: the fatal message about the refused file goes there. */
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    log_open("tester", LOG_DEST_FILE, path);
    log_info("must not reach the target");
}

/* Regression: the log file was opened through a symbolic link (as root, in a
 * directory someone else may write), appending to whatever it pointed at. */
TEST(file_refuses_symlink)
{
    char path[300], target[300];
    struct str got = STR_INIT;
    int fd;

    path_in(target, sizeof(target), "target");
    path_in(path, sizeof(path), "link.log");
    fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    close(fd);
    CHECK(symlink(target, path) == 0);
    CHECK(in_child(child_symlink) == 1);
    slurp(target, &got);
    CHECK(got.len == 0);
    str_free(&got);
}

TEST(open_conf)
{
    char conf_path[300], logpath[300];
    struct str text = STR_INIT, err = STR_INIT, got = STR_INIT;
    struct conf *c;
    int fd;

    path_in(conf_path, sizeof(conf_path), "postern.conf");
    path_in(logpath, sizeof(logpath), "conf.log");
    str_printf(&text, "maillog_file = %s\nsyslog_name = postern-test\n", logpath);
    fd = open(conf_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, text.s, text.len) == (ssize_t)text.len);
    close(fd);
    c = conf_load(tdir(), &err);
    CHECK(c != NULL);
    if (c != NULL) {
        log_open_conf("smtpd", c, 1);
        log_info("via conf");
        slurp(logpath, &got);
        CHECK(strstr(got.s, " postern-test/smtpd[") != NULL);
        CHECK(strstr(got.s, "]: via conf\n") != NULL);
        conf_free(c);
    }
    log_open("tester", LOG_DEST_STDERR, NULL);
    str_free(&text);
    str_free(&err);
    str_free(&got);
}

/* The directory goes when the program ends (not when a child does). */
__attribute__((destructor)) static void cleanup(void)
{
    if (dir[0] != '\0' && getpid() == dir_owner) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
        dir[0] = '\0';
    }
}
