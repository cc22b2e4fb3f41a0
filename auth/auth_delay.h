/* Login failure penalties of auth(8): how long the caller (smtpd, pop3d) waits
 * before it answers a login.  Failures are counted by anvil(8) for the whole auth
 * service (every auth process, every service), by client address and by account,
 * per anvil_rate_time_unit.  auth itself never waits: the delay goes back in the
 * reply.
 *
 * A failed login waits auth_failure_delay doubled for each further recent failure
 * of its client or its account (whichever has more), at most auth_failure_max_delay:
 * 1, 2, 4, 8, 15 s with the defaults.  A successful login waits what the client's
 * own recent failures ask for (so that an attacker cannot tell a hit by its speed),
 * never for the account's: failures from elsewhere cannot slow its owner down.
 * When anvil cannot be reached a failure waits auth_failure_max_delay (logged).
 *
 * A client address with auth_client_failure_limit recent failures or more is not
 * checked any more: its logins fail at once, without a password hash (so that a
 * flood of guesses cannot take the CPU from everyone else's logins), and count as
 * failures, until its count falls below the limit. */
#ifndef POSTERN_AUTH_DELAY_H
#define POSTERN_AUTH_DELAY_H

#include <stdbool.h>

struct conf;

/* What anvil knows of a login before it is checked. */
struct auth_penalty {
    bool known;                 /* anvil answered */
    unsigned client;            /* recent failures of the client address */
};

/* Reads the delays and the limit from the config. */
void auth_delay_setup(const struct conf *c);
/* Before the check: fills p; true when the client is over auth_client_failure_limit
 * (the login is to fail unchecked: auth_delay_failed). */
bool auth_delay_begin(const char *client, const char *account, struct auth_penalty *p);
/* The delay in ms for n recent failures (0 for none). */
long long auth_delay_for(unsigned n);
/* A successful login of account from client: the delay in ms before the answer
 * (from p); forgets the account's failures from this client. */
long long auth_delay_ok(const char *client, const char *account,
                        const struct auth_penalty *p);
/* A failed one: counts it; the delay in ms before the answer. */
long long auth_delay_failed(const char *client, const char *account);

#endif
