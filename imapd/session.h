/* imapd's state after login, shared by the files that serve its commands. */
#ifndef IMAPD_SESSION_H
#define IMAPD_SESSION_H

#include <stdbool.h>

#include "imapd.h"

struct imap_session {
    struct imap_conn c;
    bool logout;
};

#define IMAP_CMD_NOARGS   0x1       /* takes no arguments */

struct imap_command {
    const char *name;
    void (*fn)(struct imap_session *s, struct imap_parser *ip);
    unsigned flags;                 /* IMAP_CMD_* */
};

#endif
