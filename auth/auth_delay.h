/* Login failure penalties of auth(8): how long the caller (smtpd, pop3d) waits
 * before it answers a login, from the recent failures of the client address and of
 * the account.  auth itself never waits: the delay goes back in the reply. */
#ifndef POSTERN_AUTH_DELAY_H
#define POSTERN_AUTH_DELAY_H

#define AUTH_DELAY_SLOTS 512        /* client addresses remembered */
#define AUTH_DELAY_WINDOW 300       /* seconds a failure counts as recent */
#define AUTH_DELAY_BASE_MS 1000     /* before any failure reply */
#define AUTH_DELAY_MAX_MS 5000      /* longest delay */

/* A successful login of account from client: forgets the client's failures; returns
 * the delay in ms before the answer. */
long long auth_delay_ok(const char *client, const char *account);
/* A failed one: counts it; returns the delay in ms before the answer,
 * AUTH_DELAY_BASE_MS plus a second per earlier recent failure, at most
 * AUTH_DELAY_MAX_MS. */
long long auth_delay_failed(const char *client, const char *account);

#endif
