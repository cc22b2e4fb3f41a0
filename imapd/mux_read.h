/* The command reader of the session process's loop (mux.c), one per connection: a
 * state machine that turns the bytes already buffered in the connection's stream into
 * whole commands (literals inline, as imap_read_command gives them), lines sent in
 * IDLE, or refusals already answered, and never waits.  It needs no session: what to
 * do with a command or an IDLE line is the caller's (mux_read_step's result). */
#ifndef IMAPD_MUX_READ_H
#define IMAPD_MUX_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "str.h"

struct imap_conn;

#define MUX_DISCARD_MAX 65536           /* most bytes of an overlong line skipped */
#define MUX_IDLE_LINE_MAX 64            /* a line in IDLE ("DONE") */

enum mux_state {
    MUX_IN_LINE,                /* reading a command line */
    MUX_IN_LITERAL,             /* reading a literal's bytes */
    MUX_IN_IDLE,                /* in IDLE: reading DONE */
};

enum mux_event {
    MUX_MORE,                   /* none yet: all buffered input taken, or a pause after
                                 * an empty literal ("{0}"); step when input is ready */
    MUX_COMMAND,                /* a whole command in cmd: run it, then mux_read_reset */
    MUX_IDLE_LINE,              /* a line in IDLE in line ('\n' included): mux_read_reset */
    MUX_REFUSED,                /* answered (BAD, NO) and dropped: mux_read_reset */
    MUX_ENDED,                  /* the connection is to end (dead, end_how): read no more */
};

struct mux_reader {
    struct imap_conn *ic;       /* its stream is read; its tag and replies are set */
    enum mux_state state;
    struct str cmd;             /* the command so far, literals inline */
    struct str line;            /* the line so far */
    size_t skipped;             /* > 0: skipping an overlong line, bytes so far */
    uint64_t lit_left;          /* literal bytes still to come */
    uint64_t message;           /* bytes of APPEND literals: not held to IMAP_CMD_MAX */
    long long deadline;         /* the timeout or the command deadline, clock_ms() */
    bool in_command;            /* a command has begun: its deadline runs */
    bool dead;                  /* the connection ended: nothing more is read */
    const char *end_how;        /* why it ended, for the log */
};

/* A reader for ic (r zeroed or freed before) awaiting a command line until deadline. */
void mux_read_init(struct mux_reader *r, struct imap_conn *ic, long long deadline);
/* Ready for the next command (or, idling, for IDLE's line) until deadline: what was
 * read of the last one is dropped. */
void mux_read_reset(struct mux_reader *r, bool idling, long long deadline);
/* Consumes buffered input up to one event: the first byte of a command starts its
 * deadline (imapd_command_deadline, then a literal's own time), and a line too long
 * for its limits, a NUL or a literal over its limit is answered here.  After
 * MUX_ENDED (or mux_read_end) it takes and writes nothing. */
enum mux_event mux_read_step(struct mux_reader *r);
/* Marks the connection ended (the first reason is kept). */
void mux_read_end(struct mux_reader *r, const char *how);
void mux_read_free(struct mux_reader *r);

#endif
