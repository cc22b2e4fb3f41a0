/* Delivery requests (qmgr -> delivery agent) and their per-recipient replies, as
 * attribute frames.  Both directions are read from a peer that is not trusted: the
 * frames are scanned strictly (attr_scan.h), then every index, queue name, status and
 * dsn is checked before use. */
#include "deliver.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "attr_scan.h"
#include "ipc_proto.h"
#include "proto.h"
#include "xmalloc.h"

#define DELIVER_TEXT_MAX 1000       /* longest reply text kept */
#define DELIVER_NAME_MAX 255        /* longest transport, next hop, status, dsn */

void deliver_request_init(struct deliver_request *dr)
{
    memset(dr, 0, sizeof(*dr));
    str_init(&dr->transport);
    str_init(&dr->nexthop);
    strcpy(dr->queue, "active");
}

void deliver_request_free(struct deliver_request *dr)
{
    for (size_t i = 0; i < dr->nrcpt; i++) {
        free(dr->rcpt[i].addr);
        str_free(&dr->rcpt[i].text);
    }
    free(dr->rcpt);
    str_free(&dr->transport);
    str_free(&dr->nexthop);
    memset(dr, 0, sizeof(*dr));
}

void deliver_request_add(struct deliver_request *dr, size_t index, const char *addr)
{
    struct deliver_rcpt *r;

    dr->rcpt = xreallocarray(dr->rcpt, dr->nrcpt + 1, sizeof(*dr->rcpt));
    r = &dr->rcpt[dr->nrcpt++];
    memset(r, 0, sizeof(*r));
    r->index = index;
    r->addr = xstrdup(addr);
    r->status = DELIVER_DEFER;
    strcpy(r->dsn, "4.0.0");
    str_init(&r->text);
}

/* An enhanced status code: class digit 2, 4 or 5, then two numbers of 1-3 digits. */
static bool dsn_valid(const char *s)
{
    size_t n;

    if (s[0] != '2' && s[0] != '4' && s[0] != '5')
        return false;
    s++;
    for (int part = 0; part < 2; part++) {
        if (*s++ != '.')
            return false;
        n = strspn(s, "0123456789");
        if (n < 1 || n > 3)
            return false;
        s += n;
    }
    return *s == '\0';
}

static void set_dsn(struct deliver_rcpt *r, const char *dsn)
{
    if (dsn != NULL && dsn_valid(dsn) && strlen(dsn) < sizeof(r->dsn)
        && ((r->status == DELIVER_OK && dsn[0] == '2')
            || (r->status == DELIVER_DEFER && dsn[0] == '4')
            || (r->status == DELIVER_BOUNCE && dsn[0] == '5'))) {
        strcpy(r->dsn, dsn);
        return;
    }
    strcpy(r->dsn, r->status == DELIVER_OK ? "2.0.0"
                    : r->status == DELIVER_BOUNCE ? "5.0.0" : "4.0.0");
}

void deliver_result(struct deliver_request *dr, size_t i, enum deliver_status st,
                    const char *dsn, const char *fmt, ...)
{
    struct deliver_rcpt *r;
    va_list ap;

    if (i >= dr->nrcpt)
        return;
    r = &dr->rcpt[i];
    r->status = st;
    set_dsn(r, dsn);
    str_clear(&r->text);
    va_start(ap, fmt);
    str_vprintf(&r->text, fmt, ap);
    va_end(ap);
}

const char *deliver_status_name(enum deliver_status st)
{
    switch (st) {
    case DELIVER_OK:
        return PROTO_OK;
    case DELIVER_BOUNCE:
        return PROTO_BOUNCE;
    case DELIVER_DEFER:
    default:
        return PROTO_DEFER;
    }
}

static int status_parse(const char *s, enum deliver_status *st)
{
    if (strcmp(s, PROTO_OK) == 0)
        *st = DELIVER_OK;
    else if (strcmp(s, PROTO_DEFER) == 0)
        *st = DELIVER_DEFER;
    else if (strcmp(s, PROTO_BOUNCE) == 0)
        *st = DELIVER_BOUNCE;
    else
        return -1;
    return 0;
}

