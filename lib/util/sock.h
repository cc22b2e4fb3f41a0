/* Sockets: listening and connecting, TCP (IPv4 and IPv6) and UNIX stream; peer
 * addresses as text.  Descriptor passing is in fd.h. */
#ifndef POSTERN_SOCK_H
#define POSTERN_SOCK_H

#include <stddef.h>
#include <sys/types.h>

struct str;

/* host may be NULL/"*" (all: binds "::" with IPV6_V6ONLY and "0.0.0.0" separately:
 * use two calls), an IPv4 or IPv6 literal.  SO_REUSEADDR, close-on-exec, backlog.
 * Returns the fd or -1 with err. */
int sock_listen_inet(const char *host, unsigned port, int backlog, struct str *err);
/* Removes a stale socket file first; the socket gets mode (set through the umask at
 * bind time, never by a chmod of the path).  fd or -1 with err. */
int sock_listen_unix(const char *path, mode_t mode, int backlog, struct str *err);
/* Connects with a timeout: fd (blocking, close-on-exec) or -1 (errno). */
int sock_connect_unix(const char *path, int timeout_ms);
int sock_connect_inet(const char *host, unsigned port, int timeout_ms);
/* "1.2.3.4" or "2001:db8::1" (v4-mapped shown as v4) and the port of the peer or of
 * the local end.  0, or -1. */
int sock_peer(int fd, char *addr, size_t addrlen, unsigned *port);

#endif
