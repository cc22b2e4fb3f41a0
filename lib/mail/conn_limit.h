/* Per-client connection limits of a server (smtpd, pop3d -l), checked right after
 * accept against the counts of anvil(8): concurrent connections and connections per
 * anvil_rate_time_unit of one client address to one service (master.conf name).
 * Clients in the exceptions list are not counted at all.  When anvil cannot be
 * reached the client is let in (fail open; anvil_clnt.h logs it).  A refusal is
 * logged once a minute per client and service across all processes, as anvil
 * decides; the caller sends its protocol's refusal and closes. */
#ifndef POSTERN_CONN_LIMIT_H
#define POSTERN_CONN_LIMIT_H

#include <stdbool.h>

#include "cidr.h"
#include "conf.h"

struct conn_limit {
    long long count_limit;          /* 0: none */
    long long rate_limit;           /* 0: none */
    struct cidr_list exceptions;
};

/* A connection being checked: whether anvil counted it (then conn_limit_end() must
 * follow when it ends), and for the log. */
struct conn_limit_state {
    bool counted;
    const char *service;
    const char *client;
};

/* Reads the limits from c (the keys given; exceptions a CIDRS key).  Fatal on a bad
 * exceptions list (conf has checked it already). */
void conn_limit_setup(struct conn_limit *l, const struct conf *c, enum conf_key count_key,
                      enum conf_key rate_key, enum conf_key exceptions_key);
void conn_limit_free(struct conn_limit *l);

/* A new connection of client (text address) to service: true when it may go on,
 * false when it is over a limit (logged as said above).  st remembers what
 * conn_limit_end() needs; service and client must outlive it. */
bool conn_limit_check(const struct conn_limit *l, const char *service, const char *client,
                      struct conn_limit_state *st);
/* The connection ended (or was refused): anvil forgets it.  Idempotent. */
void conn_limit_end(struct conn_limit_state *st);

#endif
