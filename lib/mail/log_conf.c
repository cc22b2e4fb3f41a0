/* The config's choice of log destination, on top of the generic log (log_conf.h). */
#include "log_conf.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "conf.h"
#include "log.h"
#include "str.h"
#include "xmalloc.h"

char *log_conf_fallback(const struct conf *conf)
{
    struct str p = STR_INIT;
    str_init(&p);
    str_printf(&p, "%s/log/maillog", conf_dir(conf));
    return str_detach(&p);
}

char *log_conf_file(const struct conf *conf, int foreground)
{
    const char *file = conf_str(conf, CONF_maillog_file);

    if (file != NULL && *file != '\0')
        return xstrdup(file);
    if (!foreground && !log_syslog_available())
        return log_conf_fallback(conf);
    return NULL;
}

int log_conf_prepare(const struct conf *conf, int foreground)
{
    const char *file = conf_str(conf, CONF_maillog_file);
    struct str dir = STR_INIT;
    int rc = 1;

    if ((file != NULL && *file != '\0') || foreground || log_syslog_available())
        return 0;
    str_init(&dir);
    str_printf(&dir, "%s/log", conf_dir(conf));
    if (mkdir(dir.s, 0755) < 0 && errno != EEXIST)
        rc = -1;
    str_free(&dir);
    return rc;
}

void log_open_conf(const char *name, const struct conf *conf, int foreground)
{
    const char *prefix = conf_str(conf, CONF_syslog_name);
    /* syslog_facility is an enum of the config table: log_facility knows each word. */
    int facility = log_facility(conf_str(conf, CONF_syslog_facility));
    char *file = log_conf_file(conf, foreground);

    if (file != NULL)
        log_open_as(prefix, name, LOG_DEST_FILE, file, facility);
    else if (foreground)
        log_open_as(prefix, name, LOG_DEST_STDERR, NULL, facility);
    else
        log_open_as(prefix, name, LOG_DEST_SYSLOG, NULL, facility);
    free(file);
}
