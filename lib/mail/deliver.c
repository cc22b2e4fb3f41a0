/* Delivery requests (qmgr -> delivery agent) and their per-recipient replies, as
 * attribute frames.  Both directions are read from a peer that is not trusted: every
 * index, queue name, status and dsn is checked before use. */
#include "deliver.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr.h"
#include "xmalloc.h"

#define DELIVER_TEXT_MAX 1000       /* longest reply text kept */

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
        return "ok";
    case DELIVER_BOUNCE:
        return "bounce";
    case DELIVER_DEFER:
    default:
        return "defer";
    }
}

static int status_parse(const char *s, enum deliver_status *st)
{
    if (strcmp(s, "ok") == 0)
        *st = DELIVER_OK;
    else if (strcmp(s, "defer") == 0)
        *st = DELIVER_DEFER;
    else if (strcmp(s, "bounce") == 0)
        *st = DELIVER_BOUNCE;
    else
        return -1;
    return 0;
}

/* A recipient index: decimal, below QUEUE_RCPT_MAX. */
static int index_parse(const struct attr *a, size_t *out)
{
    size_t v = 0;

    if (a->len == 0 || a->len > 9 || strlen(a->value) != a->len)
        return -1;
    for (size_t i = 0; i < a->len; i++) {
        if (a->value[i] < '0' || a->value[i] > '9')
            return -1;
        v = v * 10 + (size_t)(a->value[i] - '0');
    }
    if (v >= QUEUE_RCPT_MAX)
        return -1;
    *out = v;
    return 0;
}

/* A value that must be text: no NUL inside. */
static bool is_text(const struct attr *a)
{
    return strlen(a->value) == a->len;
}

static bool is_name(const struct attr *a, const char *name)
{
    return strcmp(a->name, name) == 0;
}

int deliver_request_write(struct stream *st, const struct deliver_request *dr)
{
    struct attr_list al = ATTR_LIST_INIT;
    int rc;

    attr_add(&al, "req", "deliver");
    attr_add(&al, "id", dr->id);
    attr_add(&al, "queue", dr->queue);
    attr_addn(&al, "transport", dr->transport.s ? dr->transport.s : "", dr->transport.len);
    attr_addn(&al, "nexthop", dr->nexthop.s ? dr->nexthop.s : "", dr->nexthop.len);
    for (size_t i = 0; i < dr->nrcpt; i++) {
        attr_add_int(&al, "rcpt", (long long)dr->rcpt[i].index);
        attr_add(&al, "addr", dr->rcpt[i].addr);
    }
    rc = attr_write(st, &al);
    attr_free(&al);
    return rc;
}

static const char *const queue_names[] = { "active", "incoming", "deferred", "hold", NULL };

static int request_parse(const struct attr_list *al, struct deliver_request *dr,
                         struct str *err)
{
    size_t i = 0;

    if (al->n < 5 || !is_name(&al->v[0], "req") || strcmp(al->v[0].value, "deliver") != 0) {
        str_sets(err, "not a delivery request");
        return -1;
    }
    if (!is_name(&al->v[1], "id") || !is_text(&al->v[1]) || !queue_id_valid(al->v[1].value)) {
        str_sets(err, "bad queue id in delivery request");
        return -1;
    }
    strcpy(dr->id, al->v[1].value);
    if (!is_name(&al->v[2], "queue") || !is_text(&al->v[2])) {
        str_sets(err, "bad queue name in delivery request");
        return -1;
    }
    for (i = 0; queue_names[i] != NULL; i++)
        if (strcmp(queue_names[i], al->v[2].value) == 0)
            break;
    if (queue_names[i] == NULL) {
        str_sets(err, "unknown queue name in delivery request");
        return -1;
    }
    strcpy(dr->queue, queue_names[i]);
    if (!is_name(&al->v[3], "transport") || !is_text(&al->v[3])
        || !is_name(&al->v[4], "nexthop") || !is_text(&al->v[4])) {
        str_sets(err, "bad transport or nexthop in delivery request");
        return -1;
    }
    str_sets(&dr->transport, al->v[3].value);
    str_sets(&dr->nexthop, al->v[4].value);
    for (i = 5; i < al->n; i += 2) {
        size_t index;

        if (i + 1 >= al->n || !is_name(&al->v[i], "rcpt") || !is_name(&al->v[i + 1], "addr")
            || index_parse(&al->v[i], &index) < 0 || !is_text(&al->v[i + 1])) {
            str_sets(err, "bad recipient in delivery request");
            return -1;
        }
        for (size_t j = 0; j < dr->nrcpt; j++) {
            if (dr->rcpt[j].index == index) {
                str_sets(err, "duplicate recipient index in delivery request");
                return -1;
            }
        }
        deliver_request_add(dr, index, al->v[i + 1].value);
    }
    if (dr->nrcpt == 0) {
        str_sets(err, "delivery request without recipients");
        return -1;
    }
    return 0;
}

