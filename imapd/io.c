/* Reading IMAP commands and writing replies: bounded lines, literals announced with
 * "{n}" or "{n+}" checked against their limit before a byte of them is read, the
 * idle timeout and the command deadline, BAD/NO with a log line and the error limit.
 * A read command keeps its literals inline, each after its "{n}" or "{n+}" and one
 * CRLF, which is how parse.c finds them.  Every byte here comes from the client. */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "imapd.h"
#include "log.h"
#include "stream.h"

#define IMAP_DISCARD_MAX 65536      /* most bytes of an overlong line skipped */

/* Waits for the first byte of a command: the idle timeout, cut to the phase deadline.
 * 0, or -1 with errno ETIMEDOUT (or the flush's error). */
static int wait_first_byte(struct imap_conn *c)
{
    struct pollfd pfd = { .fd = stream_fd(c->st), .events = POLLIN, .revents = 0 };
    long long wait = c->user != NULL ? imap_cf.timeout_ms : imap_cf.preauth_timeout_ms;
    int r;

    if (stream_input_ready(c->st))
        return 0;
    if (stream_flush(c->st) < 0)
        return -1;
    if (c->phase_deadline != 0) {
        long long left = c->phase_deadline - clock_ms();
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

static const char *timeout_kind = "timeout";

void imap_timed_out(struct imap_conn *c)
{
    if (c->phase_deadline != 0 && clock_ms() >= c->phase_deadline)
        timeout_kind = "pre-auth deadline exceeded";
    log_info("%s: client=[%s]%s%s%s", timeout_kind, c->client, c->user ? ", user=<" : "",
             c->user ? c->user : "", c->user ? ">" : "");
    if (stream_error(c->st) && stream_clear_timeout(c->st) < 0)
        return;
    stream_set_deadline(c->st, clock_ms() + IMAP_LAST_REPLY_MS);
    stream_puts(c->st, "* BYE Autologout; idle for too long\r\n");
    stream_flush(c->st);
}

/* The tag of a (partial) command for its reply: "*" when it has none we could echo. */
static void take_tag(struct imap_conn *c, const char *s, size_t len)
{
    size_t n = 0;

    while (n < len && n < IMAP_TAG_MAX && s[n] > ' ' && s[n] < 0x7f && !strchr("(){%*\"\\+", s[n]))
        n++;
    if (n == 0 || (n < len && s[n] != ' ')) {
        strcpy(c->tag, "*");
        return;
    }
    memcpy(c->tag, s, n);
    c->tag[n] = '\0';
}

/* One line, its end removed: 1, 0 when too long (skipped to its end, bounded),
 * -2 when too long to skip (over IMAP_DISCARD_MAX), -1 on EOF or error. */
static int read_line(struct imap_conn *c, struct str *line)
{
    int r = stream_getline(c->st, line, IMAP_LINE_MAX + 2);

    if (r == STREAM_PARTIAL) {
        size_t skipped = line->len;
        struct str rest = STR_INIT;

        while (r == STREAM_PARTIAL && skipped < IMAP_DISCARD_MAX) {
            r = stream_getline(c->st, &rest, 4096);
            if (r == STREAM_PARTIAL || r == STREAM_LINE)
                skipped += rest.len;
        }
        str_free(&rest);
        if (r == STREAM_LINE && skipped > IMAP_DISCARD_MAX)
            return -2;                  /* by the line's whole length, as mux_read.c */
        return r == STREAM_LINE ? 0 : r == STREAM_PARTIAL ? -2 : -1;
    }
    if (r != STREAM_LINE)
        return -1;
    if (line->len > 0 && line->s[line->len - 1] == '\n')
        str_truncate(line, line->len - 1);
    if (line->len > 0 && line->s[line->len - 1] == '\r')
        str_truncate(line, line->len - 1);
    return line->len > IMAP_LINE_MAX ? 0 : 1;     /* a bare LF left a byte more */
}

/* A literal announcement at the end of line: its size and whether it is LITERAL+. */
static bool literal_at_end(const struct str *line, uint64_t *n, bool *plus)
{
    size_t i;
    uint64_t v = 0;
    int digits = 0;

    if (line->len < 3 || line->s[line->len - 1] != '}')
        return false;
    i = line->len - 1;
    *plus = line->s[i - 1] == '+';
    if (*plus)
        i--;
    while (i > 0 && isdigit((unsigned char)line->s[i - 1]))
        i--;
    if (i == 0 || line->s[i - 1] != '{')
        return false;
    for (size_t k = i; k < line->len - 1 - (*plus ? 1 : 0); k++, digits++) {
        if (digits >= 19)
            return false;       /* no limit is that large: refused below */
        v = v * 10 + (uint64_t)(line->s[k] - '0');
    }
    if (digits == 0)
        return false;
    *n = v;
    return true;
}

/* APPEND carries messages: its literals may be as large as message_size_limit. */
static bool is_append(const struct str *cmd)
{
    const char *sp = memchr(cmd->s, ' ', cmd->len);

    return sp != NULL && (size_t)(cmd->s + cmd->len - sp) > 7
           && strncasecmp(sp + 1, "APPEND ", 7) == 0;
}

enum imap_read imap_read_command(struct imap_conn *c, struct str *cmd)
{
    struct str line = STR_INIT;
    long long deadline;
    enum imap_read res = IMAP_READ_EOF;
    uint64_t message = 0;           /* bytes of APPEND literals, not held to IMAP_CMD_MAX */

    str_clear(cmd);
    strcpy(c->tag, "*");
    timeout_kind = "timeout";
    if (wait_first_byte(c) < 0)
        return IMAP_READ_EOF;
    deadline = clock_ms() + imap_cf.command_deadline_ms;
    if (c->phase_deadline != 0 && c->phase_deadline < deadline)
        deadline = c->phase_deadline;
    stream_set_deadline(c->st, deadline);
    for (;;) {
        uint64_t n;
        bool plus, append;
        int r = read_line(c, &line);

        if (r == -2) {
            log_info("command line over %d bytes, closing: client=[%s]", IMAP_DISCARD_MAX,
                     c->client);
            stream_puts(c->st, "* BYE Command line too long\r\n");
            c->closing = true;
            res = IMAP_READ_BAD;
            break;
        }
        if (r < 0) {
            if (errno == ETIMEDOUT && clock_ms() >= deadline)
                timeout_kind = "command line deadline exceeded";
            else if (errno == EPROTO)
                log_info("corrupt compressed input: client=[%s]", c->client);
            break;
        }
        if (cmd->len == 0)
            take_tag(c, line.s, line.len);
        if (r == 0 || cmd->len - message + line.len > IMAP_CMD_MAX) {
            imap_bad(c, "line too long");
            res = IMAP_READ_BAD;
            break;
        }
        if (memchr(line.s, '\0', line.len) != NULL) {
            imap_bad(c, "NUL in command");
            res = IMAP_READ_BAD;
            break;
        }
        str_append(cmd, line.s, line.len);
        if (!literal_at_end(&line, &n, &plus)) {
            res = IMAP_READ_OK;
            break;
        }
        if (!imap_literal_allowed(c, cmd, message, n, plus, &append)) {
            res = IMAP_READ_BAD;
            break;
        }
        if (!plus) {
            stream_puts(c->st, "+ Ready for literal data\r\n");
            if (stream_flush(c->st) < 0)
                break;
        }
        /* the literal's own time: the deadline again, plus 1 s per 16 KiB */
        deadline = clock_ms() + imap_cf.command_deadline_ms + (long long)(n / 16384) * 1000;
        if (c->phase_deadline != 0 && c->phase_deadline < deadline)
            deadline = c->phase_deadline;
        stream_set_deadline(c->st, deadline);
        str_append(cmd, "\r\n", 2);
        str_reserve(cmd, (size_t)n);
        if (n > 0 && stream_read_full(c->st, cmd->s + cmd->len, (size_t)n) < 0)
            break;
        cmd->len += (size_t)n;
        cmd->s[cmd->len] = '\0';
        if (append)
            message += n;
    }
    stream_set_deadline(c->st, c->phase_deadline);
    str_free(&line);
    return res;
}

static void reply(struct imap_conn *c, const char *what, const char *fmt, va_list ap)
{
    stream_printf(c->st, "%s %s ", c->tag, what);
    stream_vprintf(c->st, fmt, ap);
    stream_puts(c->st, "\r\n");
}

void imap_ok(struct imap_conn *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    reply(c, "OK", fmt, ap);
    va_end(ap);
}

static void error_reply(struct imap_conn *c, const char *what, const char *fmt, va_list ap)
{
    char text[256];
    va_list ap2;

    va_copy(ap2, ap);
    vsnprintf(text, sizeof(text), fmt, ap2);
    va_end(ap2);
    log_info("%s: client=[%s]%s%s%s, tag=%s: %s", what, c->client, c->user ? ", user=<" : "",
             c->user ? c->user : "", c->user ? ">" : "", c->tag, text);
    reply(c, what, fmt, ap);
    c->errors++;
    if (imap_cf.error_limit > 0 && c->errors >= (unsigned long long)imap_cf.error_limit) {
        log_info("too many errors: client=[%s]", c->client);
        stream_puts(c->st, "* BYE Too many errors, closing\r\n");
        c->closing = true;
    }
}

void imap_bad(struct imap_conn *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_reply(c, "BAD", fmt, ap);
    va_end(ap);
}

void imap_no(struct imap_conn *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    error_reply(c, "NO", fmt, ap);
    va_end(ap);
}

void imap_put_string(struct stream *st, const char *s, size_t len)
{
    bool quotable = len <= 1024;

    for (size_t i = 0; i < len && quotable; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\0' || ch == '\r' || ch == '\n' || ch >= 0x80)
            quotable = false;
    }
    if (!quotable) {
        stream_printf(st, "{%zu}\r\n", len);
        stream_write(st, s, len);
        return;
    }
    stream_puts(st, "\"");
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\')
            stream_write(st, "\\", 1);
        stream_write(st, s + i, 1);
    }
    stream_puts(st, "\"");
}

void imap_put_nstring(struct stream *st, const char *s, size_t len)
{
    if (s == NULL)
        stream_puts(st, "NIL");
    else
        imap_put_string(st, s, len);
}

void imap_take_tag(struct imap_conn *c, const char *s, size_t len)
{
    take_tag(c, s, len);
}

bool imap_literal_at_end(const struct str *line, uint64_t *n, bool *plus)
{
    return literal_at_end(line, n, plus);
}

bool imap_literal_allowed(struct imap_conn *c, const struct str *cmd, uint64_t message,
                          uint64_t n, bool plus, bool *append)
{
    uint64_t limit;

    *append = is_append(cmd);
    limit = *append && imap_cf.append_limit == 0 ? UINT64_MAX
            : *append ? imap_cf.append_limit : IMAP_LITERAL_MAX;
    /* an APPEND's literals are held to its limit (all of them: there is one message,
     * and perhaps a name), the others to IMAP_CMD_MAX with the lines */
    if (n <= limit && (*append || cmd->len - message + n <= IMAP_CMD_MAX)
        && (!*append || message + n <= limit || message + n <= IMAP_CMD_MAX)
        && n <= (uint64_t)SIZE_MAX / 2)
        return true;
    log_info("literal of %llu bytes refused: client=[%s]", (unsigned long long)n, c->client);
    if (plus) {
        /* its bytes are coming: nothing sensible can follow */
        stream_printf(c->st, "%s BAD [TOOBIG] literal too large\r\n", c->tag);
        stream_puts(c->st, "* BYE literal too large\r\n");
        c->closing = true;
    } else if (*append) {
        /* APPEND over message_size_limit: RFC 7889 (APPENDLIMIT) says NO */
        imap_no(c, "[TOOBIG] message larger than %llu bytes", (unsigned long long)limit);
    } else {
        imap_bad(c, "[TOOBIG] literal too large");
    }
    return false;
}
