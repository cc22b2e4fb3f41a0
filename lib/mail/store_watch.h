/* Noticing changes to a folder made by other processes (local delivery into new/,
 * POP3 or mutt in cur/) through inotify, so an open folder learns of a delivery at once.
 * The caller polls the descriptor for POLLIN, then drains it and syncs the folder. */
#ifndef POSTERN_STORE_WATCH_H
#define POSTERN_STORE_WATCH_H

#include <stdbool.h>

struct store_watch;

/* Watches dir/new and dir/cur for files created, moved in or out, and deleted.
 * NULL with errno on failure (ENOSPC: the user's inotify watch limit). */
struct store_watch *store_watch_open(const char *dir);
/* The non-blocking descriptor to poll for POLLIN. */
int store_watch_fd(const struct store_watch *w);
/* Reads all pending events; true when any concerned a message file (not our own
 * temporary names starting with '.'); also true when the kernel's queue overflowed. */
bool store_watch_drain(struct store_watch *w);
void store_watch_close(struct store_watch *w);

#endif
