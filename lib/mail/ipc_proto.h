/* The envelope of every frame between daemons (names in proto.h): a request starts
 * with "proto=NAME/VERSION" and "req=REQUEST", a reply with "proto=NAME/VERSION",
 * and a request that cannot be served (another protocol version, an unknown
 * request) is answered with "proto=..." "error=TEXT" before the connection closes.
 * Checking the version first is what lets daemons of different releases meet (during
 * a reload, say) with a clear message in the log instead of a misread frame. */
#ifndef POSTERN_IPC_PROTO_H
#define POSTERN_IPC_PROTO_H

struct attr_list;
struct ipc_clnt;
struct str;

/* Clears al and starts a request of protocol proto (version) named req. */
void ipc_request_start(struct attr_list *al, const char *proto, unsigned version,
                       const char *req);
/* Clears al and starts a frame of protocol proto (version): a reply, or a request
 * of a protocol with one kind of request only (the login hand-off). */
void ipc_frame_start(struct attr_list *al, const char *proto, unsigned version);
/* Clears al and makes it the answer to a request that was not served. */
void ipc_error_reply(struct attr_list *al, const char *proto, unsigned version,
                     const char *text);

/* 0 when al is of protocol proto, version; else -1 with err, e.g. "protocol resolve
 * version 1, expected 2". */
int ipc_proto_check(const struct attr_list *al, const char *proto, unsigned version,
                    struct str *err);
/* A reply: -1 with err for an error reply ("refused: TEXT") or another protocol or
 * version (as ipc_proto_check); otherwise 0. */
int ipc_reply_check(const struct attr_list *al, const char *proto, unsigned version,
                    struct str *err);

/* One request and its reply over c (ipc_clnt.h), the reply checked by
 * ipc_reply_check: 0, or -1 with err saying what went wrong ("private/resolve:
 * Connection refused").  The caller scans the reply (attr_scan.h). */
int ipc_call(struct ipc_clnt *c, const char *proto, unsigned version,
             const struct attr_list *req, struct attr_list *reply, struct str *err);

#endif
