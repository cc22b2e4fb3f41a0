/* Client of anvil(8), the one counter of connections, connection rates and login
 * failures shared by every daemon.  anvil only counts: the caller compares the
 * counts with its limits (config keys).  Each process keeps ONE connection to anvil
 * (opened lazily, opened again after an error); anvil ties the connection slots a
 * process claimed to that connection, so when the process dies its slots are
 * released.  Rates and failure counts are per anvil_rate_time_unit.
 *
 * Every call fails open: when anvil cannot be reached or answers badly, the call
 * returns -1 (logged, at most once a minute per process) and the caller lets the
 * client in.  Protocol "anvil", version 2 (proto.h); the frames are in anvil(8). */
#ifndef POSTERN_ANVIL_CLNT_H
#define POSTERN_ANVIL_CLNT_H

#define ANVIL_CLNT_TIMEOUT_MS 10000 /* default time for one request and its reply */

/* Optional, before the first call: the socket (relative to the working directory;
 * default PROTO_PATH_ANVIL, the pre-auth processes in login/ use PROTO_LOGIN_ANVIL)
 * and the time allowed for a request and its reply (<= 0: the default).  Closes a
 * connection made before. */
void anvil_clnt_init(const char *path, int timeout_ms);

struct anvil_counts {
    unsigned conns;      /* concurrent connections of this client to this service */
    unsigned rate;       /* connections of this client to this service in the window */
};
/* A new connection of CLIENT (textual IP address) to SERVICE (master.conf name).
 * Fills COUNTS (including this one). 0 on success, -1 when anvil cannot be reached or
 * answered badly (logged; the caller then lets the client in: fail open). */
int anvil_connect(const char *service, const char *client, struct anvil_counts *counts);
/* That connection ended. */
void anvil_disconnect(const char *service, const char *client);
/* CLIENT hit a limit of SERVICE: 1 when the caller should log it (the first report
 * of this client and service in a minute, across all processes), 0 when it was
 * logged already; -1 when anvil could not tell (the caller logs it). */
int anvil_limit_hit(const char *service, const char *client);

/* Login failures, counted across all services and all auth processes. */
struct anvil_fails {
    unsigned client;     /* failures from this client address in the window */
    unsigned account;    /* failures for this account (as typed, lower-cased) in the window */
};
/* Read the counts without changing them. 0 / -1 as above. */
int anvil_login_query(const char *client, const char *account, struct anvil_fails *f);
/* Count one failure; F gets the counts after it. */
int anvil_login_failed(const char *client, const char *account, struct anvil_fails *f);
/* A successful login: forget this account's failures from this client. */
int anvil_login_ok(const char *client, const char *account);

#endif
