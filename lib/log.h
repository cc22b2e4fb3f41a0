/* Logging in the manner of Postfix: "postern/NAME[pid]: text".  To syslog (facility
 * mail), to stderr (foreground), or appended to a file (maillog_file), one write(2) a
 * line.  Every line is sanitised: control characters become '?', so text from the
 * network cannot forge log lines.  Callers put the queue id first: "ID: key=value". */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

enum log_dest {
    LOG_DEST_SYSLOG,
    LOG_DEST_STDERR,
    LOG_DEST_FILE,
};

/* name: the program's name ("smtpd"); file: the path for LOG_DEST_FILE.  May be called
 * again (after reading the config) to switch destination.  Opens the destination now,
 * so it keeps working after chroot. */
void log_open(const char *name, enum log_dest dest, const char *file);
/* Picks the destination from a config: maillog_file if set, else stderr when
 * foreground is true, else syslog. */
struct conf;
void log_open_conf(const char *name, const struct conf *conf, int foreground);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   /* "warning: " */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* "error: " */
_Noreturn void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* "fatal: ", exit 1 */

const char *log_name(void);

#endif
