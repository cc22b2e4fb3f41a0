/* IDLE (RFC 2177): the client waits and is told at once what changes in the selected
 * folder: inotify on its new/ and cur/ (store_watch.h) wakes the session for a
 * delivery, an expunge or a flag change by any other process, and the folder is
 * synced and the news sent (EXISTS, EXPUNGE or with QRESYNC VANISHED, FETCH FLAGS
 * with MODSEQ once CONDSTORE is on: imap_report_changes).  Without a watch (the
 * inotify limit reached) the folder is synced every IDLE_POLL_MS.  The client's
 * "DONE" ends it; imapd_timeout still applies. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "imapd.h"
#include "log.h"
#include "server.h"
#include "session.h"
#include "store_watch.h"
#include "stream.h"

#define IDLE_POLL_MS 5000           /* sync interval when there is no watch */
#define IDLE_LINE_MAX 64

void imap_cmd_idle(struct imap_session *s, struct imap_parser *ip)
{
    struct str line = STR_INIT;
    long long idle_end = clock_ms() + imap_cf.timeout_ms;

    (void)ip;
    imap_report_changes(s, true);
    stream_puts(s->c.st, "+ idling\r\n");
    while (!server_stop) {
        struct pollfd pfd[2];
        long long left = idle_end - clock_ms();
        int wait, r;
        nfds_t n = 1;

        if (stream_flush(s->c.st) < 0) {
            s->c.closing = true;
            break;
        }
        if (left <= 0) {
            errno = ETIMEDOUT;
            imap_timed_out(&s->c);
            s->c.closing = true;
            break;
        }
        wait = left < IDLE_POLL_MS || s->watch != NULL ? (int)(left < 0x7fffffff ? left
                                                                                 : 0x7fffffff)
                                                        : IDLE_POLL_MS;
        pfd[0].fd = stream_fd(s->c.st);
        pfd[0].events = POLLIN;
        pfd[0].revents = stream_input_ready(s->c.st) ? POLLIN : 0;
        if (s->watch != NULL && s->box != NULL) {
            pfd[1].fd = store_watch_fd(s->watch);
            pfd[1].events = POLLIN;
            pfd[1].revents = 0;
            n = 2;
        }
        if (pfd[0].revents == 0) {
            r = poll(pfd, n, wait);
            if (r < 0 && errno != EINTR) {
                s->c.closing = true;
                break;
            }
            if (r == 0 && s->watch == NULL) {
                imap_report_changes(s, true);
                continue;
            }
        }
        if (n == 2 && (pfd[1].revents & POLLIN)) {
            if (store_watch_drain(s->watch))
                imap_report_changes(s, true);
        }
        if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            stream_set_deadline(s->c.st, clock_ms() + imap_cf.command_deadline_ms);
            r = stream_getline(s->c.st, &line, IDLE_LINE_MAX);
            stream_set_deadline(s->c.st, 0);
            if (r != STREAM_LINE) {
                s->c.closing = true;
                break;
            }
            while (line.len > 0 && (line.s[line.len - 1] == '\n' || line.s[line.len - 1] == '\r'))
                str_truncate(&line, line.len - 1);
            if (strcasecmp(line.s, "DONE") == 0)
                imap_ok(&s->c, "IDLE terminated");
            else
                imap_bad(&s->c, "Expected DONE");
            break;
        }
    }
    str_free(&line);
}
