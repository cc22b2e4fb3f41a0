/* Logging: "postern/NAME[pid]: text" to syslog, stderr or an append-only file.
 * Text may come from the network: every control byte becomes '?', a line is capped
 * at LOG_LINE_MAX bytes and written with a single write(2), so lines never interleave
 * or forge one another.  Destinations are opened at log_open time (before chroot). */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

static enum log_dest log_dest = LOG_DEST_STDERR;
static int log_fd = -1;                 /* LOG_DEST_FILE */
static char log_prog[128];              /* "NAME" */
static char log_ident[256];             /* "postern/NAME" */
static char log_host[256];
static char log_prefix[64];             /* "postern" */
static int log_fac = LOG_MAIL;

static const struct {
    const char *name;
    int facility;
} log_facilities[] = {
    { "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
    { "auth", LOG_AUTH }, { "authpriv", LOG_AUTHPRIV },
    { "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 },
    { "local3", LOG_LOCAL3 }, { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
    { "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

static void log_set_names(const char *prefix, const char *name)
{
    snprintf(log_prefix, sizeof(log_prefix), "%s", prefix);
    snprintf(log_prog, sizeof(log_prog), "%s", name);
    snprintf(log_ident, sizeof(log_ident), "%s/%s", prefix, name);
}

static void log_setup(const char *prefix, const char *name, enum log_dest dest,
                      const char *file, int facility)
{
    int fd = -1;

    log_set_names(prefix, name);
    tzset();
    if (gethostname(log_host, sizeof(log_host)) != 0)
        snprintf(log_host, sizeof(log_host), "localhost");
    log_host[sizeof(log_host) - 1] = '\0';
    {
        char *dot = strchr(log_host, '.');
        if (dot != NULL)
            *dot = '\0';
    }
    if (dest == LOG_DEST_FILE) {
        /* Opened as root by master and by each daemon before it drops privileges:
         * never through a symbolic link planted in the log's directory. */
        fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW,
                  0640);
        if (fd < 0) {
            int e = errno;
            if (log_fd >= 0)
                close(log_fd);
            log_fd = -1;
            log_dest = LOG_DEST_STDERR;
            errno = e;
            log_fatal("cannot open log file %s: %m", file);
        }
    }
    if (log_fd >= 0)
        close(log_fd);
    log_fd = fd;
    if (log_dest == LOG_DEST_SYSLOG)
        closelog();
    log_dest = dest;
    log_fac = facility;
    if (dest == LOG_DEST_SYSLOG)
        openlog(log_ident, LOG_PID | LOG_NDELAY, facility);
}

void log_open(const char *name, enum log_dest dest, const char *file)
{
    log_setup("postern", name, dest, file, LOG_MAIL);
}

int log_facility(const char *name)
{
    for (size_t i = 0; i < sizeof(log_facilities) / sizeof(log_facilities[0]); i++)
        if (name != NULL && strcmp(name, log_facilities[i].name) == 0)
            return log_facilities[i].facility;
    return -1;
}

void log_open_as(const char *prefix, const char *name, enum log_dest dest,
                 const char *file, int facility)
{
    if (prefix == NULL || *prefix == '\0')
        prefix = "postern";
    log_setup(prefix, name, dest, file, facility < 0 ? LOG_MAIL : facility);
}

static void log_sanitise(char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f)
            p[i] = '?';
    }
}

/* The end of the text once snprintf() at off reported n bytes in a buffer of size
 * bytes (a truncated write ends at the buffer's last byte). */
static size_t line_advance(size_t off, int n, size_t size)
{
    if (n <= 0)
        return off;
    return off + ((size_t)n < size - off ? (size_t)n : size - off - 1);
}

static void log_emit_as(const char *ident, int level, const char *tag, const char *fmt,
                        va_list ap);

static void log_emit(int level, const char *tag, const char *fmt, va_list ap)
{
    if (log_ident[0] == '\0')
        log_set_names("postern", program_invocation_short_name);
    log_emit_as(log_ident, level, tag, fmt, ap);
}

int log_syslog_available(void)
{
    static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
    struct sockaddr_un sun;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", _PATH_LOG);
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
        close(fd);
        if (rc == 0)
            return 1;
    }
    return 0;
}

void log_info_as(const char *name, const char *fmt, ...)
{
    char ident[sizeof(log_ident)];
    va_list ap;

    if (log_ident[0] == '\0')
        log_set_names("postern", program_invocation_short_name);
    snprintf(ident, sizeof(ident), "%s/%s", log_prefix, name);
    /* syslog(3) takes the name from openlog(): switched for this line only (the
     * connection stays open, which matters after chroot) */
    if (log_dest == LOG_DEST_SYSLOG)
        openlog(ident, LOG_PID | LOG_NDELAY, log_fac);
    va_start(ap, fmt);
    log_emit_as(ident, LOG_INFO, "", fmt, ap);
    va_end(ap);
    if (log_dest == LOG_DEST_SYSLOG)
        openlog(log_ident, LOG_PID | LOG_NDELAY, log_fac);
}

static void log_emit_as(const char *ident, int level, const char *tag, const char *fmt,
                        va_list ap)
{
    int saved = errno;
    char line[LOG_LINE_MAX];
    size_t off = 0, start;
    int n;

    if (log_dest != LOG_DEST_SYSLOG) {
        time_t now = time(NULL);
        struct tm tm;
        if (localtime_r(&now, &tm) != NULL)
            off = strftime(line, sizeof(line), "%b %e %H:%M:%S ", &tm);
        n = snprintf(line + off, sizeof(line) - off, "%s %s[%ld]: ", log_host,
                     ident, (long)getpid());
        off = line_advance(off, n, sizeof(line));
    }
    start = off;
    n = snprintf(line + off, sizeof(line) - off, "%s", tag);
    off = line_advance(off, n, sizeof(line));
    errno = saved;
    n = vsnprintf(line + off, sizeof(line) - off, fmt, ap);
    off = line_advance(off, n, sizeof(line));
    /* Room for the newline: the line is capped at LOG_LINE_MAX bytes in all. */
    if (off > sizeof(line) - 1)
        off = sizeof(line) - 1;
    log_sanitise(line + start, off - start);
    if (log_dest == LOG_DEST_SYSLOG) {
        line[off] = '\0';
        syslog(level, "%s", line + start);
    } else {
        ssize_t w;
        line[off++] = '\n';
        do
            w = write(log_dest == LOG_DEST_FILE ? log_fd : STDERR_FILENO, line, off);
        while (w < 0 && errno == EINTR);
    }
    errno = saved;
}

/* The body of each public entry point: its arguments to log_emit. */
#define LOG_EMIT_ARGS(level, tag)           \
    do {                                    \
        va_list ap;                         \
        va_start(ap, fmt);                  \
        log_emit(level, tag, fmt, ap);      \
        va_end(ap);                         \
    } while (0)

void log_info(const char *fmt, ...)
{
    LOG_EMIT_ARGS(LOG_INFO, "");
}

void log_warn(const char *fmt, ...)
{
    LOG_EMIT_ARGS(LOG_WARNING, "warning: ");
}

void log_error(const char *fmt, ...)
{
    LOG_EMIT_ARGS(LOG_ERR, "error: ");
}

void log_fatal(const char *fmt, ...)
{
    LOG_EMIT_ARGS(LOG_CRIT, "fatal: ");
    exit(1);
}

void log_panic(const char *fmt, ...)
{
    LOG_EMIT_ARGS(LOG_CRIT, "panic: ");
    abort();
}
