/* The POP3 TRANSACTION and UPDATE states (RFC 1939) over a Maildir, in a process that
 * already runs as the mailbox owner with the Maildir as its working directory.
 *
 * One session a mailbox: an exclusive flock(2) on postern-pop3.lock in the Maildir;
 * a second session is told "-ERR [IN-USE]".  The message list is a snapshot taken at
 * login, when messages in new/ are moved to cur/ (name + ":2,"); later arrivals wait
 * for the next session.  DELE only marks; files are unlinked at QUIT (UPDATE), so a
 * dropped connection or a timeout deletes nothing.  Message contents are copied with
 * LF turned into CRLF and lines starting with '.' dot-stuffed; commands are untrusted. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "auth_clnt.h"
#include "log.h"
#include "login.h"
#include "maildir_scan.h"
#include "pop3d.h"
#include "queue.h"
#include "stream.h"

#define POP3_LOCK_FILE "postern-pop3.lock"

struct session {
    struct stream *st;
    struct maildir_list ml;
    const char *user;
    const char *client;
    unsigned errors;
    size_t ndeleted;
    uint64_t deleted_size;
    size_t nretr, ntop;
    uint64_t retr_bytes;
    bool quit;
    bool broken;                /* the connection cannot go on (mid-message failure) */
};

static void session_error(struct session *s, const char *fmt, const char *arg)
{
    if (!pop3_err(s->st, &s->errors, fmt, arg))
        s->broken = true;
}

/* Message number argument: the index (0-based) of a message not deleted, or -1 after
 * answering. */
static long long session_msg(struct session *s, const char *arg)
{
    size_t n = pop3_msgno(arg, s->ml.n);

    if (n == 0) {
        session_error(s, "%s", "no such message");
        return -1;
    }
    if (s->ml.v[n - 1].flags & MAILDIR_MSG_DELETED) {
        session_error(s, "%s", "message already deleted");
        return -1;
    }
    return (long long)(n - 1);
}

/* Sends message i as a multi-line reply: everything (lines < 0), or the header, the
 * blank line and the first `lines` body lines.  0, or -1 when the connection must end. */
static int session_send(struct session *s, size_t i, long long lines)
{
    const char *path = maildir_msg_path(&s->ml, i);
    char in[16384], out[2 * sizeof(in) + 8];
    bool bol = true, in_body = false, prev_cr = false, stop = false;
    size_t line_len = 0;
    long long body_lines = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

    if (fd < 0) {
        log_warn("user=<%s>: open %s: %m", s->user, path);
        session_error(s, "%s", errno == ENOENT ? "[SYS/PERM] message has been removed"
                                               : "[SYS/TEMP] cannot read the message");
        return 0;
    }
    stream_printf(s->st, "+OK %llu octets\r\n", (unsigned long long)s->ml.v[i].size);
    while (!stop) {
        ssize_t n = read(fd, in, sizeof(in));
        size_t o = 0;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_warn("user=<%s>: read %s: %m", s->user, path);
            close(fd);
            return -1;          /* half a message sent: only closing is honest */
        }
        if (n == 0)
            break;
        for (ssize_t k = 0; k < n; k++) {
            char c = in[k];

            if (bol) {
                if (in_body && lines >= 0 && body_lines >= lines) {
                    stop = true;
                    break;
                }
                if (c == '.')
                    out[o++] = '.';
                bol = false;
            }
            if (c == '\n') {
                if (!prev_cr)
                    out[o++] = '\r';
                out[o++] = '\n';
                if (in_body)
                    body_lines++;
                else if (line_len == 0)
                    in_body = true;
                bol = true;
                line_len = 0;
            } else {
                out[o++] = c;
                if (c != '\r')
                    line_len++;
            }
            prev_cr = c == '\r';
        }
        if (stream_write(s->st, out, o) < 0) {
            close(fd);
            return -1;
        }
    }
    close(fd);
    if (!bol && !stop)
        stream_puts(s->st, "\r\n");
    stream_puts(s->st, ".\r\n");
    return stream_error(s->st) ? -1 : 0;
}

