/* Wake-ups for qmgr (protocol "qmgr", proto.h): "there is new mail in incoming/"
 * (smtpd, postern queue release) and "flush the deferred queue now" (postern queue
 * flush), one frame without a reply over trigger.h's kept connection. */
#ifndef POSTERN_WAKEUP_H
#define POSTERN_WAKEUP_H

/* path: PROTO_PATH_QMGR relative to the queue directory, or an absolute path to it.
 * req: PROTO_REQ_WAKEUP or PROTO_REQ_FLUSH.  0 when sent, -1 (logged once). */
int wakeup_send(const char *path, const char *req);

#endif
