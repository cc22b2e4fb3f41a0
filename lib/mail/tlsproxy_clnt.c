/* The pre-auth side of the tlsproxy protocol (tlsproxy_clnt.h; the wire format is in
 * tlsproxy/request.c).  The proxy is trusted as far as a daemon of ours is: its
 * answer is still read within the IPC timeout and checked strictly. */
#include "tlsproxy_clnt.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "attr.h"
#include "attr_scan.h"
#include "clock.h"
#include "fd.h"
#include "ipc_clnt.h"
#include "ipc_proto.h"
#include "proto.h"
#include "str.h"
#include "stream.h"

#define TLSPROXY_REPLY_MAX 4096

static int clnt_fail(struct str *err, const char *what, const char *why)
{
    str_clear(err);
    str_printf(err, "%s: %s", what, why);
    return -1;
}

int tlsproxy_start(const struct tlsproxy_req *q, struct stream **st, struct stream **raw,
                   size_t *discarded, struct str *err)
{
    struct attr_list req = ATTR_LIST_INIT, reply = ATTR_LIST_INIT;
    struct str why = STR_INIT;
    struct ipc_clnt *c = ipc_clnt_open(q->path, q->ipc_timeout_ms, TLSPROXY_REPLY_MAX);
    struct stream *cs;
    const char *status = NULL;
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_STATUS, ATTR_NONEMPTY, &status, 32),
        ATTR_END,
    };
    long long deadline = clock_ms() + q->ipc_timeout_ms;
    char byte = 0;
    int plain = -1, rc = -1;

    if (ipc_clnt_connect(c) < 0) {
        clnt_fail(err, q->path, strerror(errno));
        goto out;
    }
    cs = ipc_clnt_stream(c);
    if (fd_send(stream_fd(cs), stream_fd(*st), "F", 1) < 0) {
        clnt_fail(err, q->path, strerror(errno));
        goto out;
    }
    ipc_frame_start(&req, PROTO_TLSPROXY, PROTO_TLSPROXY_VERSION);
    attr_add(&req, PROTO_A_SERVICE, q->service);
    attr_add_int(&req, PROTO_A_HANDSHAKE, q->handshake_ms > 0 ? q->handshake_ms : 1);
    attr_add_int(&req, PROTO_A_IDLE, q->idle_ms > 0 ? q->idle_ms : 1);
    if (attr_write(cs, &req) < 0 || stream_flush(cs) < 0) {
        clnt_fail(err, q->path, strerror(errno));
        goto out;
    }
    /* The answer's first byte carries the plaintext socket; nothing is buffered in
     * cs yet, so the descriptor is read straight from the socket. */
    if (fd_wait(stream_fd(cs), POLLIN, deadline) < 0
        || fd_recv(stream_fd(cs), &plain, &byte, 1) != 1) {
        clnt_fail(err, q->path, errno == 0 ? "no answer" : strerror(errno));
        goto out;
    }
    if (attr_read(cs, &reply, TLSPROXY_REPLY_MAX) <= 0) {
        clnt_fail(err, q->path, "no answer");
        goto out;
    }
    if (ipc_reply_check(&reply, PROTO_TLSPROXY, PROTO_TLSPROXY_VERSION, &why) < 0
        || attr_scan(&reply, 0, spec, &why) < 0) {
        clnt_fail(err, q->path, why.s != NULL ? why.s : "bad answer");
        goto out;
    }
    if (strcmp(status, PROTO_OK) != 0 || byte != 'F' || plain < 0) {
        clnt_fail(err, q->path, "refused");
        goto out;
    }
    *discarded = stream_pending(*st);
    *raw = *st;
    *st = stream_fdopen(plain);
    plain = -1;
    rc = 0;
out:
    if (plain >= 0)
        close(plain);
    attr_free(&req);
    attr_free(&reply);
    str_free(&why);
    ipc_clnt_close(c);
    return rc;
}