void deliver_request_frame(const struct deliver_request *dr, struct attr_list *al)
{
    ipc_request_start(al, PROTO_DELIVER, PROTO_DELIVER_VERSION, PROTO_REQ_DELIVER);
    attr_add(al, PROTO_A_ID, dr->id);
    attr_add(al, PROTO_A_QUEUE, dr->queue);
    attr_addn(al, PROTO_A_TRANSPORT, dr->transport.s ? dr->transport.s : "", dr->transport.len);
    attr_addn(al, PROTO_A_NEXTHOP, dr->nexthop.s ? dr->nexthop.s : "", dr->nexthop.len);
    for (size_t i = 0; i < dr->nrcpt; i++) {
        attr_add_int(al, PROTO_A_RCPT, (long long)dr->rcpt[i].index);
        attr_add(al, PROTO_A_ADDR, dr->rcpt[i].addr);
    }
}

static const char *const queue_names[] = { "active", "incoming", "deferred", "hold", NULL };

int deliver_request_scan(const struct attr_list *al, struct deliver_request *dr,
                         struct str *err)
{
    const char *id = NULL, *queue = NULL, *transport = NULL, *nexthop = NULL;
    struct attr_ints rcpt;
    struct attr_strs addr;
    const struct attr_spec spec[] = {
        ATTR_IGNORE(PROTO_A_PROTO),
        ATTR_IGNORE(PROTO_A_REQ),
        ATTR_STR(PROTO_A_ID, ATTR_NONEMPTY, &id, QUEUE_ID_SIZE - 1),
        ATTR_STR(PROTO_A_QUEUE, ATTR_NONEMPTY, &queue, sizeof(dr->queue) - 1),
        ATTR_STR(PROTO_A_TRANSPORT, 0, &transport, DELIVER_NAME_MAX),
        ATTR_STR(PROTO_A_NEXTHOP, 0, &nexthop, DELIVER_NAME_MAX),
        ATTR_INT_LIST(PROTO_A_RCPT, 0, &rcpt, 0, QUEUE_RCPT_MAX - 1),
        ATTR_STR_LIST(PROTO_A_ADDR, 0, &addr, 0),
        ATTR_END,
    };
    size_t i;
    int rc = -1;

    deliver_request_free(dr);
    deliver_request_init(dr);
    if (attr_scan(al, ATTR_SCAN_STRICT, spec, err) < 0)
        return -1;
    if (!queue_id_valid(id)) {
        str_sets(err, "bad queue id in delivery request");
        goto out;
    }
    strcpy(dr->id, id);
    for (i = 0; queue_names[i] != NULL; i++)
        if (strcmp(queue_names[i], queue) == 0)
            break;
    if (queue_names[i] == NULL) {
        str_sets(err, "unknown queue name in delivery request");
        goto out;
    }
    strcpy(dr->queue, queue_names[i]);
    str_sets(&dr->transport, transport);
    str_sets(&dr->nexthop, nexthop);
    if (rcpt.n != addr.n) {
        str_sets(err, "as many recipient addresses as indexes expected in delivery request");
        goto out;
    }
    for (i = 0; i < rcpt.n; i++) {
        for (size_t j = 0; j < dr->nrcpt; j++) {
            if (dr->rcpt[j].index == (size_t)rcpt.v[i]) {
                str_sets(err, "duplicate recipient index in delivery request");
                goto out;
            }
        }
        deliver_request_add(dr, (size_t)rcpt.v[i], addr.v[i]);
    }
    rc = 0;
out:
    attr_scan_free(spec);
    if (rc < 0) {
        deliver_request_free(dr);
        deliver_request_init(dr);
    }
    return rc;
}

void deliver_reply_add(const struct deliver_request *dr, struct attr_list *al)
{
    for (size_t i = 0; i < dr->nrcpt; i++) {
        const struct deliver_rcpt *r = &dr->rcpt[i];

        attr_add_int(al, PROTO_A_RCPT, (long long)r->index);
        attr_add(al, PROTO_A_STATUS, deliver_status_name(r->status));
        attr_add(al, PROTO_A_DSN, r->dsn);
        attr_addn(al, PROTO_A_TEXT, r->text.s ? r->text.s : "", r->text.len);
    }
    for (size_t i = 0; i < dr->nrcpt; i++)
        if (dr->rcpt[i].notified && dr->rcpt[i].status == DELIVER_OK)
            attr_add_int(al, PROTO_A_NOTIFIED, (long long)dr->rcpt[i].index);
    if (dr->dead)
        attr_add(al, PROTO_A_DEAD, "1");
}

