/* Connection limits after accept (see conn_limit.h).  The counts come from anvil, a
 * trusted daemon; the client address from the accepted socket. */
#include "conn_limit.h"

#include <stdlib.h>

#include "anvil_clnt.h"
#include "log.h"
#include "str.h"
#include "xmalloc.h"

void conn_limit_setup(struct conn_limit *l, const struct conf *c, enum conf_key count_key,
                      enum conf_key rate_key, enum conf_key exceptions_key)
{
    struct str err = STR_INIT;
    char **nets = conf_list(c, exceptions_key);

    l->count_limit = conf_count(c, count_key);
    l->rate_limit = conf_count(c, rate_key);
    if (cidr_list_parse(nets, &l->exceptions, &err) < 0)
        log_fatal("%s: %s", conf_key_name(exceptions_key), err.s);
    strv_free(nets);
    str_free(&err);
}

void conn_limit_free(struct conn_limit *l)
{
    cidr_list_free(&l->exceptions);
}

bool conn_limit_check(const struct conn_limit *l, const char *service, const char *client,
                      struct conn_limit_state *st)
{
    struct anvil_counts n;
    const char *what = NULL;
    unsigned long long got = 0, limit = 0;

    st->counted = false;
    st->service = service;
    st->client = client;
    if (l->count_limit <= 0 && l->rate_limit <= 0)
        return true;
    if (cidr_list_match(&l->exceptions, client))
        return true;
    if (anvil_connect(service, client, &n) < 0)
        return true;                /* fail open */
    st->counted = true;
    if (l->count_limit > 0 && n.conns > (unsigned long long)l->count_limit) {
        what = "concurrency";
        got = n.conns;
        limit = (unsigned long long)l->count_limit;
    } else if (l->rate_limit > 0 && n.rate > (unsigned long long)l->rate_limit) {
        what = "rate";
        got = n.rate;
        limit = (unsigned long long)l->rate_limit;
    }
    if (what == NULL)
        return true;
    if (anvil_limit_hit(service, client) != 0)
        log_warn("Connection %s limit exceeded: %llu (limit %llu) from [%s] for service %s "
                 "(logged once a minute)", what, got, limit, client, service);
    return false;
}

void conn_limit_end(struct conn_limit_state *st)
{
    if (!st->counted)
        return;
    st->counted = false;
    anvil_disconnect(st->service, st->client);
}
