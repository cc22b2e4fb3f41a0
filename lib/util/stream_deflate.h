/* Raw deflate (RFC 1951, no zlib or gzip framing) both ways over a stream, as IMAP's
 * COMPRESS=DEFLATE (RFC 4978) wants it: pushed beneath a stream's buffers with
 * stream_push_filter(), so the protocol code above reads and writes as before. */
#ifndef POSTERN_STREAM_DEFLATE_H
#define POSTERN_STREAM_DEFLATE_H

struct stream;

/* From now on st's output is compressed (each flush ends with a sync flush, so the
 * peer can decode every reply at once) and its input decompressed, including input
 * already read but not yet consumed.  Decompression writes into a fixed buffer of the
 * filter's, a piece at a time: how much a small input may expand into is bounded by
 * what the reader above accepts (its line and literal limits), never by memory.
 * stream_input_ready() says whether inflated input is waiting there.
 * Corrupt input is a read error (EPROTO).  0, or -1 with errno (the stream is left
 * as it was only when the flush of pending output failed). */
int stream_push_deflate(struct stream *st);

#endif
