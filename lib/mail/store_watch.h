/* Noticing changes to a folder made by other processes (local delivery into new/,
 * POP3 or mutt in cur/) or by other connections of the same process, through inotify,
 * so an open folder learns of a delivery at once.  A process has one inotify
 * instance; every holder of a folder's watch shares that folder's pair of watches.
 * The caller polls the process's descriptor for POLLIN, drains it, then asks each
 * holder whether its folder changed (or, with one holder, store_watch_drain). */
#ifndef POSTERN_STORE_WATCH_H
#define POSTERN_STORE_WATCH_H

#include <stdbool.h>

struct store_watch;

/* Watches dir/new and dir/cur for files created, moved in or out, and deleted.
 * NULL with errno on failure (ENOSPC: the user's inotify watch limit; EMFILE: its
 * instance limit). */
struct store_watch *store_watch_open(const char *dir);
/* The non-blocking descriptor to poll for POLLIN (the process's, shared). */
int store_watch_fd(const struct store_watch *w);
/* Drains the process's descriptor and tells whether w's folder changed since w last
 * looked: a message file (not our own temporary names starting with '.') created,
 * moved or deleted; also true when the kernel's queue overflowed. */
bool store_watch_drain(struct store_watch *w);
void store_watch_close(struct store_watch *w);

/* The process's inotify descriptor, -1 before the first watch. */
int store_watches_fd(void);
/* Reads all pending events and counts them against the folders they concern. */
void store_watches_drain(void);
/* Whether w's folder changed since w last looked (after store_watches_drain). */
bool store_watch_changed(struct store_watch *w);

#endif
