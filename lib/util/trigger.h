/* Wake-ups for qmgr: "there is new mail in incoming/" (smtpd, pickup) and "flush the
 * deferred queue now" (postern queue flush).  One frame, no reply, on a connection
 * kept open by the caller; failures are ignored (qmgr also scans on a timer) but
 * logged once. */
#ifndef POSTERN_TRIGGER_H
#define POSTERN_TRIGGER_H

/* path: "private/qmgr" relative to the queue directory, or an absolute path.
 * what: "wakeup" or "flush".  0 when sent, -1 otherwise. */
int trigger_send(const char *path, const char *what);

#endif
