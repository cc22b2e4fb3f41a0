/* postern(8): the admin command.  Parses the global options and hands over to one
 * subcommand; the helpers every subcommand uses live here too.  Trusts its caller as
 * far as the file permissions of the instance let it. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "postern.h"
#include "str.h"
#include "xmalloc.h"

const char *cmd_config_dir;

static void cmd_vwarn(const char *fmt, va_list ap)
{
    fputs("postern: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cmd_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cmd_vwarn(fmt, ap);
    va_end(ap);
}

void cmd_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cmd_vwarn(fmt, ap);
    va_end(ap);
    exit(1);
}

static const struct {
    const char *name;
    const char *usage;
} usages[] = {
    { "init", "init DIR [--domain D]... [--port-base N] [--hostname H] [--postmaster ADDR]\n"
              "                 [--queue-directory QDIR] [--mail-directory MDIR]" },
    { "start", "[-c DIR] start [-f]" },
    { "stop", "[-c DIR] stop" },
    { "reload", "[-c DIR] reload" },
    { "status", "[-c DIR] status [--json]" },
    { "user", "[-c DIR] user add ADDRESS | user del ADDRESS | user list" },
    { "map", "[-c DIR] map build FILE" },
    { "config", "[-c DIR] config [KEY | KEY=VALUE]..." },
    { "queue", "[-c DIR] queue list | show ID | flush | hold ID | release ID | delete ID" },
};

void cmd_usage(const char *what)
{
    for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++)
        if (what == NULL || strcmp(what, usages[i].name) == 0)
            fprintf(stderr, "%s postern %s\n", i == 0 || what != NULL ? "usage:" : "      ",
                    usages[i].usage);
    exit(EXIT_USAGE);
}

static struct conf *conf_or_fail(struct conf *(*load)(const char *, struct str *))
{
    struct str err = STR_INIT;
    str_init(&err);
    struct conf *c = load(cmd_config_dir, &err);
    if (c == NULL)
        cmd_fail("%s", err.s);
    str_free(&err);
    return c;
}

struct conf *cmd_conf(void)
{
    return conf_or_fail(conf_load);
}

struct conf *cmd_conf_unchecked(void)
{
    return conf_or_fail(conf_load_unchecked);
}

char *cmd_daemon_dir(const struct conf *c)
{
    const char *set = conf_str(c, CONF_daemon_directory);
    char exe[PATH_MAX];
    ssize_t n;
    struct str d = STR_INIT;

    if (set[0] != '\0')
        return xstrdup(set);
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n < 0)
        cmd_fail("cannot find this program's path: %s", strerror(errno));
    exe[n] = '\0';
    str_init(&d);
    str_printf(&d, "%s/../libexec/postern", dirname(exe));
    char *real = realpath(d.s, NULL);
    if (real != NULL) {
        str_free(&d);
        return real;
    }
    return str_detach(&d);
}

static const struct {
    const char *name;
    int (*fn)(int, char **);
} commands[] = {
    { "init", cmd_init },
    { "start", cmd_start },
    { "stop", cmd_stop },
    { "reload", cmd_reload },
    { "status", cmd_status },
    { "user", cmd_user },
    { "map", cmd_map },
    { "config", cmd_config },
    { "queue", cmd_queue },
};

int main(int argc, char **argv)
{
    int i = 1;

    cmd_config_dir = NULL;
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
            cmd_config_dir = argv[i + 1];
            i += 2;
        } else if (strncmp(argv[i], "-c", 2) == 0 && argv[i][2] != '\0') {
            cmd_config_dir = argv[i] + 2;
            i++;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            cmd_usage(NULL);
        } else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else {
            cmd_warn("unknown option %s", argv[i]);
            cmd_usage(NULL);
        }
    }
    if (i >= argc)
        cmd_usage(NULL);
    if (cmd_config_dir == NULL)
        cmd_config_dir = conf_default_dir();
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
        if (strcmp(argv[i], commands[k].name) == 0)
            return commands[k].fn(argc - i, argv + i);
    cmd_warn("unknown command \"%s\"", argv[i]);
    cmd_usage(NULL);
}
