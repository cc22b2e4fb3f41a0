/* smtpd replies and command input: buffered reply lines, the error counters and their
 * delays and limits, reject log lines, and reading a line with the flush rule of
 * PIPELINING (replies leave only when no more input is waiting).  Reply text may
 * hold client data (addresses, HELO names): control characters are replaced. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "smtpd.h"
#include "stream.h"

#define REPLY_TEXT_MAX 500          /* RFC 5321 4.5.3.1.5: 512 with code and CRLF */
#define REPLY_WRITE_MS 10000        /* the last reply after a timeout */

static void reply_line(struct smtpd_session *s, int code, char sep, const char *fmt,
                       va_list ap)
{
    char text[REPLY_TEXT_MAX + 1];
    int n = vsnprintf(text, sizeof(text), fmt, ap);

    if (n < 0)
        text[0] = '\0';
    for (char *p = text; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    stream_printf(s->st, "%03d%c%s\r\n", code, sep, text);
}

int smtpd_flush(struct smtpd_session *s)
{
    if (stream_flush(s->st) < 0) {
        if (!s->done)
            log_info("lost connection after %s from [%s]",
                     s->lost_after ? s->lost_after : "CONNECT", s->addr);
        s->done = true;
        return -1;
    }
    return 0;
}

static void error_sleep(struct smtpd_session *s)
{
    struct timespec ts;

    if (s->cf->error_sleep_ms <= 0)
        return;
    smtpd_flush(s);
    ts.tv_sec = (time_t)(s->cf->error_sleep_ms / 1000);
    ts.tv_nsec = (long)(s->cf->error_sleep_ms % 1000) * 1000000;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void vreply(struct smtpd_session *s, int code, const char *fmt, va_list ap)
{
    bool error = code >= 400;

    if (s->done)
        return;
    if (error) {
        s->errors++;
        if (s->errors > s->cf->soft_error_limit)
            error_sleep(s);
    }
    reply_line(s, code, ' ', fmt, ap);
    if (error && s->errors >= s->cf->hard_error_limit && code != 421) {
        log_info("too many errors after %s from [%s]",
                 s->lost_after ? s->lost_after : "CONNECT", s->addr);
        stream_puts(s->st, "421 4.7.0 Too many errors\r\n");
        smtpd_flush(s);
        s->done = true;
    }
}

void smtpd_reply(struct smtpd_session *s, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vreply(s, code, fmt, ap);
    va_end(ap);
}

void smtpd_reply_cont(struct smtpd_session *s, int code, const char *fmt, ...)
{
    va_list ap;

    if (s->done)
        return;
    va_start(ap, fmt);
    reply_line(s, code, '-', fmt, ap);
    va_end(ap);
}

void smtpd_reject(struct smtpd_session *s, const char *cmd, const char *rcpt, int code,
                  const char *dsn, const char *fmt, ...)
{
    char text[REPLY_TEXT_MAX + 1];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0)
        text[0] = '\0';
    log_info("%s: reject: %s from [%s]: %d %s %s; from=<%s>%s%s%s proto=%s helo=<%s>",
             s->txn.id[0] != '\0' ? s->txn.id : "NOQUEUE", cmd, s->addr, code, dsn, text,
             s->txn.sender.s ? s->txn.sender.s : "", rcpt ? " to=<" : "", rcpt ? rcpt : "",
             rcpt ? ">" : "", smtpd_protocol(s), s->helo.len ? s->helo.s : "");
    smtpd_reply(s, code, "%s %s", dsn, text);
}

/* The phase deadline's time left in ms, cut to the idle timeout: the wait allowed
 * for the next bytes. */
static int wait_ms(const struct smtpd_session *s)
{
    long long left;

    if (s->phase_deadline == 0)
        return s->cf->timeout_ms;
    left = s->phase_deadline - clock_ms();
    if (left < 0)
        left = 0;
    return left < s->cf->timeout_ms ? (int)left : s->cf->timeout_ms;
}

/* 1 when input is readable (or the socket has news: EOF, error), 0 on timeout. */
static int wait_input(struct smtpd_session *s)
{
    struct pollfd pfd;
    int r;

    pfd.fd = stream_fd(s->st);
    pfd.events = POLLIN;
    do {
        r = poll(&pfd, 1, wait_ms(s));
    } while (r < 0 && errno == EINTR);
    return r == 0 ? 0 : 1;
}

/* The idle timeout or a deadline ran out: "421 4.4.2", logged, the session ends.
 * deadline: which one (for the log line). */
static int timed_out(struct smtpd_session *s, bool deadline)
{
    const char *after = s->lost_after ? s->lost_after : "CONNECT";

    if (deadline)
        log_info("deadline exceeded (%s) after %s from [%s]",
                 s->phase_deadline != 0 && clock_ms() >= s->phase_deadline
                     ? s->phase : "command line", after, s->addr);
    else
        log_info("timeout after %s from [%s]", after, s->addr);
    (void)stream_clear_timeout(s->st);
    stream_set_deadline(s->st, clock_ms() + REPLY_WRITE_MS);
    stream_printf(s->st, "421 4.4.2 %s Error: timeout exceeded\r\n", s->cf->myhostname);
    stream_flush(s->st);
    s->done = true;
    errno = ETIMEDOUT;
    return -1;
}

long long smtpd_line_deadline(const struct smtpd_session *s)
{
    long long d = clock_ms() + s->cf->command_deadline_ms;

    if (s->phase_deadline != 0 && s->phase_deadline < d)
        d = s->phase_deadline;
    return d;
}

int smtpd_read_line(struct smtpd_session *s, struct str *line, size_t max)
{
    long long deadline;
    int r;

    if (s->done)
        return -1;
    if (stream_pending(s->st) == 0) {
        if (smtpd_flush(s) < 0)
            return -1;
        /* wait here, not in the stream: the wait before a line is the idle timeout
         * (cut to the phase deadline), the line itself has its own deadline */
        if (wait_input(s) == 0)
            return timed_out(s, s->phase_deadline != 0 && clock_ms() >= s->phase_deadline);
    }
    deadline = smtpd_line_deadline(s);
    stream_set_deadline(s->st, deadline);
    r = stream_getline(s->st, line, max);
    stream_set_deadline(s->st, s->phase_deadline);
    if (r > 0)
        return r;
    if (r < 0 && errno == ETIMEDOUT) {
        (void)timed_out(s, clock_ms() >= deadline);
    } else {
        log_info("lost connection after %s from [%s]",
                 s->lost_after ? s->lost_after : "CONNECT", s->addr);
    }
    s->done = true;
    return r;
}

int smtpd_read_timed_out(struct smtpd_session *s, long long deadline)
{
    return timed_out(s, clock_ms() >= deadline);
}

const char *smtpd_protocol(const struct smtpd_session *s)
{
    static const char *const names[3][4] = {
        { "SMTP", "SMTPS", "SMTPA", "SMTPSA" },
        { "ESMTP", "ESMTPS", "ESMTPA", "ESMTPSA" },
        { "UTF8SMTP", "UTF8SMTPS", "UTF8SMTPA", "UTF8SMTPSA" },
    };
    int kind = s->txn.active && s->txn.smtputf8 ? 2 : s->esmtp ? 1 : 0;
    int ext = (s->tls ? 1 : 0) + (s->authenticated ? 2 : 0);

    /* RFC 3848 names no "SMTPS" for plain HELO; keep the word ESMTPS */
    if (kind == 0 && ext != 0)
        kind = 1;
    return names[kind][ext];
}