/* The position in dr of the recipient with queue index index, or dr->nrcpt. */
static size_t rcpt_find(const struct deliver_request *dr, long long index)
{
    size_t j;

    for (j = 0; j < dr->nrcpt; j++)
        if (dr->rcpt[j].index == (size_t)index)
            break;
    return j;
}

int deliver_reply_scan(const struct attr_list *al, struct deliver_request *dr,
                       struct str *err)
{
    struct attr_ints rcpt, notified;
    struct attr_strs status, dsn, text;
    long long dead = 0;
    const struct attr_spec spec[] = {
        ATTR_IGNORE(PROTO_A_PROTO),
        ATTR_INT_LIST(PROTO_A_RCPT, 0, &rcpt, 0, QUEUE_RCPT_MAX - 1),
        ATTR_STR_LIST(PROTO_A_STATUS, 0, &status, DELIVER_NAME_MAX),
        ATTR_STR_LIST(PROTO_A_DSN, 0, &dsn, DELIVER_NAME_MAX),
        ATTR_STR_LIST(PROTO_A_TEXT, 0, &text, 0),
        ATTR_INT_LIST(PROTO_A_NOTIFIED, ATTR_OPTIONAL, &notified, 0, QUEUE_RCPT_MAX - 1),
        ATTR_INT(PROTO_A_DEAD, ATTR_OPTIONAL, &dead, 0, 1),
        ATTR_END,
    };
    bool *seen;
    int rc = -1;

    if (dr->nrcpt == 0) {
        str_sets(err, "reply to an empty request");
        return -1;
    }
    if (attr_scan(al, ATTR_SCAN_STRICT, spec, err) < 0)
        return -1;
    if (status.n != rcpt.n || dsn.n != rcpt.n || text.n != rcpt.n) {
        str_sets(err, "malformed delivery reply: a recipient without its status, dsn or text");
        attr_scan_free(spec);
        return -1;
    }
    seen = xcalloc(dr->nrcpt, sizeof(*seen));
    for (size_t i = 0; i < rcpt.n; i++) {
        enum deliver_status stv;
        size_t j = rcpt_find(dr, rcpt.v[i]);

        if (status_parse(status.v[i], &stv) < 0) {
            str_sets(err, "malformed delivery reply: unknown status");
            goto out;
        }
        if (j == dr->nrcpt || seen[j]) {
            str_printf(err, "delivery reply names %s recipient %lld",
                       j == dr->nrcpt ? "unknown" : "twice the", rcpt.v[i]);
            goto out;
        }
        seen[j] = true;
    }
    if (rcpt.n != dr->nrcpt) {
        str_sets(err, "delivery reply misses recipients");
        goto out;
    }
    /* Only "notified" left to check: the results can be taken now. */
    for (size_t i = 0; i < rcpt.n; i++) {
        struct deliver_rcpt *r = &dr->rcpt[rcpt_find(dr, rcpt.v[i])];
        size_t tlen = strlen(text.v[i]);

        (void)status_parse(status.v[i], &r->status);
        set_dsn(r, dsn.v[i]);
        str_set(&r->text, text.v[i], tlen > DELIVER_TEXT_MAX ? DELIVER_TEXT_MAX : tlen);
        r->notified = false;
    }
    for (size_t i = 0; i < notified.n; i++) {
        size_t j = rcpt_find(dr, notified.v[i]);

        if (j == dr->nrcpt || dr->rcpt[j].status != DELIVER_OK) {
            str_printf(err, "delivery reply marks recipient %lld notified, not delivered",
                       notified.v[i]);
            goto out;
        }
        dr->rcpt[j].notified = true;
    }
    dr->dead = dead == 1;
    rc = 0;
out:
    free(seen);
    attr_scan_free(spec);
    return rc;
}
