/* The message content on the wire: read from the queue file chunk by chunk ('\n'
 * line ends), written with CRLF line ends and dot-stuffing (RFC 5321 4.5.2), ending
 * with the lone dot.  When the server cannot take 8-bit data, the content goes
 * through smtp_mime.c first, which scans it once and then re-encodes its 8-bit parts.
 * Nothing is held in memory beyond the stream's buffer and one line. */
#include <errno.h>
#include <string.h>

#include "smtp.h"
#include "stream.h"

struct wire {
    struct stream *st;
    bool bol;               /* at the start of a line */
};

/* Writes data ('\n' line ends) as CRLF lines with dot-stuffing; -1 on I/O error. */
static int wire_put(void *arg, const char *data, size_t len)
{
    struct wire *w = arg;

    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl != NULL ? (size_t)(nl - data) : len;

        if (w->bol && n > 0 && data[0] == '.' && stream_write(w->st, ".", 1) < 0)
            return -1;
        if (n > 0 && stream_write(w->st, data, n) < 0)
            return -1;
        if (nl == NULL) {
            w->bol = n == 0 ? w->bol : false;
            break;
        }
        if (stream_write(w->st, "\r\n", 2) < 0)
            return -1;
        w->bol = true;
        data += n + 1;
        len -= n + 1;
    }
    return 0;
}

static int wire_end(struct wire *w)
{
    if (!w->bol && stream_write(w->st, "\r\n", 2) < 0)
        return -1;
    if (stream_write(w->st, ".\r\n", 3) < 0)
        return -1;
    return stream_flush(w->st);
}

static int mime_chunk(void *arg, const char *data, size_t len)
{
    return smtp_mime_feed(arg, data, len) != 0 ? -1 : 0;
}

static int has8_chunk(void *arg, const char *data, size_t len)
{
    bool *has8 = arg;

    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)data[i] >= 0x80) {
            *has8 = true;
            return 1;
        }
    }
    return 0;
}

int smtp_data_8bit(struct queue_file *qf, bool *has8)
{
    *has8 = false;
    return queue_file_content(qf, has8_chunk, has8) < 0 ? -1 : 0;
}

int smtp_data_send(struct smtp_session *s, struct queue_file *qf, bool convert)
{
    struct wire w = { s->st, true };
    struct smtp_mime *scan, *conv;
    int rc;

    if (!convert) {
        if (queue_file_content(qf, wire_put, &w) != 0)
            return -1;
        return wire_end(&w);
    }
    scan = smtp_mime_new(NULL, NULL, NULL);
    rc = queue_file_content(qf, mime_chunk, scan);
    if (rc == 0)
        rc = smtp_mime_finish(scan);
    if (rc != 0) {
        smtp_mime_free(scan);
        errno = EIO;
        return -1;
    }
    conv = smtp_mime_new(scan, wire_put, &w);
    rc = queue_file_content(qf, mime_chunk, conv);
    if (rc == 0)
        rc = smtp_mime_finish(conv);
    smtp_mime_free(conv);
    smtp_mime_free(scan);
    if (rc != 0)
        return -1;
    return wire_end(&w);
}
