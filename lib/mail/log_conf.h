/* Opening the log as postern.conf says: maillog_file, syslog_name, syslog_facility. */
#ifndef POSTERN_LOG_CONF_H
#define POSTERN_LOG_CONF_H

struct conf;

/* maillog_file if set, else stderr when foreground is true, else syslog with
 * syslog_facility, unless no syslog daemon listens (log_syslog_available): then
 * the fallback file below, so that no line is lost.  Fatal when the log file cannot
 * be opened. */
void log_open_conf(const char *name, const struct conf *conf, int foreground);

/* The fallback log file, CONFIG_DIR/log/maillog ("postern start" makes the
 * directory).  Caller frees. */
char *log_conf_fallback(const struct conf *conf);
/* The file the processes log to: maillog_file, the fallback when there is no syslog
 * (and not foreground), else NULL (syslog or stderr).  Caller frees. */
char *log_conf_file(const struct conf *conf, int foreground);
/* Makes the fallback file's directory (mode 0755) when it is to be used.  1 when
 * the fallback is used, 0 when not, -1 (errno) when the directory cannot be made. */
int log_conf_prepare(const struct conf *conf, int foreground);

#endif
