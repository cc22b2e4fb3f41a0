/* master.conf: the service table master(8) runs, one service a line (see
 * master.conf(5)):
 *
 *   # service  type    listen           user  chroot  limit  command [arguments]
 *   smtp       inet    25               -     y       100    smtpd -o key=value
 *
 * '#' starts a comment line, blank lines are skipped, a line that starts with white
 * space continues the previous service.  The file is trusted only as far as its
 * syntax: every field is checked (names, paths, ports, counts) before use. */
#ifndef POSTERN_MASTER_CONF_H
#define POSTERN_MASTER_CONF_H

#include <stdbool.h>
#include <stddef.h>

struct str;

#define MASTER_CONF_SIZE_MAX (1u << 20)     /* bytes in the file */
#define MASTER_SERVICES_MAX 256             /* services in the table */
#define MASTER_ARGS_MAX 64                  /* arguments after the command */
#define MASTER_NAME_MAX 64                  /* service and command names */
#define MASTER_PATH_MAX 100                 /* UNIX socket paths (sun_path) */
#define MASTER_LIMIT_MAX 1000               /* processes of one service */
#define MASTER_PATHS_MAX 4                  /* socket paths of one unix service */

enum master_type {
    MASTER_INET,        /* TCP, processes on demand */
    MASTER_UNIX,        /* UNIX stream socket, processes on demand */
    MASTER_DAEMON,      /* UNIX socket or none, `limit` processes at all times */
};

struct master_service {
    char *name;
    enum master_type type;
    char *listen;       /* the column as written */
    char *host;         /* inet: address literal from the listen column, or NULL */
    unsigned port;      /* inet: 1..65535 */
    char *path;         /* unix/daemon: socket path relative to queue_directory;
                         * NULL for a daemon without a socket ("-") */
    char **paths;       /* every path of "PATH,PATH,..." (path is the first);
                         * NULL-terminated, NULL when path is */
    size_t npaths;
    char *user;         /* NULL for "-" (mail_owner) */
    bool chroot;
    int limit;          /* 0 for "-" (default_process_limit) */
    char *command;      /* program name in the daemon directory */
    char **args;        /* NULL-terminated */
    size_t nargs;
    unsigned line;      /* where it was defined */
};

struct master_conf {
    char *path;
    struct master_service *svc;
    size_t nsvc;
};

/* Reads and checks path.  0, or -1 with "path:line: message" in err (mc is then
 * empty).  A missing file is an error. */
int master_conf_load(const char *path, struct master_conf *mc, struct str *err);
/* The same on text in memory; name is used in messages. */
int master_conf_parse(const char *name, const char *text, size_t len,
                      struct master_conf *mc, struct str *err);
void master_conf_free(struct master_conf *mc);

const struct master_service *master_conf_find(const struct master_conf *mc,
                                              const char *name);
const char *master_type_name(enum master_type type);

#endif
