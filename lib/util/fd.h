/* File descriptors: close-on-exec and non-blocking flags, the standard three kept
 * open, whole writes, and passing a descriptor over a UNIX socket. */
#ifndef POSTERN_FD_H
#define POSTERN_FD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Sets or clears FD_CLOEXEC / O_NONBLOCK: 0, or -1 (errno). */
int fd_cloexec(int fd, bool on);
int fd_nonblock(int fd, bool on);
/* Opens /dev/null on whichever of descriptors 0, 1 and 2 is closed, so that no file
 * opened later lands there (and gets stderr's log lines).  0, or -1 (errno). */
int fd_std_ensure(void);
/* Writes all n bytes to fd, again after EINTR.  0, or -1 with errno (EIO when
 * write(2) wrote nothing). */
int fd_write_all(int fd, const void *data, size_t n);
/* Waits until fd is ready for events (POLLIN, POLLOUT) or shows an error, before
 * deadline (a clock_ms() time; -1: none).  0, or -1 with errno (ETIMEDOUT). */
int fd_wait(int fd, short events, long long deadline);
/* Sends one descriptor with a little data (at least one byte goes): 0 or -1. */
int fd_send(int sock, int fd, const void *data, size_t len);
/* Receives up to len bytes and at most one descriptor (*fd, -1 when none came; any
 * further descriptors the peer pushed are closed).  Bytes read, or -1. */
ssize_t fd_recv(int sock, int *fd, void *data, size_t len);

#endif
