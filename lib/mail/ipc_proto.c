/* The envelope of frames between daemons (see ipc_proto.h).  The version attribute
 * and the error text come from another process: both are checked for shape, and an
 * error text is cut and made printable before anyone logs it. */
#include "ipc_proto.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "attr.h"
#include "attr_scan.h"
#include "ipc_clnt.h"
#include "proto.h"
#include "str.h"

#define PROTO_NAME_MAX 32           /* longest protocol name */
#define PROTO_VALUE_MAX 64          /* longest "NAME/VERSION" */
#define PROTO_VERSION_MAX 999999
#define ERROR_TEXT_MAX 200          /* bytes of a peer's error text kept */

void ipc_request_start(struct attr_list *al, const char *proto, unsigned version,
                       const char *req)
{
    ipc_frame_start(al, proto, version);
    attr_add(al, PROTO_A_REQ, req);
}

void ipc_frame_start(struct attr_list *al, const char *proto, unsigned version)
{
    attr_clear(al);
    attr_addf(al, PROTO_A_PROTO, "%s/%u", proto, version);
}

void ipc_error_reply(struct attr_list *al, const char *proto, unsigned version,
                     const char *text)
{
    ipc_frame_start(al, proto, version);
    attr_add(al, PROTO_A_ERROR, text);
}

/* "NAME/VERSION": 0 with name (in buf) and version, or -1. */
static int proto_parse(const char *v, char *name, size_t namesize, unsigned long *version)
{
    const char *slash = strchr(v, '/');
    size_t n;
    unsigned long ver = 0;

    if (slash == NULL || slash == v || (size_t)(slash - v) >= namesize
        || !attr_name_valid(v, (size_t)(slash - v)))
        return -1;
    n = strlen(slash + 1);
    if (n == 0 || n > 6 || strspn(slash + 1, "0123456789") != n)
        return -1;
    for (const char *p = slash + 1; *p != '\0'; p++)
        ver = ver * 10 + (unsigned long)(*p - '0');
    if (ver == 0 || ver > PROTO_VERSION_MAX)
        return -1;
    memcpy(name, v, (size_t)(slash - v));
    name[slash - v] = '\0';
    *version = ver;
    return 0;
}

int ipc_proto_check(const struct attr_list *al, const char *proto, unsigned version,
                    struct str *err)
{
    const char *value = NULL;
    char name[PROTO_NAME_MAX + 1];
    unsigned long got;
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_PROTO, ATTR_OPTIONAL, &value, PROTO_VALUE_MAX),
        ATTR_END,
    };

    if (attr_scan(al, 0, spec, err) < 0)
        return -1;
    if (value == NULL) {
        str_printf(err, "protocol %s version 1 (no \"%s\" attribute), expected %u", proto,
                   PROTO_A_PROTO, version);
        return -1;
    }
    if (proto_parse(value, name, sizeof(name), &got) < 0) {
        str_printf(err, "malformed \"%s\" attribute, expected %s/%u", PROTO_A_PROTO, proto,
                   version);
        return -1;
    }
    if (strcmp(name, proto) != 0) {
        str_printf(err, "protocol %s version %lu, expected %s version %u", name, got, proto,
                   version);
        return -1;
    }
    if (got != version) {
        str_printf(err, "protocol %s version %lu, expected %u", proto, got, version);
        return -1;
    }
    return 0;
}

int ipc_reply_check(const struct attr_list *al, const char *proto, unsigned version,
                    struct str *err)
{
    const char *text = NULL;
    const struct attr_spec spec[] = {
        ATTR_STR(PROTO_A_ERROR, ATTR_OPTIONAL, &text, 0),
        ATTR_END,
    };

    if (attr_scan(al, 0, spec, err) < 0)
        return -1;
    if (text != NULL) {
        size_t n = strlen(text);

        str_sets(err, "refused: ");
        for (size_t i = 0; i < n && i < ERROR_TEXT_MAX; i++)
            str_appendc(err, text[i] >= 0x20 && text[i] < 0x7f ? text[i] : '?');
        return -1;
    }
    return ipc_proto_check(al, proto, version, err);
}

int ipc_call(struct ipc_clnt *c, const char *proto, unsigned version,
             const struct attr_list *req, struct attr_list *reply, struct str *err)
{
    struct str why = STR_INIT;
    int rc = 0;

    if (ipc_clnt_call(c, req, reply) < 0) {
        str_sets(&why, errno == EPROTO ? "malformed reply frame"
                       : errno == EMSGSIZE ? "reply frame too large" : strerror(errno));
        rc = -1;
    } else if (ipc_reply_check(reply, proto, version, &why) < 0) {
        ipc_clnt_disconnect(c);
        rc = -1;
    }
    if (rc < 0) {
        str_clear(err);
        str_printf(err, "%s: %s", ipc_clnt_path(c), why.s);
    }
    str_free(&why);
    return rc;
}
