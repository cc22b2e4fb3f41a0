/* The decoder of SMTP message content, DATA (dot-terminated) or BDAT (counted chunks):
 * raw bytes from the client in, content lines with '\n' line ends out.
 *
 * Line ends: CRLF, a bare LF and a bare CR each end a line; a CR at the end of one
 * input piece and an LF at the start of the next are one CRLF.  No CR ever reaches
 * the output.  In DATA mode the message ends only at a line "." that ended in CRLF
 * and whose preceding line also ended in CRLF (or that is the first line); a line
 * that starts with '.' and ended in CRLF loses that first dot.  So "<LF>.<LF>",
 * "<LF>.<CR><LF>" and "<CR>.<CR>" never end a message.
 *
 * A line longer than line_max raw bytes (its line end included) is not passed on;
 * too_long is set and decoding goes on so that the caller finds the end of the data.
 * Memory use is bounded by line_max.  Input is untrusted; no other dependency than
 * the C library, so the decoder can be fuzzed alone. */
#ifndef POSTERN_SMTPD_DATA_DECODE_H
#define POSTERN_SMTPD_DATA_DECODE_H

#include <stdbool.h>
#include <stddef.h>

enum data_mode {
    DATA_MODE_DOT,              /* DATA: dot-stuffed, ends with CRLF.CRLF */
    DATA_MODE_BDAT,             /* BDAT: bytes as they are, the caller counts */
};

/* Called for each complete line (len bytes, the last one '\n').  A non-zero return
 * stops decoding: data_decode returns -1. */
typedef int (*data_line_fn)(void *arg, const char *line, size_t len);

struct data_decoder {
    enum data_mode mode;
    size_t line_max;
    char *buf;                  /* line_max + 1 bytes */
    size_t len;                 /* content bytes of the current line held in buf */
    bool overflow;              /* current line did not fit */
    bool cr_pending;            /* last byte was a CR: line end kind not known yet */
    bool prev_crlf;             /* the previous line ended in CRLF (true at start) */
    bool too_long;              /* some line was longer than line_max */
    bool ended;                 /* DATA mode: the terminator was seen */
    size_t lines;               /* lines passed on */
    size_t out_bytes;           /* bytes passed on */
    data_line_fn fn;
    void *arg;
};

/* line_max >= 3.  0, or -1 when out of memory. */
int data_decode_init(struct data_decoder *d, enum data_mode mode, size_t line_max,
                     data_line_fn fn, void *arg);
void data_decode_free(struct data_decoder *d);

/* Decodes n bytes and sets *used to the bytes consumed: n, or fewer when the
 * terminator was seen (d->ended; the rest belongs to what follows the message).
 * Nothing is consumed once ended.  0, or -1 when fn asked to stop. */
int data_decode(struct data_decoder *d, const char *p, size_t n, size_t *used);

/* End of input (BDAT LAST): a pending CR ends its line, and an unterminated last
 * line is passed on with a '\n' added.  0, or -1 when fn asked to stop. */
int data_decode_finish(struct data_decoder *d);

#endif
