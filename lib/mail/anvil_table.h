/* anvil(8)'s counters, kept apart from its I/O so that they can be tested with a
 * clock of the test's choosing.  Four kinds of entry, each found by its key:
 *
 *   connection   (service, client): connections open now, connections in the window,
 *                and when a limit hit of this client was last logged
 *   client       login failures from this client address in the window
 *   account      login failures for this account in the window
 *   pair         login failures for this account from this client (so that a
 *                successful login can forget exactly those)
 *
 * A window is fixed: it starts with the first event of an entry and lasts unit_ms;
 * the first event after it starts a new one with the count back at zero.
 *
 * Open connections belong to an owner (one per connection to anvil, that is one per
 * calling process): freeing the owner releases them, so a process that dies releases
 * its slots.  An owner holds at most ANVIL_OWNER_SLOTS.
 *
 * Memory is bounded: at most max_entries entries.  When a new one is needed and the
 * table is full, the entry used least recently is dropped, unless it holds open
 * connections: those are never dropped, and when every entry holds some, the new
 * event is refused.  Keys are bounded (ANVIL_KEY_MAX); accounts are lower-cased
 * (ASCII).  Inputs are whatever a peer sent: any bytes but NUL. */
#ifndef POSTERN_ANVIL_TABLE_H
#define POSTERN_ANVIL_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#define ANVIL_KEY_MAX 512           /* bytes of a service, client or account */
#define ANVIL_OWNER_SLOTS 256       /* open connections one owner may hold */
#define ANVIL_LOG_INTERVAL_MS 60000 /* a client's limit hits are logged once per minute */

struct anvil_table;
struct anvil_owner;

struct anvil_table *anvil_table_new(size_t max_entries, long long unit_ms);
void anvil_table_free(struct anvil_table *t);   /* the owners must be freed first */
size_t anvil_table_size(const struct anvil_table *t);

struct anvil_owner *anvil_owner_new(struct anvil_table *t);
/* Releases every connection the owner holds, and frees it (NULL: nothing). */
void anvil_owner_free(struct anvil_owner *o);
size_t anvil_owner_slots(const struct anvil_owner *o);

/* A new connection of client to service, held by o: *conns and *rate after it.  0,
 * or -1 (errno EMFILE: o holds ANVIL_OWNER_SLOTS; ENOSPC: the table is full of open
 * connections; EINVAL: a key is empty or too long). */
int anvil_table_connect(struct anvil_table *t, struct anvil_owner *o, const char *service,
                        const char *client, long long now, unsigned *conns, unsigned *rate);
/* o's connection of client to service ended: 0, or -1 when o holds none (nothing
 * changes). */
int anvil_table_disconnect(struct anvil_table *t, struct anvil_owner *o, const char *service,
                           const char *client);
/* The current counts of client at service (0, 0 when unknown). */
void anvil_table_conn_query(struct anvil_table *t, const char *service, const char *client,
                            long long now, unsigned *conns, unsigned *rate);
/* client hit a limit of service: true when none was reported in the last
 * ANVIL_LOG_INTERVAL_MS (the caller logs it), false otherwise.  -1 on a bad key. */
int anvil_table_limit(struct anvil_table *t, const char *service, const char *client,
                      long long now);

/* Login failures in the window, from client and for account.  0, or -1 (EINVAL as
 * above; ENOSPC only for login_fail). */
int anvil_table_login_query(struct anvil_table *t, const char *client, const char *account,
                            long long now, unsigned *by_client, unsigned *by_account);
int anvil_table_login_fail(struct anvil_table *t, const char *client, const char *account,
                           long long now, unsigned *by_client, unsigned *by_account);
/* A successful login: the failures for account from client are forgotten (taken off
 * both counts).  0, or -1 (EINVAL). */
int anvil_table_login_ok(struct anvil_table *t, const char *client, const char *account,
                         long long now);

#endif
