/* IDLE (RFC 2177) as a state of the connection: the client waits and is told at once
 * what changes in the selected folder (EXISTS, EXPUNGE or with QRESYNC VANISHED,
 * FETCH FLAGS with MODSEQ once CONDSTORE is on: imap_report_changes).  The session
 * process's loop (mux.c) reads for it, wakes it when inotify (store_watch.h) or
 * another connection of the user changes the folder, syncs a folder without a watch
 * every few seconds, and ends it on the client's "DONE" or imapd_timeout. */
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "imapd.h"
#include "session.h"
#include "stream.h"

void imap_cmd_idle(struct imap_session *s, struct imap_parser *ip)
{
    (void)ip;
    imap_report_changes(s, true);
    stream_puts(s->c.st, "+ idling\r\n");
    s->idling = true;
    s->idle_end = clock_ms() + imap_cf.timeout_ms;
}

void imap_idle_input(struct imap_session *s, const struct str *line)
{
    size_t len = line->len;

    while (len > 0 && (line->s[len - 1] == '\n' || line->s[len - 1] == '\r'))
        len--;
    s->idling = false;
    if (len == 4 && strncasecmp(line->s, "DONE", 4) == 0)
        imap_ok(&s->c, "IDLE terminated");
    else
        imap_bad(&s->c, "Expected DONE");
}

void imap_idle_wake(struct imap_session *s)
{
    if (s->idling)
        imap_report_changes(s, true);
}
