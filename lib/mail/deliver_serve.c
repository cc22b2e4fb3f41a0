/* A delivery agent's request loop (see deliver_serve.h).  The frames come from qmgr
 * and are checked by deliver_request_read(). */
#include "deliver_serve.h"

#include <errno.h>
#include <string.h>

#include "deliver.h"
#include "log.h"
#include "server_wait.h"
#include "str.h"
#include "stream.h"

void deliver_serve(struct stream *st, const struct server_wait *w,
                   void (*deliver)(void *ctx, struct deliver_request *dr), void *ctx)
{
    struct deliver_request dr;
    struct str err = STR_INIT;

    deliver_request_init(&dr);
    while (server_wait_request(st, w)) {
        int rc;

        str_clear(&err);
        rc = deliver_request_read(st, &dr, &err);
        if (rc == 0)
            break;
        if (rc < 0) {
            log_warn("%s", err.len ? err.s : "bad delivery request");
            break;
        }
        deliver(ctx, &dr);
        if (deliver_reply_write(st, &dr) < 0) {
            log_warn("%s: cannot write the delivery reply: %s", dr.id, strerror(errno));
            break;
        }
    }
    deliver_request_free(&dr);
    str_free(&err);
}