static void session_stat(struct session *s)
{
    size_t n = 0;
    uint64_t size = 0;

    for (size_t i = 0; i < s->ml.n; i++) {
        if (!(s->ml.v[i].flags & MAILDIR_MSG_DELETED)) {
            n++;
            size += s->ml.v[i].size;
        }
    }
    stream_printf(s->st, "+OK %zu %llu\r\n", n, (unsigned long long)size);
}

static void session_list(struct session *s, const char *args, bool uidl)
{
    char uid[MAILDIR_UID_MAX + 1];

    if (args != NULL) {
        long long i = session_msg(s, args);
        if (i < 0)
            return;
        if (uidl) {
            maildir_msg_uid(&s->ml, (size_t)i, uid);
            stream_printf(s->st, "+OK %lld %s\r\n", i + 1, uid);
        } else {
            stream_printf(s->st, "+OK %lld %llu\r\n", i + 1,
                          (unsigned long long)s->ml.v[i].size);
        }
        return;
    }
    stream_puts(s->st, uidl ? "+OK unique-id listing follows\r\n" : "+OK scan listing follows\r\n");
    for (size_t i = 0; i < s->ml.n; i++) {
        if (s->ml.v[i].flags & MAILDIR_MSG_DELETED)
            continue;
        if (uidl) {
            maildir_msg_uid(&s->ml, i, uid);
            stream_printf(s->st, "%zu %s\r\n", i + 1, uid);
        } else {
            stream_printf(s->st, "%zu %llu\r\n", i + 1, (unsigned long long)s->ml.v[i].size);
        }
    }
    stream_puts(s->st, ".\r\n");
}

/* UPDATE: unlink what was marked.  The reply says whether all of it went. */
static void session_update(struct session *s)
{
    size_t gone = 0, failed = 0;

    for (size_t i = 0; i < s->ml.n; i++) {
        const char *path;
        if (!(s->ml.v[i].flags & MAILDIR_MSG_DELETED))
            continue;
        path = maildir_msg_path(&s->ml, i);
        if (unlink(path) == 0 || errno == ENOENT) {
            gone++;
        } else {
            log_warn("user=<%s>: unlink %s: %m", s->user, path);
            failed++;
        }
    }
    if (gone > 0 && fsync_dir("cur") < 0)
        log_warn("user=<%s>: fsync cur: %m", s->user);
    if (failed > 0)
        stream_printf(s->st, "-ERR [SYS/TEMP] %zu message(s) could not be deleted\r\n", failed);
    else
        stream_printf(s->st, "+OK bye, %zu message(s) deleted\r\n", gone);
}

static void session_command(struct session *s, struct str *line)
{
    const char *kw, *cargs;
    char *args, *a, *b;

    pop3_split(line, &kw, &cargs);
    args = (char *)cargs;
    if (strcmp(kw, "STAT") == 0 && args == NULL) {
        session_stat(s);
    } else if (strcmp(kw, "LIST") == 0) {
        session_list(s, args, false);
    } else if (strcmp(kw, "UIDL") == 0) {
        session_list(s, args, true);
    } else if (strcmp(kw, "RETR") == 0) {
        long long i = session_msg(s, args);
        if (i >= 0) {
            if (session_send(s, (size_t)i, -1) < 0) {
                s->broken = true;
                return;
            }
            s->ml.v[i].flags |= MAILDIR_MSG_SEEN;
            s->nretr++;
            s->retr_bytes += s->ml.v[i].size;
        }
    } else if (strcmp(kw, "TOP") == 0) {
        long long i, n;
        if (!pop3_two_args(args, &a, &b) || pop3_count(b, &n) < 0) {
            session_error(s, "%s", "usage: TOP message lines");
        } else if ((i = session_msg(s, a)) >= 0) {
            if (session_send(s, (size_t)i, n) < 0) {
                s->broken = true;
                return;
            }
            s->ntop++;
        }
    } else if (strcmp(kw, "DELE") == 0) {
        long long i = session_msg(s, args);
        if (i >= 0) {
            s->ml.v[i].flags |= MAILDIR_MSG_DELETED;
            s->ndeleted++;
            s->deleted_size += s->ml.v[i].size;
            stream_printf(s->st, "+OK message %lld deleted\r\n", i + 1);
        }
    } else if (strcmp(kw, "RSET") == 0 && args == NULL) {
        for (size_t i = 0; i < s->ml.n; i++)
            s->ml.v[i].flags &= ~(uint32_t)MAILDIR_MSG_DELETED;
        s->ndeleted = 0;
        s->deleted_size = 0;
        stream_printf(s->st, "+OK %zu messages\r\n", s->ml.n);
    } else if (strcmp(kw, "NOOP") == 0 && args == NULL) {
        stream_puts(s->st, "+OK\r\n");
    } else if (strcmp(kw, "QUIT") == 0) {
        session_update(s);
        s->quit = true;
    } else if (strcmp(kw, "CAPA") == 0) {
        stream_puts(s->st, "+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\n"
                           "AUTH-RESP-CODE\r\nPIPELINING\r\nIMPLEMENTATION Postern\r\n.\r\n");
    } else if (strcmp(kw, "USER") == 0 || strcmp(kw, "PASS") == 0 || strcmp(kw, "AUTH") == 0
               || strcmp(kw, "STLS") == 0 || strcmp(kw, "APOP") == 0) {
        session_error(s, "%s", "already logged in");
    } else if (strcmp(kw, "STAT") == 0 || strcmp(kw, "RSET") == 0 || strcmp(kw, "NOOP") == 0) {
        session_error(s, "%s", "no arguments allowed");
    } else {
        session_error(s, "%s", "unknown command");
    }
}

