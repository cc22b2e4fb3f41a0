/* One client of a request/reply service on a UNIX stream socket, speaking attribute
 * frames (attr.h): the one way every daemon talks to another.
 *
 * The connection is made lazily, on the first request, and kept for the next ones.
 * Each request and its reply must be over within the client's timeout (a deadline,
 * not a limit per read).  A kept connection that the service closed meanwhile (its
 * idle limit, a restart) is noticed before use, and a request that fails on a kept
 * connection is sent once more on a fresh one; a failure on a fresh connection is the
 * caller's to report.  After any failure the connection is closed, and the next
 * request makes a new one.
 *
 * Requests may also be pipelined (qmgr and its delivery agents): ipc_clnt_send()
 * several, then ipc_clnt_recv() their replies in order when ipc_clnt_stream() is
 * readable.  Frames are not interpreted here: versions and request names are the
 * caller's (ipc_proto.h in lib/mail). */
#ifndef POSTERN_IPC_CLNT_H
#define POSTERN_IPC_CLNT_H

#include <stddef.h>

struct attr_list;
struct ipc_clnt;
struct stream;

/* path: the service's socket, relative to the working directory or absolute.
 * timeout_ms: for one request and its reply (> 0).  reply_max: the largest reply
 * frame accepted (0: ATTR_FRAME_MAX).  Connects to nothing yet. */
struct ipc_clnt *ipc_clnt_open(const char *path, int timeout_ms, size_t reply_max);
/* Closes the connection, if any, and frees c (NULL: nothing). */
void ipc_clnt_close(struct ipc_clnt *c);
const char *ipc_clnt_path(const struct ipc_clnt *c);

/* One request and its reply: 0, or -1 with errno (ETIMEDOUT past the deadline,
 * EPIPE when the service closed the connection, EPROTO or EMSGSIZE for a bad reply
 * frame).  reply is cleared first. */
int ipc_clnt_call(struct ipc_clnt *c, const struct attr_list *req, struct attr_list *reply);

/* Pipelining.  Sends one request without waiting for its reply: 0, or -1 with errno.
 * On failure the connection is closed and the requests sent before on it, if any,
 * are lost with it (and the request is not tried again on a new one). */
int ipc_clnt_send(struct ipc_clnt *c, const struct attr_list *req);
/* Reads the reply to the oldest request sent: 1, 0 when the service closed the
 * connection, -1 with errno.  On 0 and -1 the connection is closed. */
int ipc_clnt_recv(struct ipc_clnt *c, struct attr_list *reply);
/* Requests sent on this connection and not answered yet. */
size_t ipc_clnt_pending(const struct ipc_clnt *c);

/* Connects now unless connected (to pass a descriptor first, say): 0, or -1. */
int ipc_clnt_connect(struct ipc_clnt *c);
/* The connection's stream (to poll its descriptor and buffer), or NULL when none. */
struct stream *ipc_clnt_stream(const struct ipc_clnt *c);
/* Closes the connection (if any); the next request makes a new one. */
void ipc_clnt_disconnect(struct ipc_clnt *c);

#endif
