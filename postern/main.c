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
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "file_read.h"
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
    { "check", "[-c DIR] check" },
    { "logrotate", "[-c DIR] logrotate" },
    { "user", "[-c DIR] user add ADDRESS | user passwd ADDRESS | user del ADDRESS | user list" },
    { "map", "[-c DIR] map build FILE... | map query MAP KEY" },
    { "config", "[-c DIR] config [-d | -n | -x] [KEY]... | config KEY=VALUE... | config -X KEY..." },
    { "queue", "[-c DIR] queue list [--json] | show ID | flush [ID... | ALL | -]\n"
               "                  | hold | release | delete | requeue  ID... | ALL | -" },
};

static void usage_print(FILE *f, const char *what)
{
    bool first = true;
    for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++)
        if (what == NULL || strcmp(what, usages[i].name) == 0) {
            fprintf(f, "%s postern %s\n", first ? "usage:" : "      ", usages[i].usage);
            first = false;
        }
}

void cmd_usage(const char *what)
{
    usage_print(stderr, what);
    exit(EXIT_USAGE);
}

/* --help: the usage on standard output, exit 0. */
static _Noreturn void help(const char *what)
{
    usage_print(stdout, what);
    if (what == NULL)
        printf("\nThe instance is -c DIR, else $POSTERN_CONFIG_DIR, else %s.\n"
               "See postern(8).\n", conf_default_dir());
    exit(fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1);
}

/* The instance must exist: -c naming a missing directory, or one without
 * postern.conf, is a mistake to report, not an empty default configuration. */
static void instance_check(void)
{
    struct str path = STR_INIT;
    struct stat sb;

    str_init(&path);
    if (stat(cmd_config_dir, &sb) < 0)
        cmd_fail("%s: %s (no instance here; make one with \"postern init %s\")",
                 cmd_config_dir, strerror(errno), cmd_config_dir);
    if (!S_ISDIR(sb.st_mode))
        cmd_fail("%s: not a directory", cmd_config_dir);
    str_printf(&path, "%s/postern.conf", cmd_config_dir);
    if (access(path.s, F_OK) < 0)
        cmd_fail("%s: %s (not an instance's config directory)", path.s, strerror(errno));
    str_free(&path);
}

static struct conf *conf_or_fail(struct conf *(*load)(const char *, struct str *))
{
    struct str err = STR_INIT;
    instance_check();
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

/* The value of "queue_directory = VALUE" in text: the last such line, trimmed; NULL
 * when there is none.  A line that continues (leading white space) is not looked at:
 * this is a fallback for a file that does not parse. */
static char *scan_queue_directory(const char *text, size_t len)
{
    char *found = NULL;
    size_t pos = 0;

    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + 1;
        static const char key[] = "queue_directory";
        if (n <= sizeof(key) || memcmp(line, key, sizeof(key) - 1) != 0)
            continue;
        size_t i = sizeof(key) - 1;
        while (i < n && (line[i] == ' ' || line[i] == '\t'))
            i++;
        if (i >= n || line[i] != '=')
            continue;
        i++;
        while (i < n && (line[i] == ' ' || line[i] == '\t'))
            i++;
        size_t e = n;
        while (e > i && (line[e - 1] == ' ' || line[e - 1] == '\t' || line[e - 1] == '\r'))
            e--;
        free(found);
        found = xstrndup(line + i, e - i);
    }
    return found;
}

char *cmd_queue_dir_lenient(void)
{
    struct str err = STR_INIT;
    instance_check();
    str_init(&err);
    struct conf *c = conf_load_unchecked(cmd_config_dir, &err);
    if (c != NULL) {
        char *q = xstrdup(conf_str(c, CONF_queue_directory));
        conf_free(c);
        str_free(&err);
        return q;
    }
    /* postern.conf does not parse: find queue_directory by hand, as written */
    struct str path = STR_INIT, text = STR_INIT, rerr = STR_INIT;
    str_init(&path);
    str_init(&text);
    str_init(&rerr);
    str_printf(&path, "%s/postern.conf", cmd_config_dir);
    int fd = open(path.s, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || file_read_fd(fd, path.s, 1u << 24, &text, &rerr) < 0)
        cmd_fail("%s", err.s);
    close(fd);
    char *q = scan_queue_directory(text.s ? text.s : "", text.len);
    if (q == NULL)
        q = xstrdup(conf_defaults[CONF_queue_directory].value);
    if (q[0] != '/' || strchr(q, '$') != NULL)
        cmd_fail("%s; and queue_directory = %s cannot be used without it", err.s, q);
    cmd_warn("%s", err.s);
    cmd_warn("going on with queue_directory = %s", q);
    str_free(&err);
    str_free(&path);
    str_free(&text);
    str_free(&rerr);
    return q;
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
    /* the built tree (sbin/ beside libexec/postern/), then the installed one (sbin/
     * beside lib/postern/, see INSTALL) */
    static const char *const rel[] = { "../libexec/postern", "../lib/postern" };
    const char *bin = dirname(exe);
    str_init(&d);
    for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
        str_clear(&d);
        str_printf(&d, "%s/%s", bin, rel[i]);
        char *real = realpath(d.s, NULL);
        if (real != NULL) {
            str_free(&d);
            return real;
        }
    }
    str_clear(&d);
    str_printf(&d, "%s/%s", bin, rel[0]);
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
    { "check", cmd_check },
    { "logrotate", cmd_logrotate },
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
            help(NULL);
        } else if (strcmp(argv[i], "-V") == 0 || strcmp(argv[i], "--version") == 0) {
            printf("postern %s\n", POSTERN_VERSION);
            return 0;
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
    if (strcmp(argv[i], "help") == 0)
        help(i + 1 < argc ? argv[i + 1] : NULL);
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
        if (strcmp(argv[i], commands[k].name) == 0) {
            for (int j = i + 1; j < argc; j++)
                if (strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0)
                    help(commands[k].name);
            return commands[k].fn(argc - i, argv + i);
        }
    cmd_warn("unknown command \"%s\"", argv[i]);
    cmd_usage(NULL);
}
