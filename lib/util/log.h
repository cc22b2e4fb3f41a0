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
/* The same with the prefix of the program name ("postern" when NULL or empty) and
 * the syslog facility (a LOG_* value; < 0 means mail). */
void log_open_as(const char *prefix, const char *name, enum log_dest dest,
                 const char *file, int facility);
/* The LOG_* value of a facility name ("mail", "local0", ...), or -1. */
int log_facility(const char *name);
/* Does a syslog daemon listen on the local socket (/dev/log)?  1 yes, 0 no. */
int log_syslog_available(void);

/* log_info() under another program name ("smtp", "local"), as if that program had
 * written the line: for the delivery status lines that log readers look for under
 * the delivery agent's name. */
void log_info_as(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   /* "warning: " */
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* "error: " */
/* The environment is wrong (config, resources, a peer we depend on): "fatal: ", exit 1. */
_Noreturn void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A broken invariant, that is a bug: "panic: ", then abort() for a core to debug. */
_Noreturn void log_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
