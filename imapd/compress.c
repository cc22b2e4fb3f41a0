/* COMPRESS (RFC 4978): after "tag OK" the connection is raw deflate both ways, through
 * the stream layer's filter (stream_deflate.h), so that every other command reads
 * and writes as before.  The line and literal limits of io.c apply to what the
 * client's compressed bytes expand to, which bounds a decompression bomb. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "imapd.h"
#include "log.h"
#include "session.h"
#include "stream.h"
#include "stream_deflate.h"

void imap_cmd_compress(struct imap_session *s, struct imap_parser *ip)
{
    struct str mech = STR_INIT;

    if (!imap_p_sp(ip) || !imap_p_atom(ip, &mech, 32) || !imap_p_eol(ip)) {
        imap_bad(&s->c, "COMPRESS needs one mechanism");
    } else if (s->c.compressed) {
        imap_no(&s->c, "[COMPRESSIONACTIVE] DEFLATE is active already");
    } else if (strcasecmp(mech.s, "DEFLATE") != 0) {
        imap_no(&s->c, "Unknown compression mechanism");
    } else {
        imap_ok(&s->c, "DEFLATE active");
        if (stream_push_deflate(s->c.st) < 0) {
            log_warn("compress: user=<%s>, client=[%s]: %s", s->c.user, s->c.client,
                     strerror(errno));
            s->c.closing = true;
        } else {
            s->c.compressed = true;
            log_info("compress: user=<%s>, client=[%s], deflate", s->c.user, s->c.client);
        }
    }
    str_free(&mech);
}
