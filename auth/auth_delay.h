/* Recent login failures per client address, kept in this process only: a bounded
 * table whose entries expire, the oldest replaced when it is full.  Each failed
 * login is answered after a delay that grows with the client's recent failures. */
#ifndef POSTERN_AUTH_DELAY_H
#define POSTERN_AUTH_DELAY_H

#include <time.h>

#define AUTH_DELAY_SLOTS 512        /* client addresses remembered */
#define AUTH_DELAY_WINDOW 300       /* seconds a failure counts as recent */
#define AUTH_DELAY_BASE 1           /* seconds before any failure reply */
#define AUTH_DELAY_MAX 5            /* longest delay, seconds */

/* Records a failure from client at now; returns the delay in seconds to apply
 * before answering: AUTH_DELAY_BASE plus one per earlier recent failure, at most
 * AUTH_DELAY_MAX. */
unsigned auth_delay_fail(const char *client, time_t now);
/* Forgets client's failures (after a successful login). */
void auth_delay_clear(const char *client);
/* Sleeps for seconds, returning early when the server is told to stop. */
void auth_delay_sleep(unsigned seconds);

#endif
