/* The session process's command reader (mux_read.h): command lines, their literals
 * (LITERAL+ and the limits checked by imap_literal_allowed), IDLE's line and the
 * skipping of overlong lines, from what the connection's stream has buffered, without
 * waiting.  The bounds are io.c's: IMAP_LINE_MAX a line, IMAP_CMD_MAX a command
 * besides its APPEND literals, MUX_DISCARD_MAX skipped of one line before the
 * connection is closed.  Every byte read here is the client's. */
#include <string.h>

#include "clock.h"
#include "imapd.h"
#include "log.h"
#include "mux_read.h"
#include "stream.h"

#define MUX_CMD_KEEP 65536              /* a command buffer larger is freed after use */

void mux_read_init(struct mux_reader *r, struct imap_conn *ic, long long deadline)
{
    memset(r, 0, sizeof(*r));
    r->ic = ic;
    r->state = MUX_IN_LINE;
    r->deadline = deadline;
}

void mux_read_reset(struct mux_reader *r, bool idling, long long deadline)
{
    if (r->cmd.len > MUX_CMD_KEEP)
        str_free(&r->cmd);
    else
        str_clear(&r->cmd);
    str_free(&r->line);
    r->skipped = 0;
    r->lit_left = 0;
    r->message = 0;
    r->in_command = false;
    r->state = idling ? MUX_IN_IDLE : MUX_IN_LINE;
    r->deadline = deadline;
}

void mux_read_end(struct mux_reader *r, const char *how)
{
    if (!r->dead) {
        r->dead = true;
        r->end_how = how;
    }
}

void mux_read_free(struct mux_reader *r)
{
    str_free(&r->cmd);
    str_free(&r->line);
}

/* A complete line (its end removed) of a command: appended, then the command is
 * whole or its literal is awaited. */
static enum mux_event read_line_done(struct mux_reader *r)
{
    uint64_t n;
    bool plus, append;
    struct imap_conn *ic = r->ic;

    if (r->cmd.len == 0)
        imap_take_tag(ic, r->line.s, r->line.len);
    if (r->line.len > IMAP_LINE_MAX) {     /* ended by a bare LF: a byte more came */
        imap_bad(ic, "line too long");
        return MUX_REFUSED;
    }
    if (r->cmd.len - r->message + r->line.len > IMAP_CMD_MAX) {
        imap_bad(ic, "line too long");
        return MUX_REFUSED;
    }
    if (memchr(r->line.s, '\0', r->line.len) != NULL) {
        imap_bad(ic, "NUL in command");
        return MUX_REFUSED;
    }
    str_append(&r->cmd, r->line.s, r->line.len);
    if (!imap_literal_at_end(&r->line, &n, &plus)) {
        str_free(&r->line);
        return MUX_COMMAND;
    }
    str_free(&r->line);
    if (!imap_literal_allowed(ic, &r->cmd, r->message, n, plus, &append)) {
        if (ic->closing) {
            mux_read_end(r, plus ? "literal too large" : "closed");
            return MUX_ENDED;
        }
        return MUX_REFUSED;
    }
    if (!plus)
        stream_puts(ic->st, "+ Ready for literal data\r\n");
    /* the literal's own time: the deadline again, plus 1 s per 16 KiB */
    r->deadline = clock_ms() + imap_cf.command_deadline_ms + (long long)(n / 16384) * 1000;
    str_append(&r->cmd, "\r\n", 2);
    r->lit_left = n;
    if (append)
        r->message += n;
    r->state = MUX_IN_LITERAL;
    if (n == 0)
        r->state = MUX_IN_LINE;
    return MUX_MORE;
}

enum mux_event mux_read_step(struct mux_reader *r)
{
    struct stream *st = r->ic->st;

    if (r->dead)
        return MUX_ENDED;
    if (!r->in_command && r->state != MUX_IN_IDLE) {
        r->in_command = true;
        strcpy(r->ic->tag, "*");
        r->deadline = clock_ms() + imap_cf.command_deadline_ms;
    }
    for (;;) {
        if (r->state == MUX_IN_LITERAL) {
            size_t want = r->lit_left > 65536 ? 65536 : (size_t)r->lit_left;
            size_t got = stream_take(st, &r->cmd, want);
            r->lit_left -= got;
            if (r->lit_left == 0)
                r->state = MUX_IN_LINE;
            if (got == 0)
                return MUX_MORE;
            continue;
        }
        if (r->state == MUX_IN_IDLE) {
            bool eol = stream_take_line(st, &r->line, MUX_IDLE_LINE_MAX - r->line.len);
            if (!eol && r->line.len >= MUX_IDLE_LINE_MAX) {
                imap_bad(r->ic, "Expected DONE");
                mux_read_end(r, "IDLE line too long");
                return MUX_ENDED;
            }
            if (!eol)
                return MUX_MORE;
            return MUX_IDLE_LINE;
        }
        if (r->skipped > 0) {
            struct str rest = STR_INIT;
            bool eol = stream_take_line(st, &rest, 4096);
            size_t got = rest.len;

            str_free(&rest);
            r->skipped += got;
            /* by the line's whole length, however its bytes arrived */
            if (r->skipped > MUX_DISCARD_MAX) {
                log_info("command line over %d bytes, closing: client=[%s]", MUX_DISCARD_MAX,
                         r->ic->client);
                stream_puts(st, "* BYE Command line too long\r\n");
                mux_read_end(r, "line too long");
                return MUX_ENDED;
            }
            if (eol) {
                imap_bad(r->ic, "line too long");
                return MUX_REFUSED;
            }
            if (got == 0)
                return MUX_MORE;
            continue;
        }
        {
            bool eol = stream_take_line(st, &r->line, IMAP_LINE_MAX + 2 - r->line.len);
            enum mux_event ev;

            if (!eol && r->line.len >= IMAP_LINE_MAX + 2) {
                if (r->cmd.len == 0)
                    imap_take_tag(r->ic, r->line.s, r->line.len);
                r->skipped = r->line.len;
                str_free(&r->line);
                continue;
            }
            if (!eol)
                return MUX_MORE;
            str_truncate(&r->line, r->line.len - 1);
            if (r->line.len > 0 && r->line.s[r->line.len - 1] == '\r')
                str_truncate(&r->line, r->line.len - 1);
            ev = read_line_done(r);
            if (ev != MUX_MORE || r->state != MUX_IN_LITERAL)
                return ev;
        }
    }
}
