/* Client side of the resolve service (private/resolve), for smtpd and qmgr, which run
 * chrooted and cannot read the maps themselves.  One kept connection per process
 * (ipc_clnt.h).  The protocol is resolve(8)'s, version 2 (proto.h):
 *   verify:  "req=verify" "addr=A"  ->  "status=ok|reject|tempfail" "class=C"
 *            ["code=550" "dsn=5.1.1" "text=..."] ("rcpt=X")*   (expansion)
 *   route:   "req=route" ("addr=A")+  ->  ("route=TRANSPORT:NEXTHOP" | "route=tempfail:TEXT")+
 * every frame beginning with "proto=resolve/2".  Any failure (I/O, another version,
 * a malformed reply) is logged and reported as ROUTER_TEMPFAIL, so the caller
 * answers 4xx. */
#ifndef POSTERN_RESOLVE_CLNT_H
#define POSTERN_RESOLVE_CLNT_H

#include "router.h"

struct resolve_clnt;

/* path: the socket, normally PROTO_PATH_RESOLVE (relative to the queue directory). */
struct resolve_clnt *resolve_clnt_open(const char *path, int timeout_ms);
void resolve_clnt_close(struct resolve_clnt *rc);

/* As router_verify, over the socket.  v must be router_verdict_init()ed. */
void resolve_verify(struct resolve_clnt *rc, const char *addr, struct router_verdict *v);

/* Routes n addresses in one request.  transports[i], nexthops[i] are filled for each
 * (caller frees with str_free); returns 0, or -1 when the service could not answer
 * (temporary).  A per-address tempfail is transport "tempfail". */
int resolve_route(struct resolve_clnt *rc, char *const *addrs, size_t n,
                  struct str *transports, struct str *nexthops);

#endif
