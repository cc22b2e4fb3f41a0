/* Login failure penalties of auth(8) (see auth_delay.h), counted by anvil(8).  Client
 * addresses come from the connection the caller passed (getpeername), accounts are
 * the names as typed (bounded and checked by auth.c). */
#include "auth_delay.h"

#include <time.h>

#include "anvil_clnt.h"
#include "conf.h"
#include "log.h"

#define FALLBACK_LOG_S 60           /* one "anvil unreachable" line a minute */

static long long base_ms = 1000, max_ms = 15000, client_limit = 20;

void auth_delay_setup(const struct conf *c)
{
    base_ms = conf_time_ms(c, CONF_auth_failure_delay);
    max_ms = conf_time_ms(c, CONF_auth_failure_max_delay);
    client_limit = conf_count(c, CONF_auth_client_failure_limit);
}

long long auth_delay_for(unsigned n)
{
    long long d = base_ms;

    if (n == 0)
        return 0;
    for (unsigned i = 1; i < n && d < max_ms; i++)
        d *= 2;
    return d < max_ms ? d : max_ms;
}

static void fallback_log(const char *what)
{
    static time_t last;
    time_t now = time(NULL);

    if (last != 0 && now - last < FALLBACK_LOG_S && now >= last)
        return;
    last = now;
    log_warn("login penalties: anvil not reachable (%s): failed logins wait %lld ms", what,
             max_ms);
}

bool auth_delay_begin(const char *client, const char *account, struct auth_penalty *p)
{
    struct anvil_fails f;

    p->known = anvil_login_query(client, account, &f) == 0;
    p->client = p->known ? f.client : 0;
    if (!p->known)
        fallback_log("query");
    return p->known && client_limit > 0 && p->client >= (unsigned long long)client_limit;
}

long long auth_delay_ok(const char *client, const char *account,
                        const struct auth_penalty *p)
{
    if (anvil_login_ok(client, account) < 0)
        fallback_log("ok");
    return auth_delay_for(p->client);
}

long long auth_delay_failed(const char *client, const char *account)
{
    struct anvil_fails f;

    if (anvil_login_failed(client, account, &f) < 0) {
        fallback_log("failed");
        return max_ms;
    }
    return auth_delay_for(f.client > f.account ? f.client : f.account);
}
