/* "postern logrotate", as "postfix logrotate": the log file (maillog_file, or the
 * fallback when there is no syslog) is renamed FILE.YYYYMMDD-HHMMSS, a running master
 * is reloaded so that it and its new processes open FILE afresh, and the files that
 * earlier rotations renamed are compressed with maillog_file_compressor.  The file
 * just renamed is left for the next rotation: a process still finishing a session
 * may write its last lines to it. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log_conf.h"
#include "postern.h"
#include "str.h"
#include "xmalloc.h"

#define STAMP_LEN 15            /* YYYYMMDD-HHMMSS */

/* name is base "." YYYYMMDD-HHMMSS exactly (not compressed yet). */
static int is_rotated(const char *name, const char *base)
{
    size_t n = strlen(base);

    if (strncmp(name, base, n) != 0 || name[n] != '.' || strlen(name + n + 1) != STAMP_LEN)
        return 0;
    for (size_t i = 0; i < STAMP_LEN; i++) {
        char ch = name[n + 1 + i];
        if (i == 8 ? ch != '-' : (ch < '0' || ch > '9'))
            return 0;
    }
    return 1;
}

/* Runs "prog path" (no shell); 0 when it exits 0. */
static int compress_one(const char *prog, const char *path)
{
    pid_t pid = fork();
    int status;

    if (pid < 0) {
        cmd_warn("fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        execlp(prog, prog, "--", path, (char *)NULL);
        fprintf(stderr, "postern: cannot run %s: %s\n", prog, strerror(errno));
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            cmd_warn("waitpid: %s", strerror(errno));
            return -1;
        }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        cmd_warn("%s %s failed: the file stays as it is", prog, path);
        return -1;
    }
    printf("%s: compressed with %s\n", path, prog);
    return 0;
}

/* Compresses file's earlier rotations in its directory, all but newest. */
static int compress_earlier(const char *file, const char *newest, const char *prog)
{
    const char *slash = strrchr(file, '/');
    char *dir = slash ? xstrndup(file, slash == file ? 1 : (size_t)(slash - file))
                      : xstrdup(".");
    const char *base = slash ? slash + 1 : file;
    DIR *d = opendir(dir);
    struct dirent *e;
    struct str path = STR_INIT;
    int bad = 0;

    str_init(&path);
    if (d == NULL) {
        cmd_warn("%s: %s: old log files not compressed", dir, strerror(errno));
        free(dir);
        return 1;
    }
    while ((e = readdir(d)) != NULL) {
        if (!is_rotated(e->d_name, base))
            continue;
        str_clear(&path);
        str_printf(&path, "%s/%s", dir, e->d_name);
        if (newest != NULL && strcmp(path.s, newest) == 0)
            continue;
        if (compress_one(prog, path.s) < 0)
            bad = 1;
    }
    closedir(d);
    str_free(&path);
    free(dir);
    return bad;
}

int cmd_logrotate(int argc, char **argv)
{
    (void)argv;
    if (argc != 1)
        cmd_usage("logrotate");
    struct conf *c = cmd_conf();
    char *file = log_conf_file(c, 0);
    if (file == NULL) {
        printf("postern logs to syslog: its own rotation applies\n");
        conf_free(c);
        return 0;
    }
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm) == NULL
        || strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm) == 0)
        cmd_fail("cannot format the time");
    struct str to = STR_INIT;
    str_init(&to);
    str_printf(&to, "%s.%s", file, stamp);
    if (access(to.s, F_OK) == 0)
        cmd_fail("%s exists already: try again in a second", to.s);
    bool renamed = true;
    if (rename(file, to.s) < 0) {
        if (errno != ENOENT)
            cmd_fail("rename %s: %s", file, strerror(errno));
        printf("%s: no log file yet\n", file);
        renamed = false;
    } else {
        printf("%s: rotated to %s\n", file, to.s);
    }
    pid_t pid = cmd_master_pid(conf_str(c, CONF_queue_directory));
    if (pid > 0) {
        int n = check_run(c);
        if (n > 0)
            cmd_fail("%d error%s in the configuration: not reloaded; processes keep logging "
                     "to %s until it is put right and \"postern reload\" runs", n,
                     n == 1 ? "" : "s", to.s);
        if (kill(pid, SIGHUP) < 0)
            cmd_fail("cannot signal master (pid %ld): %s", (long)pid, strerror(errno));
        printf("postern reloading (pid %ld): new processes log to %s\n", (long)pid, file);
    }
    const char *prog = conf_str(c, CONF_maillog_file_compressor);
    int bad = 0;
    if (prog[0] != '\0')
        bad = compress_earlier(file, renamed ? to.s : NULL, prog);
    str_free(&to);
    free(file);
    conf_free(c);
    return bad;
}