int pop3_session(struct login_handoff *h, const struct auth_result *who)
{
    struct session s;
    struct str line = STR_INIT, err = STR_INIT;
    int lock, rc = 0;
    bool timed_out = false;

    memset(&s, 0, sizeof(s));
    maildir_list_init(&s.ml);
    s.user = who->user.s;
    s.client = h->client.len > 0 ? h->client.s : "unknown";
    s.st = login_stream(h);
    stream_set_timeout(s.st, pop3_cf.timeout_ms);

    lock = open(POP3_LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lock < 0) {
        log_warn("user=<%s>: open %s: %m", s.user, POP3_LOCK_FILE);
        stream_puts(s.st, "-ERR [SYS/TEMP] cannot lock the mailbox\r\n");
        rc = 1;
        goto out;
    }
    if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK) {
            log_info("user=<%s>, client=[%s]: mailbox in use", s.user, s.client);
            stream_puts(s.st, "-ERR [IN-USE] mailbox in use by another session\r\n");
        } else {
            log_warn("user=<%s>: lock %s: %m", s.user, POP3_LOCK_FILE);
            stream_puts(s.st, "-ERR [SYS/TEMP] cannot lock the mailbox\r\n");
            rc = 1;
        }
        goto out;
    }
    if (pop3_scan(&s.ml, &err) < 0) {
        log_warn("user=<%s>: %s", s.user, err.s);
        stream_puts(s.st, "-ERR [SYS/TEMP] cannot read the mailbox\r\n");
        rc = 1;
        goto out;
    }
    log_info("session: user=<%s>, client=[%s], messages=%zu, size=%llu", s.user, s.client,
             s.ml.n, (unsigned long long)s.ml.total);
    stream_printf(s.st, "+OK %zu messages (%llu octets)\r\n", s.ml.n,
                  (unsigned long long)s.ml.total);
    while (!s.quit && !s.broken) {
        int r = pop3_getline(s.st, &line, POP3_CMD_MAX, 0);
        if (r == POP3_LINE_EOF) {
            timed_out = errno == ETIMEDOUT;
            if (timed_out) {
                log_info("%s: user=<%s>, client=[%s]", pop3_timeout_kind(), s.user, s.client);
                pop3_timeout_reply(s.st);
            }
            break;
        }
        if (r == POP3_LINE_BAD)
            session_error(&s, "%s", "line too long or not text");
        else
            session_command(&s, &line);
    }
    log_info("logout: user=<%s>, client=[%s], %s, retr=%zu/%llu, top=%zu, del=%zu/%zu",
             s.user, s.client, s.quit ? "quit" : timed_out ? "timeout" : "disconnected",
             s.nretr, (unsigned long long)s.retr_bytes, s.ntop, s.quit ? s.ndeleted : 0,
             s.ml.n);
out:
    stream_flush(s.st);
    stream_close(s.st);
    if (lock >= 0)
        close(lock);
    maildir_list_free(&s.ml);
    str_free(&line);
    str_free(&err);
    return rc;
}