int deliver_request_read(struct stream *st, struct deliver_request *dr, struct str *err)
{
    struct attr_list al = ATTR_LIST_INIT;
    int rc;

    deliver_request_free(dr);
    deliver_request_init(dr);
    rc = attr_read(st, &al, ATTR_FRAME_MAX);
    if (rc == 0) {
        attr_free(&al);
        return 0;
    }
    if (rc < 0) {
        str_printf(err, "reading delivery request: %s",
                   errno == EPROTO ? "malformed frame" : strerror(errno));
        attr_free(&al);
        return -1;
    }
    rc = request_parse(&al, dr, err);
    attr_free(&al);
    if (rc < 0) {
        deliver_request_free(dr);
        deliver_request_init(dr);
        return -1;
    }
    return 1;
}

int deliver_reply_write(struct stream *st, const struct deliver_request *dr)
{
    struct attr_list al = ATTR_LIST_INIT;
    int rc;

    for (size_t i = 0; i < dr->nrcpt; i++) {
        const struct deliver_rcpt *r = &dr->rcpt[i];

        attr_add_int(&al, "rcpt", (long long)r->index);
        attr_add(&al, "status", deliver_status_name(r->status));
        attr_add(&al, "dsn", r->dsn);
        attr_addn(&al, "text", r->text.s ? r->text.s : "", r->text.len);
    }
    for (size_t i = 0; i < dr->nrcpt; i++)
        if (dr->rcpt[i].notified && dr->rcpt[i].status == DELIVER_OK)
            attr_add_int(&al, "notified", (long long)dr->rcpt[i].index);
    if (dr->dead)
        attr_add(&al, "dead", "1");
    rc = attr_write(st, &al);
    attr_free(&al);
    return rc;
}

static int reply_parse(const struct attr_list *al, struct deliver_request *dr,
                       struct str *err)
{
    bool *seen;
    size_t i, nseen = 0;
    int rc = -1;

    if (dr->nrcpt == 0) {
        str_sets(err, "reply to an empty request");
        return -1;
    }
    dr->dead = false;
    for (size_t k = 0; k < dr->nrcpt; k++)
        dr->rcpt[k].notified = false;
    seen = xcalloc(dr->nrcpt, sizeof(*seen));
    /* The recipients, four attributes each. */
    for (i = 0; i < al->n && is_name(&al->v[i], "rcpt"); i += 4) {
        size_t index, j;
        enum deliver_status stv;
        struct deliver_rcpt *r;
        size_t tlen;

        if (i + 3 >= al->n || !is_name(&al->v[i + 1], "status")
            || !is_name(&al->v[i + 2], "dsn") || !is_name(&al->v[i + 3], "text")
            || index_parse(&al->v[i], &index) < 0
            || status_parse(al->v[i + 1].value, &stv) < 0) {
            str_sets(err, "malformed delivery reply");
            goto out;
        }
        for (j = 0; j < dr->nrcpt; j++)
            if (dr->rcpt[j].index == index)
                break;
        if (j == dr->nrcpt || seen[j]) {
            str_printf(err, "delivery reply names %s recipient %zu",
                       j == dr->nrcpt ? "unknown" : "twice the", index);
            goto out;
        }
        seen[j] = true;
        nseen++;
        r = &dr->rcpt[j];
        r->status = stv;
        set_dsn(r, is_text(&al->v[i + 2]) ? al->v[i + 2].value : NULL);
        tlen = strlen(al->v[i + 3].value);
        if (tlen > DELIVER_TEXT_MAX)
            tlen = DELIVER_TEXT_MAX;
        str_set(&r->text, al->v[i + 3].value, tlen);
    }
    /* Then "notified" for delivered recipients, then "dead" last; both optional. */
    for (; i < al->n && is_name(&al->v[i], "notified") && nseen > 0; i++) {
        size_t index, j;

        if (index_parse(&al->v[i], &index) < 0) {
            str_sets(err, "malformed delivery reply");
            goto out;
        }
        for (j = 0; j < dr->nrcpt; j++)
            if (dr->rcpt[j].index == index && seen[j] && dr->rcpt[j].status == DELIVER_OK)
                break;
        if (j == dr->nrcpt) {
            str_printf(err, "delivery reply marks recipient %zu notified, not delivered", index);
            goto out;
        }
        dr->rcpt[j].notified = true;
    }
    if (i + 1 == al->n && is_name(&al->v[i], "dead") && nseen > 0) {
        if (!is_text(&al->v[i]) || (strcmp(al->v[i].value, "1") != 0
                                    && strcmp(al->v[i].value, "0") != 0)) {
            str_sets(err, "malformed delivery reply");
            goto out;
        }
        dr->dead = al->v[i].value[0] == '1';
        i++;
    }
    if (i != al->n) {
        str_sets(err, "malformed delivery reply");
        goto out;
    }
    if (nseen != dr->nrcpt) {
        str_sets(err, "delivery reply misses recipients");
        goto out;
    }
    rc = 0;
out:
    free(seen);
    return rc;
}

int deliver_reply_read(struct stream *st, struct deliver_request *dr, struct str *err)
{
    struct attr_list al = ATTR_LIST_INIT;
    int rc;

    rc = attr_read(st, &al, ATTR_FRAME_MAX);
    if (rc == 0) {
        attr_free(&al);
        return 0;
    }
    if (rc < 0) {
        str_printf(err, "reading delivery reply: %s",
                   errno == EPROTO ? "malformed frame" : strerror(errno));
        attr_free(&al);
        return -1;
    }
    rc = reply_parse(&al, dr, err);
    attr_free(&al);
    return rc < 0 ? -1 : 1;
}
