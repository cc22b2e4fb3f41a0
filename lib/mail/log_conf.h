/* Opening the log as postern.conf says: maillog_file, syslog_name, syslog_facility. */
#ifndef POSTERN_LOG_CONF_H
#define POSTERN_LOG_CONF_H

struct conf;

/* maillog_file if set, else stderr when foreground is true, else syslog with
 * syslog_facility.  Fatal when the log file cannot be opened. */
void log_open_conf(const char *name, const struct conf *conf, int foreground);

#endif
