/* Command lines from a POP3 client: bounded reads, keyword splitting, error replies
 * with a limit, message numbers and the other arguments.  Every byte here comes from the client. */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>

#include "clock.h"
#include "pop3d.h"
#include "stream.h"

#define POP3_DISCARD_MAX 65536      /* most bytes of an overlong line skipped */

/* Waits for the first byte of a line: the idle timeout, cut to the phase deadline.
 * 0, or -1 with errno ETIMEDOUT (or the flush's error). */
static int wait_first_byte(struct stream *st, long long phase_deadline)
{
    struct pollfd pfd = { .fd = stream_fd(st), .events = POLLIN, .revents = 0 };
    long long wait = pop3_cf.timeout_ms;
    int r;

    if (stream_pending(st) > 0)
        return 0;
    if (stream_flush(st) < 0)
        return -1;
    if (phase_deadline != 0) {
        long long left = phase_deadline - clock_ms();
        if (left < wait)
            wait = left > 0 ? left : 0;
    }
    do {
        r = poll(&pfd, 1, (int)wait);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        errno = ETIMEDOUT;
        return -1;
    }
    return 0;
}

static int getline_bounded(struct stream *st, struct str *line, size_t max);

static const char *timeout_kind = "timeout";

const char *pop3_timeout_kind(void)
{
    return timeout_kind;
}

int pop3_getline(struct stream *st, struct str *line, size_t max, long long phase_deadline)
{
    long long deadline;
    int r;

    str_clear(line);
    timeout_kind = "timeout";
    if (wait_first_byte(st, phase_deadline) < 0)
        return POP3_LINE_EOF;
    /* from the first byte on, the line has pop3d_command_deadline however it trickles */
    deadline = clock_ms() + pop3_cf.command_deadline_ms;
    if (phase_deadline != 0 && phase_deadline < deadline)
        deadline = phase_deadline;
    stream_set_deadline(st, deadline);
    r = getline_bounded(st, line, max);
    if (r == POP3_LINE_EOF && errno == ETIMEDOUT && clock_ms() >= deadline)
        timeout_kind = "command line deadline exceeded";
    stream_set_deadline(st, phase_deadline);
    return r;
}

void pop3_timeout_reply(struct stream *st)
{
    if (stream_error(st) && stream_clear_timeout(st) < 0)
        return;
    stream_set_deadline(st, clock_ms() + POP3_LAST_REPLY_MS);
    stream_puts(st, "-ERR [SYS/TEMP] timeout exceeded, closing\r\n");
    stream_flush(st);
}

static int getline_bounded(struct stream *st, struct str *line, size_t max)
{
    int r = stream_getline(st, line, max);
    bool bad = false;

    if (r == STREAM_PARTIAL) {
        size_t skipped = line->len;
        struct str rest = STR_INIT;

        /* Too long (or the last bytes before EOF): skip to the line end, bounded. */
        bad = true;
        while (r == STREAM_PARTIAL && skipped < POP3_DISCARD_MAX) {
            r = stream_getline(st, &rest, 4096);
            if (r == STREAM_PARTIAL || r == STREAM_LINE)
                skipped += rest.len;
        }
        str_free(&rest);
        if (r != STREAM_LINE)
            return POP3_LINE_EOF;
    } else if (r != STREAM_LINE) {
        return POP3_LINE_EOF;
    }
    if (bad)
        return POP3_LINE_BAD;
    if (line->len > 0 && line->s[line->len - 1] == '\n')
        str_truncate(line, line->len - 1);
    if (line->len > 0 && line->s[line->len - 1] == '\r')
        str_truncate(line, line->len - 1);
    if (memchr(line->s, '\0', line->len) != NULL)
        return POP3_LINE_BAD;
    return POP3_LINE_OK;
}

void pop3_split(struct str *line, const char **keyword, const char **args)
{
    char *sp = strchr(line->s, ' ');

    if (sp != NULL) {
        *sp = '\0';
        *args = sp + 1;
    } else {
        *args = NULL;
    }
    for (char *p = line->s; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    *keyword = line->s;
}

bool pop3_err(struct stream *st, unsigned *errors, const char *fmt, ...)
{
    va_list ap;

    (*errors)++;
    stream_puts(st, "-ERR ");
    va_start(ap, fmt);
    stream_vprintf(st, fmt, ap);
    va_end(ap);
    stream_puts(st, "\r\n");
    if (pop3_cf.error_limit > 0 && *errors >= (unsigned long long)pop3_cf.error_limit) {
        stream_puts(st, "-ERR too many errors, closing\r\n");
        stream_flush(st);
        return false;
    }
    return true;
}

size_t pop3_msgno(const char *s, size_t max)
{
    size_t v = 0;

    if (s == NULL || *s < '1' || *s > '9')
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        size_t d = (size_t)(*s - '0');
        if (d > max || v > (max - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    return v <= max ? v : 0;
}

/* A non-negative decimal count (TOP's line count), at most 18 digits: 0, or -1. */
int pop3_count(const char *arg, long long *out)
{
    long long v = 0;
    int digits = 0;

    if (arg == NULL || *arg == '\0')
        return -1;
    for (; *arg; arg++, digits++) {
        if (*arg < '0' || *arg > '9' || digits >= 18)
            return -1;
        v = v * 10 + (*arg - '0');
    }
    *out = v;
    return 0;
}

/* Splits "A B" into two arguments; false unless there are exactly two. */
bool pop3_two_args(char *args, char **a, char **b)
{
    char *sp;

    if (args == NULL)
        return false;
    sp = strchr(args, ' ');
    if (sp == NULL)
        return false;
    *sp = '\0';
    *a = args;
    *b = sp + 1;
    return **a != '\0' && **b != '\0' && strchr(*b, ' ') == NULL;
}
