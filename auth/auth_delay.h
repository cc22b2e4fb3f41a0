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
 * When anvil cannot be reached a failure waits auth_failure_max_delay (logged). */
#ifndef POSTERN_AUTH_DELAY_H
#define POSTERN_AUTH_DELAY_H

struct conf;

/* Reads the two delays from the config. */
void auth_delay_setup(const struct conf *c);
/* The delay in ms for n recent failures (0 for none). */
long long auth_delay_for(unsigned n);
/* A successful login of account from client: the delay in ms before the answer;
 * forgets the account's failures from this client. */
long long auth_delay_ok(const char *client, const char *account);
/* A failed one: counts it; the delay in ms before the answer. */
long long auth_delay_failed(const char *client, const char *account);

#endif
