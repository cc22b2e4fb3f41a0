/* One-way notices on a UNIX socket: one frame (attr.h), no reply, on a connection
 * kept open by the caller between notices (qmgr's wake-ups use it: wakeup.h).
 * Failures are ignored by the callers (qmgr also scans on a timer) but logged once
 * until the next success. */
#ifndef POSTERN_TRIGGER_H
#define POSTERN_TRIGGER_H

struct attr_list;

/* path: relative to the working directory, or absolute.  0 when sent, -1 otherwise. */
int trigger_send(const char *path, const struct attr_list *frame);

#endif
