/* The postern admin command: what its subcommand files share. */
#ifndef POSTERN_CMD_H
#define POSTERN_CMD_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "conf.h"

struct str;

#define EXIT_USAGE 2

#ifndef POSTERN_VERSION
#define POSTERN_VERSION "0.1"       /* as master(8) says it */
#endif

/* The instance's config directory (-c, $POSTERN_CONFIG_DIR, or the default). */
extern const char *cmd_config_dir;

/* "postern: message" on stderr. */
void cmd_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, then exit 1. */
_Noreturn void cmd_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The usage text for one subcommand (or all, when NULL), then exit 2. */
_Noreturn void cmd_usage(const char *what);

/* Loads the instance's postern.conf; exits 1 on error. */
struct conf *cmd_conf(void);
/* The same, with values not checked against their types: for what must work while
 * the file holds a bad value (stop, status, repairing it with config). */
struct conf *cmd_conf_unchecked(void);
/* The queue directory, for what must work even when postern.conf does not load
 * (stop, status): from the file when it loads unchecked, else from its
 * "queue_directory = " line (or the default), with a warning.  Caller frees. */
char *cmd_queue_dir_lenient(void);
/* Where the daemons are: daemon_directory, else next to this program. */
char *cmd_daemon_dir(const struct conf *c);

/* Text maps: the file behind the first cdb: table of a config key, else
 * CONFIGDIR/maps/FALLBACK.  Caller frees. */
char *cmd_map_file(const struct conf *c, enum conf_key key, const char *fallback);
/* Rewrites a text map atomically: drops the entry whose key is drop (with its
 * continuation lines; NULL: none), then appends add (a whole line, NULL: none).
 * Keeps the file's mode and owner; a file that did not exist gets new_mode (a
 * password map must not become world-readable).  1 when an entry was dropped, 0 if
 * not, -1 error. */
int textmap_rewrite(const char *path, const char *drop, const char *add, mode_t new_mode,
                    struct str *err);
/* Is key an entry of the text map?  1 yes, 0 no, -1 error. */
int textmap_has(const char *path, const char *key, struct str *err);
/* Calls fn with each entry's key, in file order.  0, or -1 with err. */
int textmap_keys(const char *path, void (*fn)(const char *key, void *arg), void *arg,
                 struct str *err);
/* Writes a whole file atomically (temporary file, fsync, rename); mode as given. */
int file_write_atomic(const char *path, const char *data, size_t len, mode_t mode,
                      struct str *err);

/* s as a JSON string (quoted, escaped; bytes that are not UTF-8 become U+FFFD). */
void json_str(FILE *f, const char *s);

/* The master's pid when it runs (its pid file QDIR/pid/master.pid is locked), else
 * 0; -1 on error. */
pid_t master_running(const char *qdir, struct str *err);

/* master_running(), exiting with the message on error. */
pid_t cmd_master_pid(const char *qdir);

/* From master's status file (if it belongs to the master with this pid): the number
 * of reloads it has handled and why the last one failed (empty: it worked).  1, or
 * 0 when the file does not say. */
int master_reload_state(const char *qdir, pid_t pid, unsigned long *reloads, char *why,
                        size_t size);

/* The checks of "postern check" on a loaded configuration, each problem printed on
 * standard error: the number of problems. */
int check_run(const struct conf *c);

int cmd_check(int argc, char **argv);
int cmd_logrotate(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_start(int argc, char **argv);
int cmd_stop(int argc, char **argv);
int cmd_reload(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_queue(int argc, char **argv);

#endif
