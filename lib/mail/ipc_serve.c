/* The request loop of request/reply daemons (see ipc_serve.h).  Frames come from
 * other daemons, which may be compromised: the frame reader bounds them, the version
 * and request name are checked here, and each handler scans its own attributes. */
#include "ipc_serve.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "attr_scan.h"
#include "ipc_proto.h"
#include "log.h"
#include "proto.h"
#include "server_wait.h"
#include "str.h"
#include "stream.h"
#include "xmalloc.h"

#define REQ_NAME_MAX 32             /* longest request name */

/* true when another request has (at least partly) arrived already. */
static bool request_ready(struct stream *st)
{
    struct pollfd pfd = { .fd = stream_fd(st), .events = POLLIN, .revents = 0 };

    return stream_pending(st) > 0 || poll(&pfd, 1, 0) > 0;
}

static const struct ipc_handler *handler_find(const struct ipc_service *svc, const char *req)
{
    for (const struct ipc_handler *h = svc->handlers; h->req != NULL; h++)
        if (strcmp(h->req, req) == 0)
            return h;
    return NULL;
}

/* Reads and handles one request into out: 1 handled (out is its reply), 0 the
 * connection ends with out as its last reply, -1 it ends with no reply. */
static int serve_one(struct stream *st, const struct ipc_service *svc, void *ctx,
                     struct attr_list *in, struct attr_list *out, struct str *err)
{
    const struct ipc_handler *h;
    const char *req = NULL;
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_REQ, ATTR_NONEMPTY, &req, REQ_NAME_MAX),
        ATTR_END,
    };
    int rc = attr_read(st, in, svc->frame_max);

    if (rc == 0)
        return -1;
    if (rc < 0) {
        log_warn("bad %s request frame: %s", svc->proto,
                 errno == EPROTO ? "malformed" : errno == EMSGSIZE ? "too large"
                                                                    : strerror(errno));
        return -1;
    }
    if (ipc_proto_check(in, svc->proto, svc->version, err) < 0) {
        log_warn("%s", err->s);
        ipc_error_reply(out, svc->proto, svc->version, err->s);
        return 0;
    }
    if (attr_scan(in, 0, spec, err) < 0) {
        log_warn("malformed %s request: %s", svc->proto, err->s);
        return -1;
    }
    h = handler_find(svc, req);
    if (h == NULL) {
        log_warn("unknown %s request \"%s\"", svc->proto,
                 attr_name_valid(req, strlen(req)) ? req : "?");
        return -1;
    }
    ipc_frame_start(out, svc->proto, svc->version);
    str_clear(err);
    if (h->fn(ctx, in, out, err) < 0) {
        log_warn("malformed %s request: %s", req, err->len > 0 ? err->s : "refused");
        return -1;
    }
    return 1;
}

void ipc_serve(struct stream *st, const struct server_wait *w, const struct ipc_service *svc,
               void *ctx)
{
    size_t batch = svc->batch > 1 ? svc->batch : 1;
    struct attr_list in = ATTR_LIST_INIT, *out = xcalloc(batch, sizeof(*out));
    struct str err = STR_INIT;
    bool more = true;

    while (more && server_wait_request(st, w)) {
        size_t n = 0;

        do {
            int rc = serve_one(st, svc, ctx, &in, &out[n], &err);

            if (svc->secret)
                attr_wipe(&in);
            if (rc < 0) {
                more = false;
                break;
            }
            n++;
            if (rc == 0) {
                more = false;
                break;
            }
        } while (n < batch && request_ready(st));
        if (svc->batch_end != NULL)
            svc->batch_end(ctx);
        for (size_t k = 0; k < n; k++) {
            int rc = attr_write(st, &out[k]);

            if (svc->secret)
                attr_wipe(&out[k]);
            if (rc < 0) {
                log_warn("cannot write the %s reply: %s", svc->proto, strerror(errno));
                more = false;
                break;
            }
        }
    }
    if (svc->secret)
        attr_wipe(&in);
    attr_free(&in);
    for (size_t k = 0; k < batch; k++) {
        if (svc->secret)
            attr_wipe(&out[k]);
        attr_free(&out[k]);
    }
    free(out);
    str_free(&err);
}
