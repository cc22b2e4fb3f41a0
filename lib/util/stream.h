/* Buffered streams over a transport, with a timeout on every read and write.
 *
 * The transport is a pair of functions (struct stream_ops): plain file descriptors
 * today, TLS later, pushed beneath the buffers with stream_set_transport() without
 * protocol code noticing.  One process may hold many streams: poll() on stream_fd()
 * only when stream_input_ready() is false, since buffered bytes do not wake poll.
 *
 * Output is buffered until stream_flush() (or the buffer fills).  Errors are sticky:
 * once a stream fails every later call fails, and stream_error() says so. */
#ifndef POSTERN_STREAM_H
#define POSTERN_STREAM_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "str.h"

struct stream_ops {
    /* Both return bytes moved, 0 for EOF (read only), or -1 with errno set;
     * ETIMEDOUT when nothing moved within timeout_ms (negative: wait forever). */
    ssize_t (*read)(void *ctx, void *buf, size_t len, int timeout_ms);
    ssize_t (*write)(void *ctx, const void *buf, size_t len, int timeout_ms);
    /* Bytes the transport holds decoded but not yet returned (TLS records, inflated
     * input), so that a read returns at once; it may decode held bytes to find out,
     * but never waits.  Not 0 also when the next read is to report EOF or an error
     * it already knows of.  May be NULL. */
    size_t (*pending)(void *ctx);
    /* Releases ctx; does not close the fd.  May be NULL. */
    void (*free)(void *ctx);
    /* Writes go straight to a descriptor: they move bytes or nothing, so output may
     * be queued and written as the descriptor takes it (stream_set_queue). */
    bool plain;
};

struct stream;

#define STREAM_EOF     0   /* stream_getline: end of file, nothing read */
#define STREAM_LINE    1   /* a whole line, ending in '\n' (kept in the result) */
#define STREAM_PARTIAL 2   /* max bytes without '\n', or the last bytes before EOF */

struct stream *stream_fdopen(int fd);          /* the stream owns fd from now on */
void stream_close(struct stream *st);          /* flushes nothing; closes fd, frees */
int stream_fd(const struct stream *st);
void stream_set_timeout(struct stream *st, int timeout_ms);
/* An absolute limit (clock_ms() time) for every read and write from now on, on top of
 * the timeout of each: one request and its reply within a deadline.  0: none. */
void stream_set_deadline(struct stream *st, long long deadline_ms);
/* After a read or write failed with ETIMEDOUT (the timeout or the deadline), makes
 * the stream usable again, so that the caller can still send its timeout reply;
 * unread input stays as it was.  0, or -1 when the failure was not a timeout (or
 * there was none). */
int stream_clear_timeout(struct stream *st);

/* Replaces the transport; ctx is freed with ops->free at close.  Bytes already
 * buffered from the old transport are dropped (STARTTLS: what a client sent before
 * the handshake is never read after it) and the count dropped is returned. */
size_t stream_set_transport(struct stream *st, const struct stream_ops *ops, void *ctx);
void *stream_transport_ctx(const struct stream *st);

/* A filter between the buffers and the transport (COMPRESS=DEFLATE): the filter's
 * functions read and write through the transport that was there before, which
 * stream_push_filter hands over in *lower; the filter's free must free lower too.
 * Pending output is flushed through the old transport first.  Input already read
 * but not yet consumed came from the peer after the command that started the filter,
 * so it belongs to the filter: it is moved to *unread (cleared first), for the filter
 * to decode before it reads more. */
struct stream_lower {
    const struct stream_ops *ops;
    void *ctx;
};
int stream_push_filter(struct stream *st, const struct stream_ops *ops, void *ctx,
                       struct stream_lower *lower, struct str *unread);

/* Bytes readable without blocking: our input buffer plus the transport's. */
size_t stream_pending(const struct stream *st);
/* Whether a read now returns without waiting for the peer: input is buffered, or a
 * filter or the transport holds decoded input (COMPRESS, TLS).  Check it before any
 * poll() on stream_fd(): the bytes it counts were taken from the fd already and
 * will not wake poll. */
bool stream_input_ready(const struct stream *st);

/* Reads up to and including the next '\n', at most max bytes; line is cleared first
 * and holds the bytes read (the '\n' included, NUL-terminated).  Returns STREAM_LINE,
 * STREAM_PARTIAL, STREAM_EOF, or -1 on error or timeout (errno). */
int stream_getline(struct stream *st, struct str *line, size_t max);

/* Reads at most len bytes (buffered ones first): bytes read, 0 at EOF, -1 on error. */
ssize_t stream_read(struct stream *st, void *buf, size_t len);
/* Reads exactly len bytes: 0, or -1 on error, timeout or early EOF (errno EPIPE). */
int stream_read_full(struct stream *st, void *buf, size_t len);

int stream_write(struct stream *st, const void *buf, size_t len);   /* 0 or -1 */
int stream_puts(struct stream *st, const char *s);
int stream_printf(struct stream *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int stream_vprintf(struct stream *st, const char *fmt, va_list ap);
int stream_flush(struct stream *st);                                /* 0 or -1 */
/* Writes all buffered and queued output, waiting as long as the timeout allows. */
int stream_flush_wait(struct stream *st);

/* For a caller that serves many streams from one poll loop.  With limit > 0, output
 * over a plain transport (not TLS or a filter: they flush as before) is
 * queued by stream_flush and a full buffer rather than written, until the queue
 * passes limit bytes; then the flush writes it all, waiting.  Set the descriptor
 * non-blocking.  0: no queue. */
void stream_set_queue(struct stream *st, size_t limit);
/* Writes what the descriptor takes now: 0 when all is out, 1 when some is left (poll
 * for POLLOUT), -1 on error.  Without a queue, as stream_flush_wait. */
int stream_flush_nowait(struct stream *st);
/* Output bytes buffered or queued. */
size_t stream_output_pending(const struct stream *st);
/* When the input buffer is empty, one read from the transport that does not wait:
 * the bytes now buffered, 0 at EOF, -1 with errno (EAGAIN: nothing now, the stream
 * stays usable). */
ssize_t stream_fill_nowait(struct stream *st);
/* Buffered input only, no read: up to and including the next '\n', at most max bytes,
 * appended to out; true when a '\n' ended what was taken. */
bool stream_take_line(struct stream *st, struct str *out, size_t max);
/* Buffered input only: up to len bytes appended to out; the count. */
size_t stream_take(struct stream *st, struct str *out, size_t len);
bool stream_error(const struct stream *st);

#endif
