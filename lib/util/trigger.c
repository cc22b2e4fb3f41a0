/* One-way notices: one frame on a UNIX socket kept open between calls.  The
 * connection is checked for a hang-up before each use and made again once when a
 * write fails (the listener restarted).  Failures are logged once until the next
 * success. */
#include "trigger.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attr.h"
#include "log.h"
#include "sock.h"
#include "str.h"

#define TRIGGER_TIMEOUT_MS 2000

static int trigger_fd = -1;
static char trigger_path[256];
static bool trigger_warned;

static void trigger_drop(void)
{
    if (trigger_fd >= 0)
        close(trigger_fd);
    trigger_fd = -1;
}

/* The kept connection is usable when the peer has neither closed it nor sent data
 * (qmgr never writes to it). */
static bool trigger_alive(void)
{
    struct pollfd p = { .fd = trigger_fd, .events = POLLIN };

    if (trigger_fd < 0)
        return false;
    if (poll(&p, 1, 0) != 0)
        return false;
    return true;
}

static int trigger_write(const char *frame, size_t len)
{
    size_t off = 0;

    while (off < len) {
        ssize_t n = send(trigger_fd, frame + off, len - off, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        off += (size_t)n;
    }
    return 0;
}

int trigger_send(const char *path, const struct attr_list *frame)
{
    struct str buf = STR_INIT;
    int attempt, rc = -1;

    if (strlen(path) >= sizeof(trigger_path))
        return -1;
    if (strcmp(path, trigger_path) != 0) {
        trigger_drop();
        strcpy(trigger_path, path);
    }
    attr_encode(frame, &buf);
    for (attempt = 0; attempt < 2 && rc < 0; attempt++) {
        if (!trigger_alive()) {
            trigger_drop();
            trigger_fd = sock_connect_unix(path, TRIGGER_TIMEOUT_MS);
            if (trigger_fd < 0)
                break;
        }
        if (trigger_write(buf.s, buf.len) == 0)
            rc = 0;
        else
            trigger_drop();
    }
    str_free(&buf);
    if (rc == 0) {
        trigger_warned = false;
        return 0;
    }
    if (!trigger_warned)
        log_warn("cannot send a notice to %s: %s", path, strerror(errno));
    trigger_warned = true;
    return -1;
}
