/* Wake-ups for qmgr (see wakeup.h): the frame is made here, sent by trigger.c. */
#include "wakeup.h"

#include "attr.h"
#include "ipc_proto.h"
#include "proto.h"
#include "trigger.h"

int wakeup_send(const char *path, const char *req)
{
    struct attr_list al = ATTR_LIST_INIT;
    int rc;

    ipc_request_start(&al, PROTO_QMGR, PROTO_QMGR_VERSION, req);
    rc = trigger_send(path, &al);
    attr_free(&al);
    return rc;
}
