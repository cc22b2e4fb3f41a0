/* Who may connect to a login socket (login/auth, login/pop3): the sockets sit in
 * login/, which unprivileged pre-auth processes must reach, so the file mode cannot
 * keep other local users out.  Each accepted connection's peer uid (SO_PEERCRED) is
 * checked against the users of the master.conf services that call the socket, and
 * root; an instance started by an ordinary user runs everything as that user, who is
 * then the only one allowed. */
#ifndef POSTERN_PEER_ALLOW_H
#define POSTERN_PEER_ALLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct conf;
struct master_service;
struct str;

#define PEER_ALLOW_MAX 64           /* distinct users allowed on one socket */

struct peer_allow {
    uid_t uid[PEER_ALLOW_MAX];
    size_t n;
};

/* Fills pa from config_directory/master.conf: root (or, when this process does not
 * run as root, its own uid alone) and the users of every service for which
 * calls(svc) is true ("-" is mail_owner).  0, or -1 with err (an unreadable
 * master.conf, an unknown user). */
int peer_allow_load(const struct conf *c, bool (*calls)(const struct master_service *svc),
                    struct peer_allow *pa, struct str *err);

/* true when the peer of the connected UNIX socket fd runs as an allowed uid;
 * otherwise (or when the kernel does not say) logs "what: connection from uid N
 * refused" and returns false.  The caller closes fd. */
bool peer_allow_check(const struct peer_allow *pa, int fd, const char *what);

#endif
