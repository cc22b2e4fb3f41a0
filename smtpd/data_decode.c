/* SMTP message content decoder (see data_decode.h).  Input: untrusted bytes from
 * the client, in pieces of any size.  A small state machine; the only memory is one
 * line buffer of line_max bytes. */
#include "data_decode.h"

#include <stdlib.h>
#include <string.h>

enum line_end {
    END_CRLF,
    END_LF,
    END_CR,
    END_NONE,                   /* end of input without a line end */
};

int data_decode_init(struct data_decoder *d, enum data_mode mode, size_t line_max,
                     data_line_fn fn, void *arg)
{
    memset(d, 0, sizeof(*d));
    if (line_max < 3)
        line_max = 3;
    d->buf = malloc(line_max + 1);
    if (d->buf == NULL)
        return -1;
    d->mode = mode;
    d->line_max = line_max;
    d->prev_crlf = true;
    d->fn = fn;
    d->arg = arg;
    return 0;
}

void data_decode_free(struct data_decoder *d)
{
    free(d->buf);
    d->buf = NULL;
}

/* The current line is complete: decide what it is, pass it on, reset.  Returns 0,
 * or -1 when fn asked to stop. */
static int line_done(struct data_decoder *d, enum line_end end)
{
    size_t termlen = end == END_CRLF ? 2 : end == END_NONE ? 0 : 1;
    const char *start = d->buf;
    size_t len = d->len;
    bool crlf = end == END_CRLF;
    bool prev_crlf = d->prev_crlf;
    bool overflow = d->overflow || len + termlen > d->line_max;
    int rc = 0;

    d->prev_crlf = crlf;
    d->len = 0;
    d->overflow = false;

    if (d->mode == DATA_MODE_DOT && !overflow && crlf && len >= 1 && start[0] == '.') {
        if (len == 1 && prev_crlf) {
            d->ended = true;
            return 0;
        }
        start++;
        len--;
    }
    if (overflow) {
        d->too_long = true;
        return 0;
    }
    /* buf has line_max + 1 bytes and len <= line_max here, so the newline fits */
    if (start == d->buf) {
        d->buf[len] = '\n';
    } else {
        memmove(d->buf, start, len);
        d->buf[len] = '\n';
    }
    d->lines++;
    d->out_bytes += len + 1;
    if (d->fn != NULL)
        rc = d->fn(d->arg, d->buf, len + 1);
    return rc != 0 ? -1 : 0;
}

int data_decode(struct data_decoder *d, const char *p, size_t n, size_t *used)
{
    size_t i = 0;

    *used = 0;
    if (d->ended)
        return 0;
    while (i < n) {
        char c = p[i];

        if (d->cr_pending) {
            d->cr_pending = false;
            if (c == '\n') {
                i++;
                if (line_done(d, END_CRLF) < 0) {
                    *used = i;
                    return -1;
                }
                if (d->ended) {
                    *used = i;
                    return 0;
                }
                continue;
            }
            /* a bare CR ended the line; c starts the next one */
            if (line_done(d, END_CR) < 0) {
                *used = i;
                return -1;
            }
            continue;
        }
        i++;
        if (c == '\r') {
            d->cr_pending = true;
        } else if (c == '\n') {
            if (line_done(d, END_LF) < 0) {
                *used = i;
                return -1;
            }
        } else if (d->overflow) {
            /* skip the rest of an overlong line */
        } else if (d->len >= d->line_max) {
            d->overflow = true;
        } else {
            d->buf[d->len++] = c;
        }
    }
    *used = i;
    return 0;
}

int data_decode_finish(struct data_decoder *d)
{
    if (d->ended)
        return 0;
    if (d->cr_pending) {
        d->cr_pending = false;
        return line_done(d, END_CR);
    }
    if (d->len > 0 || d->overflow)
        return line_done(d, END_NONE);
    return 0;
}
