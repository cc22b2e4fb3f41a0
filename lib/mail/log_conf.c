/* The config's choice of log destination, on top of the generic log (log_conf.h). */
#include "log_conf.h"

#include "conf.h"
#include "log.h"

void log_open_conf(const char *name, const struct conf *conf, int foreground)
{
    const char *file = conf_str(conf, CONF_maillog_file);
    const char *prefix = conf_str(conf, CONF_syslog_name);
    /* syslog_facility is an enum of the config table: log_facility knows each word. */
    int facility = log_facility(conf_str(conf, CONF_syslog_facility));

    if (file != NULL && *file != '\0')
        log_open_as(prefix, name, LOG_DEST_FILE, file, facility);
    else if (foreground)
        log_open_as(prefix, name, LOG_DEST_STDERR, NULL, facility);
    else
        log_open_as(prefix, name, LOG_DEST_SYSLOG, NULL, facility);
}
